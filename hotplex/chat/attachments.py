"""A chat message's attachments, saved into the session's work directory.

:func:`receive_attachments` downloads each :class:`~hotplex.types.Attachment` through the
adapter's authenticated ``download()`` (a timeout per file; a size cap per file and per
message), writes it under ``<work dir>/<chat.attachments.folder>/`` with a sanitized,
unique name (never outside that folder: it is resolved and checked, and files are created
exclusively without following links) and returns the lines that name the files in the
prompt (template ``core/text/attachments.md.j2``), the images an agent can be shown (PNG,
JPEG, GIF or WebP by content, within the API's limit) and a reply for each file that could
not be taken. One file's failure never stops the others or the message.

A message restored from storage after a crash (its attachments' ``download()`` raises
``LookupError``) gets the files its first run saved: for each, the oldest file of its name
(``name``, ``name-2``, ...) written since the message was received and not yet claimed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jinja2

from hotplex.config.chat import AttachmentSettings
from hotplex.images import MAX_IMAGE_BYTES, sniff_image
from hotplex.records import TemplateSpec
from hotplex.templating import make_environment
from hotplex.types import Attachment, IncomingMessage

__all__ = ["ATTACHMENTS_TEMPLATE", "Received", "SavedFile", "receive_attachments", "safe_name"]

log = logging.getLogger(__name__)

#: The prompt lines naming the saved files (``templates/text/attachments.md.j2``).
ATTACHMENTS_TEMPLATE = "core/text/attachments.md.j2"

#: Longest file name written (bytes of UTF-8), extension included.
MAX_NAME_BYTES = 120

_UNSAFE = re.compile(r'[<>:"|?*\\/]')


@dataclass(frozen=True, slots=True)
class SavedFile:
    """One attachment on disk: ``path`` (absolute), ``relative`` (to the work
    directory), its size and, for an image the agent can be shown, its media type."""

    path: Path
    relative: str
    size: int
    image: str | None


class Received(NamedTuple):
    """What :func:`receive_attachments` did: ``prompt_suffix`` (to append to the prompt;
    empty when nothing was saved), ``images`` (files to show the agent as images),
    ``problems`` (one reply line per file not taken) and ``files`` (what was saved)."""

    prompt_suffix: str
    images: tuple[Path, ...]
    problems: tuple[str, ...]
    files: tuple[SavedFile, ...] = ()

    def prompt(self, text: str) -> str:
        """``text`` followed by the lines naming the saved files."""
        if not self.prompt_suffix:
            return text
        return f"{text.rstrip()}\n\n{self.prompt_suffix}" if text.strip() else self.prompt_suffix


def safe_name(name: str, *, fallback: str = "attachment") -> str:
    """A file name that is safe to create in a folder: the last path component only, no
    control, format (bidi, zero-width) or other invisible characters, none of
    ``<>:"|?*\\/``, no leading dots or spaces, at most :data:`MAX_NAME_BYTES` bytes of
    UTF-8 (the extension kept), never empty, ``.`` or ``..``."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = _UNSAFE.sub("_", name).strip().lstrip(". ").rstrip(". ")
    if not name:
        name = fallback
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = MAX_NAME_BYTES - len(suffix.encode())
    stem = stem.encode()[:budget].decode(errors="ignore").rstrip(". ") or fallback
    return stem + suffix


def _folder(work_dir: Path, folder: str) -> tuple[Path, Path]:
    root = work_dir.resolve()
    target = root / folder
    target.mkdir(parents=True, exist_ok=True)
    resolved = target.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise PermissionError(f"{target} leads outside the work directory")
    return root, resolved


