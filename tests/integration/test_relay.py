"""The relay over real websockets on 127.0.0.1: pairing, forwarding, limits, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from common.protocol.codec import decode_as, encode
from common.protocol.relay_wire import (
    FORWARD_PREFIX,
    MAX_FRAME,
    Claim,
    CloseCode,
    Paired,
    PeerJoined,
    PeerLeft,
    Register,
    Registered,
    forward_frame,
)
from relay.__main__ import JsonFormatter, main
from relay.config import RelayConfig
from relay.server import RelayServer
from tests.integration.conftest import RelayFactory


ROOT = Path(__file__).resolve().parents[2]
# The bound on any single wait in these tests; the relay answers in milliseconds.
T = 3.0


# --- helpers --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def peer(url: str, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    kwargs.setdefault("compression", None)
    async with connect(url, max_size=None, open_timeout=T, close_timeout=1, **kwargs) as ws:
        yield ws


async def recv(ws: ClientConnection) -> bytes:
    async with asyncio.timeout(T):
        data = await ws.recv()
    assert isinstance(data, bytes)
    return data


async def closed_with(ws: ClientConnection) -> tuple[int, str, list[bytes | str]]:
    """Read until the relay closes: (close code, reason, messages received before)."""
    messages: list[bytes | str] = []
    async with asyncio.timeout(T):
        try:
            while True:
                messages.append(await ws.recv())
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "the relay did not send a close frame"
            return exc.rcvd.code, exc.rcvd.reason, messages


@dataclasses.dataclass
class Pair:
    user: ClientConnection
    tech: ClientConnection
    nameplate: int
    sid: bytes


async def register(ws: ClientConnection) -> Registered:
    await ws.send(encode(Register("test-user")))
    return decode_as(Registered, await recv(ws))


@contextlib.asynccontextmanager
async def paired(url: str) -> AsyncIterator[Pair]:
    async with peer(url) as user, peer(url) as tech:
        registered = await register(user)
        await tech.send(encode(Claim(registered.nameplate, "test-tech")))
        got = decode_as(Paired, await recv(tech))
        decode_as(PeerJoined, await recv(user))
        assert got.sid == registered.sid
        yield Pair(user, tech, registered.nameplate, got.sid)


async def round_trip(pair: Pair) -> None:
    """Both directions still forward."""
    for sender, receiver in ((pair.user, pair.tech), (pair.tech, pair.user)):
        frame = forward_frame(b"ping")
        await sender.send(frame)
        assert await recv(receiver) == frame


async def http_get(host: str, port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        async with asyncio.timeout(T):
            await writer.drain()
            raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def health(server: RelayServer) -> dict[str, Any]:
    status, headers, body = await http_get(server.host, server.port, "/healthz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    result: dict[str, Any] = json.loads(body)
    return result


async def settled(server: RelayServer, **expected: int) -> None:
    """Wait (bounded) until the relay's counts reach ``expected``."""
    async with asyncio.timeout(T):
        while {k: getattr(server.counts(), k) for k in expected} != expected:
            await asyncio.sleep(0.01)


# --- pairing and forwarding -----------------------------------------------------


async def test_register_claim_and_forward_both_ways(relay_server: RelayServer) -> None:
    async with peer(relay_server.url) as user, peer(relay_server.url) as tech:
        registered = await register(user)
        assert 100 <= registered.nameplate <= 999
        assert registered.expires_in == 600
        await tech.send(encode(Claim(registered.nameplate)))
        assert decode_as(Paired, await recv(tech)).sid == registered.sid
        decode_as(PeerJoined, await recv(user))

        payloads = [b"", b"hello", bytes(range(256)) * 64, b"\x00" * (1 << 20)]
        for payload in payloads:
            frame = forward_frame(payload)
            await tech.send(frame)
            assert await recv(user) == frame
            await user.send(frame)
            assert await recv(tech) == frame


