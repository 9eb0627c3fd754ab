"""``--config FILE`` accepted before or after the subcommand, by one mechanism.

``hotplex --config FILE serve`` and ``hotplex serve --config FILE`` mean the same thing. The
root group owns the option (with ``HOTPLEX_CONFIG``); :func:`with_config_option` gives every
command under it (core, plugin, nested groups) a copy of the command with a ``--config``
option whose callback records the file in the root context's ``obj["config_path"]``, where
every command reads it. The same file named in two places is fine; two different files are a
usage error. A ``--config`` on the command line beats ``HOTPLEX_CONFIG``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import click
from click.core import ParameterSource

__all__ = ["CONFIG_ENV", "GIVEN_KEY", "KEY", "peek_config", "with_config_option"]

CONFIG_ENV = "HOTPLEX_CONFIG"
KEY = "config_path"
# the file named on the command line so far, and where ("before the command", "after serve")
GIVEN_KEY = "config_given"


def _same_file(a: str, b: str) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def record_root(ctx: click.Context, config_path: str | None) -> None:
    """Called by the root group: the file it got, and whether the command line named it."""
    obj = ctx.ensure_object(dict)
    obj[KEY] = config_path
    if config_path is not None and ctx.get_parameter_source(KEY) is ParameterSource.COMMANDLINE:
        obj[GIVEN_KEY] = (config_path, "before the command")


def _record_sub(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    obj = ctx.find_root().ensure_object(dict)
    where = f"after {ctx.command_path.split(' ', 1)[-1]!r}"
    given = obj.get(GIVEN_KEY)
    if given is not None and not _same_file(given[0], value):
        raise click.UsageError(
            f"--config names two different files: {given[0]!r} ({given[1]}) and {value!r} "
            f"({where}); give one",
            ctx=ctx,
        )
    obj[KEY] = value
    obj[GIVEN_KEY] = (value, where)


def _option() -> click.Option:
    return click.Option(
        ["--config", KEY],
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_record_sub,
        help="Config file (same as `hotplex --config FILE`).",
    )


def with_config_option(command: click.Command) -> click.Command:
    """A copy of ``command`` (and of every subcommand of a group) that accepts ``--config``.

    The original is left alone: click commands are module-level objects shared by every CLI
    built in a process.
    """
    clone = copy.copy(command)
    names = {param.name for param in command.params}
    clone.params = list(command.params) if KEY in names else [*command.params, _option()]
    if isinstance(command, click.Group):
        assert isinstance(clone, click.Group)
        clone.commands = {name: with_config_option(sub) for name, sub in command.commands.items()}
    return clone


def peek_config(argv: Sequence[str], environ: dict[str, str] | None = None) -> str | None:
    """The config file before click parses (plugins load first): ``--config`` anywhere before
    a ``--``, else ``HOTPLEX_CONFIG``."""
    import os

    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return (os.environ if environ is None else environ).get(CONFIG_ENV)
