from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from hotplex.config import Settings, load_settings, parse_duration, secret_values
from hotplex.errors import ConfigError
from hotplex.plugins import make_plugin_manager
from hotplex.resources import config_file


@pytest.fixture(scope="module")
def sections() -> list[Any]:
    pm = make_plugin_manager(environ={})
    return list(pm.config_sections().values())


def load(tmp_path: Path, text: str, sections: list[Any], env: dict[str, str] | None = None):
    path = tmp_path / "hotplex.yaml"
    path.write_text(text)
    return load_settings(path, sections=sections, environ=env or {}, known_plugins=["gone"])


def test_embedded_defaults() -> None:
    loaded = load_settings(None, text="")
    assert loaded.settings.server.port == 8080
    assert loaded.settings.engine.idle_timeout == 1800
    assert loaded.settings.storage_url.startswith("sqlite+aiosqlite:///")


def test_settings_are_frozen(tmp_path: Path, sections: list[Any]) -> None:
    settings = load(tmp_path, "server: {port: 9000}", sections).settings
    with pytest.raises(ValueError):
        settings.server.port = 1  # type: ignore[misc]


def test_unknown_key_names_file_path_and_suggests(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "plugins:\n  slack:\n    bot_tokn: x\n", sections)
    assert (
        f"{tmp_path / 'hotplex.yaml'}: plugins.slack.bot_tokn: unknown key; "
        "did you mean bot_token?" in str(info.value)
    )


