"""The asking side: a signed request to a peer, its answer streamed back.

:meth:`RelayClient.stream` checks the loop guard, the peer's rate limit and circuit
breaker, signs the request with the peer's secret and yields the events to show in the
asking conversation (:class:`~hotplex_relay.wire.Reception`). A refusal before the answer
starts (unknown peer, loop, rate limit, open breaker, the peer down or refusing) raises
:class:`RelayError` with one line for a person; an answer cut short (the peer died, went
silent past ``idle_timeout``, or ``timeout`` passed) ends with the events that mark it
incomplete.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from hotplex import AgentEvent, AuditEvent, UserFacingError
from hotplex_relay.guard import Breaker, Hop, RateLimit, chain_problem
from hotplex_relay.signing import ASK_ROUTE, MIRROR_ROUTE, NONCE, StreamMac, signed_headers
from hotplex_relay.wire import Reception, encode

if TYPE_CHECKING:
    import aiohttp

    from hotplex_relay.plugin import RelayPeer, RelaySettings

__all__ = ["RelayClient", "RelayDropped", "RelayError"]

Audit = Callable[[AuditEvent], Awaitable[None]]
_MAX_LINE = 1 << 20


class RelayError(UserFacingError):
    """The request did not start an answer; the message says why, for a person."""


class RelayDropped(RelayError):
    """The loop guard stopped the request (audited as ``relay.dropped``)."""


class RelayClient:
    """Requests to this instance's peers, with one rate limit and breaker per peer."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        audit: Audit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._audit = audit
        self.limits = {
            p.name: RateLimit(p.rate_limit.rate, p.rate_limit.burst, clock=clock)
            for p in settings.peers
        }
        self.breakers = {
            p.name: Breaker(settings.breaker_failures, settings.breaker_reset, clock=clock)
            for p in settings.peers
        }
        self._http: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    def peer(self, name: str) -> RelayPeer:
        found = self.settings.peer(name)
        if found is None:
            known = ", ".join(p.name for p in self.settings.peers) or "none"
            raise RelayError(f"no relay peer named {name!r} (configured: {known})")
        return found

    async def _audit_event(self, kind: str, data: dict[str, Any], actor: str | None) -> None:
        if self._audit is not None:
            await self._audit(AuditEvent(kind, data, actor=actor or "system"))

    async def check(self, target: str, chain: Sequence[Hop], *, actor: str | None = None) -> None:
        """Raise :class:`RelayDropped` (audited) when ``chain`` must not go to ``target``."""
        problem = chain_problem(chain, target=target, hop_limit=self.settings.hop_limit)
        if problem is not None:
            data = {"reason": problem, "to": target, "chain": [h.to_json() for h in chain]}
            await self._audit_event("relay.dropped", {**data, "side": "sender"}, actor)
            raise RelayDropped(f"Not relayed to {target}: {problem}.")

    async def stream(
        self,
        target: str,
        prompt: str,
        chain: Sequence[Hop],
        reception: Reception,
        *,
        actor: str | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Ask ``target`` and yield the events to show (see the module docstring).
        ``chain`` ends with the asking conversation of this instance."""
        peer = self.peer(target)
        await self.check(target, chain, actor=actor)
        breaker = self._gate(target)
        body = encode({"prompt": prompt, "chain": [h.to_json() for h in chain], "hops": len(chain)})
        url = peer.url.rstrip("/") + "/ask"
        response, nonce = await self._open(peer, url, body, breaker)
        await self._audit_event(
            "relay.sent", {"to": target, "chain": [h.to_json() for h in chain]}, actor
        )
        try:
            async for event in self._read(peer, response, nonce, reception, breaker):
                yield event
        finally:
            response.release()

    def _gate(self, target: str) -> Breaker:
        """The peer's rate limit and breaker, before a request; RelayError when it may not
        go now."""
        wait = self.limits[target].take()
        if wait:
            raise RelayError(f"Too many requests to {target}: try again in {wait:.1f} s.")
        breaker = self.breakers[target]
        wait = breaker.allow()
        if wait:
            raise RelayError(
                f"{target} is failing ({breaker.last_error}); not trying again for {wait:.0f} s."
            )
        return breaker

    def _headers(self, peer: RelayPeer, route: str, body: bytes) -> dict[str, str]:
        secret = peer.secret.get_secret_value().encode()
        headers = signed_headers(
            secret, sender=self.settings.name, method="POST", path=route, body=body
        )
        headers["Content-Type"] = "application/json"
        return headers

    def _timeout(self) -> aiohttp.ClientTimeout:
        import aiohttp

        return aiohttp.ClientTimeout(
            total=None, connect=self.settings.connect_timeout,
            sock_read=self.settings.idle_timeout,
        )  # fmt: skip

    async def mirror(self, target: str, conversation: str, text: str, origin: str) -> None:
        """Post ``text`` into the peer's ``conversation`` (the remote side of a binding;
        ``origin``: the bound conversation here). RelayError when the peer refuses it or
        cannot be reached."""
        import aiohttp

        peer = self.peer(target)
        breaker = self._gate(target)
        body = encode({"conversation": conversation, "text": text, "from": origin})
        url = peer.url.rstrip("/") + "/mirror"
        headers = self._headers(peer, MIRROR_ROUTE, body)
        try:
            async with (
                asyncio.timeout(self.settings.connect_timeout + self.settings.idle_timeout),
                self._session().post(
                    url, data=body, headers=headers, timeout=self._timeout()
                ) as response,
            ):
                status = response.status
                reason = "" if status == 200 else await _reason(response)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = _describe(exc)
            breaker.failed(error)
            raise RelayError(f"{peer.name} at {url}: {error}.") from None
        if status == 200:
            breaker.succeeded()
            return
        if status >= 500:
            breaker.failed(f"HTTP {status}")
        raise RelayError(f"{peer.name} refused the mirrored message ({status}): {reason}")

    async def _open(
        self, peer: RelayPeer, url: str, body: bytes, breaker: Breaker
    ) -> tuple[aiohttp.ClientResponse, str]:
        import aiohttp

        headers = self._headers(peer, ASK_ROUTE, body)
        timeout = self._timeout()
        try:
            async with asyncio.timeout(self.settings.connect_timeout + self.settings.idle_timeout):
                response = await self._session().post(
                    url, data=body, headers=headers, timeout=timeout
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = _describe(exc)
            breaker.failed(error)
            raise RelayError(f"{peer.name} at {url}: {error}.") from None
        if response.status == 200:
            return response, headers[NONCE]
        reason = await _reason(response)
        response.release()
        if response.status >= 500:
            breaker.failed(f"HTTP {response.status}")
        if response.status == 401:
            raise RelayError(
                f"{peer.name} refused our signature (401): check that both sides share the "
                f"secret and that {peer.name} knows this instance as {self.settings.name!r}."
            )
        if response.status == 409:
            raise RelayDropped(f"{peer.name} dropped the request: {reason}")
        raise RelayError(f"{peer.name} answered {response.status}: {reason}")

    async def _read(
        self,
        peer: RelayPeer,
        response: aiohttp.ClientResponse,
        nonce: str,
        reception: Reception,
        breaker: Breaker,
    ) -> AsyncIterator[AgentEvent]:
        import aiohttp

        mac = StreamMac(peer.secret.get_secret_value().encode(), nonce)
        try:
            async with asyncio.timeout(self.settings.timeout):
                async for raw in _lines(response):
                    line = json.loads(raw)
                    if not isinstance(line, dict):
                        raise ValueError("a line that is not a JSON object")
                    if line.get("type") == "end":
                        if not mac.matches(str(line.get("mac", ""))):
                            raise ValueError("the answer's signature does not match")
                        breaker.succeeded()
                        reason = line.get("reason")
                        status = str(line.get("status", "error"))
                        for event in reception.finish(
                            status, None if reason is None else str(reason)
                        ):
                            yield event
                        return
                    mac.update(raw)
                    for event in reception.feed(line):
                        yield event
            reason = f"the connection to {peer.name} ended before the answer did"
        except TimeoutError:
            reason = f"no whole answer from {peer.name} within {self.settings.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            reason = f"the answer from {peer.name} broke off ({_describe(exc)})"
        breaker.failed(reason)
        for event in reception.cut(reason):
            yield event


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The stream's lines (with their newline), each at most 1 MiB."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line, buffer = buffer[: end + 1], buffer[end + 1 :]
            yield line
        if len(buffer) > _MAX_LINE:
            raise ValueError("a line longer than 1 MiB")


async def _reason(response: aiohttp.ClientResponse) -> str:
    try:
        text = (await response.text())[:500]
    except Exception:
        return response.reason or "no reason given"
    try:
        data = json.loads(text)
    except ValueError:
        return text or response.reason or "no reason given"
    return str(data.get("error", text)) if isinstance(data, dict) else text


def _describe(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "no answer in time (slow or stuck)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"unreachable, cannot connect ({exc.os_error.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__
