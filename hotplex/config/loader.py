"""Load one YAML file into frozen Settings, with errors a person can act on.

Order of lookup: ``--config PATH``, ``./hotplex.yaml``, ``~/.config/hotplex/hotplex.yaml``,
else the embedded defaults. ``${VAR}`` and ``${VAR:-default}`` are expanded in string values
from the environment and an optional ``.env`` beside the file (the environment wins);
``$${`` is a literal ``${``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from hotplex.config.settings import Settings
from hotplex.errors import ConfigError
from hotplex.records import ConfigSection

__all__ = ["LoadedConfig", "find_config_file", "load_settings"]

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    source: Path | None
    warnings: tuple[str, ...] = field(default=())


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found", source=str(path))
        return path
    for candidate in (Path("hotplex.yaml"), Path.home() / ".config/hotplex/hotplex.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _read_dotenv(directory: Path) -> dict[str, str]:
    dotenv_path = directory / ".env"
    if not dotenv_path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}


def _expand(value: Any, env: Mapping[str, str], where: str, path: str) -> Any:
    if isinstance(value, dict):
        return {
            k: _expand(v, env, where, f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, env, where, f"{path}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: {path}: environment variable {name} is not set "
            f"(set it, put it in .env, or write ${{{name}:-default}})",
            source=where,
            path=path,
        )

    return _VAR.sub(substitute, value)


def _model_at(model: type[BaseModel], loc: Iterable[int | str]) -> type[BaseModel] | None:
    """The model class that validates the mapping found at ``loc`` under ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        current = _unwrap(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _is_secret(model: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """Whether the value at ``loc`` is a secret (never echoed in an error)."""
    while loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    parent = _model_at(model, loc[:-1]) if loc else None
    info = parent.model_fields.get(str(loc[-1])) if parent is not None else None
    return info is not None and _mentions(info.annotation, SecretStr)


def _mentions(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_mentions(arg, kind) for arg in getattr(annotation, "__args__", ()))


def _unwrap(annotation: Any) -> Any:
    """Find the BaseModel inside ``X | None``, ``tuple[X, ...]``, ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _format_errors(
    exc: ValidationError, model: type[BaseModel], where: str, prefix: str
) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key_path = ".".join([prefix, *loc] if prefix else loc)
        if err["type"] == "extra_forbidden":
            parent = _model_at(model, err["loc"][:-1])
            hint = suggest(loc[-1], parent.model_fields) if parent else ""
            lines.append(f"{where}: {key_path}: unknown key{hint}")
        elif err["type"] == "missing":
            lines.append(f"{where}: {key_path}: required key is missing")
        else:
            got = err.get("input")
            hidden = isinstance(got, dict | list) or _is_secret(model, tuple(err["loc"]))
            shown = "" if hidden else f" (got {got!r})"
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {key_path}: {message}{shown}")
    return lines


def _validate(
    model: type[BaseModel], raw: Any, where: str, prefix: str
) -> tuple[BaseModel | None, list[str]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, _format_errors(exc, model, where, prefix)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    sections: Iterable[ConfigSection] = (),
    known_plugins: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    text: str | None = None,
) -> LoadedConfig:
    """Read, expand and validate the config; raises ConfigError listing every problem.

    ``sections`` are the plugin sections of loaded plugins; ``known_plugins`` names plugins
    that exist but are disabled (their sections only warn).
    """
    source = None if text is not None else find_config_file(path)
    where = str(source) if source is not None else "<embedded defaults>"
    if text is None and source is not None:
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}", source=where) from exc
    try:
        raw = yaml.safe_load(text) if text else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}", source=where) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of keys", source=where)

    env = dict(_read_dotenv(source.parent if source else Path.cwd()))
    env.update(os.environ if environ is None else environ)
    raw = _expand(raw, env, where, "")

    warnings: list[str] = []
    errors: list[str] = []
    by_name = {s.name: s for s in sections}
    raw_plugins = raw.pop("plugins", None) or {}
    if not isinstance(raw_plugins, dict):
        raise ConfigError(f"{where}: plugins: expected a mapping of plugin sections")

    plugin_settings: dict[str, Any] = {}
    for name, section_raw in raw_plugins.items():
        section = by_name.get(name)
        if section is None:
            if name in set(known_plugins):
                warnings.append(f"{where}: plugins.{name}: plugin is disabled; section ignored")
            else:
                hint = suggest(str(name), [*by_name, *known_plugins])
                warnings.append(
                    f"{where}: plugins.{name}: no such plugin is installed; section ignored{hint}"
                )
            continue
        value, problems = _validate(section.model, section_raw or {}, where, f"plugins.{name}")
        errors.extend(problems)
        if value is not None:
            plugin_settings[name] = value
    for name, section in by_name.items():
        if name not in plugin_settings and name not in raw_plugins:
            default, _ = _validate(section.model, {}, where, f"plugins.{name}")
            if default is not None:
                plugin_settings[name] = default

    core, problems = _validate(Settings, raw, where, "")
    errors.extend(problems)
    if errors or core is None:
        raise ConfigError("\n".join(errors), source=where)
    settings = core.model_copy(update={"plugins": plugin_settings})
    assert isinstance(settings, Settings)
    return LoadedConfig(settings=settings, source=source, warnings=tuple(warnings))
