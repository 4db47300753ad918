"""Helpers for the relay-as-a-service tests: raw websocket peers, accounts, queue messages.

The tests using these start in-process relays with ``relay_factory`` (see
conftest.py) or real relay processes (``bench.relay_process.RelayProcess``).
Every wait here is bounded by :data:`T`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from common.net.pairing import ConsentRequest
from common.protocol.codec import Message, decode, decode_as, encode
from common.protocol.relay_wire import (
    ClaimRequest,
    LoggedIn,
    Login,
    PostRequest,
    Queued,
    QueueEntry,
    QueueSynced,
    WatchQueue,
)
from relay.accounts import hash_password
from relay.server import RelayServer
from relay.store import Account


T = 5.0
PASSWORD = "correct horse battery staple"


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


async def create_account(
    server: RelayServer,
    name: str = "jane",
    *,
    password: str = PASSWORD,
    role: str = "technician",
    display_name: str | None = None,
) -> Account:
    """Add an account through the relay's own database thread."""
    store = server.relay.db.store
    return await server.relay.db.run(
        store.create_account,
        name,
        display_name or name.title(),
        role,
        hash_password(password),
        time.time(),
    )


async def disable_account(server: RelayServer, name: str) -> None:
    store = server.relay.db.store
    await server.relay.db.run(store.set_disabled, name, True, time.time())


@contextlib.asynccontextmanager
async def peer(
    url: str, *, token: str | None = None, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    headers = kwargs.pop("additional_headers", headers)
    async with connect(
        url,
        max_size=None,
        compression=None,
        open_timeout=T,
        close_timeout=1,
        additional_headers=headers,
        **kwargs,
    ) as ws:
        yield ws


async def recv(ws: ClientConnection) -> bytes:
    async with asyncio.timeout(T):
        data = await ws.recv()
    assert isinstance(data, bytes)
    return data


async def recv_msg(ws: ClientConnection) -> Message:
    return decode(await recv(ws))


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


async def login(url: str, name: str = "jane", password: str = PASSWORD) -> LoggedIn:
    async with peer(url) as ws:
        await ws.send(encode(Login(name, password)))
        return decode_as(LoggedIn, await recv(ws))


def request(
    name: str = "Bob", description: str = "my printer is on fire", **kw: str
) -> PostRequest:
    return PostRequest(name, description, kw.get("category", ""), kw.get("system_summary", ""))


async def post(ws: ClientConnection, msg: PostRequest | None = None) -> Queued:
    await ws.send(encode(msg or request()))
    return decode_as(Queued, await recv(ws))


async def watch(ws: ClientConnection) -> list[QueueEntry]:
    """Start a queue watch and return the initial entries (up to QueueSynced)."""
    await ws.send(encode(WatchQueue()))
    entries: list[QueueEntry] = []
    while True:
        msg = await recv_msg(ws)
        if isinstance(msg, QueueSynced):
            assert msg.count == len(entries)
            return entries
        assert isinstance(msg, QueueEntry), msg
        entries.append(msg)


async def claim(ws: ClientConnection, request_id: bytes) -> None:
    await ws.send(encode(ClaimRequest(request_id)))


async def settled(server: RelayServer, **expected: int) -> None:
    """Wait (bounded) until the relay's counts reach ``expected``."""
    async with asyncio.timeout(T):
        while {k: getattr(server.counts(), k) for k in expected} != expected:
            await asyncio.sleep(0.01)


def random_id() -> bytes:
    return os.urandom(16)
