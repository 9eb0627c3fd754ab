"""The ``hotplex`` command line (click). Plugins add commands with
``hotplex_register_commands``; the group is composed when ``main`` runs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from hotplex import __version__
from hotplex.cli.chat import chat
from hotplex.cli.client import sessions_group, status
from hotplex.cli.config_option import CONFIG_ENV, peek_config, record_root, with_config_option
from hotplex.cli.core_commands import config_group, doctor, plugins_command, version
from hotplex.cli.serve import serve
from hotplex.cli.waf import waf
from hotplex.compose import make_plugins_for
from hotplex.errors import HotplexError
from hotplex.plugins import HotplexPluginManager

__all__ = ["build_cli", "main"]


def _root_group() -> click.Group:
    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar=CONFIG_ENV,
        help="Config file (default ./hotplex.yaml, then ~/.config/hotplex/hotplex.yaml); "
        "also accepted after the command.",
    )
    @click.option(
        "--log-level",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        default="WARNING",
        show_default=True,
        envvar="HOTPLEX_LOG_LEVEL",
    )
    @click.version_option(__version__, prog_name="hotplex")
    @click.pass_context
    def hotplex(ctx: click.Context, config_path: str | None, log_level: str) -> None:
        """HotPlex: coding-agent CLIs as long-lived, safe chat services."""
        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        record_root(ctx, config_path)

    for command in (
        version,
        plugins_command,
        config_group,
        doctor,
        serve,
        status,
        chat,
        sessions_group,
        waf,
    ):
        hotplex.add_command(with_config_option(command))
    return hotplex


def build_cli(plugins: HotplexPluginManager) -> click.Group:
    """A fresh root group: the core commands plus every plugin's click commands, each of
    which also accepts ``--config FILE`` after its name."""
    group = _root_group()
    for name, spec in plugins.cli_commands().items():
        if name in group.commands:
            raise click.UsageError(f"plugin command {name!r} clashes with a core command")
        group.add_command(with_config_option(spec.command))
    return group


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        plugins, _ = make_plugins_for(peek_config(args))
        group = build_cli(plugins)
    except HotplexError as exc:
        click.echo(f"hotplex: {exc}", err=True)
        sys.exit(1)
    group.main(args=args, prog_name="hotplex", obj={"plugins": plugins})
