"""The built-in ``core`` plugin: HotPlex's own parts, registered through the same hooks a
third-party plugin uses (it is first in ``BUILTIN_PLUGINS`` and cannot be disabled).

- :mod:`~hotplex.core.plugin`: the registrations, one hook implementation per record kind
  (providers, storage backend, storage sink, middleware, chat commands, templates, doctor
  checks, start-up resources);
- :mod:`~hotplex.core.providers`: the Claude Code and OpenCode provider records;
- :mod:`~hotplex.core.startup`: the start-up resources (storage, sinks, retention, engine);
- :mod:`~hotplex.core.doctor`: the checks ``hotplex doctor`` runs.

Nothing here is imported by the engine, providers, storage or WAF; this package wires them.
"""
