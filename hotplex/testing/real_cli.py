"""Finding the pinned agent CLIs for integration tests: skip when missing, but fail under
``CI=true`` (a skipped real-CLI test in CI would hide a broken install)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotplex.binaries import project_root

__all__ = ["require_cli"]


def require_cli(name: str) -> Path:
    path = project_root() / "node_modules" / ".bin" / name
    if path.exists():
        return path
    reason = f"pinned {name} CLI not installed at {path} (run `make setup`)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
