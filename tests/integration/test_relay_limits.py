"""The relay over real websockets on 127.0.0.1: timeouts and limits."""

from __future__ import annotations

import asyncio
import contextlib
import time

from websockets.exceptions import ConnectionClosed

from common.protocol.codec import encode
from common.protocol.relay_wire import Claim, CloseCode, PeerLeft, Register, forward_frame
from tests.integration.conftest import RelayFactory
from tests.integration.relay_peers import closed_with, health, paired, peer, register, settled


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
