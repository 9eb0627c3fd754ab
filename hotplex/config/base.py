"""The primitives of every config section: the frozen base model, durations, paths."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = [
    "DEFAULT_NAMESPACE",
    "Duration",
    "Section",
    "UserPath",
    "default_data_dir",
    "parse_duration",
]

DEFAULT_NAMESPACE = uuid.UUID("5e4d8a3c-0b6f-5f2e-9a57-6b1f1d9c2a10")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``90`` / ``"90s"`` / ``"30m"`` / ``"1h30m"`` / ``"250ms"`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _DURATION_PART.sub("", text) == "":
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 10m, 2h or 1h30m")
    else:
        raise ValueError("expected a duration such as 30s, 10m or 2h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
#: A path where ``~`` means the user's home.
UserPath = Annotated[Path, AfterValidator(lambda p: p.expanduser())]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hotplex"


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
