from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.config import Settings, load_settings


@pytest.fixture
def claude_settings(tmp_path: Path, claude_binary: Path) -> Callable[..., Settings]:
    def make(**provider: Any) -> Settings:
        raw = {
            "engine": {"data_dir": str(tmp_path / "data")},
            "provider": {"binary": str(claude_binary), **provider},
        }
        return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings

    return make
