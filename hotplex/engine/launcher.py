"""How an agent process is started: its start spec (work and state directories, the
allow-listed environment, the confinement under the detected limit backend, HotPlex's MCP
servers) handed to the provider with the session's tool gate."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from hotplex import interfaces
from hotplex.config import Settings, secret_values
from hotplex.confinement import AgentLimits, Confinement, LimitBackend
from hotplex.engine.environment import agent_environment
from hotplex.engine.limits import detect_backend
from hotplex.engine.survivors import TAG, agent_tag
from hotplex.engine.workdirs import WorkDirs
from hotplex.interfaces import AgentProcess, Provider
from hotplex.types import AgentStartSpec

__all__ = ["Launcher"]

log = logging.getLogger("hotplex.engine.engine")


class Launcher:
    def __init__(self, settings: Settings, provider: Provider, workdirs: WorkDirs) -> None:
        self.settings = settings
        self.provider = provider
        self.workdirs = workdirs
        self.backend: LimitBackend | None = None
        self._secrets = secret_values(settings)

    async def detect_limits(self) -> None:
        """Find the limit backend ``engine.limits.backend`` asks for (none when ``off``)."""
        limits = self.settings.engine.limits
        if limits.backend == "off":
            return
        prefer = None if limits.backend == "auto" else limits.backend
        self.backend = await asyncio.to_thread(detect_backend, prefer=prefer)
        log.info("agent limits: %s", self.backend.name)

    @property
    def limit_backend(self) -> str:
        """The confinement in use: cgroup2, cgroup1, rlimit, or off."""
        return self.backend.name if self.backend is not None else "off"

    def environment(self) -> dict[str, str]:
        return agent_environment(
            os.environ,
            extra=self.settings.provider.env,
            secrets=self._secrets,
            overrides={TAG: agent_tag(self.settings.engine.data_dir)},  # see survivors.py
        )

    def start_spec(
        self, session_id: str, provider_session_id: str, work_dir: Path, resume: bool
    ) -> AgentStartSpec:
        return AgentStartSpec(
            session_id=session_id,
            provider_session_id=provider_session_id,
            resume=resume,
            work_dir=work_dir,
            state_dir=self.workdirs.state_dir(provider_session_id),
            env=self.environment(),
            confinement=self._confinement(provider_session_id),
        )

    async def start(self, spec: AgentStartSpec, gate: interfaces.ToolGate) -> AgentProcess:
        return await self.provider.start(spec, gate)

    def _confinement(self, provider_session_id: str) -> Confinement | None:
        if self.backend is None:
            return None
        limits = self.settings.engine.limits
        mib = 1024 * 1024
        agent_limits = AgentLimits(
            memory_bytes=None if limits.memory_mb is None else limits.memory_mb * mib,
            max_pids=limits.max_pids,
            max_open_files=limits.max_open_files,
        )
        return Confinement(self.backend, agent_limits, f"agent-{provider_session_id}")
