"""Queue-mode pairing through a scripted malicious relay (issue 14).

The real queue-mode pairing functions run over real websockets; the relay
forwards, swaps or reorders their payloads. In queue mode the technician's
payloads are: 0 the hello commitment, 1 the hello (opened only after the
user's), 2 the AUTH record; the user's are 0 the hello, 1 the AUTH record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator

import pytest

from common.crypto.handshake import Hello
from common.errors import ConnectionLost, PairingError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest, PairingTimeouts
from common.net.queue_pairing import AttemptLink, pair_technician_queued, pair_user_queued
from common.net.relay_link import RelayLink
from common.protocol.codec import decode_as, encode
from tests.malicious_relay import MaliciousRelay, Script
from tests.pki import Org, make_org


TIMEOUT = 10.0
FAST = PairingTimeouts(hello=2.0, consent=2.0)
REQUEST_ID = bytes(range(16))


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


async def pair(
    script: Script, org: Org
) -> tuple[asyncio.Task[SecureChannel], asyncio.Task[SecureChannel], list[str], list[str]]:
    relay = MaliciousRelay(script)
    await relay.start()
    seen_by_user: list[str] = []
    seen_by_tech: list[str] = []

    async def consent(request: ConsentRequest) -> tuple[str, ...]:
        seen_by_user.append(request.sas)
        return ("view",)

    user_link = await RelayLink.open(relay.url)
    await user_link.register()
    tech_link = await RelayLink.open(relay.url)
    paired = await tech_link.claim(relay.nameplate)
    await user_link.wait_peer_joined()

    user_task = asyncio.create_task(
        pair_user_queued(
            AttemptLink(user_link), REQUEST_ID, paired.sid, org.trust, consent, timeouts=FAST
        )
    )
    tech_task = asyncio.create_task(
        pair_technician_queued(
            tech_link,
            REQUEST_ID,
            paired.sid,
            org.technician(),
            on_sas=seen_by_tech.append,
            timeouts=FAST,
        )
    )
    tasks = (user_task, tech_task)
    asyncio.get_running_loop().call_later(TIMEOUT, lambda: [t.cancel() for t in tasks])
    _relays.append(relay)
    return user_task, tech_task, seen_by_user, seen_by_tech


_relays: list[MaliciousRelay] = []


@pytest.fixture(autouse=True)
async def _stop_relays() -> AsyncIterator[None]:
    yield
    while _relays:
        await _relays.pop().stop()


async def test_an_honest_relay_pairs_in_queue_mode(org: Org) -> None:
    order: list[tuple[str, int]] = []

    def record(direction: str, index: int, payload: bytes) -> list[bytes]:
        order.append((direction, index))
        return [payload]

    user_task, tech_task, user_sas, tech_sas = await pair(record, org)
    user, tech = await user_task, await tech_task
    assert user.sas == tech.sas and user_sas == tech_sas == [user.sas]
    # The commitment went first, the user's hello next, the opening only after it.
    assert order.index(("t2u", 0)) < order.index(("u2t", 0)) < order.index(("t2u", 1))
    await tech.close("done")
    assert (await user.wait_closed()).clean


def another_nonce(payload: bytes) -> bytes:
    hello = decode_as(Hello, payload)
    return encode(dataclasses.replace(hello, nonce=os.urandom(16)))


async def test_a_relay_that_changes_the_opened_hello_is_caught(org: Org) -> None:
    """The grinding relay's only move left: open with another hello than it committed to."""
    user_task, tech_task, user_sas, _ = await pair(
        lambda d, i, p: [another_nonce(p)] if (d, i) == ("t2u", 1) else [p], org
    )
    with pytest.raises(PairingError, match="does not match its commitment"):
        await user_task
    with pytest.raises((PairingError, ConnectionLost)):
        await tech_task
    assert user_sas == []  # the user was never shown a number


async def test_a_relay_cannot_get_a_hello_before_the_commitment(org: Org) -> None:
    held: list[bytes] = []

    def hold_the_commitment(direction: str, index: int, payload: bytes) -> list[bytes]:
        # Without the commitment the user never sends its hello, and the
        # technician never sends its own before the user's.
        if (direction, index) == ("t2u", 0):
            held.append(payload)
            return []
        return [payload]

    user_task, tech_task, user_sas, _ = await pair(hold_the_commitment, org)
    with pytest.raises(PairingError, match="Timed out"):
        await user_task
    with pytest.raises((PairingError, ConnectionLost)):
        await tech_task
    assert held and user_sas == []
