"""A malicious relay attacks a real user and a real technician over real websockets.

Every attack must be detected, and end the pairing or the session with a
clear error on the side that sees it (security.md section 9).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import pytest
from spake2 import SPAKE2_A

from client.core.session import UserClient
from common.crypto.handshake import HandshakeRole, Hello
from common.errors import CodeError, ConnectionLost, IdentityError, PairingError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest, PairingDeclined, PairingTimeouts
from common.protocol import messages as m
from common.protocol.codec import decode_as, encode
from common.session import MessageReceived
from technician.core.session import TechnicianClient
from tests.malicious_relay import MaliciousRelay, Script
from tests.pki import Org, make_org


TIMEOUT = 10.0
FAST = PairingTimeouts(hello=3.0, consent=3.0)


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


async def allow_view(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


async def start_relay(script: Script) -> MaliciousRelay:
    relay = MaliciousRelay(script)
    await relay.start()
    return relay


async def pair(
    relay: MaliciousRelay, org: Org
) -> tuple[UserClient, asyncio.Task[SecureChannel], asyncio.Task[SecureChannel]]:
    user = UserClient(relay.url, org.trust, allow_view, timeouts=FAST)
    code = await user.request_help()
    tech = TechnicianClient(relay.url, org.technician(), timeouts=FAST)
    user_task = asyncio.create_task(user.wait_for_technician())
    tech_task = asyncio.create_task(tech.connect(code.display))
    return user, user_task, tech_task


async def test_honest_relay_pairs(org: Org) -> None:
    relay = await start_relay(lambda d, i, p: [p])
    try:
        async with asyncio.timeout(TIMEOUT):
            _, user_task, tech_task = await pair(relay, org)
            user, tech = await user_task, await tech_task
            assert user.sas == tech.sas
            tech.send_nowait(m.ChatText(1, "hello", 0))
            event = await user.next_event()
            assert isinstance(event, MessageReceived) and event.message == m.ChatText(1, "hello", 0)
            await tech.close("done")
            assert (await user.wait_closed()).clean
    finally:
        await relay.stop()


def flip_last_bit(payload: bytes) -> bytes:
    return payload[:-1] + bytes([payload[-1] ^ 1])


SESSION_ATTACKS: dict[str, tuple[Script, str]] = {
    "tamper": (
        lambda d, i, p: [flip_last_bit(p)] if (d, i) == ("t2u", 2) else [p],
        "failed authentication",
    ),
    "replay": (lambda d, i, p: [p, p] if (d, i) == ("t2u", 2) else [p], "replayed"),
    "drop": (lambda d, i, p: [] if (d, i) == ("t2u", 2) else [p], "missing"),
    "inject": (
        lambda d, i, p: [os.urandom(60), p] if (d, i) == ("t2u", 2) else [p],
        "Security check failed",
    ),
    "truncate": (lambda d, i, p: [p[:10]] if (d, i) == ("t2u", 2) else [p], "shorter"),
}


@pytest.mark.parametrize("attack", sorted(SESSION_ATTACKS))
async def test_session_attacks_are_detected(org: Org, attack: str) -> None:
    script, reason = SESSION_ATTACKS[attack]
    relay = await start_relay(script)
    try:
        async with asyncio.timeout(TIMEOUT):
            _, user_task, tech_task = await pair(relay, org)
            user, tech = await user_task, await tech_task
            tech.send_nowait(m.ChatText(1, "first", 0))
            tech.send_nowait(m.ChatText(2, "second", 0))
            ended = await user.wait_closed()
            assert not ended.clean and reason in ended.reason
            # The technician learns the session is over (the user drops the link).
            assert not (await tech.wait_closed()).clean
    finally:
        await relay.stop()


async def test_reordered_records_are_detected(org: Org) -> None:
    held: list[bytes] = []

    def reorder(direction: str, index: int, payload: bytes) -> list[bytes]:
        if direction == "t2u" and index == 2:
            held.append(payload)
            return []
        if direction == "t2u" and index == 3:
            return [payload, *held]
        return [payload]

    relay = await start_relay(reorder)
    try:
        async with asyncio.timeout(TIMEOUT):
            _, user_task, tech_task = await pair(relay, org)
            user, tech = await user_task, await tech_task
            tech.send_nowait(m.ChatText(1, "first", 0))
            tech.send_nowait(m.ChatText(2, "second", 0))
            ended = await user.wait_closed()
            assert "out of sequence" in ended.reason
            await tech.wait_closed()
    finally:
        await relay.stop()


def own_hello(sid: bytes) -> bytes:
    """The relay's own technician hello: its own SPAKE2 run with a guessed code."""
    guess = SPAKE2_A(b"000000", idA=b"RA1|" + sid + b"|tech", idB=b"RA1|" + sid + b"|user")
    return encode(
        Hello(
            "RA1",
            HandshakeRole.TECHNICIAN,
            guess.start(),
            os.urandom(32),
            ("chacha20poly1305",),
            os.urandom(16),
        )
    )