async def test_forward_frames_are_not_decoded(relay_server: RelayServer) -> None:
    # Only the prefix is checked: a frame no decoder would accept still passes.
    async with paired(relay_server.url) as pair:
        frame = FORWARD_PREFIX + b"\xff\xff\xff not a valid Forward"
        await pair.user.send(frame)
        assert await recv(pair.tech) == frame


async def test_forward_passes_the_very_same_bytes_object(
    relay_server: RelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[object] = []
    sent: list[object] = []
    real_recv, real_send = ServerConnection.recv, ServerConnection.send

    async def spy_recv(self: ServerConnection, *args: Any, **kwargs: Any) -> Any:
        data = await real_recv(self, *args, **kwargs)
        received.append(data)
        return data

    async def spy_send(self: ServerConnection, message: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(message)
        await real_send(self, message, *args, **kwargs)

    monkeypatch.setattr(ServerConnection, "recv", spy_recv)
    monkeypatch.setattr(ServerConnection, "send", spy_send)
    async with paired(relay_server.url) as pair:
        frame = forward_frame(b"x" * 1000)
        await pair.tech.send(frame)
        assert await recv(pair.user) == frame
    (original,) = [m for m in received if m == frame]
    (forwarded,) = [m for m in sent if m == frame]
    assert forwarded is original


@pytest.mark.parametrize("leaver", ["user", "tech"])
async def test_peer_left_when_one_side_disconnects(relay_server: RelayServer, leaver: str) -> None:
    async with paired(relay_server.url) as pair:
        gone, stays = (pair.user, pair.tech) if leaver == "user" else (pair.tech, pair.user)
        await gone.close()
        code, reason, messages = await closed_with(stays)
    assert messages == [encode(PeerLeft("peer disconnected"))]
    assert (code, reason) == (CloseCode.PEER_LEFT, "peer disconnected")
    await settled(relay_server, connections=0, active_pairs=0)


async def test_second_claim_is_refused_while_the_first_pair_works_on(
    relay_server: RelayServer,
) -> None:
    async with paired(relay_server.url) as pair:
        async with peer(relay_server.url) as intruder:
            await intruder.send(encode(Claim(pair.nameplate)))
            code, _, messages = await closed_with(intruder)
        assert (code, messages) == (CloseCode.ALREADY_CLAIMED, [])
        await round_trip(pair)


async def test_unknown_code(relay_server: RelayServer) -> None:
    async with peer(relay_server.url) as tech:
        await tech.send(encode(Claim(123)))
        code, reason, _ = await closed_with(tech)
    assert code == CloseCode.UNKNOWN_CODE
    assert reason == "no one is waiting for this code"


async def test_a_waiting_user_that_leaves_frees_its_nameplate(
    relay_server: RelayServer,
) -> None:
    async with peer(relay_server.url) as user:
        nameplate = (await register(user)).nameplate
        await settled(relay_server, waiting_codes=1)
    await settled(relay_server, waiting_codes=0, connections=0)
    async with peer(relay_server.url) as tech:
        await tech.send(encode(Claim(nameplate)))
        assert (await closed_with(tech))[0] == CloseCode.UNKNOWN_CODE


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(b"\xde\xad\xbe\xef garbage", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(encode(Register()) + b"\x00", id="trailing-bytes"),
        pytest.param(b"\x02" + encode(Register())[1:], id="wrong-version"),
        pytest.param(encode(PeerJoined()), id="relay-message"),
        pytest.param(forward_frame(b"too early"), id="forward-first"),
    ],
)
async def test_bad_first_message(relay_server: RelayServer, first: bytes) -> None:
    async with peer(relay_server.url) as ws:
        await ws.send(first)
        code, reason, messages = await closed_with(ws)
    assert (code, messages) == (CloseCode.BAD_MESSAGE, [])
    assert reason
    await settled(relay_server, connections=0)


async def test_text_frame_first(relay_server: RelayServer) -> None:
    async with peer(relay_server.url) as ws:
        await ws.send("hello")
        code, reason, _ = await closed_with(ws)
    assert (code, reason) == (CloseCode.BAD_MESSAGE, "text frames are not accepted")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("a text frame", id="text"),
        pytest.param(encode(Register()), id="register-again"),
        pytest.param(b"\x01", id="truncated"),
    ],
)
async def test_anything_but_forward_after_pairing(relay_server: RelayServer, bad: Any) -> None:
    async with paired(relay_server.url) as pair:
        await pair.user.send(bad)
        code, _, _ = await closed_with(pair.user)
        assert code == CloseCode.BAD_MESSAGE
        code, reason, messages = await closed_with(pair.tech)
    assert messages == [encode(PeerLeft("peer sent an invalid message"))]
    assert (code, reason) == (CloseCode.PEER_LEFT, "peer sent an invalid message")


