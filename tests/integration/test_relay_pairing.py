"""The relay over real websockets on 127.0.0.1: pairing, forwarding, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

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
    forward_frame,
)
from relay.server import RelayServer
from tests.integration.relay_peers import (
    closed_with,
    paired,
    peer,
    recv,
    register,
    round_trip,
    settled,
)


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
