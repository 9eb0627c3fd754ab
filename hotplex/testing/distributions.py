"""Write a minimal installed distribution (dist-info + modules) into a folder, so a test can
put it on ``sys.path``/``PYTHONPATH`` and have its entry points found, without touching the
project's virtual environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_distribution"]


def write_distribution(
    site: Path,
    name: str,
    *,
    version: str = "0.1.0",
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Create ``<site>/<name>-<version>.dist-info`` and the given source files.

    ``entry_points`` maps group -> {name: "module:attr"}; ``files`` maps a path relative to
    ``site`` to its text.
    """
    site.mkdir(parents=True, exist_ok=True)
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines: list[str] = []
    for group, points in (entry_points or {}).items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in points.items()]
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    for rel, text in (files or {}).items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dist
