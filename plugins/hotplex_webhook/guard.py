"""Refusing receivers on private addresses (SSRF), at connect time.

A URL checked only when the config is read can resolve elsewhere later (DNS rebinding), so
the check sits where the connection is made: :class:`GuardedResolver` is the resolver of
the delivery session's connector and drops every resolved address that is not global
(private, loopback, link-local, shared, multicast, reserved, unspecified, and IPv4-mapped
forms of them); a host left with none fails to connect. aiohttp does not ask the resolver
for a literal IP, so :func:`check_host` checks those before each request. Proxies from the
environment are not used (``trust_env=False``): the checked address is the one connected.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

__all__ = ["BlockedAddressError", "GuardedResolver", "check_host", "is_public"]


class BlockedAddressError(OSError):
    """The receiver's address is private, loopback or link-local (and not allowed)."""


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP) is globally routable."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_host(host: str, *, allow_private: bool) -> None:
    """BlockedAddressError for a literal private IP (names are checked when resolved)."""
    literal = _literal(host)
    if literal is not None and not allow_private and not is_public(literal):
        raise BlockedAddressError(f"{literal} is not a public address")


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and keeps only public addresses (unless ``allow_private``)."""

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if self.allow_private:
            return results
        public = [r for r in results if is_public(r["host"])]
        if not public:
            raise BlockedAddressError(f"{host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        await self.inner.close()
