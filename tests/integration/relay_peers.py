"""Raw websocket peers for the relay-protocol tests (test_relay_*.py).

:func:`peer` opens a websocket to the relay (no compression unless asked),
:func:`paired` a user and a technician paired through it (a :class:`Pair`),
:func:`closed_with` reads until the relay closes; :func:`http_get` and
:func:`health` speak plain HTTP to it, :func:`settled` waits for its counts.
Every wait is bounded by :data:`T`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from common.protocol.codec import decode_as, encode
from common.protocol.relay_wire import (
    Claim,
    Paired,
    PeerJoined,
    Register,
    Registered,
    forward_frame,
)
from relay.server import RelayServer


# The bound on any single wait in these tests; the relay answers in milliseconds.
T = 3.0


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
