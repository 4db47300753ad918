"""The relay's shutdown and logs, and ``python -m relay`` (the command)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.protocol.relay_wire import CloseCode, forward_frame
from relay.__main__ import JsonFormatter, main
from relay.config import RelayConfig
from relay.server import RelayServer
from tests.integration.conftest import RelayFactory
from tests.integration.relay_peers import (
    T,
    closed_with,
    http_get,
    paired,
    peer,
    recv,
    register,
    settled,
)


ROOT = Path(__file__).resolve().parents[2]


# --- shutdown and logs ----------------------------------------------------------


async def test_close_sends_going_away_to_every_peer(relay_factory: RelayFactory) -> None:
    server = await relay_factory()
    async with paired(server.url) as pair, peer(server.url) as waiting:
        await register(waiting)
        async with asyncio.timeout(T):
            await server.close()
        for ws in (pair.user, pair.tech, waiting):
            code, _, messages = await closed_with(ws)
            assert (code, messages) == (CloseCode.GOING_AWAY, [])
    assert not server.is_serving()
    assert server.counts().connections == 0
    with pytest.raises(OSError):
        async with peer(server.url):
            pass


async def test_logs_hold_no_payloads_or_codes(
    relay_server: RelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay")
    async with paired(relay_server.url) as pair:
        await pair.user.send(forward_frame(b"TOP-SECRET-PAYLOAD"))
        await recv(pair.tech)
        nameplate, sid = pair.nameplate, pair.sid
    await settled(relay_server, connections=0)
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "relay"]
    events = [json.loads(line)["event"] for line in lines]
    assert {"connected", "registered", "paired", "closed"} <= set(events)
    for line in lines:
        entry = json.loads(line)
        assert "TOP-SECRET" not in line
        assert sid.hex() not in line
        assert nameplate not in [v for k, v in entry.items() if k not in ("ts", "conn")]


# --- the command ----------------------------------------------------------------


async def test_python_m_relay_listens_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "--port",
        "0",
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(10):
            event = json.loads(await proc.stderr.readline())
        # The first line, whatever else may be logged later.
        assert event["event"] == "listening"
        assert event["host"] == "127.0.0.1"
        assert event["port"] > 0
        assert event["url"] == f"ws://127.0.0.1:{event['port']}/v1/peer"
        status, _, body = await http_get("127.0.0.1", event["port"], "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            rest = await proc.stderr.read()
            assert await proc.wait() == 0
        assert [json.loads(line)["event"] for line in rest.splitlines()][-1] == "stopped"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_python_m_relay_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "relay", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["--port", "70000"], ["--bogus"], ["--idle-timeout", "soon"], ["--max-waiting", "0"]],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("deskhand-relay: error: ")
    assert err.count("\n") == 1


def test_admin_commands_are_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    import relay.admin

    calls: list[list[str]] = []

    def fake_admin(argv: list[str]) -> int:
        calls.append(argv)
        return 7

    monkeypatch.setattr(relay.admin, "main", fake_admin)
    assert main(["org", "create", "x"]) == 7
    assert main(["cert", "list"]) == 7
    assert calls == [["org", "create", "x"], ["cert", "list"]]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("", False)],
)
def test_only_loopback_hosts_count_as_loopback(host: str, loopback: bool) -> None:
    # Anything else gets the plain-ws:// warning at start-up.
    assert RelayConfig(host=host).is_loopback is loopback
