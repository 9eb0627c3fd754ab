"""Canonical forms of paths, hosts and URLs, so rules see one spelling of each.

A tool's file path becomes ``./rel`` inside the work directory, ``~/rel`` under the home
directory, and an absolute path elsewhere (``..`` and ``.`` resolved lexically; symlinks
are not followed, since checking does no I/O). A URL keeps scheme, host, port and path;
the host is lower-cased, IPv4 in decimal, hex or octal forms (``2852039166``,
``0xa9fea9fe``, ``0251.0376.0251.0376``) is written dotted, and IPv6 literals are
compressed.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from urllib.parse import urlsplit

__all__ = ["canonical_arg", "canonical_host", "canonical_path", "canonical_url"]

_NUMERIC_HOST = re.compile(r"(?i)(?:0x[0-9a-f]+|\d+)(?:\.(?:0x[0-9a-f]+|\d+)){0,3}")
_URLISH = re.compile(
    r"(?i)^(?P<pre>[a-z][\w+.-]*://(?:[^@/\s]*@)?)?(?P<host>[^/:\s?#@]+)"
    r"(?P<rest>(?::\d+)?(?:[/?#].*)?)$",
    re.S,
)
_OPTION_VALUE = re.compile(r"(--?[\w.-]+=|[\w.-]+=)(.+)", re.S)
_SENSITIVE = (
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/etc/gshadow",
    "~/.ssh/id_rsa",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ecdsa",
    "~/.ssh/authorized_keys",
    "~/.aws/credentials",
    "/proc/self/environ",
    "/dev/sda",
    "/dev/nvme0n1",
    "/bin/sh",
    "/bin/bash",
    "/bin/rm",
    "/usr/bin/rm",
    "~/.bashrc",
    "/etc/crontab",
)


def canonical_host(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    if _NUMERIC_HOST.fullmatch(host):
        parts = host.split(".")
        try:
            nums = [
                int(p, 16)
                if p.startswith("0x")
                else int(p, 8)
                if (len(p) > 1 and p.startswith("0"))
                else int(p)
                for p in parts
            ]
        except ValueError:
            return host
        if len(nums) == 1:
            value = nums[0]
        else:
            *head, last = nums
            value = 0
            for n in head:
                value = value * 256 + (n & 0xFF)
            value = value * (256 ** (4 - len(head))) + last
        if 0 <= value < 2**32:
            return str(ipaddress.IPv4Address(value))
        return host
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return host
        mapped = address.ipv4_mapped
        return str(mapped) if mapped else address.compressed
    return host


def canonical_url(url: str) -> str:
    """``scheme://host[:port]/path?query`` with a canonical host (user info dropped)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if not host:
        return f"{scheme}:{parts.path}" if scheme else url.strip()
    query = f"?{parts.query}" if parts.query else ""
    shown = canonical_host(host)
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{scheme}://{shown}{port}{parts.path}{query}"


def _collapse(path: str) -> str:
    if path.startswith("~"):
        head, sep, tail = path.partition("/")
        if head != "~":
            user = head[1:]
            return _collapse(("/root" if user == "root" else "/home/" + user) + sep + tail)
        rest = _collapse("/" + tail) if tail else "/"
        return "~" if rest == "/" else "~" + rest
    collapsed = posixpath.normpath(path)
    if collapsed.startswith("//"):
        collapsed = "/" + collapsed.lstrip("/")
    return collapsed


def canonical_arg(arg: str) -> str:
    """One command argument as rules see it: paths collapsed (``//``, ``/./``, ``x/..``),
    ``~user`` written out, numeric IPv4 hosts written dotted, and a glob that matches a
    well-known sensitive path replaced by that path."""
    if not arg:
        return arg
    first = arg[0]
    if first in "/~" or arg.startswith("./") or arg.startswith("../"):
        if any(c in arg for c in "*?[") and not arg.endswith(("/*", "/.*")):
            for known in _SENSITIVE:
                if fnmatchcase(known, arg):
                    return known
        return _collapse(arg) if "://" not in arg else arg
    if first.isdigit() or "://" in arg[:16]:
        m = _URLISH.match(arg)
        if m and (m.group("pre") or m.group("rest")) and _NUMERIC_HOST.fullmatch(m.group("host")):
            return (m.group("pre") or "") + canonical_host(m.group("host")) + m.group("rest")
        if m and m.group("pre"):
            return m.group("pre") + m.group("host").lower() + m.group("rest")
    elif "=" in arg:
        m = _OPTION_VALUE.fullmatch(arg)
        if m and m.group(2)[:1] in "/~":
            return m.group(1) + _collapse(m.group(2))
    return arg


def canonical_path(path: str, *, work_dir: str, home: str) -> str:
    """A tool's path relative to the work directory (``./x``), home (``~/x``) or root."""
    if path.startswith("~/") or path == "~":
        path = home + path[1:]
    elif path.startswith("~"):
        path = "/home/" + path[1:]
    if not path.startswith("/"):
        path = posixpath.join(work_dir, path)
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    work = posixpath.normpath(work_dir)
    for root, label in ((work, "."), (posixpath.normpath(home), "~")):
        if root == "/":
            continue
        if path == root:
            return label
        if PurePosixPath(path).is_relative_to(root):
            return label + "/" + posixpath.relpath(path, root)
    return path
