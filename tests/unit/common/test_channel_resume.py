"""SecureChannel across dropped links, over in-memory links (no network, bounded waits)."""

from __future__ import annotations

import asyncio

from common.errors import ConnectionLost
from common.net.channel import Backoff, SecureChannel
from common.net.reconnect import ResumeRefused, ResumeTicket
from common.protocol import messages as m
from common.session import (
    EndCause,
    LinkLost,
    LinkRestored,
    MessageReceived,
    SessionEvent,
    SessionLimits,
)
from tests.unit.common.test_resume import open_pair


T = 5.0
_CLOSED = b""


class MemoryLink:
    """One end of an in-memory pipe; closing either end fails the other's reads."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self._in, self._out = inbox, outbox
        self.closed = False
        self.stalled = False

    async def send_payload(self, payload: bytes) -> None:
        if self.stalled:
            await asyncio.Event().wait()  # a stalled network: never returns
        if self.closed:
            raise ConnectionLost("closed")
        self._out.put_nowait(payload)

    async def recv_payload(self) -> bytes:
        if self.closed:
            raise ConnectionLost("closed")
        data = await self._in.get()
        if data == _CLOSED:
            self.closed = True
            raise ConnectionLost("the link dropped")
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.kill()

    def kill(self) -> None:
        if not self.closed:
            self.closed = True
            self._out.put_nowait(_CLOSED)
            self._in.put_nowait(_CLOSED)


def pipe() -> tuple[MemoryLink, MemoryLink]:
    a: asyncio.Queue[bytes] = asyncio.Queue()
    b: asyncio.Queue[bytes] = asyncio.Queue()
    return MemoryLink(a, b), MemoryLink(b, a)


class Hub:
    """A fake relay for reconnectors: joins the two sides that ask for the same id."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, asyncio.Future[MemoryLink]] = {}
        self.failures = 0
        self.refuse = False
        self.attempts = 0

    async def reconnect(self, ticket: ResumeTicket) -> MemoryLink:
        self.attempts += 1
        if self.refuse:
            raise ResumeRefused("no session to resume under this ticket", 4028)
        if self.failures:
            self.failures -= 1
            raise ConnectionLost("Cannot reach the relay")
        waiting = self.waiting.pop(ticket.resume_id, None)
        if waiting is None:
            future: asyncio.Future[MemoryLink] = asyncio.get_running_loop().create_future()
            self.waiting[ticket.resume_id] = future
            return await future
        mine, theirs = pipe()
        waiting.set_result(theirs)
        return mine


class Log:
    def __init__(self, channel: SecureChannel) -> None:
        self.events: list[SessionEvent] = []
        self.changed = asyncio.Event()
        channel.add_listener(self.on_event)

    def on_event(self, event: SessionEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def chats(self) -> list[int]:
        return [
            e.message.msg_id
            for e in self.events
            if isinstance(e, MessageReceived) and isinstance(e.message, m.ChatText)
        ]

    async def until(self, check: object) -> None:
        async with asyncio.timeout(T):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


def channels(
    hub: Hub, limits: SessionLimits | None = None
) -> tuple[SecureChannel, SecureChannel, MemoryLink, MemoryLink]:
    loop = asyncio.get_running_loop()
    tech_s, user_s = open_pair(limits or SessionLimits(resume_grace=5.0))
    for session in (tech_s, user_s):
        session._last_sent = session._last_received = session._key_since = loop.time()
    a, b = pipe()
    fast = Backoff(first=0.01, most=0.05)
    tech = SecureChannel(a, tech_s, clock=loop.time, reconnector=hub.reconnect, backoff=fast)
    user = SecureChannel(
        b, user_s, clock=loop.time, reconnector=hub.reconnect, backoff=Backoff(0.01, 0.05)
    )
    tech.start()
    user.start()
    return tech, user, a, b


async def test_both_sides_resume_and_nothing_is_lost() -> None:
    hub = Hub()
    hub.failures = 3  # the relay is not there at first
    tech, user, a, _ = channels(hub)
    tech_log, user_log = Log(tech), Log(user)
    tech.send_nowait(m.ChatText(0, "before", 0))
    await user_log.until(lambda: user_log.chats() == [0])
    a.kill()
    for i in range(1, 20):
        tech.send_nowait(m.ChatText(i, "during", 0))
    await user_log.until(lambda: len(user_log.chats()) == 20)
    assert user_log.chats() == list(range(20))
    assert [type(e) for e in user_log.events if not isinstance(e, MessageReceived)] == [
        LinkLost,
        LinkRestored,
    ]
    await tech_log.until(lambda: any(isinstance(e, LinkRestored) for e in tech_log.events))
    assert hub.attempts >= 5
    await asyncio.gather(tech.close(), user.close())


async def test_the_deadline_ends_with_link_lost_after_bounded_attempts() -> None:
    hub = Hub()
    hub.failures = 10_000
    tech, user, a, _ = channels(hub, SessionLimits(resume_grace=0.3))
    a.kill()
    async with asyncio.timeout(T):
        ended = await tech.wait_closed()
        await user.wait_closed()
    assert ended.cause is EndCause.LINK_LOST
    assert hub.attempts < 100


async def test_a_refused_resume_ends_with_resume_refused() -> None:
    hub = Hub()
    hub.refuse = True
    tech, user, a, _ = channels(hub)
    a.kill()
    async with asyncio.timeout(T):
        ended = await tech.wait_closed()
        await user.wait_closed()
    assert ended.cause is EndCause.RESUME_REFUSED
    assert "no session to resume" in ended.reason


async def test_a_listener_that_raises_does_not_starve_the_others() -> None:
    hub = Hub()
    tech, user, _, _ = channels(hub)

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("bug in a feature")

    user.add_listener(broken)
    log = Log(user)
    tech.send_nowait(m.ChatText(1, "hi", 0))
    await log.until(lambda: log.chats() == [1])
    assert user.ended is None
    await asyncio.gather(tech.close(), user.close())


async def test_close_is_bounded_when_the_network_is_stalled() -> None:
    hub = Hub()
    tech, user, _, b = channels(hub)
    b.stalled = True
    for i in range(10):
        user.send_nowait(m.ChatText(i, "x", 0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await user.close("The user stopped the session.", timeout=0.2)
    assert loop.time() - start < 1.0
    assert user.ended is not None and user.ended.cause is EndCause.CLOSED
    await tech.close(timeout=0.2)


async def test_close_while_the_link_is_down_ends_at_once() -> None:
    hub = Hub()
    hub.failures = 10_000
    tech, user, a, _ = channels(hub)
    log = Log(user)
    a.kill()
    await log.until(lambda: any(isinstance(e, LinkLost) for e in log.events))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await user.close("The user stopped the session.")
    assert loop.time() - start < 0.5
    assert user.ended is not None and user.ended.cause is EndCause.CLOSED
    await tech.close()