def swap_x25519(payload: bytes) -> bytes:
    hello = decode_as(Hello, payload)
    return encode(dataclasses.replace(hello, x25519=os.urandom(32)))


@pytest.mark.parametrize("attack", ["own-pake", "swap-x25519"])
async def test_key_substitution_fails_pairing_and_burns_the_code(org: Org, attack: str) -> None:
    relay: MaliciousRelay

    def substitute(direction: str, index: int, payload: bytes) -> list[bytes]:
        if (direction, index) == ("t2u", 0):
            return [own_hello(relay.sid) if attack == "own-pake" else swap_x25519(payload)]
        return [payload]

    relay = await start_relay(substitute)
    try:
        async with asyncio.timeout(TIMEOUT):
            user, user_task, tech_task = await pair(relay, org)
            with pytest.raises(PairingError, match="did not match"):
                await user_task
            with pytest.raises(PairingError):
                await tech_task
            assert user.code is not None and user.code.used
            # The relay cannot get a second try at the same code.
            with pytest.raises(CodeError, match="request help again"):
                await user.wait_for_technician()
            with pytest.raises(CodeError, match="already used"):
                user.code.consume(0.0)
    finally:
        await relay.stop()


async def test_technician_of_another_org_is_refused(org: Org) -> None:
    relay = await start_relay(lambda d, i, p: [p])
    try:
        async with asyncio.timeout(TIMEOUT):
            user = UserClient(relay.url, org.trust, allow_view, timeouts=FAST)
            code = await user.request_help()
            outsider = TechnicianClient(relay.url, make_org().technician(), timeouts=FAST)
            user_task = asyncio.create_task(user.wait_for_technician())
            tech_task = asyncio.create_task(outsider.connect(code.display))
            with pytest.raises(IdentityError):
                await user_task
            with pytest.raises(PairingError, match="closed before accepting"):
                await tech_task
    finally:
        await relay.stop()


async def test_declined_consent_is_reported_to_the_technician(org: Org) -> None:
    async def decline(request: ConsentRequest) -> None:
        return None

    relay = await start_relay(lambda d, i, p: [p])
    try:
        async with asyncio.timeout(TIMEOUT):
            user = UserClient(relay.url, org.trust, decline, timeouts=FAST)
            code = await user.request_help()
            tech = TechnicianClient(relay.url, org.technician(), timeouts=FAST)
            user_task = asyncio.create_task(user.wait_for_technician())
            tech_task = asyncio.create_task(tech.connect(code.display))
            with pytest.raises(PairingDeclined):
                await user_task
            with pytest.raises(PairingError, match="declined"):
                await tech_task
    finally:
        await relay.stop()


async def test_silent_relay_times_out_the_pairing(org: Org) -> None:
    relay = await start_relay(lambda d, i, p: [] if d == "t2u" else [p])
    try:
        async with asyncio.timeout(TIMEOUT):
            user = UserClient(relay.url, org.trust, allow_view, timeouts=PairingTimeouts(0.5, 0.5))
            code = await user.request_help()
            tech = TechnicianClient(relay.url, org.technician(), timeouts=PairingTimeouts(0.5, 0.5))
            user_task = asyncio.create_task(user.wait_for_technician())
            tech_task = asyncio.create_task(tech.connect(code.display))
            with pytest.raises(PairingError, match="Timed out"):
                await user_task
            with pytest.raises((PairingError, ConnectionLost)):
                await tech_task
    finally:
        await relay.stop()
