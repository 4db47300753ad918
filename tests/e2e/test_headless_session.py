"""End to end: the relay as a real process, both cores, every channel both ways."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator

import pytest

from bench.relay_process import RelayProcess
from client.core.session import UserClient, UserState
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.session import MessageReceived, SessionEnded, SessionEvent
from technician.core.session import TechnicianClient
from tests.pki import make_org


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def relay() -> Iterator[RelayProcess]:
    # The technicians here claim codes without an account.
    with RelayProcess("--code-claims", "anyone") as process:
        yield process
    assert process.proc is not None and process.proc.returncode == 0


def every_channel(side: str) -> list[m.AppMessage]:
    big = bytes(range(256)) * 4096  # 1 MiB: fragmented, flow controlled
    return [
        m.CapabilityRequest(("control",)) if side == "tech" else m.CapabilityGrant(("view",)),
        m.KeyEvent(0x20AC, True, 0) if side == "tech" else m.PointerMove(5, 6),
        m.ChatText(1, f"hello from the {side} — é ß €", 1),
        m.ClipboardText(f"clipboard of the {side}"),
        m.AuditEvent(1, 2, "test", side),
        m.ScreenFrame(
            1, True, 1024, 256, 0, (0, 0, 1024, 256, int(m.ScreenEncoding.RAW_BGRA), len(big)), big
        )
        if side == "user"
        else m.FrameAck(1),
        m.FileChunk(b"f" * 16, 0, big),
    ]


async def collect(
    next_event: Callable[[], Awaitable[SessionEvent]], count: int
) -> list[m.AppMessage]:
    got: list[m.AppMessage] = []
    while len(got) < count:
        event = await next_event()
        assert isinstance(event, MessageReceived), event
        got.append(event.message)
    return got


async def test_full_session_through_the_relay_process(relay: RelayProcess) -> None:
    org = make_org()
    consents: list[ConsentRequest] = []

    async def consent(request: ConsentRequest) -> tuple[str, ...]:
        consents.append(request)
        return ("view", "clipboard")

    user = UserClient(relay.url, org.trust, consent, device="e2e-laptop")
    tech = TechnicianClient(relay.url, org.technician("Jane Doe"))
    async with asyncio.timeout(30):
        code = await user.request_help()
        assert relay.healthz()["waiting_codes"] == 1
        sas_seen: list[str] = []
        user_channel, tech_channel = await asyncio.gather(
            user.wait_for_technician(),
            tech.connect(code.display, requested=("view", "clipboard"), on_sas=sas_seen.append),
        )
        assert user.state is UserState.CONNECTED
        assert consents[0].technician.name == "Jane Doe"
        assert consents[0].requested == ("view", "clipboard")
        assert user_channel.sas == tech_channel.sas == sas_seen[0] == consents[0].sas
        assert tech_channel.granted == ("view", "clipboard")
        assert relay.healthz()["active_pairs"] == 1

        from_tech, from_user = every_channel("tech"), every_channel("user")
        for msg in from_tech:
            await tech_channel.send(msg)
        for msg in from_user:
            await user_channel.send(msg)
        got_by_user = await collect(user_channel.next_event, len(from_tech))
        got_by_tech = await collect(tech_channel.next_event, len(from_user))

        def digest(msgs: list[m.AppMessage]) -> list[str]:
            return sorted(hashlib.sha256(repr(x).encode()).hexdigest() for x in msgs)

        assert digest(got_by_user) == digest(from_tech)
        assert digest(got_by_tech) == digest(from_user)
        assert {x.CHANNEL for x in got_by_user} == set(Channel)

        await user_channel.close("The user stopped the session.")
        ended = await tech_channel.wait_closed()
        assert ended == SessionEnded("The user stopped the session.", clean=True, by_peer=True)
        assert user.state is UserState.ENDED

    # The relay noticed both sides leave.
    for _ in range(50):
        if relay.healthz()["connections"] == 0:
            break
        await asyncio.sleep(0.05)
    assert relay.healthz() | {"status": "ok"} == {
        "status": "ok",
        "connections": 0,
        "waiting_codes": 0,
        "active_pairs": 0,
    }
