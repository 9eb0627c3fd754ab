"""``hotplex waf``: check text against the configured WAF from the command line.

Exit codes of ``hotplex waf check``: 0 allow or warn, 1 block (also input the WAF refuses),
2 ask, 64 usage error, 70 the check could not run (configuration or internal error).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

__all__ = ["EXIT_ALLOW", "EXIT_ASK", "EXIT_BLOCK", "EXIT_INTERNAL", "EXIT_USAGE", "waf"]

EXIT_ALLOW, EXIT_BLOCK, EXIT_ASK, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 64, 70
_EXIT = {"allow": EXIT_ALLOW, "warn": EXIT_ALLOW, "block": EXIT_BLOCK, "ask": EXIT_ASK}


class _UsageError(click.UsageError):
    """A usage error that exits 64 (EX_USAGE): click's default 2 means ``ask`` here."""

    exit_code = EXIT_USAGE


def _usage(exc: click.UsageError) -> _UsageError:
    return _UsageError(exc.message, exc.ctx)


class _UsageExit64:
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc,no-any-return]
        except click.UsageError as exc:
            raise _usage(exc) from None


class _Group(_UsageExit64, click.Group):
    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise _usage(exc) from None


class _Command(_UsageExit64, click.Command):
    pass


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(ctx: click.Context) -> Any:
    from hotplex.cli.core_commands import load_composition
    from hotplex.errors import ConfigError
    from hotplex.waf.engine import Waf

    try:
        composition = load_composition(ctx)
    except SystemExit as exc:
        # load_composition has printed the configuration error and exits 1 (= block here)
        sys.exit(EXIT_INTERNAL if exc.code else 0)
    settings = composition.config.settings.security.waf
    if not settings.enabled:
        click.echo("note: security.waf.enabled is false; checking with its rules anyway", err=True)
    try:
        return Waf.from_settings(settings)
    except ConfigError as exc:
        _fail(str(exc), EXIT_INTERNAL)


@click.group("waf", cls=_Group)
def waf() -> None:
    """Check prompts and commands against the command WAF."""


@waf.command("check", cls=_Command)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the text from standard input.")
@click.option(
    "--command",
    "as_command",
    is_flag=True,
    help="Check the text as an agent's shell command (no prose context).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.argument("text", nargs=-1)
@click.pass_context
def check(
    ctx: click.Context, from_stdin: bool, as_command: bool, as_json: bool, text: tuple[str, ...]
) -> None:
    """Check TEXT (a chat prompt, or with --command a shell command) and print the verdict,
    the rule and the span. Exit 0 allow/warn, 1 block, 2 ask, 64 usage, 70 error."""
    from hotplex.waf.model import WafInputError

    if from_stdin == bool(text):
        problem = (
            "give TEXT or --stdin, not both" if text else "nothing to check: give TEXT or --stdin"
        )
        raise _UsageError(problem, ctx=ctx)
    body = sys.stdin.read() if from_stdin else " ".join(text)
    engine = _load(ctx)
    try:
        verdict = engine.check_command(body) if as_command else engine.check_prompt(body)
    except WafInputError as exc:
        if as_json:
            click.echo(json.dumps({"action": "block", "error": str(exc)}))
        else:
            click.echo(f"block  (refused: {exc})")
        sys.exit(EXIT_BLOCK)
    except Exception as exc:  # the contract is exit 70, with the reason
        _fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "action": verdict.action,
                    "rule": verdict.rule_id,
                    "category": verdict.category,
                    "level": verdict.level,
                    "span": verdict.span,
                    "matched": verdict.matched,
                    "context": verdict.context,
                    "description": verdict.description,
                    "hits": [
                        {
                            "rule": h.rule_id,
                            "action": h.action,
                            "level": h.level,
                            "span": h.span,
                            "context": h.context,
                            "matched": h.matched,
                        }
                        for h in verdict.hits
                    ],
                }
            )
        )
    else:
        _print(verdict, body)
    sys.exit(_EXIT[verdict.action])


def _print(verdict: Any, body: str) -> None:
    if verdict.rule_id is None:
        passed = list(verdict.hits)
        reason = f" ({passed[0].rule_id} let through: {passed[0].context})" if passed else ""
        click.echo(f"{verdict.action}{reason}")
        return
    start, end = verdict.span or (0, 0)
    click.echo(
        f"{verdict.action}  {verdict.rule_id} ({verdict.level}, {verdict.category})  "
        f"span {start}-{end}"
    )
    click.echo(f"  {verdict.description}")
    click.echo(f"  text:    {body[start:end][:160]!r}")
    click.echo(f"  matched: {verdict.matched}")
    others = [h for h in verdict.hits if h.rule_id != verdict.rule_id and h.action != "allow"]
    for hit in others[:5]:
        click.echo(f"  also:    {hit.action} {hit.rule_id} ({hit.level})")


@waf.command("rules", cls=_Command)
@click.pass_context
def rules(ctx: click.Context) -> None:
    """List the loaded rules: id, level, action after overrides, category."""
    engine = _load(ctx)
    for rule in engine.rules:
        action = engine.action_of(rule.id)
        click.echo(f"{rule.id:34} {rule.level:9} {action:6} {rule.category}")
