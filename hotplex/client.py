"""The daemon client: JSON requests and streamed AgentEvents over a running daemon's gateway.

The CLI's client commands (``hotplex status``, ``hotplex sessions ...``) and plugins' CLI
commands use it::

    from hotplex.client import DaemonClient, DaemonError, connection_options

    @click.command("cron-list")
    @connection_options
    @click.pass_context
    def cron_list(ctx, url, token):
        client = DaemonClient.from_click(ctx, url, token)
        try:
            jobs = client.request("GET", "/cron/v1/jobs")
        except DaemonError as exc:
            raise click.ClickException(str(exc))

The daemon is found from ``url``/``token`` (``--url``/``--token``), else ``HOTPLEX_URL`` /
``HOTPLEX_TOKEN``, else the config (``server.host``/``server.port``; ``server.admin_token``
for ``/admin/`` paths and the first of ``server.api_keys`` for the others). Every wait has a
timeout; a daemon that is down, refuses the token or answers an error is a
:class:`DaemonError` with one clear line. Only the standard library is used (urllib), so a
CLI command stays fast to start.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hotplex.errors import HotplexError
from hotplex.events import AgentEvent

if TYPE_CHECKING:
    import click

    from hotplex.config import Settings

__all__ = [
    "REQUEST_TIMEOUT",
    "STREAM_TIMEOUT",
    "DaemonClient",
    "DaemonError",
    "connection_options",
    "daemon_url",
]

#: Seconds a request may take, connecting included.
REQUEST_TIMEOUT = 10.0
#: Seconds a stream may stay silent (the daemon sends a heartbeat every ``sse_heartbeat``).
STREAM_TIMEOUT = 60.0
F = TypeVar("F", bound=Callable[..., Any])


class DaemonError(HotplexError):
    """The daemon could not be reached or refused or failed a request; the message is one
    line for a person. ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def daemon_url(settings: Settings) -> str:
    """The daemon's base URL from ``server.host``/``server.port`` (a wildcard host is
    reached on loopback)."""
    host = settings.server.host
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


