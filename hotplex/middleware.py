"""The inbound middleware chain: ``process(ctx, call_next)`` in ascending ``order``."""

from __future__ import annotations

from collections.abc import Sequence

from hotplex.interfaces import Middleware, MiddlewareContext, Next

__all__ = ["MiddlewareChain"]


class MiddlewareChain:
    def __init__(self, middlewares: Sequence[Middleware]) -> None:
        self._middlewares = tuple(middlewares)

    def __len__(self) -> int:
        return len(self._middlewares)

    async def run(self, ctx: MiddlewareContext, final: Next) -> None:
        """Pass ``ctx`` through every middleware, then to ``final`` unless one stopped."""

        async def step(index: int, current: MiddlewareContext) -> None:
            if index == len(self._middlewares):
                await final(current)
                return
            await self._middlewares[index].process(current, lambda c: step(index + 1, c))

        await step(0, ctx)
