"""Is the agent usable? The provider and credentials checks of ``hotplex doctor``, as the
daemon prints them on start and as the web page shows them (``GET /api/v1/setup``).

The report is public (the page reads it before anyone entered a key), so it carries no
secrets and no paths of a working install: a passing check is only its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotplex.context import PluginContext
from hotplex.core.doctor import check_credentials, check_provider
from hotplex.records import CheckResult

__all__ = ["SETUP_CHECKS", "SetupReport", "setup_lines", "setup_report"]

#: The checks that decide whether an agent can start, in the order they are shown.
SETUP_CHECKS: tuple[tuple[str, Callable[[PluginContext], CheckResult]], ...] = (
    ("provider", check_provider),
    ("credentials", check_credentials),
)


@dataclass(frozen=True, slots=True)
class SetupReport:
    """The results of :data:`SETUP_CHECKS` for one configuration."""

    provider: str
    results: tuple[tuple[str, CheckResult], ...]
    key_required: bool
    admin_token_required: bool

    @property
    def ready(self) -> bool:
        return all(result.ok for _, result in self.results)

    def to_dict(self) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []
        for name, result in self.results:
            check: dict[str, Any] = {"name": name, "ok": result.ok}
            if not result.ok:  # a failure says what is missing and what fixes it
                check["detail"] = result.detail
                check["hint"] = result.hint
            checks.append(check)
        return {
            "ready": self.ready,
            "provider": self.provider,
            "checks": checks,
            "key_required": self.key_required,
            "admin_token_required": self.admin_token_required,
        }


def setup_report(ctx: PluginContext) -> SetupReport:
    """Run the checks (blocking: the provider check runs ``<binary> --version``)."""
    server = ctx.settings.server
    return SetupReport(
        provider=ctx.settings.provider.type,
        results=tuple((name, check(ctx)) for name, check in SETUP_CHECKS),
        key_required=bool(server.api_keys),
        admin_token_required=server.admin_token is not None,
    )


def setup_lines(report: SetupReport) -> list[str]:
    """What ``hotplex serve`` prints after the checks: that the agent can start, or each
    missing piece and the command that fixes it."""
    if report.ready:
        names = ", ".join(name for name, _ in report.results)
        return [f"the {report.provider} agent can start ({names}: ok)"]
    lines = [f"the {report.provider} agent cannot start yet:"]
    for name, result in report.results:
        if not result.ok:
            lines.append(f"  {name}: {result.detail}")
            if result.hint:
                lines.append(f"    fix: {result.hint}")
    lines.append("  (`hotplex doctor` checks again; restart `hotplex serve` after the fix)")
    return lines