@dataclass(frozen=True)
class DaemonClient:
    """A running daemon at ``url``. ``token`` is sent as ``Authorization: Bearer`` (the
    admin token); ``api_key``, when set, replaces it for paths outside ``/admin/``."""

    url: str
    token: str | None = None
    api_key: str | None = None
    timeout: float = REQUEST_TIMEOUT
    stream_timeout: float = STREAM_TIMEOUT

    # -- finding the daemon ---------------------------------------------------------------

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | Callable[[], Settings] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> DaemonClient:
        """The client for the first of: the arguments, ``HOTPLEX_URL``/``HOTPLEX_TOKEN``,
        the config (``settings``, or a callable read only when something is missing)."""
        env = os.environ if environ is None else environ
        url = url or env.get("HOTPLEX_URL") or None
        token = token or env.get("HOTPLEX_TOKEN") or None
        api_key = None
        if (url is None or token is None) and settings is not None:
            loaded = settings() if callable(settings) else settings
            if url is None:
                url = daemon_url(loaded)
            if token is None and loaded.server.admin_token is not None:
                token = loaded.server.admin_token.get_secret_value() or None
            if loaded.server.api_keys:
                api_key = loaded.server.api_keys[0].key.get_secret_value() or None
        if url is None:
            raise DaemonError("no daemon URL: pass --url, set HOTPLEX_URL or a config file")
        return cls(url.rstrip("/"), token, api_key)

    @classmethod
    def from_click(
        cls, ctx: click.Context, url: str | None = None, token: str | None = None
    ) -> DaemonClient:
        """:meth:`resolve` inside a click command: the config is the one given with
        ``--config`` (read only when ``url`` or ``token`` is missing)."""
        from hotplex.cli.core_commands import load_composition

        return cls.resolve(url, token, settings=lambda: load_composition(ctx).config.settings)

    # -- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, json_body: Any = None) -> Any:
        """The JSON answer of ``method path`` (with ``json_body`` as the JSON request body
        when given); None for an empty answer. Raises :class:`DaemonError`."""
        with self._open(method, path, json_body, self.timeout, "application/json") as response:
            try:
                return json.loads(response.read() or b"null")
            except ValueError:
                raise DaemonError(
                    f"HotPlex at {self.url} answered with something not JSON"
                ) from None
            except OSError as exc:
                raise self._unreachable(exc) from None

    def stream(
        self,
        prompt: str,
        *,
        session_id: str | None = None,
        request_id: str | None = None,
        last_event_id: int | None = None,
    ) -> Iterator[AgentEvent]:
        """Run a turn (``POST /api/v1/execute``) and yield its AgentEvents as they arrive
        over SSE, ending after ``done``. With ``last_event_id`` (and ``session_id``) no turn
        starts: the stored events after that seq are replayed and the running turn followed.
        A stream silent for ``stream_timeout`` seconds raises :class:`DaemonError`."""
        body: dict[str, Any] = {"prompt": prompt}
        if session_id is not None:
            body["session_id"] = session_id
        if request_id is not None:
            body["request_id"] = request_id
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        with self._open(
            "POST", "/api/v1/execute", body, self.stream_timeout, "text/event-stream", headers
        ) as response:
            try:
                for event in _sse_events(response):
                    yield event
                    if event.type == "done":
                        return
            except OSError as exc:  # a read timed out or the connection broke
                raise self._unreachable(exc) from None

    # -- plumbing -------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        json_body: Any,
        timeout: float,
        accept: str,
        extra: Mapping[str, str] | None = None,
    ) -> Any:
        headers = {"Accept": accept, **(extra or {})}
        secret = self.token if path.startswith("/admin/") else (self.api_key or self.token)
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise DaemonError(self._http_error(exc.code, exc.read()), status=exc.code) from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
            raise DaemonError(self._down(str(reason).lower())) from None
        except OSError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: BaseException) -> DaemonError:
        if isinstance(exc, TimeoutError):
            return DaemonError(
                f"HotPlex at {self.url} did not answer in time ({exc or 'timed out'})"
            )
        return DaemonError(self._down(str(exc) or type(exc).__name__))

    def _down(self, reason: str) -> str:
        return f"cannot reach HotPlex at {self.url}: {reason}; is `hotplex serve` running?"

    def _http_error(self, status: int, body: bytes) -> str:
        if status == 401:
            return (
                f"HotPlex at {self.url} refused the request (401): pass the token with "
                "--token or HOTPLEX_TOKEN (server.admin_token, or an API key)"
            )
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body.decode(errors="replace").strip()[:200] or "no detail"
        return f"HotPlex at {self.url} answered {status}: {message}"


def _sse_events(response: Any) -> Iterator[AgentEvent]:
    """AgentEvents of a ``text/event-stream`` (``data:`` lines joined; comments skipped)."""
    data: list[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith(":"):
            continue  # heartbeat
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            frame = json.loads("\n".join(data))
            data = []
            try:
                yield AgentEvent.from_dict(frame)
            except ValueError:  # a gateway frame (e.g. an error) that is not strictly one
                yield AgentEvent(
                    type=str(frame.get("type", "")),
                    data=dict(frame.get("data") or {}),
                    session_id=str(frame.get("session_id", "")),
                    request_id=frame.get("request_id"),
                )


def connection_options(command: F) -> F:
    """Add ``--url`` (``HOTPLEX_URL``) and ``--token`` (``HOTPLEX_TOKEN``) to a click
    command; pass them to :meth:`DaemonClient.from_click`."""
    import click

    command = click.option(
        "--token",
        envvar="HOTPLEX_TOKEN",
        help="Admin token or API key (else HOTPLEX_TOKEN, else the config's).",
    )(command)
    return click.option(
        "--url",
        envvar="HOTPLEX_URL",
        help="Daemon URL (else HOTPLEX_URL, else server.host:port of the config).",
    )(command)
