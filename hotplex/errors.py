"""The one exception tree of HotPlex.

::

    HotplexError
    ├── ConfigError                  bad or missing configuration (names file and key path)
    ├── PluginError                  a plugin could not be loaded or composed
    │   ├── DuplicateNameError       two plugins registered one name
    │   └── PluginUnavailableError   an enabled plugin's SDK is missing
    ├── AddressError                 a conversation address does not parse (also ValueError)
    ├── ProviderError                the agent CLI misbehaved
    │   ├── AgentStartError          it would not start
    │   └── ProtocolError            it wrote something we cannot understand
    ├── EngineError
    │   ├── SessionBusyError         busy_policy=reject and a turn is running      [user-facing]
    │   ├── SessionNotFoundError     no such session                                [user-facing]
    │   └── PoolExhaustedError       max_sessions reached and none is idle          [user-facing]
    ├── ApprovalError
    │   ├── NotAuthorizedError       the person may not decide this request         [user-facing]
    │   └── AlreadyDecidedError      the request was decided before                 [user-facing]
    ├── StorageError
    ├── RateLimitedError             a platform refused a call for now; retry after retry_after s
    ├── DeliveryError                no adapter owns the platform, or it is not connected in time
    ├── StoppedByUserError           the user stopped a reply on the platform (a stream's stop)
    └── UserFacingError              safe to show in a chat as it is

Errors that are safe to show to a chat user derive from :class:`UserFacingError` (as a second
base where they also belong to a branch above). Everything else is reported to the user as a
generic failure with an id, and logged in full.
"""

from __future__ import annotations

__all__ = [
    "AddressError",
    "AgentStartError",
    "AlreadyDecidedError",
    "ApprovalError",
    "ConfigError",
    "DeliveryError",
    "DuplicateNameError",
    "EngineError",
    "HotplexError",
    "NotAuthorizedError",
    "PluginError",
    "PluginUnavailableError",
    "PoolExhaustedError",
    "ProtocolError",
    "ProviderError",
    "RateLimitedError",
    "SessionBusyError",
    "SessionNotFoundError",
    "StoppedByUserError",
    "StorageError",
    "UserFacingError",
]


class HotplexError(Exception):
    """Root of every error HotPlex raises on purpose."""


class UserFacingError(HotplexError):
    """An error whose message may be shown to a chat user unchanged."""


class ConfigError(HotplexError):
    """The configuration is invalid; the message names the file and the key path."""

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None):
        self.source = source
        self.path = path
        super().__init__(message)


class PluginError(HotplexError):
    """A plugin could not be loaded, or plugins conflict."""


class DuplicateNameError(PluginError):
    """Two plugins registered the same name for one kind of record."""

    def __init__(self, kind: str, name: str, first: str, second: str):
        self.kind, self.name, self.first, self.second = kind, name, first, second
        super().__init__(
            f"{kind} {name!r} is registered by two plugins: {first!r} and {second!r}; "
            f"disable one of them (HOTPLEX_DISABLE_PLUGINS or plugins_enabled)"
        )


class PluginUnavailableError(PluginError):
    """An enabled plugin cannot run because something it needs is missing."""


class AddressError(HotplexError, ValueError):
    """A conversation address does not parse."""


class ProviderError(HotplexError):
    """The agent CLI misbehaved."""


class AgentStartError(ProviderError):
    """The agent process would not start."""


class ProtocolError(ProviderError):
    """The agent wrote a line we cannot understand, or we refused to write an invalid one."""


class EngineError(HotplexError):
    """The engine could not run a turn."""


class SessionBusyError(EngineError, UserFacingError):
    """A turn is already running and the busy policy is ``reject``."""


class SessionNotFoundError(EngineError, UserFacingError):
    """The session does not exist (yet)."""


class PoolExhaustedError(EngineError, UserFacingError):
    """Every slot of the session pool holds a busy session."""


class ApprovalError(HotplexError):
    """An approval request could not be decided."""


class NotAuthorizedError(ApprovalError, UserFacingError):
    """The person who answered may not decide this request."""


class AlreadyDecidedError(ApprovalError, UserFacingError):
    """The request was already decided; a request is decided exactly once."""


class StorageError(HotplexError):
    """The storage backend failed."""


class RateLimitedError(HotplexError):
    """A platform refused a call because of its rate limit; the same call may succeed
    after ``retry_after`` seconds. Chat adapters raise it from ``MessageOperations``
    methods (Slack's HTTP 429 ``Retry-After``, Feishu's frequency-limit codes) and the
    renderer waits that long before its next write."""

    def __init__(self, message: str = "rate limited", *, retry_after: float = 1.0):
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(f"{message} (retry after {self.retry_after:g} s)")


class DeliveryError(HotplexError):
    """A message could not be delivered to an address: no adapter owns its platform, or
    the adapter did not connect in time, or too many messages wait for it already."""


class StoppedByUserError(HotplexError):
    """The user stopped a reply on the platform itself (Slack's stop button on a streamed
    message). Chat adapters raise it from a ``MessageOperations`` write; the renderer then
    writes nothing more for the turn and interrupts it, as the ``stop`` chat command does."""
