"""Files shipped inside the package: templates/ and configs/ (mapped into the wheel as
``hotplex.templates`` and ``hotplex.configs``), read through importlib.resources."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

__all__ = ["config_file", "template_root"]


def template_root() -> Traversable:
    return resources.files("hotplex.templates")


def config_file(name: str) -> Traversable:
    """A shipped config file such as ``hotplex.example.yaml`` or ``waf.yaml``."""
    path = resources.files("hotplex.configs").joinpath(name)
    if not path.is_file():
        raise FileNotFoundError(f"hotplex ships no config file {name!r}")
    return path
