"""What plugin factories receive: the settings, the plugin manager and shared services.

Services hang off typed keys, like aiohttp's ``AppKey``::

    ENGINE = ServiceKey("engine", Engine)
    ctx.services.set(ENGINE, engine)
    engine = ctx.services.get(ENGINE)     # typed as Engine
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from hotplex.config import Settings
    from hotplex.plugins import HotplexPluginManager

__all__ = ["PluginContext", "ServiceKey", "Services"]

T = TypeVar("T")


class ServiceKey(Generic[T]):
    """A typed name for a shared object."""

    __slots__ = ("name", "type")

    def __init__(self, name: str, type_: type[T]) -> None:
        self.name = name
        self.type = type_

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class Services:
    """A typed registry of shared objects (engine, storage, approvals, ...)."""

    def __init__(self) -> None:
        self._items: dict[ServiceKey[Any], Any] = {}

    def set(self, key: ServiceKey[T], value: T) -> None:
        if key in self._items:
            raise KeyError(f"service {key.name!r} is already set")
        self._items[key] = value

    def get(self, key: ServiceKey[T]) -> T:
        try:
            return self._items[key]  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(f"service {key.name!r} is not available (not started yet?)") from None

    def find(self, key: ServiceKey[T]) -> T | None:
        return self._items.get(key)

    def remove(self, key: ServiceKey[T]) -> None:
        self._items.pop(key, None)


@dataclass
class PluginContext:
    """Handed to every factory a plugin registered (providers, adapters, sinks, ...)."""

    settings: Settings
    plugins: HotplexPluginManager
    services: Services = field(default_factory=Services)

    def plugin_config(self, name: str) -> BaseModel | None:
        """The validated config section ``plugins.<name>``, or None when absent."""
        return self.settings.plugins.get(name)
