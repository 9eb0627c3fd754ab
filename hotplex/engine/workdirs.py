"""Where each session's agent works, and where it keeps its own state.

A conversation matching a ``projects`` pattern works in that project's directory (or, with
``worktree: true``, in a git worktree of it per session under ``<data_dir>/worktrees``);
any other conversation gets its own directory under ``engine.work_dir``. Agent state
(``CLAUDE_CONFIG_DIR``) lives under ``<data_dir>/agents/<provider session id>``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from hotplex.config import ProjectSettings, Settings
from hotplex.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from hotplex.engine.session import Session

__all__ = ["WorkDirs"]


class WorkDirs:
    def __init__(self, settings: Settings) -> None:
        self._engine = settings.engine
        self._projects = settings.projects

    @property
    def root(self) -> Path:
        return self._engine.resolved_work_dir

    def project_for(self, address: str | None) -> ProjectSettings | None:
        if address is None:
            return None
        for project in self._projects:
            if fnmatch.fnmatchcase(address, project.match):
                return project
        return None

    def explicit(self, work_dir: Path) -> Path:
        """A work directory given by the caller (a cron job's): absolute and existing."""
        path = Path(work_dir).expanduser()
        if not path.is_absolute() or not path.is_dir():
            raise EngineError(f"work directory {work_dir} is not an existing absolute directory")
        return path.resolve()

    def remove(self, session: Session) -> None:
        """Remove what a forgotten session leaves on disk: its agent state directory and its
        work directory when HotPlex made it (directly under ``engine.work_dir``; never a
        project's or a caller's)."""
        shutil.rmtree(self.state_dir(session.provider_session_id), ignore_errors=True)
        work_dir = session.work_dir
        own = (session.session_id, session.provider_session_id)  # its own, or a spare's
        if work_dir.name in own and work_dir.parent.resolve() == self.root.resolve():
            shutil.rmtree(work_dir, ignore_errors=True)

    def state_dir(self, provider_session_id: str) -> Path:
        return self._engine.data_dir / "agents" / provider_session_id

    def spare_dir(self, spare_id: str) -> Path:
        return self.root / spare_id

    async def for_session(self, session_id: str, address: str | None) -> Path:
        """The work directory of a session (a default one is created when the agent starts)."""
        project = self.project_for(address)
        if project is None:
            return self.root / session_id
        if not project.dir.is_dir():
            raise ConfigError(
                f"projects: directory {project.dir} (for {project.match!r}) does not exist",
                path="projects",
            )
        if not project.worktree:
            return project.dir
        return await self._worktree(project.dir, session_id)

    async def _worktree(self, repo: Path, session_id: str) -> Path:
        path = self._engine.data_dir / "worktrees" / session_id
        if path.is_dir():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        branch = f"hotplex/{session_id[:8]}"
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(repo),
            "worktree",
            "add",
            "-B",
            branch,
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise EngineError(f"git worktree add timed out in {repo}") from None
        if proc.returncode != 0:
            raise EngineError(
                f"git worktree add failed in {repo}: {err.decode(errors='replace').strip()}"
            )
        return path
