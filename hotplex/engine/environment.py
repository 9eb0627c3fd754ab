"""The environment an agent process gets: an allow-list, never the daemon's whole environment.

The rule, applied in this order:

1. From the daemon's environment (``parent``) only these pass: ``PATH``, ``HOME``, ``USER``,
   ``LOGNAME``, ``SHELL``, ``TERM``, ``LANG``, ``TZ``, ``TMPDIR`` and every name starting with
   ``LC_``, ``XDG_``, ``ANTHROPIC_`` or ``CLAUDE_`` (with the underscore: ``CLAUDECODE``, the
   nested-agent marker, does not pass). ``CLAUDE_CODE_ENTRYPOINT`` is dropped too; the
   engine sets its own. Everything else (``SLACK_*``, ``AWS_*``, ``GITHUB_TOKEN``,
   ``DATABASE_URL``, ``HOTPLEX_*``, ...) stays behind.
2. ``PATH`` falls back to ``/usr/local/bin:/usr/bin:/bin`` when absent.
3. ``DISABLE_AUTOUPDATER=1``, ``DISABLE_TELEMETRY=1`` and
   ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` are set.
4. ``extra`` (the config's ``provider.env``) is added and may override 1-3.
5. ``overrides`` (what the engine sets itself, e.g. ``CLAUDE_CONFIG_DIR``) win over all.

Whatever its source, a variable whose value equals a secret of the HotPlex config, or contains
one that is at least 8 characters long, is dropped. For a variable from ``provider.env`` that is
a configuration mistake and raises :class:`~hotplex.errors.ConfigError` naming the variable
(never the secret).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from types import MappingProxyType

from hotplex.errors import ConfigError

__all__ = ["DEFAULT_PATH", "agent_environment"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
MIN_SUBSTRING_SECRET = 8

_ALLOWED_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR"}
)
_ALLOWED_PREFIXES = ("LC_", "XDG_", "ANTHROPIC_", "CLAUDE_")
_DENIED_NAMES = frozenset({"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT"})
_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
)
_EMPTY: Mapping[str, str] = MappingProxyType({})


def agent_environment(
    parent: Mapping[str, str],
    *,
    extra: Mapping[str, str] = _EMPTY,
    secrets: Collection[str] = (),
    overrides: Mapping[str, str] = _EMPTY,
) -> dict[str, str]:
    """The allow-listed environment for an agent process (see the module docstring)."""
    is_secret = _Matcher(secrets)
    env = {
        name: value
        for name, value in parent.items()
        if _allowed(name) and not _dropped(name, value, is_secret, "the parent environment")
    }
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(_DEFAULTS)
    for name, value in extra.items():
        if is_secret(value):
            raise ConfigError(
                f"provider.env.{name}: holds a secret from the config; "
                "refusing to pass it to the agent",
                path=f"provider.env.{name}",
            )
        env[name] = value
    for name, value in overrides.items():
        if not _dropped(name, value, is_secret, "the engine's overrides"):
            env[name] = value
    return env


def _allowed(name: str) -> bool:
    if name in _DENIED_NAMES:
        return False
    return name in _ALLOWED_NAMES or name.startswith(_ALLOWED_PREFIXES)


def _dropped(name: str, value: str, is_secret: _Matcher, source: str) -> bool:
    if not is_secret(value):
        return False
    log.warning("not passing %s from %s to the agent: it holds a config secret", name, source)
    return True


class _Matcher:
    """Tells whether a value equals a secret, or contains a long enough one."""

    def __init__(self, secrets: Collection[str]):
        self._exact = frozenset(s for s in secrets if s)
        self._long = tuple(s for s in self._exact if len(s) >= MIN_SUBSTRING_SECRET)

    def __call__(self, value: str) -> bool:
        return value in self._exact or any(s in value for s in self._long)