def _write_unique(folder: Path, name: str, data: bytes) -> Path:
    """Create ``name`` in ``folder`` (``name-2``, ``name-3``, ... when taken), exclusively
    and without following a link; returns the path written."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for number in range(1, 1000):
        candidate = name if number == 1 else f"{stem}-{number}" + (f".{ext}" if ext else "")
        if "/" in candidate or candidate in (".", ".."):
            raise PermissionError(f"{candidate!r} is not a plain file name")
        path = folder / candidate  # O_EXCL: an existing entry, a link included, is skipped
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path
    raise FileExistsError(f"too many files named like {name!r} in {folder}")


async def _download(attachment: Attachment, settings: AttachmentSettings) -> bytes:
    data = await asyncio.wait_for(attachment.download(), settings.timeout)
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"download() returned {type(data).__name__}, not bytes")
    return bytes(data)


#: How much older than the message's ``received_at`` a saved file may look (file times are
#: coarser than ``time.time()``).
_CLOCK_SLACK = 2.0


def _saved_before(folder: Path, name: str, since: float, claimed: set[Path]) -> Path | None:
    """The file the first run of a restored message saved as ``name`` (see the module
    docstring), or None."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    found: list[tuple[float, int, Path]] = []
    for number in range(1, 1000):
        candidate = name if number == 1 else f"{stem}-{number}" + (f".{ext}" if ext else "")
        path = folder / candidate
        try:
            info = path.lstat()
        except FileNotFoundError:
            break  # names are taken in order: none past the first gap
        if path.is_symlink() or not path.is_file() or path in claimed:
            continue
        if info.st_mtime >= since - _CLOCK_SLACK:
            found.append((info.st_mtime, number, path))
    return min(found)[2] if found else None


def _mb(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


async def receive_attachments(
    message: IncomingMessage,
    work_dir: Path,
    settings: AttachmentSettings,
    *,
    templates: jinja2.Environment | None = None,
) -> Received:
    """Save ``message``'s attachments under ``work_dir`` (see the module docstring).
    ``settings`` is ``Settings.chat.attachments``; ``templates`` the instance's template
    environment (service ``TEMPLATES``; default: core's templates only)."""
    if not message.attachments:
        return Received("", (), ())
    if not settings.enabled:
        return Received("", (), ("Attachments are switched off here; the files were ignored.",))
    try:
        root, folder = await asyncio.to_thread(_folder, work_dir, settings.folder)
    except OSError as exc:
        log.warning("no attachment folder in %s: %r", work_dir, exc)
        return Received("", (), ("The attached files could not be saved.",))
    saved: list[SavedFile] = []
    problems: list[str] = []
    total = 0
    claimed: set[Path] = set()
    for index, attachment in enumerate(message.attachments):
        label = safe_name(attachment.name)
        if index >= settings.max_files:
            problems.append(f"{label}: not taken (at most {settings.max_files} files per message).")
            continue
        announced = attachment.size
        if announced is not None and announced > settings.max_bytes:
            problems.append(
                f"{label}: too large ({_mb(announced)}; the limit is {_mb(settings.max_bytes)})."
            )
            continue
        restored: Path | None = None
        try:
            data = await _download(attachment, settings)
        except TimeoutError:
            problems.append(f"{label}: the download took longer than {settings.timeout:g}s.")
            continue
        except LookupError:  # restored from storage: what its first run saved, if anything
            restored = await asyncio.to_thread(
                _saved_before, folder, label, message.received_at, claimed
            )
            if restored is None:
                problems.append(f"{label}: could not be fetched again after a restart.")
                continue
            data = await asyncio.to_thread(restored.read_bytes)
            claimed.add(restored)
        except Exception as exc:
            log.info("downloading %s (%s) failed: %r", label, attachment.url or "", exc)
            problems.append(f"{label}: the download failed.")
            continue
        if len(data) > settings.max_bytes:
            problems.append(
                f"{label}: too large ({_mb(len(data))}; the limit is {_mb(settings.max_bytes)})."
            )
            continue
        if total + len(data) > settings.max_message_bytes:
            problems.append(
                f"{label}: not taken (the message's files exceed "
                f"{_mb(settings.max_message_bytes)})."
            )
            continue
        try:
            path = (
                restored
                if restored is not None
                else await asyncio.to_thread(_write_unique, folder, label, data)
            )
        except OSError as exc:
            log.warning("saving %s into %s failed: %r", label, folder, exc)
            problems.append(f"{label}: could not be saved.")
            continue
        total += len(data)
        image = sniff_image(data)
        if image is not None and len(data) > MAX_IMAGE_BYTES:
            problems.append(
                f"{label}: saved, but too large to show the agent as an image "
                f"(over {_mb(MAX_IMAGE_BYTES)})."
            )
            image = None
        relative = path.relative_to(root).as_posix()
        saved.append(SavedFile(path, relative, len(data), image))
    env = templates or make_environment({"core": TemplateSpec("core", "hotplex.templates")})
    suffix = env.get_template(ATTACHMENTS_TEMPLATE).render(files=saved).strip() if saved else ""
    images = tuple(f.path for f in saved if f.image is not None)
    return Received(suffix, images, tuple(problems), tuple(saved))
