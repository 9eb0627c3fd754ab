"""Test kit for HotPlex and its plugins (also a pytest plugin: ``hotplex.testing.pytest_plugin``).

- :mod:`hotplex.testing.fakes`: FakeProvider (queued events), FakeChatAdapter (records
  every call with its monotonic time; fails or rate-limits calls on demand).
- :mod:`hotplex.testing.fake_agent`: an executable that speaks Claude Code's stream-json and
  control protocol, with switches for every process fault.
- :mod:`hotplex.testing.fake_anthropic`: a fake Anthropic Messages API for the real CLIs.
- :mod:`hotplex.testing.conformance`: ProviderConformance, the behaviours every provider
  must have as a pytest test class to subclass (docs/plugins.md, "Checking a provider").
- :mod:`hotplex.testing.procs`: the processes of a process group, from ``/proc``.

Nothing here imports an optional SDK at module level.
"""
