"""Test kit for HotPlex and its plugins (also a pytest plugin: ``hotplex.testing.pytest_plugin``).

- :mod:`hotplex.testing.fakes`: FakeProvider (queued events), FakeChatAdapter (delivers
  direct messages and mentions with the typed fields; its operations record every call
  with its monotonic time and fail or rate-limit calls on demand).
- :mod:`hotplex.testing.running`: a running HotPlex (built like the daemon) with the fake
  agent and the fake chat platform; the ``running_hotplex`` fixture.
- :mod:`hotplex.testing.chat_conformance`: the ``MessageOperations`` conformance suite an
  adapter runs against its own fake platform.
- :mod:`hotplex.testing.fake_agent`: an executable that speaks Claude Code's stream-json and
  control protocol, with switches for every process fault.
- :mod:`hotplex.testing.fake_anthropic`: a fake Anthropic Messages API for the real CLIs.
- :mod:`hotplex.testing.conformance`: ProviderConformance, the behaviours every provider
  must have as a pytest test class to subclass (docs/plugins.md, "Checking a provider").
- :mod:`hotplex.testing.procs`: the processes of a process group, from ``/proc``.
- :mod:`hotplex.testing.webhook_receiver`: a webhook receiver on 127.0.0.1 that verifies
  with the ``standardwebhooks`` package and answers as scripted (failures, Retry-After,
  delays, 410, redirects).
- :mod:`hotplex.testing.feishu`: ``FakeFeishu``, a fake Feishu/Lark open platform (Open API,
  CardKit, webhook pushes, the long connection) for the real lark-oapi clients; also
  importable as ``hotplex.testing.FakeFeishu`` (loaded on first use).

Nothing here imports an optional SDK at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotplex.testing.feishu import FakeFeishu

__all__ = ["FakeFeishu"]


def __getattr__(name: str) -> Any:
    # loaded on first use, so importing the test kit stays cheap
    if name == "FakeFeishu":
        from hotplex.testing.feishu import FakeFeishu

        return FakeFeishu
    raise AttributeError(f"module 'hotplex.testing' has no attribute {name!r}")
