from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.config import Settings, load_settings


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with data under tmp_path; keyword args override ``engine.*`` keys, and
    ``extra`` merges a whole YAML mapping."""

    def make(extra: dict[str, Any] | None = None, **engine: Any) -> Settings:
        raw: dict[str, Any] = {"engine": {"data_dir": str(tmp_path / "data"), **engine}}
        for key, value in (extra or {}).items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key].update(value)
            else:
                raw[key] = value
        return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings

    return make
