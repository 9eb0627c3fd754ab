"""Evaluate pipelines made only of side-effect-free text tools, without running anything.

``echo``, ``printf``, ``cat`` (of standard input), ``base64 -d``, ``base32 -d``,
``xxd -r -p``, ``rev``, ``tac``, ``tr``, ``gunzip``/``zcat``, ``bunzip2``, ``unxz``,
``openssl base64 -d`` and ``tee`` are evaluated in Python with an output cap; anything
else makes the pipeline unknown (None). This is how ``$(echo cm0= | base64 -d)`` and
``echo ... | base64 -d | sh`` reveal the command they hide.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import lzma
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_OUTPUT", "Stage", "evaluate", "printf_format"]

MAX_OUTPUT = 65536

_ECHO_ESCAPE = re.compile(
    r"\\(?:x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{1,4})|0([0-7]{0,3})|([0-7]{1,3})|(.))", re.S
)
_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_DIRECTIVE = re.compile(r"%([-+ #0]*)(\d*|\*)(?:\.(\d*))?([sbcdiouxXeEfgGq%])")
_HEX = re.compile(r"[0-9a-fA-F]")


@dataclass(frozen=True, slots=True)
class Stage:
    """One command of a pipeline: its expanded argv and its own standard input (a
    here-document or here-string), if it has one."""

    argv: tuple[str, ...]
    stdin: str | None = None


def _escapes(text: str, *, echo: bool) -> tuple[str, bool]:
    """Backslash escapes of ``echo -e`` / ``printf %b`` (and ``printf`` formats); the flag
    is True when ``\\c`` stopped the output."""
    stop = text.find("\\c")
    cut = stop >= 0
    if cut:
        text = text[:stop]

    def one(m: re.Match[str]) -> str:
        hex2, u4, octal0, octal, other = m.groups()
        if hex2 or u4:
            code = int(hex2 or u4, 16)
            return "" if 0xD800 <= code <= 0xDFFF else chr(code)
        if octal0 is not None:
            return chr(int(octal0 or "0", 8) & 0xFF)
        if octal and not echo:
            return chr(int(octal, 8) & 0xFF)
        if octal:
            return "\\" + octal
        return _SIMPLE.get(other, "\\" + other)

    return _ECHO_ESCAPE.sub(one, text), cut


def printf_format(fmt: str, args: Sequence[str]) -> str:
    """``printf FORMAT ARGS...``: the format is reused while arguments remain."""
    fmt, _ = _escapes(fmt, echo=False)
    out: list[str] = []
    remaining = list(args)
    for _ in range(64):
        used = False

        def directive(m: re.Match[str]) -> str:
            nonlocal used
            conv = m.group(4)
            if conv == "%":
                return "%"
            used = True
            arg = remaining.pop(0) if remaining else ""
            if conv == "b":
                return _escapes(arg, echo=True)[0]
            if conv == "c":
                return arg[:1]
            if conv in "diouxX":
                try:
                    number = int(arg, 0) if arg else 0
                except ValueError:
                    number = ord(arg[1]) if arg[:1] in "'\"" and len(arg) > 1 else 0
                return {"o": f"{number:o}", "x": f"{number:x}", "X": f"{number:X}"}.get(
                    conv, str(number)
                )
            return arg

        out.append(_DIRECTIVE.sub(directive, fmt))
        if not used or not remaining:
            break
    return "".join(out)


def _echo(args: list[str]) -> str:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        flags = args.pop(0)
        newline &= "n" not in flags
        escapes = ("e" in flags) if ("e" in flags or "E" in flags) else escapes
    text = " ".join(args)
    if escapes:
        text, cut = _escapes(text, echo=True)
        newline &= not cut
    return text + ("\n" if newline else "")


def _b64(data: bytes) -> bytes | None:
    text = re.sub(rb"[^A-Za-z0-9+/=_-]", b"", data).replace(b"-", b"+").replace(b"_", b"/")
    text = text.rstrip(b"=")
    text += b"=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        return None


def _tr_set(spec: str) -> str:
    spec, _ = _escapes(spec, echo=False)
    for name, chars in (
        ("[:lower:]", "a-z"),
        ("[:upper:]", "A-Z"),
        ("[:digit:]", "0-9"),
        ("[:space:]", " \t\n"),
        ("[:alpha:]", "a-zA-Z"),
    ):
        spec = spec.replace(name, chars)
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-" and ord(spec[i]) <= ord(spec[i + 2]):
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out[:4096])


def _tr(args: list[str], data: str) -> str | None:
    delete = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        flags = args.pop(0)
        if "c" in flags or "C" in flags:
            return None
        delete |= "d" in flags
    if delete and args:
        drop = set(_tr_set(args[0]))
        return "".join(c for c in data if c not in drop)
    if len(args) < 2:
        return None
    src, dst = _tr_set(args[0]), _tr_set(args[1])
    if not dst:
        return None
    dst = dst + dst[-1] * max(0, len(src) - len(dst))
    return data.translate({ord(a): b for a, b in zip(src, dst, strict=False)})


def _decompress(kind: str, data: bytes) -> bytes | None:
    try:
        if kind == "gzip":
            return zlib.decompressobj(wbits=47).decompress(data, MAX_OUTPUT)
        if kind == "bzip2":
            return bz2.BZ2Decompressor().decompress(data, MAX_OUTPUT)
        return lzma.LZMADecompressor().decompress(data, MAX_OUTPUT)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError):
        return None


_DECOMPRESSORS = {
    "gunzip": "gzip",
    "zcat": "gzip",
    "gzcat": "gzip",
    "bunzip2": "bzip2",
    "bzcat": "bzip2",
    "unxz": "xz",
    "xzcat": "xz",
    "unlzma": "xz",
    "lzcat": "xz",
}


def _stage(argv: list[str], data: bytes) -> bytes | None:
    name = argv[0].rsplit("/", 1)[-1]
    args = argv[1:]
    flags = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
    longs = {a for a in args if a.startswith("--")}
    files = [a for a in args if not a.startswith("-")]
    text = data.decode("utf-8", "replace")
    if name == "echo":
        return _echo(args).encode()
    if name == "printf":
        if args and args[0] == "--":
            args = args[1:]
        return printf_format(args[0], args[1:]).encode() if args else b""
    if name in ("cat", "tee"):
        return data if name == "tee" or not files or files == ["-"] else None
    if files and name not in ("tr", "openssl", "xxd"):
        return None
    if name in ("base64", "base32") and ("d" in flags or "D" in flags or "--decode" in longs):
        if name == "base64":
            return _b64(data)
        return _b32(re.sub(rb"[^A-Z2-7]", b"", data.upper()))
    if name == "xxd" and "r" in flags and "p" in flags:
        digits = "".join(_HEX.findall(text))
        return bytes.fromhex(digits[: len(digits) // 2 * 2])
    if name == "rev":
        return "\n".join(line[::-1] for line in text.split("\n")).encode()
    if name == "tac":
        lines = text.rstrip("\n").split("\n")
        return ("\n".join(reversed(lines)) + "\n").encode()
    if name == "tr":
        out = _tr(list(args), text)
        return None if out is None else out.encode()
    kind = _DECOMPRESSORS.get(name)
    if kind is None and name in ("gzip", "bzip2", "xz", "lzma") and "d" in flags:
        kind = {"gzip": "gzip", "bzip2": "bzip2"}.get(name, "xz")
    if kind is not None:
        return _decompress(kind, data)
    base64_flag = args[:1] == ["base64"] or any(a in args for a in ("-a", "-base64", "-A"))
    if name == "openssl" and args[:1] in (["base64"], ["enc"]) and "-d" in args and base64_flag:
        return _b64(data)
    return None


def _b32(data: bytes) -> bytes | None:
    data += b"=" * (-len(data) % 8)
    try:
        return base64.b32decode(data)
    except (binascii.Error, ValueError):
        return None


def evaluate(stages: Sequence[Stage]) -> bytes | None:
    """The output of a pipeline of pure stages, or None when any stage is not pure."""
    data = b""
    for stage in stages:
        if not stage.argv:
            return None
        if stage.stdin is not None:
            data = stage.stdin.encode("utf-8", "replace")
        out = _stage(list(stage.argv), data)
        if out is None:
            return None
        data = out[:MAX_OUTPUT]
    return data
