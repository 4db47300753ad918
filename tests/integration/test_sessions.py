"""Open sessions on both sides: grants enforced on the user's side, requests, chat, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from client.core.presence import PresenceState
from client.core.session import UserClient
from client.core.session_controller import (
    CapabilitiesAsked,
    ChatReceived as UserChat,
    PresenceChanged,
    SessionClosed as UserClosed,
    UserSessionController,
    UserSessionEvent,
)
from common.capability import Capability
from common.net.pairing import ConsentRequest
from common.net.session_events import EndReason
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from technician.core.session_controller import (
    ChatReceived as TechChat,
    GrantsChanged,
    SessionClosed as TechClosed,
    TechnicianSessionController,
    TechnicianSessionEvent,
)
from tests.pki import make_org


TIMEOUT = 10.0
VIEW, CONTROL = Capability.VIEW, Capability.CONTROL


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


Sessions = tuple[UserSessionController, Recorder, TechnicianSessionController, Recorder]


@pytest.fixture
async def sessions(relay_server: RelayServer) -> AsyncIterator[Sessions]:
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
    user_log, tech_log = Recorder(), Recorder()
    user_session = UserSessionController(user_ch, user_log)
    tech_session = TechnicianSessionController(tech_ch, tech_log)
    user_session.start()
    async with asyncio.timeout(TIMEOUT):
        # The controller announces the grants from the start.
        assert await tech_log.next(GrantsChanged) == GrantsChanged((VIEW,))
    yield user_session, user_log, tech_session, tech_log
    await user_session.stop()
    await tech_ch.close()


async def test_grants_revocation_and_pause_reach_the_technician(sessions: Sessions) -> None:
    user, user_log, tech, tech_log = sessions
    assert user.technician == "Jane Doe (ACME IT)"
    assert user.authority.allows(VIEW) and not user.authority.allows(CONTROL)
    async with asyncio.timeout(TIMEOUT):
        tech.request((VIEW, CONTROL))
        asked = await user_log.next(CapabilitiesAsked)
        assert isinstance(asked, CapabilitiesAsked)
        assert asked.capabilities == (CONTROL,) and asked.opened
        user.answer_request((CONTROL,))
        assert await tech_log.next(GrantsChanged) == GrantsChanged((VIEW, CONTROL))
        assert tech.granted == (VIEW, CONTROL)
        assert user.presence.state is PresenceState.CONTROLLED

        user.set_paused(True)
        assert not user.authority.allows(VIEW)
        assert await tech_log.next(GrantsChanged) == GrantsChanged(())
        user.set_paused(False)
        assert await tech_log.next(GrantsChanged) == GrantsChanged((VIEW, CONTROL))

        user.set_capability(CONTROL, False)
        assert not user.authority.allows(CONTROL)
        assert await tech_log.next(GrantsChanged) == GrantsChanged((VIEW,))
        presence = await user_log.next(PresenceChanged)
        assert isinstance(presence, PresenceChanged)


async def test_chat_both_ways_and_stop(sessions: Sessions) -> None:
    user, user_log, tech, tech_log = sessions
    async with asyncio.timeout(TIMEOUT):
        tech.send_chat("Hello, I can see your screen.")
        got = await user_log.next(UserChat)
        assert isinstance(got, UserChat) and got.text == "Hello, I can see your screen."
        user.send_chat("Thanks — é ß €")
        got_tech = await tech_log.next(TechChat)
        assert isinstance(got_tech, TechChat) and got_tech.text == "Thanks — é ß €"

        await user.stop()
        assert not user.authority.allows(VIEW)
        over = await tech_log.next(TechClosed)
        assert isinstance(over, TechClosed)
        assert (over.reason, over.by_peer) == (EndReason.USER_STOPPED, True)
        mine = await user_log.next(UserClosed)
        assert isinstance(mine, UserClosed)
        assert (mine.reason, mine.by_peer) == (EndReason.USER_STOPPED, False)
        assert user.presence.state is PresenceState.IDLE


async def test_requests_for_granted_capabilities_do_not_ask_again(sessions: Sessions) -> None:
    user, user_log, tech, _ = sessions
    async with asyncio.timeout(TIMEOUT):
        tech.request((VIEW,))
        tech.send_chat("marker")
        while True:  # the grant is announced again, but nobody is asked
            event = await user_log.events.get()
            assert not isinstance(event, CapabilitiesAsked)
            if isinstance(event, UserChat):
                assert event.text == "marker"
                break
    with pytest.raises(ValueError):
        tech.request(("root",))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        user.set_capability("root", True)  # type: ignore[arg-type]


async def test_stop_revokes_everything_before_the_session_closes(sessions: Sessions) -> None:
    user, _, _, tech_log = sessions
    async with asyncio.timeout(TIMEOUT):
        await user.stop()
        assert await tech_log.events.get() == GrantsChanged(())
        closed = await tech_log.next(TechClosed)
        assert isinstance(closed, TechClosed)
        assert (closed.reason, closed.by_peer) == (EndReason.USER_STOPPED, True)
