"""What commands run later: a shell's standard input, script files written or downloaded
earlier in the same text (``echo ... > x.sh; sh x.sh``, ``curl -o x.sh ...; bash x.sh``),
start-up files and cron tables whose content is run later, and everything :func:`runs`
reports (shell strings, argument vectors, interpreter code)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hotplex.waf.expand import Env
from hotplex.waf.pure import Stage
from hotplex.waf.runs import runs
from hotplex.waf.views import DOWNLOADERS, download_target, file_key

if TYPE_CHECKING:
    from hotplex.waf.analyze import Analyzer

__all__ = ["Later"]

_CRON_SCHEDULE = re.compile(r"\s*(?:@\w+|(?:\S+\s+){5})")
_CRON_SYSTEM = re.compile(r"\s*(?:@\w+\s+\S+|(?:\S+\s+){6})")  # with a user column
# files whose content is run later as shell (start-up files), or as cron tables
_RUN_LATER = re.compile(
    r"(?:^|/)(?:\.(?:bashrc|bash_profile|bash_login|profile|zshrc|zprofile|zshenv|zlogin|kshrc)"
    r"|bash\.bashrc|profile|rc\.local)$|^/etc/profile\.d/|^/etc/init\.d/"
)
_RUN_LATER_CRON = re.compile(r"^/etc/cron|^/var/spool/cron|^/etc/anacrontab")


class Later:
    """The analyser's memory of files, and its view of what a command starts."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.files: dict[str, tuple[str, str]] = {}

    def follow(
        self,
        inner: list[str],
        name: str,
        stdin: str | None,
        env: Env,
        depth: int,
        where: tuple[int, int],
        upstream: list[Stage] | None,
    ) -> None:
        r = runs(tuple(inner))
        for script in r.scripts:
            nested_env = Env(dict(env.vars), list(r.positional))
            self.analyzer.source(script, depth=depth + 1, span=where, env=nested_env)
        for argv in r.argvs:
            self.analyzer._emit(
                list(argv),
                [],
                [],
                None,
                env,
                depth + 1,
                where,
                upstream if r.xargs else None,
                "nested",
            )
        for lang, code in r.code:
            self.analyzer.code(lang, code, depth=depth + 1, span=where, synthetic=False)
        if r.stdin:
            payload = stdin
            if payload is None and upstream:
                payload = self.analyzer._evaluate(upstream)
            if payload:
                self.payload(r.stdin, payload, depth + 1, where)
        script_file = r.file if r.file else (inner[0] if "/" in inner[0] else None)
        if script_file:
            known = self.files.get(file_key(script_file))
            lang = r.file_lang if r.file else "shell"
            if known is not None and known[0] == "content":
                self.payload(lang, known[1], depth + 1, where)
            elif known is not None:
                shell = name if r.file else "sh"
                self.analyzer._add(f"{shell} <({known[1]})", where, "synthetic")

    def payload(self, lang: str, text: str, depth: int, where: tuple[int, int]) -> None:
        if lang == "shell":
            self.analyzer.source(text, depth=depth, span=where)
        elif lang in ("crontab", "crontab-system"):
            schedule = _CRON_SYSTEM if lang == "crontab-system" else _CRON_SCHEDULE
            for line in text.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    m = schedule.match(line)
                    self.analyzer.source(line[m.end() :] if m else line, depth=depth, span=where)
        else:
            self.analyzer.code(lang, text, depth=depth, span=where)

    def store(self, target: str, content: str, where: tuple[int, int], depth: int) -> None:
        key = file_key(target)
        self.files[key] = ("content", content)
        if _RUN_LATER.search(key):
            self.payload("shell", content, depth + 1, where)
        elif _RUN_LATER_CRON.search(key):
            system = key.startswith(("/etc/cron", "/etc/anacrontab"))
            self.payload("crontab-system" if system else "crontab", content, depth + 1, where)

    def track(
        self,
        inner: list[str],
        name: str,
        writes: list[str],
        stage: Stage,
        upstream: list[Stage] | None,
        view: str,
        where: tuple[int, int],
        depth: int,
    ) -> None:
        """Remember files this command writes, for a later command that runs them."""
        if writes:
            stages = [*(upstream or []), stage]
            content = self.analyzer._evaluate(stages) if upstream is not None else None
            for target in writes:
                if content is not None:
                    self.store(target, content, where, depth)
                elif name in DOWNLOADERS:
                    self.files[file_key(target)] = ("download", view)
        if name == "tee" and upstream:
            content = self.analyzer._evaluate(upstream)
            for target in inner[1:]:
                if not target.startswith("-") and content is not None:
                    self.store(target, content, where, depth)
        if name in DOWNLOADERS:
            downloaded = download_target(name, inner[1:])
            if downloaded:
                self.files[file_key(downloaded)] = ("download", view)
        if name in ("cp", "mv", "install") and len(inner) >= 3:
            source = self.files.get(file_key(inner[-2]))
            if source is not None:
                self.files[file_key(inner[-1])] = source
