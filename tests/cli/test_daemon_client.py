"""The public daemon client (hotplex.client): JSON requests and a turn's AgentEvents over SSE
against a live ``hotplex serve``; a plugin's CLI command using it; clear errors when the
daemon is down, refuses the token or does not answer in time; where it finds the daemon."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from cli_kit import KEY, TOKEN, free_port, running_daemon, write_config
from click.testing import CliRunner

from hotplex import hookimpl
from hotplex.cli import build_cli
from hotplex.client import DaemonClient, DaemonError, connection_options
from hotplex.config import load_settings
from hotplex.plugins import make_plugin_manager
from hotplex.records import CommandSpec
from hotplex.testing.daemon import Daemon


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(tmp_path) as running:
        yield running


def plugin_cli() -> click.Group:
    """The CLI with a plugin command that asks the daemon through the public client."""

    @click.command("daemon-version")
    @connection_options
    @click.pass_context
    def daemon_version(ctx: click.Context, url: str | None, token: str | None) -> None:
        try:
            stats = DaemonClient.from_click(ctx, url, token).request("GET", "/admin/v1/stats")
        except DaemonError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"daemon {stats['version']}")

    class Plugin:
        @hookimpl
        def hotplex_register_commands(self) -> list[CommandSpec]:
            return [CommandSpec(daemon_version)]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "versions")
    return build_cli(pm)


def talk(daemon: Daemon, config: Path) -> dict[str, Any]:
    """Everything the test asks the daemon, off the event loop (urllib blocks)."""
    settings = load_settings(config, environ={}).settings
    client = DaemonClient.resolve(daemon.url, settings=settings, environ={})
    assert client.token == TOKEN and client.api_key == KEY  # both from the config
    out: dict[str, Any] = {"stats": client.request("GET", "/admin/v1/stats")}
    events = list(client.stream("hello there"))
    out["events"] = events
    session = events[-1].session_id
    out["replayed"] = list(client.stream("", session_id=session, last_event_id=0))
    with pytest.raises(DaemonError) as missing:  # a JSON body, an error answer
        client.request("POST", "/api/v1/permissions/nope", {"decision": "allow"})
    out["missing"] = missing.value
    with pytest.raises(DaemonError) as refused:
        DaemonClient(daemon.url, "wrong-token").request("GET", "/admin/v1/stats")
    out["refused"] = refused.value
    env = {"HOTPLEX_URL": daemon.url, "HOTPLEX_TOKEN": TOKEN, "HOTPLEX_CONFIG": None}
    result = CliRunner().invoke(plugin_cli(), ["daemon-version"], env=env)
    out["plugin_command"] = (result.exit_code, result.output)
    return out


@pytest.mark.timeout(120)
async def test_requests_and_streamed_events_against_a_live_daemon(
    daemon: Daemon, tmp_path: Path
) -> None:
    out = await asyncio.wait_for(asyncio.to_thread(talk, daemon, tmp_path / "hotplex.yaml"), 60)
    assert isinstance(out["stats"]["version"], str)
    events = out["events"]
    assert events[-1].type == "done" and events[-1].data["status"] == "ok"
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert any(e.type in ("text", "text_delta") for e in events)
    replayed = out["replayed"]
    # the stored events again (deltas are not stored), up to the same done
    assert {(e.seq, e.type) for e in replayed} <= {(e.seq, e.type) for e in events}
    assert (replayed[-1].seq, replayed[-1].type) == (events[-1].seq, "done")
    assert any(e.type == "text" for e in replayed)
    assert out["missing"].status == 404 and "answered 404" in str(out["missing"])
    assert out["refused"].status == 401 and "--token or HOTPLEX_TOKEN" in str(out["refused"])
    assert out["plugin_command"] == (0, f"daemon {out['stats']['version']}\n")


def test_a_daemon_that_is_down_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = DaemonClient(url, TOKEN)
    expected = f"cannot reach HotPlex at {url}: connection refused; is `hotplex serve` running?"
    with pytest.raises(DaemonError) as error:
        client.request("GET", "/admin/v1/stats")
    assert str(error.value) == expected and error.value.status is None
    with pytest.raises(DaemonError) as error:
        next(client.stream("hi"))
    assert str(error.value) == expected
    env = {"HOTPLEX_URL": url, "HOTPLEX_TOKEN": None, "HOTPLEX_CONFIG": None}
    result = CliRunner().invoke(plugin_cli(), ["daemon-version"], env=env)
    assert result.exit_code == 1 and expected in result.output


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_every_wait_has_a_timeout(silent_server: str) -> None:
    client = DaemonClient(silent_server, TOKEN, timeout=0.3, stream_timeout=0.3)
    with pytest.raises(DaemonError, match="did not answer in time"):
        client.request("GET", "/admin/v1/stats")
    with pytest.raises(DaemonError, match="did not answer in time"):
        next(client.stream("hi"))


def test_where_the_client_finds_the_daemon(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, host="0.0.0.0", port=8123), environ={})
    loaded = settings.settings
    found = DaemonClient.resolve(settings=loaded, environ={})
    assert (found.url, found.token, found.api_key) == ("http://127.0.0.1:8123", TOKEN, KEY)
    env = {"HOTPLEX_URL": "http://10.0.0.1:1/", "HOTPLEX_TOKEN": "from-env"}
    found = DaemonClient.resolve(settings=loaded, environ=env)
    assert (found.url, found.token) == ("http://10.0.0.1:1", "from-env")
    found = DaemonClient.resolve("http://h:2", "given", settings=loaded, environ=env)
    assert (found.url, found.token) == ("http://h:2", "given")

    def unread() -> Any:
        raise AssertionError("the config is read only when something is missing")

    found = DaemonClient.resolve("http://h:2", "given", settings=unread, environ={})
    assert found.url == "http://h:2"
    with pytest.raises(DaemonError, match="no daemon URL"):
        DaemonClient.resolve(environ={})