async def test_forward_from_a_waiting_user_is_refused(relay_server: RelayServer) -> None:
    async with peer(relay_server.url) as user:
        await register(user)
        await user.send(forward_frame(b"nobody to read this"))
        code, _, _ = await closed_with(user)
    assert code == CloseCode.BAD_MESSAGE
    await settled(relay_server, waiting_codes=0)


async def test_oversize_frame_closes_1009_and_the_relay_serves_on(
    relay_server: RelayServer,
) -> None:
    largest = FORWARD_PREFIX + b"\x00" * (MAX_FRAME - len(FORWARD_PREFIX))
    async with paired(relay_server.url) as pair:
        await pair.tech.send(largest)
        assert await recv(pair.user) == largest
        await pair.tech.send(largest + b"\x00")
        code, _, _ = await closed_with(pair.tech)
        assert code == CloseCode.TOO_BIG
        code, _, messages = await closed_with(pair.user)
        assert code == CloseCode.PEER_LEFT
        assert messages == [encode(PeerLeft("peer sent an oversized message"))]
    async with paired(relay_server.url) as second:
        await round_trip(second)


# --- timeouts -------------------------------------------------------------------


async def test_hello_timeout(relay_factory: RelayFactory) -> None:
    server = await relay_factory(hello_timeout=0.3)
    async with peer(server.url) as ws:
        start = time.monotonic()
        code, _, _ = await closed_with(ws)
    assert code == CloseCode.HELLO_TIMEOUT
    assert time.monotonic() - start >= 0.25


