"""Finding the agent CLIs: configured path, project-local node_modules, then PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["PINNED_VERSIONS", "binary_version", "find_binary", "project_root"]

#: Versions the project pins in package.json and measured in docs/protocols.
PINNED_VERSIONS = {"claude": "2.1.197", "opencode": "1.18.33"}


def project_root() -> Path:
    """The source checkout holding this package (where package.json and node_modules live)."""
    return Path(__file__).resolve().parent.parent


def find_binary(name: str, configured: str | None = None) -> Path | None:
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        found = shutil.which(configured)
        return Path(found) if found else None
    for base in (Path.cwd(), project_root()):
        local = base / "node_modules" / ".bin" / name
        if local.is_file() and os.access(local, os.X_OK):
            return local
    found = shutil.which(name)
    return Path(found) if found else None


def binary_version(path: Path, timeout: float = 15.0) -> str | None:
    """The first word `<binary> --version` prints, or None when it fails."""
    try:
        out = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "DISABLE_AUTOUPDATER": "1"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = out.stdout.split()
    return words[0] if out.returncode == 0 and words else None
