"""Open sessions on both sides: grants enforced on the user's side, requests, chat, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from client.core.presence import PresenceState
from client.core.session import UserClient
from client.core.user_session import (
    CapabilitiesAsked,
    ChatReceived as UserChat,
    PresenceChanged,
    SessionOver as UserOver,
    UserSession,
    UserSessionEvent,
)
from common.net.pairing import ConsentRequest
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from technician.core.technician_session import (
    ChatReceived as TechChat,
    GrantChanged,
    SessionOver as TechOver,
    TechnicianSession,
    TechnicianSessionEvent,
)
from tests.pki import make_org


TIMEOUT = 10.0


class Recorder:
    def __init__(self) -> None:
        self.events: asyncio.Queue[object] = asyncio.Queue()

    def __call__(self, event: UserSessionEvent | TechnicianSessionEvent) -> None:
        self.events.put_nowait(event)

    async def next(self, kind: type) -> object:
        while True:
            event = await self.events.get()
            if isinstance(event, kind):
                return event


@pytest.fixture
async def sessions(
    relay_server: RelayServer,
) -> AsyncIterator[tuple[UserSession, Recorder, TechnicianSession, Recorder]]:
    org = make_org()

    async def allow(request: ConsentRequest) -> tuple[str, ...]:
        return ("view",)

    user = UserClient(relay_server.url, org.trust, allow)
    tech = TechnicianClient(relay_server.url, org.technician("Jane Doe"))
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        user_ch, tech_ch = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display, requested=("view",))
        )
    user_session, tech_session = UserSession(user_ch), TechnicianSession(tech_ch)
    user_log, tech_log = Recorder(), Recorder()
    user_session.add_listener(user_log)
    tech_session.add_listener(tech_log)
    yield user_session, user_log, tech_session, tech_log
    await user_ch.close()
    await tech_ch.close()


async def test_grants_revocation_and_pause_reach_the_technician(
    sessions: tuple[UserSession, Recorder, TechnicianSession, Recorder],
) -> None:
    user, user_log, tech, tech_log = sessions
    assert user.technician == "Jane Doe (ACME IT)"
    assert user.allows("view") and not user.allows("control")
    async with asyncio.timeout(TIMEOUT):
        tech.request(("view", "control"))
        asked = await user_log.next(CapabilitiesAsked)
        assert asked == CapabilitiesAsked(("control",))
        user.grant(("control",))
        assert await tech_log.next(GrantChanged) == GrantChanged(("view", "control"))
        assert user.presence.state is PresenceState.CONTROLLED

        user.set_paused(True)
        assert not user.allows("view")
        assert await tech_log.next(GrantChanged) == GrantChanged(())
        user.set_paused(False)
        assert await tech_log.next(GrantChanged) == GrantChanged(("view", "control"))

        user.set_capability("control", False)
        assert not user.allows("control")
        assert await tech_log.next(GrantChanged) == GrantChanged(("view",))
        presence = await user_log.next(PresenceChanged)
        assert isinstance(presence, PresenceChanged)


async def test_chat_both_ways_and_stop(
    sessions: tuple[UserSession, Recorder, TechnicianSession, Recorder],
) -> None:
    user, user_log, tech, tech_log = sessions
    async with asyncio.timeout(TIMEOUT):
        tech.send_chat("Hello, I can see your screen.")
        got = await user_log.next(UserChat)
        assert isinstance(got, UserChat) and got.text == "Hello, I can see your screen."
        user.send_chat("Thanks — é ß €")
        got_tech = await tech_log.next(TechChat)
        assert isinstance(got_tech, TechChat) and got_tech.text == "Thanks — é ß €"

        await user.stop()
        assert not user.allows("view")
        over = await tech_log.next(TechOver)
        assert over == TechOver("The user stopped the session.", True)
        assert await user_log.next(UserOver) == UserOver("The user stopped the session.", True)
        assert user.presence.state is PresenceState.IDLE


async def test_requests_for_granted_capabilities_do_not_ask_again(
    sessions: tuple[UserSession, Recorder, TechnicianSession, Recorder],
) -> None:
    user, user_log, tech, _ = sessions
    async with asyncio.timeout(TIMEOUT):
        tech.request(("view",))
        tech.send_chat("marker")
        event = await user_log.events.get()
        assert isinstance(event, UserChat) and event.text == "marker"
    with pytest.raises(ValueError):
        tech.request(("root",))
    with pytest.raises(ValueError):
        user.set_capability("root", True)


async def test_stop_revokes_everything_before_the_session_closes(
    sessions: tuple[UserSession, Recorder, TechnicianSession, Recorder],
) -> None:
    user, _, _, tech_log = sessions
    async with asyncio.timeout(TIMEOUT):
        await user.stop()
        assert await tech_log.events.get() == GrantChanged(())
        assert await tech_log.next(TechOver) == TechOver("The user stopped the session.", True)