async def test_idle_timeout_counts_messages_from_that_peer_only(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(idle_timeout=0.3)

    async with paired(server.url) as pair:
        start = time.monotonic()

        async def keep_talking() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await pair.tech.send(forward_frame(b"tick"))
                    await asyncio.sleep(0.05)

        talker = asyncio.create_task(keep_talking())
        try:
            code, _, messages = await closed_with(pair.user)
        finally:
            talker.cancel()
            await asyncio.gather(talker, return_exceptions=True)
        # The user kept receiving, yet was idle itself.
        assert code == CloseCode.IDLE_TIMEOUT
        assert len(messages) >= 3
        assert time.monotonic() - start >= 0.25
        code, reason, messages = await closed_with(pair.tech)
    assert (code, reason) == (CloseCode.PEER_LEFT, "peer timed out")
    assert messages == [encode(PeerLeft("peer timed out"))]


async def test_waiting_users_expire_with_their_code_not_by_idleness(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(code_ttl=0.6, idle_timeout=0.2)
    async with peer(server.url) as user:
        start = time.monotonic()
        registered = await register(user)
        assert registered.expires_in == 1
        code, _, _ = await closed_with(user)
    assert code == CloseCode.CODE_EXPIRED
    assert time.monotonic() - start >= 0.55
    async with peer(server.url) as tech:
        await tech.send(encode(Claim(registered.nameplate)))
        assert (await closed_with(tech))[0] == CloseCode.UNKNOWN_CODE


async def test_absolute_timeout(relay_factory: RelayFactory) -> None:
    server = await relay_factory(absolute_timeout=0.4)
    async with paired(server.url) as pair:
        user_code, _, _ = await closed_with(pair.user)
        tech_code, _, _ = await closed_with(pair.tech)
    assert user_code == CloseCode.SESSION_TOO_LONG
    assert tech_code in (CloseCode.PEER_LEFT, CloseCode.SESSION_TOO_LONG)


# --- limits ---------------------------------------------------------------------


async def test_connection_cap_per_address(relay_factory: RelayFactory) -> None:
    server = await relay_factory(max_connections_per_address=2)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(peer(server.url))
        await stack.enter_async_context(peer(server.url))
        async with peer(server.url) as third:
            code, reason, _ = await closed_with(third)
        assert (code, reason) == (
            CloseCode.TOO_MANY_CONNECTIONS,
            "too many connections from this address",
        )
        assert (await health(server))["connections"] == 2
        await first.close()
        await settled(server, connections=1)
        async with peer(server.url) as again:
            await register(again)


async def test_total_connection_cap(relay_factory: RelayFactory) -> None:
    server = await relay_factory(max_connections=1, max_connections_per_address=1)
    async with peer(server.url), peer(server.url) as second:
        code, _, _ = await closed_with(second)
    assert code == CloseCode.TOO_MANY_CONNECTIONS


async def test_failed_claims_are_rate_limited(relay_factory: RelayFactory) -> None:
    server = await relay_factory(address_claims_per_window=2)
    codes = []
    for _ in range(3):
        async with peer(server.url) as tech:
            await tech.send(encode(Claim(999)))
            codes.append((await closed_with(tech))[0])
    assert codes == [CloseCode.UNKNOWN_CODE, CloseCode.UNKNOWN_CODE, CloseCode.RATE_LIMITED]


async def test_successful_claims_count_against_the_address_too(
    relay_factory: RelayFactory,
) -> None:
    # Issue 14: random claims that hit a waiting code were free, and burn the user's code.
    server = await relay_factory(address_claims_per_window=2)
    async with paired(server.url), paired(server.url):
        async with peer(server.url) as user, peer(server.url) as tech:
            registered = await register(user)
            await tech.send(encode(Claim(registered.nameplate)))
            code, reason, _ = await closed_with(tech)
    assert (code, reason) == (CloseCode.RATE_LIMITED, "too many claims from this address; wait")


async def test_relay_full(relay_factory: RelayFactory) -> None:
    server = await relay_factory(max_waiting=1)
    async with peer(server.url) as first, peer(server.url) as second:
        await register(first)
        await second.send(encode(Register()))
        assert (await closed_with(second))[0] == CloseCode.RELAY_FULL


# --- HTTP surface ---------------------------------------------------------------


async def test_healthz_reports_counts(relay_server: RelayServer) -> None:
    assert await health(relay_server) == {
        "status": "ok",
        "connections": 0,
        "waiting_codes": 0,
        "active_pairs": 0,
    }
    async with paired(relay_server.url), peer(relay_server.url) as waiting:
        await register(waiting)
        assert await health(relay_server) == {
            "status": "ok",
            "connections": 3,
            "waiting_codes": 1,
            "active_pairs": 1,
        }
    await settled(relay_server, connections=0)
    assert (await health(relay_server))["active_pairs"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/V1/peer",
        "/v1/peer/",
        "/v1/%70eer",
        "/v1//peer",
        "//v1/peer",
        "/v1/peer?x=1",
        "/v1/peer;x",
        "/v1/peer/../peer",
        "/admin/..;/",
        "/healthz/",
        "/HEALTHZ",
        "/v2/peer",
    ],
)
async def test_other_paths_are_404(relay_server: RelayServer, path: str) -> None:
    status, _, _ = await http_get(relay_server.host, relay_server.port, path)
    assert status == 404
    with pytest.raises(InvalidStatus) as info:
        async with peer(f"ws://{relay_server.host}:{relay_server.port}{path}"):
            pass
    assert info.value.response.status_code == 404


async def test_plain_get_on_the_websocket_path_is_not_served(relay_server: RelayServer) -> None:
    status, _, _ = await http_get(relay_server.host, relay_server.port, "/v1/peer")
    assert status == 426


async def test_permessage_deflate_is_not_negotiated(relay_server: RelayServer) -> None:
    async with peer(relay_server.url, compression="deflate") as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None


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
