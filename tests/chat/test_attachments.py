"""A chat message's attachments land in the session's work directory, sanitized, capped,
and named in the prompt the agent receives."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hotplex.agent_tools import AGENT_TOOLS
from hotplex.chat.attachments import receive_attachments, safe_name
from hotplex.chat.scope import conversation_key
from hotplex.config.chat import AttachmentSettings
from hotplex.services import STORAGE
from hotplex.testing.fakes import FakeChatAdapter
from hotplex.testing.running import RunningHotPlex
from hotplex.testing.running import running_hotplex as start_hotplex
from hotplex.types import Attachment, ChatCapabilities, IncomingMessage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def attachment(
    name: str, data: bytes, *, size: int | None = None, kind: str = "file"
) -> Attachment:
    calls: list[int] = []

    async def download() -> bytes:
        calls.append(1)
        return data

    return Attachment(name=name, size=size, mime=None, kind=kind, download=download)  # type: ignore[arg-type]


def failing(name: str) -> Attachment:
    async def download() -> bytes:
        raise ConnectionError("403 from the platform")

    return Attachment(name=name, size=None, mime=None, kind="file", download=download)


def message(*attachments: Attachment, text: str = "look at these") -> IncomingMessage:
    return IncomingMessage(
        address="fake:w/C1", text=text, user="fake:U1", platform="fake", attachments=attachments
    )


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_files_land_in_the_folder_and_are_named_in_the_prompt(tmp_path: Path) -> None:
    work = tmp_path / "work"
    got = await receive_attachments(
        message(attachment("report.pdf", b"%PDF-1.7 x"), attachment("pic.png", PNG)),
        work,
        AttachmentSettings(),
    )
    assert (work / "attachments" / "report.pdf").read_bytes() == b"%PDF-1.7 x"
    assert (work / "attachments" / "pic.png").read_bytes() == PNG
    assert got.problems == ()
    assert "attachments/report.pdf" in got.prompt_suffix
    assert "attachments/pic.png" in got.prompt_suffix
    assert got.images == ((work / "attachments" / "pic.png").resolve(),)
    prompt = got.prompt("look at these")
    assert prompt.startswith("look at these\n\n[Attached file: attachments/report.pdf")


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("\u202egpj.exe", "gpj.exe"),
        (".bashrc", "bashrc"),
        ("..", "attachment"),
        ("a\x00b\nc\u200b.txt", "abc.txt"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("x" * 500 + ".txt", "x" * 116 + ".txt"),
    ],
)
async def test_a_hostile_name_lands_sanitized_inside_the_folder(
    tmp_path: Path, hostile: str, expected: str
) -> None:
    work = tmp_path / "work"
    got = await receive_attachments(
        message(attachment(hostile, b"data")), work, AttachmentSettings()
    )
    assert got.problems == ()
    written = files_under(tmp_path)
    assert written == [work / "attachments" / expected]
    assert safe_name(hostile) == expected


async def test_same_names_do_not_overwrite(tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = await receive_attachments(
        message(attachment("a.txt", b"1"), attachment("a.txt", b"2")), work, AttachmentSettings()
    )
    second = await receive_attachments(
        message(attachment("a.txt", b"3")), work, AttachmentSettings()
    )
    folder = work / "attachments"
    assert [(p.name, p.read_bytes()) for p in files_under(folder)] == [
        ("a-2.txt", b"2"),
        ("a-3.txt", b"3"),
        ("a.txt", b"1"),
    ]
    assert "attachments/a-2.txt" in first.prompt_suffix
    assert "attachments/a-3.txt" in second.prompt_suffix


async def test_a_folder_that_links_outside_is_refused(tmp_path: Path) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (work / "attachments").symlink_to(outside)
    got = await receive_attachments(message(attachment("a.txt", b"1")), work, AttachmentSettings())
    assert got.problems and got.prompt_suffix == ""
    assert files_under(outside) == []


async def test_a_planted_link_is_not_followed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "attachments").mkdir(parents=True)
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    (work / "attachments" / "a.txt").symlink_to(target)
    got = await receive_attachments(
        message(attachment("a.txt", b"evil")), work, AttachmentSettings()
    )
    assert target.read_bytes() == b"keep"
    assert (work / "attachments" / "a-2.txt").read_bytes() == b"evil"
    assert got.problems == ()


async def test_oversized_files_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    settings = AttachmentSettings(max_bytes=10, max_message_bytes=15)
    announced = attachment("big.bin", b"x" * 5, size=11)  # announced too large: not downloaded
    actual = attachment("sneaky.bin", b"x" * 11)  # announced nothing, is too large
    got = await receive_attachments(message(announced, actual), work, settings)
    assert files_under(tmp_path) == []
    assert got.prompt_suffix == "" and got.images == ()
    assert len(got.problems) == 2
    assert got.problems[0].startswith("big.bin: too large")
    assert got.problems[1].startswith("sneaky.bin: too large")
    # the message's total: the second file would pass alone, not together
    got = await receive_attachments(
        message(attachment("a", b"x" * 10), attachment("b", b"y" * 10)), work, settings
    )
    assert [p.name for p in files_under(work)] == ["a"]
    assert got.problems and got.problems[0].startswith("b: not taken")


async def test_a_failed_or_slow_download_leaves_the_rest(tmp_path: Path) -> None:
    work = tmp_path / "work"

    async def hang() -> bytes:
        await asyncio.Event().wait()
        return b""

    slow = Attachment(name="slow.bin", size=None, mime=None, kind="file", download=hang)
    got = await receive_attachments(
        message(failing("gone.txt"), slow, attachment("ok.txt", b"fine")),
        work,
        AttachmentSettings(timeout=0.2),
    )
    assert [p.name for p in files_under(work)] == ["ok.txt"]
    assert got.problems == (
        "gone.txt: the download failed.",
        "slow.bin: the download took longer than 0.2s.",
    )
    assert "attachments/ok.txt" in got.prompt_suffix


async def test_images_are_recognised_by_content_not_by_name(tmp_path: Path) -> None:
    work = tmp_path / "work"
    got = await receive_attachments(
        message(
            attachment("photo.png", b"not an image", kind="image"),
            attachment("data.bin", PNG),
            attachment("huge.png", b"\xff\xd8\xff" + b"\x00" * (4 * 1024 * 1024)),
        ),
        work,
        AttachmentSettings(),
    )
    folder = (work / "attachments").resolve()
    assert got.images == (folder / "data.bin",)
    assert "image/png, shown as an image" in got.prompt_suffix
    assert len(got.problems) == 1 and got.problems[0].startswith("huge.png: saved, but too large")


async def test_too_many_files_and_switched_off(tmp_path: Path) -> None:
    work = tmp_path / "work"
    many = [attachment(f"f{i}.txt", b"x") for i in range(3)]
    got = await receive_attachments(message(*many), work, AttachmentSettings(max_files=2))
    assert [p.name for p in files_under(work)] == ["f0.txt", "f1.txt"]
    assert got.problems == ("f2.txt: not taken (at most 2 files per message).",)
    off = await receive_attachments(
        message(attachment("x", b"1")), tmp_path / "off", AttachmentSettings(enabled=False)
    )
    assert not (tmp_path / "off").exists() and off.problems


# -- through a running HotPlex: the dispatcher receives them before the turn ------------


def answered(hp: RunningHotPlex, text: str) -> Callable[[], bool]:
    return lambda: any(text in shown for shown in hp.ops.texts())


async def test_an_attachment_reaches_the_agents_work_directory_and_prompt(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    hp = await running_hotplex(config={"chat": {"attachments": {"max_bytes": 100}}})
    incoming = await hp.adapter.dm(
        "summarise this",
        attachments=(
            attachment("../notes.txt", b"line one"),
            attachment("big", b"x" * 101),
            attachment("p.png", PNG[:40]),
        ),
    )
    await hp.ops.wait_for(answered(hp, "echo: summarise this"))
    process = hp.provider.processes[0]
    saved = process.spec.work_dir / "attachments" / "notes.txt"
    assert saved.read_bytes() == b"line one"
    assert process.prompts == [
        "summarise this\n\n[Attached file: attachments/notes.txt (8 bytes)]\n"
        "[Attached file: attachments/p.png (40 bytes, image/png, shown as an image)]"
    ]
    assert process.images == [(saved.parent.resolve() / "p.png",)]
    assert not (process.spec.work_dir / "attachments" / "big").exists()
    sent = [call for call in hp.ops.calls if call[0] == "send"]
    assert sent[0][1:3] == (incoming.address, "big: too large (101 bytes; the limit is 100 bytes).")


async def test_a_file_sent_in_chat_reaches_the_agent_and_the_agent_sends_one_back(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    hp = await running_hotplex(capabilities=ChatCapabilities(files=True))
    incoming = await hp.adapter.dm(
        "what is in it?", attachments=(attachment("data.csv", b"a,b\n1,2"),)
    )
    await hp.ops.wait_for(answered(hp, "echo: what is in it?"))
    process = hp.provider.processes[0]
    saved = process.spec.work_dir / "attachments" / "data.csv"
    assert saved.read_bytes() == b"a,b\n1,2"
    assert process.prompts == ["what is in it?\n\n[Attached file: attachments/data.csv (7 bytes)]"]
    assert [c[2] for c in hp.ops.calls if c[0] == "send" and not c[2].startswith("echo: ")] == []
    session_id = hp.engine.session_id(conversation_key(incoming, "thread"))
    tools = hp.runtime.ctx.services.get(AGENT_TOOLS)
    result = await tools.call(
        {"name": "send_file", "arguments": {"path": "attachments/data.csv", "title": "Back"}},
        session=session_id,
    )
    assert result["isError"] is False, result
    uploads = [c[1:4] for c in hp.ops.calls if c[0] == "upload_file"]
    assert uploads == [(incoming.address, str(saved.resolve()), "Back")]


async def test_a_replayed_message_gets_the_files_its_first_run_saved(tmp_path: Path) -> None:
    adapter = FakeChatAdapter()
    incoming = adapter.message(
        "read it", direct=True, attachments=(attachment("notes.txt", b"first run"),)
    )
    key = conversation_key(incoming, "thread")
    async with start_hotplex(tmp_path, adapter=adapter) as hp:
        work_dir = await hp.engine.work_dir(key, address=incoming.address, user=incoming.user)
        (work_dir / "attachments").mkdir(parents=True)
        old = work_dir / "attachments" / "notes.txt"
        old.write_bytes(b"an earlier message's")  # same name, before this message came
        os.utime(old, (incoming.received_at - 60, incoming.received_at - 60))
        storage = hp.runtime.ctx.services.get(STORAGE)
        assert await storage.record_inbound(incoming)  # received
        first = await receive_attachments(incoming, work_dir, AttachmentSettings())
        assert "attachments/notes-2.txt" in first.prompt_suffix  # saved; then the crash
    adapter = FakeChatAdapter()
    async with start_hotplex(tmp_path, adapter=adapter) as hp:
        assert await hp.runtime.replay_inbound() == 1  # restored: its download raises
        await hp.ops.wait_for(answered(hp, "echo: read it"))
        process = hp.provider.processes[0]
        assert process.prompts == ["read it\n\n[Attached file: attachments/notes-2.txt (9 bytes)]"]
        assert (process.spec.work_dir / "attachments" / "notes-2.txt").read_bytes() == (
            b"first run"
        )
        assert sorted(p.name for p in (process.spec.work_dir / "attachments").iterdir()) == [
            "notes-2.txt",
            "notes.txt",
        ]
        sent = [c[2] for c in hp.ops.calls if c[0] == "send"]
        assert [text for text in sent if not text.startswith("echo: ")] == []  # no problems
