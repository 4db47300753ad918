"""Resume after a dropped link, through real relays on 127.0.0.1.

A killed TCP connection, a relay process killed and restarted, and a
grace period that runs out. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.relay_process import RelayProcess
from client.core.session import UserClient
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.net.relay_link import RelayLink
from common.protocol import messages as m
from common.session import (
    EndCause,
    LinkLost,
    LinkRestored,
    MessageReceived,
    SessionEvent,
    SessionLimits,
)
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.integration.conftest import RelayFactory
from tests.pki import make_org


T = 10.0


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


class Recorder:
    """Every event of one channel, in order."""

    def __init__(self, channel: SecureChannel) -> None:
        self.events: list[SessionEvent] = []
        self.changed = asyncio.Event()
        channel.add_listener(self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def chats(self) -> list[int]:
        return [
            e.message.msg_id
            for e in self.events
            if isinstance(e, MessageReceived) and isinstance(e.message, m.ChatText)
        ]

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.events)

    async def until(self, check: object, timeout: float = T) -> None:
        async with asyncio.timeout(timeout):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def pair(
    url: str, limits: SessionLimits | None = None
) -> tuple[SecureChannel, SecureChannel]:
    org = make_org()
    user = UserClient(url, org.trust, allow, limits=limits)
    tech = TechnicianClient(url, org.technician(), limits=limits)
    async with asyncio.timeout(T):
        code = await user.request_help()
        return await asyncio.gather(user.wait_for_technician(), tech.connect(code.display))


def kill_tcp(channel: SecureChannel) -> None:
    link = channel._link
    assert isinstance(link, RelayLink)
    link.abort()


@pytest.fixture
async def channels(relay_server: RelayServer) -> AsyncIterator[tuple[SecureChannel, SecureChannel]]:
    user_ch, tech_ch = await pair(relay_server.url)
    yield user_ch, tech_ch
    await asyncio.gather(user_ch.close(), tech_ch.close())


async def test_a_killed_connection_resumes_and_chat_arrives_once_in_order(
    channels: tuple[SecureChannel, SecureChannel],
) -> None:
    user_ch, tech_ch = channels
    user_log, tech_log = Recorder(user_ch), Recorder(tech_ch)
    for i in range(5):
        tech_ch.send_nowait(m.ChatText(i, "before", 0))
    await user_log.until(lambda: len(user_log.chats()) == 5)
    kill_tcp(user_ch)
    # Sent while the user's link is down (or about to be).
    for i in range(5, 30):
        tech_ch.send_nowait(m.ChatText(i, "during", 0))
        user_ch.send_nowait(m.ChatText(100 + i, "during", 0))
        await asyncio.sleep(0.002)
    await user_log.until(lambda: user_log.count(LinkRestored) == 1)
    await tech_log.until(lambda: tech_log.count(LinkRestored) == 1)
    await user_log.until(lambda: len(user_log.chats()) == 30)
    await tech_log.until(lambda: len(tech_log.chats()) == 25)
    assert user_log.chats() == list(range(30))
    assert tech_log.chats() == [100 + i for i in range(5, 30)]
    assert user_log.count(LinkLost) == 1 and tech_log.count(LinkLost) == 1
    assert user_ch.ended is None and tech_ch.ended is None
    # And the session goes on, and can drop again.
    kill_tcp(tech_ch)
    tech_ch.send_nowait(m.ChatText(30, "again", 0))
    await user_log.until(lambda: user_log.chats()[-1:] == [30])
    assert user_ch.resumes == 2 and tech_ch.resumes == 2


async def test_a_wrong_ticket_is_refused_by_the_relay(relay_server: RelayServer) -> None:
    from common.errors import ConnectionLost
    from common.net.reconnect import RelayReconnector, ResumeRefused, ResumeTicket
    from common.protocol.relay_wire import CloseCode, PeerRole

    # Past the fresh-route window nothing unknown is accepted.
    relay_server.relay.resumes.table.started_at -= 1000
    reconnect = RelayReconnector(relay_server.url)
    with pytest.raises(ResumeRefused) as refused:
        async with asyncio.timeout(T):
            await reconnect(ResumeTicket(b"x" * 32, b"", PeerRole.USER))
    assert isinstance(refused.value, ConnectionLost)
    assert refused.value.code == CloseCode.UNKNOWN_RESUME


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_a_relay_restart_inside_the_grace_period_is_survived() -> None:
    port = free_port()
    env = {"DESKHAND_RELAY_CODE_CLAIMS": "anyone"}
    relay = RelayProcess(port=port, env=env).start()
    try:
        user_ch, tech_ch = await pair(relay.url)
        user_log, tech_log = Recorder(user_ch), Recorder(tech_ch)
        tech_ch.send_nowait(m.ChatText(0, "before", 0))
        await user_log.until(lambda: user_log.chats() == [0])
        assert relay.proc is not None
        relay.proc.kill()  # a crash, not a clean shutdown
        relay.stop()
        await user_log.until(lambda: user_log.count(LinkLost) == 1)
        for i in range(1, 11):
            tech_ch.send_nowait(m.ChatText(i, "during", 0))
        relay = RelayProcess(port=port, env=env).start()
        await user_log.until(lambda: user_log.count(LinkRestored) == 1, timeout=20)
        await tech_log.until(lambda: tech_log.count(LinkRestored) == 1, timeout=20)
        await user_log.until(lambda: len(user_log.chats()) == 11)
        assert user_log.chats() == list(range(11))
        await asyncio.gather(user_ch.close(), tech_ch.close())
        assert user_ch.ended is not None and user_ch.ended.cause is EndCause.CLOSED
    finally:
        relay.stop()


async def test_when_the_grace_period_runs_out_both_end_with_link_lost(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(resume_grace=1.0)
    limits = SessionLimits(resume_grace=1.5)
    user_ch, tech_ch = await pair(server.url, limits)
    # The relay goes away for good.
    await server.close()
    async with asyncio.timeout(T):
        user_end, tech_end = await asyncio.gather(user_ch.wait_closed(), tech_ch.wait_closed())
    assert user_end.cause is EndCause.LINK_LOST and tech_end.cause is EndCause.LINK_LOST
    assert not user_end.clean and "in time" in user_end.reason


async def test_a_signed_in_technician_resumes_with_its_token_and_others_cannot(
    relay_factory: RelayFactory,
) -> None:
    from common.net.reconnect import RelayReconnector, ResumeRefused, ResumeTicket
    from common.protocol.relay_wire import CloseCode, PeerRole
    from tests.integration.relay_helpers import PASSWORD, create_account, login

    server = await relay_factory(code_claims="login")
    await create_account(server, "jane")
    await create_account(server, "mallory")
    org = make_org()
    user = UserClient(server.url, org.trust, allow)
    tech = TechnicianClient(server.url, org.technician())
    async with asyncio.timeout(T):
        await tech.login("jane", PASSWORD)
        code = await user.request_help()
        user_ch, tech_ch = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display)
        )
    user_log, tech_log = Recorder(user_ch), Recorder(tech_ch)
    tech_ch.send_nowait(m.ChatText(0, "hello", 0))
    await user_log.until(lambda: user_log.chats() == [0])
    ids = tech_ch.session.resume_ids()
    other = await login(server.url, "mallory")
    # Hold the technician back until the others have tried its ticket.
    real = tech_ch._reconnector
    assert real is not None
    go = asyncio.Event()

    async def held(ticket: ResumeTicket) -> Any:
        await go.wait()
        return await real(ticket)

    tech_ch._reconnector = held
    kill_tcp(tech_ch)
    await user_log.until(lambda: user_log.count(LinkLost) == 1)
    # Without a token, or signed in as another account, the resume is refused.
    for token, refusal in ((None, CloseCode.UNAUTHORIZED), (other.token, CloseCode.FORBIDDEN)):
        reconnect = RelayReconnector(server.url, token=lambda t=token: t)  # type: ignore[misc]
        with pytest.raises(ResumeRefused) as refused:
            async with asyncio.timeout(T):
                await reconnect(ResumeTicket(ids[0], ids[1], PeerRole.TECHNICIAN))
        assert refused.value.code == refusal
    go.set()
    await user_log.until(lambda: user_log.count(LinkRestored) == 1)
    await tech_log.until(lambda: tech_log.count(LinkRestored) == 1)
    tech_ch.send_nowait(m.ChatText(1, "back", 0))
    await user_log.until(lambda: user_log.chats() == [0, 1])
    await asyncio.gather(user_ch.close(), tech_ch.close())


async def test_a_session_from_the_queue_resumes_after_both_links_drop(
    relay_factory: RelayFactory,
) -> None:
    from client.core.session import HelpRequest
    from tests.integration.relay_helpers import PASSWORD, create_account

    server = await relay_factory(code_claims="login")
    await create_account(server, "jane")
    org = make_org()
    user = UserClient(server.url, org.trust, allow)
    tech = TechnicianClient(server.url, org.technician())
    async with asyncio.timeout(T):
        await tech.login("jane", PASSWORD)
        await user.post_request(HelpRequest("Bob", "printer on fire"))
        queue = await tech.watch_queue()
        await queue.wait_synced()
        waiting = asyncio.create_task(user.wait_for_technician())
        tech_ch = await tech.claim(queue.items[0].request_id)
        user_ch = await waiting
        await queue.close()
    user_log, tech_log = Recorder(user_ch), Recorder(tech_ch)
    user_ch.send_nowait(m.ChatText(0, "hello", 0))
    await tech_log.until(lambda: tech_log.chats() == [0])
    kill_tcp(user_ch)
    kill_tcp(tech_ch)
    user_ch.send_nowait(m.ChatText(1, "during", 0))
    await user_log.until(lambda: user_log.count(LinkRestored) == 1)
    await tech_log.until(lambda: tech_log.chats() == [0, 1])
    await asyncio.gather(user_ch.close(), tech_ch.close())
    assert server.relay.hub.queue.counts() == (0, 0)


async def test_a_shorter_grace_at_the_relay_also_ends_with_link_lost(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(resume_grace=0.5)
    user_ch, tech_ch = await pair(server.url)  # the clients would wait 120 s
    hold = asyncio.Event()
    real = tech_ch._reconnector
    assert real is not None

    async def never(ticket: object) -> Any:
        await hold.wait()

    tech_ch._reconnector = never  # the technician never comes back
    kill_tcp(tech_ch)
    async with asyncio.timeout(T):
        ended = await user_ch.wait_closed()
    assert ended.cause is EndCause.LINK_LOST and "in time" in ended.reason
    await tech_ch.close()