def test_unknown_core_key_suggests(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(
        ConfigError,
        match=r"engine\.max_sesions: unknown key; did you mean "
        r"max_sessions\?",
    ):
        load(tmp_path, "engine: {max_sesions: 3}", sections)


def test_wrong_type_names_key_path(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(ConfigError, match=r"server\.port: .*integer.*'abc'"):
        load(tmp_path, "server: {port: abc}", sections)


def test_every_problem_is_reported(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "server: {port: abc}\nengine: {busy_policy: panic}\n", sections)
    assert "server.port" in str(info.value) and "engine.busy_policy" in str(info.value)


def test_missing_required_secret(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.slack: slack is enabled but bot_token"):
        load(tmp_path, "plugins:\n  slack: {enabled: true, app_token: x}\n", sections)


def test_env_expansion_and_defaults(tmp_path: Path, sections: list[Any]) -> None:
    text = "server:\n  admin_token: ${TOKEN}\n  host: ${HOST:-0.0.0.0}\n  port: ${PORT:-81}\n"
    settings = load(tmp_path, text, sections, {"TOKEN": "s3cret-0123456789"}).settings
    assert settings.server.admin_token == SecretStr("s3cret-0123456789")
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 81


def test_unset_variable_is_an_error_naming_the_key(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(ConfigError, match=r"server\.admin_token: environment variable TOKEN"):
        load(tmp_path, "server:\n  admin_token: ${TOKEN}\n", sections)


def test_literal_dollar_brace(tmp_path: Path, sections: list[Any]) -> None:
    settings = load(tmp_path, "provider:\n  append_system_prompt: 'cost $${X}'\n", sections)
    assert settings.settings.provider.append_system_prompt == "cost ${X}"


def test_dotenv_beside_the_file(tmp_path: Path, sections: list[Any]) -> None:
    (tmp_path / ".env").write_text("TOKEN=from-dotenv-0123456789\nPORT=99\n")
    settings = load(
        tmp_path, "server:\n  admin_token: ${TOKEN}\n  port: ${PORT}\n", sections, {"PORT": "98"}
    ).settings
    assert settings.server.admin_token is not None
    assert settings.server.admin_token.get_secret_value() == "from-dotenv-0123456789"
    assert settings.server.port == 98  # the environment wins


def test_sections_of_disabled_or_absent_plugins_warn(tmp_path: Path, sections: list[Any]) -> None:
    loaded = load(tmp_path, "plugins:\n  gone: {x: 1}\n  slak: {}\n", sections)
    assert any("plugins.gone: plugin is disabled" in w for w in loaded.warnings)
    assert any(
        "plugins.slak: no such plugin" in w and "did you mean slack?" in w for w in loaded.warnings
    )


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12
    for bad in ("5x", "-1", "", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_secret_values_are_collected(tmp_path: Path, sections: list[Any]) -> None:
    text = (
        "server:\n  admin_token: adm1n-0123456789\n"
        "  api_keys: [{name: a, key: k3y-0123456789abc}]\n"
        "plugins:\n  slack: {enabled: true, bot_token: xoxb-1, app_token: xapp-1}\n"
    )
    settings = load(tmp_path, text, sections).settings
    assert secret_values(settings) == {
        "adm1n-0123456789",
        "k3y-0123456789abc",
        "xoxb-1",
        "xapp-1",
    }


def test_not_a_mapping(tmp_path: Path, sections: list[Any]) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load(tmp_path, "- a\n- b\n", sections)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path, "a: [\n", sections)


# -- the shipped example ---------------------------------------------------------------

EXAMPLE_ENV = {
    "HOTPLEX_CI_KEY": "k" * 24,
    "RELAY_SECRET": "r" * 16,  # peer secrets have at least 16 characters
    "WEBHOOK_SECRET": "whsec_" + "d2" * 16,  # base64 of 24 bytes
    "INBOUND_SECRET": "whsec_" + "aW" * 16,
}


def _key_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        inner = _first_model(info.annotation)
        if inner is not None and name != "plugins":
            paths |= _key_paths(inner, f"{path}.")
    return paths


def _first_model(annotation: Any) -> type[BaseModel] | None:
    """The model under ``X``, ``X | None`` or ``tuple[X, ...]``; not under wider unions
    (an UnattendedPolicy is documented by its key alone)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [
        a for a in getattr(annotation, "__args__", ()) if a is not type(None) and a is not Ellipsis
    ]
    return _first_model(args[0]) if len(args) == 1 else None


def _yaml_paths(value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}{key}"
            paths.add(path)
            paths |= _yaml_paths(item, f"{path}.")
    elif isinstance(value, list):
        for item in value:
            paths |= _yaml_paths(item, prefix)
    return paths


def test_example_config_validates_as_shipped(sections: list[Any]) -> None:
    text = config_file("hotplex.example.yaml").read_text()
    loaded = load_settings(None, text=text, sections=sections, environ={})
    assert loaded.warnings == ()
    defaults = load_settings(None, text="", sections=sections, environ={}).settings
    shipped = loaded.settings.model_dump(exclude={"engine"})
    assert shipped == defaults.model_dump(exclude={"engine"}), "example must show defaults"


def test_example_config_covers_every_key(sections: list[Any]) -> None:
    text = config_file("hotplex.example.yaml").read_text()
    uncommented = re.sub(r"^#\|", "", text, flags=re.MULTILINE)
    load_settings(None, text=uncommented, sections=sections, environ=EXAMPLE_ENV)
    present = _yaml_paths(yaml.safe_load(uncommented))
    expected = _key_paths(Settings)
    for section in sections:
        expected |= {f"plugins.{section.name}"}
        expected |= _key_paths(section.model, f"plugins.{section.name}.")
    missing = sorted(expected - present)
    assert not missing, f"configs/hotplex.example.yaml does not document {missing}"
    unknown = sorted(
        p
        for p in present - expected
        if not p.startswith(("provider.env.", "security.waf.overrides."))
    )
    assert not unknown, f"example documents keys no model defines: {unknown}"


def test_plugin_enabled_rules(tmp_path: Path, sections: list[Any]) -> None:
    from hotplex.config import plugin_enabled

    defaults = load(tmp_path, "", sections).settings
    assert not any(plugin_enabled(defaults, n) for n in ("slack", "cron", "relay", "nope"))
    text = "plugins:\n  slack: {enabled: true, bot_token: a, app_token: b}\n  cron: {jobs: []}\n"
    configured = load(tmp_path, text, sections).settings
    assert plugin_enabled(configured, "slack") and plugin_enabled(configured, "cron")
    assert not plugin_enabled(configured, "relay")


def test_short_api_keys_and_admin_token_are_refused_without_echoing_them(
    tmp_path: Path, sections: list[Any]
) -> None:
    text = (
        "server:\n  admin_token: tok-0123456789\n"
        "  api_keys: [{name: a, key: k-0123456789abcdef}, {name: b, key: k-short-b}]\n"
    )
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, text, sections)
    message = str(refused.value)
    assert "server.api_keys.1.key: too short (9 characters): use at least 16" in message
    assert "server.admin_token: too short (14 characters): use at least 16" in message
    assert "server.api_keys.0" not in message
    for secret in ("tok-0123456789", "k-short-b"):
        assert secret not in message
    ok = (
        "server:\n  admin_token: t-0123456789abcd\n"
        "  api_keys: [{name: a, key: k-0123456789abcd}]\n"
    )
    settings = load(tmp_path, ok, sections).settings  # exactly 16 characters
    assert settings.server.admin_token is not None
