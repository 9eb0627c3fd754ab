"""``templates.dir``: a user's file with the name of a shipped template wins over it (so a
message or card changes without forking); other names fall back to the shipped ones; an
edited override applies at its next use."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest
import yaml

from hotplex import hookimpl
from hotplex.chat.status import render_footer
from hotplex.config import load_settings
from hotplex.plugins import make_plugin_manager
from hotplex.records import ProviderSpec
from hotplex.runtime import Runtime
from hotplex.templating import TEMPLATES, make_environment
from hotplex.testing.fakes import FakeProvider

USAGE = {"input_tokens": 1200, "output_tokens": 34, "cost_usd": 0.5}
DONE = {"status": "ok", "duration_ms": 2500}


def write_override(folder: Path, name: str, text: str, *, mtime: float | None = None) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def shipped(env: jinja2.Environment, name: str) -> bool:
    """Whether ``name`` comes from the installed package (no file name) or a user file."""
    assert env.loader is not None
    return env.loader.get_source(env, name)[1] is None


def runtime_with(tmp_path: Path, templates_dir: Path | None) -> Runtime:
    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: FakeProvider())]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "fakeprov")
    raw: dict[str, object] = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"type": "fake"},
        "storage": {"enabled": False},
    }
    if templates_dir is not None:
        raw["templates"] = {"dir": str(templates_dir)}
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    return Runtime(settings, pm)


async def test_a_users_template_replaces_the_shipped_one(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    write_override(folder, "core/text/usage.md.j2", "spent {{ usage.output_tokens }} tokens")
    async with runtime_with(tmp_path, folder) as runtime:
        env = runtime.ctx.services.get(TEMPLATES)
        footer = render_footer(env, usage=USAGE, done=DONE, error=None)
        assert footer == "spent 34 tokens"
        # a name the folder lacks is still the shipped template
        assert shipped(env, "core/text/help.md.j2")
        assert not shipped(env, "core/text/usage.md.j2")
    async with runtime_with(tmp_path, None) as runtime:  # without the setting: shipped
        env = runtime.ctx.services.get(TEMPLATES)
        footer = render_footer(env, usage=USAGE, done=DONE, error=None)
        assert footer == "1,200 in · 34 out tokens · $0.5000 · 2.5 s"


def test_an_edited_override_applies_at_its_next_use(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    path = write_override(folder, "core/text/usage.md.j2", "first", mtime=1_000_000)
    specs = runtime_with(tmp_path, None).ctx.plugins.templates()
    env = make_environment(specs, override_dir=folder)
    assert env.get_template("core/text/usage.md.j2").render() == "first"
    write_override(folder, "core/text/usage.md.j2", "second", mtime=1_000_100)
    assert env.get_template("core/text/usage.md.j2").render() == "second"
    path.unlink()  # gone: the shipped template again
    text = env.get_template("core/text/usage.md.j2").render(
        usage=None, status="ok", seconds=None, error=None
    )
    assert text.strip() == ""


def test_a_missing_folder_keeps_the_shipped_templates(tmp_path: Path) -> None:
    specs = runtime_with(tmp_path, None).ctx.plugins.templates()
    env = make_environment(specs, override_dir=tmp_path / "absent")
    assert "core/text/help.md.j2" in env.list_templates()
    assert shipped(env, "core/text/help.md.j2")


def test_an_override_cannot_reach_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.j2").write_text("secret", encoding="utf-8")
    folder = tmp_path / "mine"
    folder.mkdir()
    specs = runtime_with(tmp_path, None).ctx.plugins.templates()
    env = make_environment(specs, override_dir=folder)
    with pytest.raises(jinja2.TemplateNotFound):
        env.get_template("../secret.j2")
