"""Pairing through the real relay: codes that are wrong, expired or reused."""

from __future__ import annotations

import asyncio

import pytest

from client.core.session import UserClient, UserState
from common.errors import CodeError, ConnectionLost, PairingError
from common.net.pairing import ConsentRequest, PairingDeclined, PairingTimeouts
from common.protocol import messages as m
from common.protocol.relay_wire import CloseCode
from common.session import MessageReceived
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.integration.conftest import RelayFactory
from tests.pki import Org, make_org


TIMEOUT = 10.0
FAST = PairingTimeouts(hello=3.0, consent=3.0)


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


async def test_pair_chat_and_close(relay_server: RelayServer, org: Org) -> None:
    user = UserClient(relay_server.url, org.trust, allow)
    tech = TechnicianClient(relay_server.url, org.technician())
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        user_ch, tech_ch = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display)
        )
        assert relay_server.counts().active_pairs == 1
        user_ch.send_nowait(m.ChatText(1, "my printer is on fire", 0))
        event = await tech_ch.next_event()
        assert isinstance(event, MessageReceived)
        assert event.message == m.ChatText(1, "my printer is on fire", 0)
        await user.cancel()
        assert (await tech_ch.wait_closed()).clean
        assert user.state is UserState.ENDED


async def test_wrong_code_fails_on_both_sides(relay_server: RelayServer, org: Org) -> None:
    user = UserClient(relay_server.url, org.trust, allow, timeouts=FAST)
    tech = TechnicianClient(relay_server.url, org.technician(), timeouts=FAST)
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        wrong = f"{code.nameplate}-{(int(code.secret) + 1) % 1_000_000:06d}"
        results = await asyncio.gather(
            user.wait_for_technician(), tech.connect(wrong), return_exceptions=True
        )
    assert isinstance(results[0], PairingError) and "did not match" in str(results[0])
    assert isinstance(results[1], PairingError)
    # The code is burned: no second attempt on the user's side.
    with pytest.raises(CodeError):
        await user.wait_for_technician()


async def test_second_claim_of_a_code_is_refused(relay_server: RelayServer, org: Org) -> None:
    user = UserClient(relay_server.url, org.trust, allow)
    first = TechnicianClient(relay_server.url, org.technician("First"))
    second = TechnicianClient(relay_server.url, org.technician("Second"))
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        user_ch, first_ch = await asyncio.gather(
            user.wait_for_technician(), first.connect(code.display)
        )
        with pytest.raises(ConnectionLost) as refused:
            await second.connect(code.display)
        assert refused.value.code == CloseCode.UNKNOWN_CODE or refused.value.code == (
            CloseCode.ALREADY_CLAIMED
        )
        # The first pair is unaffected.
        first_ch.send_nowait(m.ChatText(1, "still here", 0))
        event = await user_ch.next_event()
        assert isinstance(event, MessageReceived)
        await first_ch.close()
        await user_ch.wait_closed()


async def test_expired_code_is_refused_by_the_relay(relay_factory: RelayFactory, org: Org) -> None:
    relay = await relay_factory(code_ttl=0.3)
    user = UserClient(relay.url, org.trust, allow)
    tech = TechnicianClient(relay.url, org.technician())
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        assert code.lifetime == pytest.approx(0.3, abs=0.01) or code.lifetime <= 1
        with pytest.raises(CodeError, match="expired"):
            await user.wait_for_technician()
        with pytest.raises(ConnectionLost) as refused:
            await tech.connect(code.display)
    assert refused.value.code in (CloseCode.UNKNOWN_CODE, CloseCode.CODE_EXPIRED)
    assert "relay closed the connection" in refused.value.reason


async def test_expired_code_is_refused_by_the_user_side(
    relay_server: RelayServer, org: Org
) -> None:
    user = UserClient(relay_server.url, org.trust, allow, code_lifetime=0.2)
    async with asyncio.timeout(TIMEOUT):
        await user.request_help()
        with pytest.raises(CodeError, match="expired"):
            await user.wait_for_technician()
    assert user.state is UserState.ENDED


async def test_unknown_code(relay_server: RelayServer, org: Org) -> None:
    tech = TechnicianClient(relay_server.url, org.technician())
    with pytest.raises(ConnectionLost, match="relay closed the connection") as refused:
        async with asyncio.timeout(TIMEOUT):
            await tech.connect("999-000-000")
    assert refused.value.code == CloseCode.UNKNOWN_CODE


async def test_malformed_code_never_reaches_the_relay(relay_server: RelayServer, org: Org) -> None:
    tech = TechnicianClient(relay_server.url, org.technician())
    with pytest.raises(CodeError):
        await tech.connect("12-34")
    assert relay_server.counts().connections == 0


async def test_unreachable_relay_is_a_clear_error(org: Org) -> None:
    user = UserClient("ws://127.0.0.1:9/v1/peer", org.trust, allow)
    with pytest.raises(ConnectionLost, match="Cannot reach the relay"):
        async with asyncio.timeout(TIMEOUT):
            await user.request_help()


async def test_technician_leaving_withdraws_the_consent_question(
    relay_server: RelayServer, org: Org
) -> None:
    asked = asyncio.Event()
    withdrawn = asyncio.Event()

    async def never_answer(request: ConsentRequest) -> tuple[str, ...]:
        asked.set()
        try:
            await asyncio.Event().wait()
        finally:
            withdrawn.set()
        raise AssertionError("unreachable")

    user = UserClient(relay_server.url, org.trust, never_answer)
    tech = TechnicianClient(relay_server.url, org.technician())
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        user_task = asyncio.create_task(user.wait_for_technician())
        tech_task = asyncio.create_task(tech.connect(code.display))
        await asked.wait()
        tech_task.cancel()
        with pytest.raises(PairingError, match="left before you answered"):
            await user_task
        assert withdrawn.is_set()
        with pytest.raises(asyncio.CancelledError):
            await tech_task


async def test_unanswered_consent_is_declined(relay_server: RelayServer, org: Org) -> None:
    async def slow(request: ConsentRequest) -> tuple[str, ...]:
        await asyncio.sleep(30)
        return ("view",)

    user = UserClient(relay_server.url, org.trust, slow, timeouts=PairingTimeouts(3.0, 0.3))
    tech = TechnicianClient(relay_server.url, org.technician(), timeouts=FAST)
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        results = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display), return_exceptions=True
        )
    assert isinstance(results[0], PairingDeclined) and "in time" in str(results[0])
    assert isinstance(results[1], PairingError) and "did not answer in time" in str(results[1])
