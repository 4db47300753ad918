"""SecureChannel: runs a SecureSession over a relay link with asyncio, across drops.

Per link, a reader (link -> session) and a writer (session -> link, in
priority order); across links, a timer (heartbeats, acknowledgements,
rekeying, a silent peer, the resume deadline) and the main task, which
reconnects when the link drops. Events reach listeners in the loop thread
and an internal queue.

When the link drops (or the peer falls silent) and a reconnector was given,
the session is suspended (LinkLost), and the main task asks the
reconnector for a fresh link with jittered backoff until the session's
resume deadline; on the new link it runs the resume proof
(common.crypto.resume) and the session goes on (LinkRestored), re-sending
what the peer lacks. A refused resume, a wrong proof or the deadline end
the session (SessionEnded.cause says which).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from common.crypto.handshake import HandshakeRole
from common.crypto.resume import RANDOM_BYTES
from common.errors import ConnectionLost, InvalidState
from common.net.reconnect import Reconnector, ResumeRefused, ResumeTicket, TicketLink
from common.protocol.channels import CHANNEL_SPECS, Channel
from common.protocol.messages import AppMessage
from common.protocol.relay_wire import CloseCode, PeerRole
from common.session import (
    EndCause,
    LinkLost,
    SecureSession,
    SessionEnded,
    SessionEvent,
)


__all__ = ["Backoff", "PayloadLink", "SecureChannel"]

logger = logging.getLogger("deskhand.channel")

Listener = Callable[[SessionEvent], None]

_EARLY_EVENTS = 64
# Close codes after which the link is gone for good (the relay ended the pair).
_TERMINAL = frozenset(
    {
        CloseCode.NORMAL,
        CloseCode.PEER_LEFT,
        CloseCode.ACCOUNT_DISABLED,
        CloseCode.SESSION_TOO_LONG,
        CloseCode.BAD_MESSAGE,
        CloseCode.TOO_BIG,
        CloseCode.FORBIDDEN,
        CloseCode.UNAUTHORIZED,
    }
)


class PayloadLink(Protocol):
    async def send_payload(self, payload: bytes) -> None: ...
    async def recv_payload(self) -> bytes: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Backoff:
    """Jittered exponential backoff between reconnection attempts (first, x2, at most ``most``)."""

    def __init__(
        self,
        first: float = 0.1,
        most: float = 2.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._first, self._most, self._rand = first, most, rand
        self._next = first

    def reset(self) -> None:
        self._next = self._first

    def delay(self) -> float:
        base = self._next
        self._next = min(self._most, self._next * 2)
        return base * (0.5 + self._rand())  # "equal jitter" around the base


def _abort(link: PayloadLink) -> None:
    abort = getattr(link, "abort", None)
    if callable(abort):
        abort()


class SecureChannel:
    """An open, encrypted session with the other side.

    Args:
        link: the first link (from the pairing).
        session: the session after RA1.
        clock: the session clock (monotonic seconds).
        reconnector: returns a fresh link for a resume ticket; None: a dropped
            link ends the session (the old behaviour).
        entropy: random bytes for the resume nonces.
        sleep: how to wait between reconnection attempts (tests pass a fake).
        backoff: the retry schedule.
        resume_step_timeout: bound on each message of the resume proof.
        close_timeout: bound on closing a link (a stalled network).

    Attributes:
        sas: the verification number both sides show.
        granted, requested: capabilities at pairing time (what the user granted,
            what the technician asked for).
        technician: the verified technician (user side only, else None).
        device: what the user chose to tell about their device.
        ended: how the session ended, once it has.
        resumes: how many times the session resumed.
    """

    def __init__(
        self,
        link: PayloadLink,
        session: SecureSession,
        *,
        clock: Callable[[], float] = time.monotonic,
        bulk_backlog: int = 1 << 20,
        reconnector: Reconnector | None = None,
        entropy: Callable[[int], bytes] = os.urandom,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
        resume_step_timeout: float = 5.0,
        close_timeout: float = 0.25,
    ) -> None:
        self._link = link
        self._session = session
        self._clock = clock
        self._bulk_backlog = bulk_backlog
        self._reconnector = reconnector
        self._entropy = entropy
        self._sleep = sleep
        self._backoff = backoff or Backoff()
        self._step_timeout = resume_step_timeout
        self._close_timeout = close_timeout
        if reconnector is not None:
            session.enable_resume()
        self._listeners: list[Listener] = []
        # Events wait in a queue only for a consumer of next_event(). Until one
        # asks, keep just the latest few: apps that use listeners never read
        # the queue, and at video rates it would grow without end.
        self._queue: asyncio.Queue[SessionEvent] | None = None
        self._early: collections.deque[SessionEvent] = collections.deque(maxlen=_EARLY_EVENTS)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._closed = asyncio.Event()
        self._down = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self.sas = session.sas
        self.granted = session.granted
        self.requested = session.requested
        self.technician = session.technician
        self.device = session.device
        self.ended: SessionEnded | None = None

    def start(self) -> None:
        """Start the tasks (in the running loop)."""
        if self._tasks:
            raise InvalidState("channel already started")
        self._tasks = [
            asyncio.create_task(self._main(), name="deskhand-channel"),
            asyncio.create_task(self._timer(), name="deskhand-timer"),
        ]
        self._supervisor = asyncio.create_task(self._supervise(), name="deskhand-supervisor")

    @property
    def session(self) -> SecureSession:
        return self._session

    @property
    def resumes(self) -> int:
        return self._session.resumes

    @property
    def link_up(self) -> bool:
        """False while the link is down and the session waits to resume."""
        return not self._session.is_suspended

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling listener (no error if it was not registered)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_listener(self, listener: Listener) -> None:
        """Call listener(event) for every event, in the loop thread.

        A listener that raises is logged; the others still get the event.
        """
        self._listeners.append(listener)

    async def next_event(self) -> SessionEvent:
        """The next event (messages, LinkLost/LinkRestored, then exactly one SessionEnded).

        Events are kept for this from the first call on; before it, only the
        latest 64 are. Apps that use listeners never call it.
        """
        if self._queue is None:
            # From the first call on, every event is queued for this consumer.
            self._queue = asyncio.Queue()
            for early in self._early:
                self._queue.put_nowait(early)
            self._early.clear()
        return await self._queue.get()

    # --- sending ---

    def send_nowait(self, msg: AppMessage) -> None:
        """Queue a message now (interactive channels: input, control, chat).

        While the link is down the message waits and goes out after the resume
        (screen messages are dropped instead).
        """
        self._session.send(msg)
        self._wake.set()

    async def send(self, msg: AppMessage) -> None:
        """Queue a message; on bulk channels, wait while the backlog is large."""
        await self.wait_writable(msg.CHANNEL)
        self.send_nowait(msg)

    async def wait_writable(self, channel: Channel) -> None:
        """Wait while a bulk channel's backlog is large (returns at once for others).

        A producer that may be told to stop meanwhile checks again after this
        and before :meth:`send_nowait` (the screen feature does).
        """
        if CHANNEL_SPECS[channel].bulk:
            while (
                self._session.is_open and self._session.queued_bytes(channel) > self._bulk_backlog
            ):
                self._drained.clear()
                await self._drained.wait()

    def discard_unsent(self, channel: Channel) -> None:
        """Drop what is queued on ``channel`` and not on the wire yet (see SecureSession)."""
        self._session.discard_unsent(channel)
        self._drained.set()

    async def close(self, reason: str = "Session ended.", *, timeout: float = 1.0) -> None:
        """End the session with an authenticated CLOSE, then drop the link.

        Bounded: after ``timeout`` (a stalled network) the session ends
        locally anyway, and the link is dropped without waiting for it.
        While the link is down the session ends at once.
        """
        if self._session.is_open:
            self._session.close(reason)
            self._dispatch()
            self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._closed.wait()
        if not self._closed.is_set():
            # The link is stuck: give up on a clean close; it is still our end.
            self._session.abandon(reason)
            self._dispatch()
        if self._supervisor is not None:
            await self._supervisor

    async def wait_closed(self) -> SessionEnded:
        await self._closed.wait()
        assert self.ended is not None
        return self.ended

    # --- events ---

    def _dispatch(self) -> None:
        for event in self._session.events_received():
            if isinstance(event, SessionEnded):
                if self.ended is not None:
                    continue
                self.ended = event
            elif isinstance(event, LinkLost):
                self._down.set()
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    # One broken listener must not starve the others (or the session).
                    logger.exception("session listener failed on %s", type(event).__name__)
            if self._queue is not None:
                self._queue.put_nowait(event)
            else:
                self._early.append(event)
            if isinstance(event, SessionEnded):
                self._closed.set()
                self._drained.set()
                self._wake.set()
                self._down.set()

    def _lost(self, exc: ConnectionLost) -> None:
        """The link failed under the reader or the writer."""
        if self._down.is_set():
            return
        if exc.code in _TERMINAL:
            self._session.end_link(
                f"The connection was lost: {exc.reason}".rstrip("."), EndCause.LINK_LOST
            )
        else:
            self._session.link_lost(self._clock())
        self._dispatch()
        self._down.set()

    # --- tasks ---

    async def _main(self) -> None:
        link = self._link
        while True:
            await self._pump(link)
            if self._session.is_closed or self._reconnector is None:
                return
            await self._drop(link, CloseCode.RECONNECTING)
            resumed = await self._reconnect()
            if resumed is None:
                return
            link = self._link = resumed

    async def _pump(self, link: PayloadLink) -> None:
        """Run one link until it drops or the session ends."""
        self._down.clear()
        if self._reconnector is not None and isinstance(link, TicketLink):
            try:
                async with asyncio.timeout(self._step_timeout):
                    await link.offer_resume(*self._ticket_fields())
            except (ConnectionLost, TimeoutError) as exc:
                self._lost(exc if isinstance(exc, ConnectionLost) else ConnectionLost("timeout"))
                return
        tasks = [
            asyncio.create_task(self._reader(link), name="deskhand-reader"),
            asyncio.create_task(self._writer(link), name="deskhand-writer"),
        ]
        try:
            await self._down.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _ticket_fields(self) -> tuple[bytes, bytes, PeerRole]:
        current, previous = self._session.resume_ids()
        role = PeerRole.USER if self._session.role is HandshakeRole.USER else PeerRole.TECHNICIAN
        return current, previous, role

    async def _reconnect(self) -> PayloadLink | None:
        """Get a resumed link, or None when the session ended (deadline, refusal, close)."""
        self._backoff.reset()
        session = self._session
        reconnector = self._reconnector
        assert reconnector is not None
        while session.is_suspended:
            remaining = session.resume_deadline - self._clock()
            if remaining <= 0:
                session.tick(self._clock())
                self._dispatch()
                return None
            link: PayloadLink | None = None
            try:
                async with asyncio.timeout(remaining):
                    link = await reconnector(ResumeTicket(*self._ticket_fields()))
            except ResumeRefused as exc:
                if exc.code == CloseCode.RESUME_EXPIRED:  # the relay's grace period ran out
                    session.end_link(
                        "The connection could not be restored in time.", EndCause.LINK_LOST
                    )
                else:
                    session.end_link(
                        f"The relay did not resume the session: {exc.reason}".rstrip("."),
                        EndCause.RESUME_REFUSED,
                    )
                self._dispatch()
                return None
            except (ConnectionLost, TimeoutError, OSError) as exc:
                logger.info("reconnect failed: %s", getattr(exc, "reason", type(exc).__name__))
            if link is not None:
                if await self._prove(link):
                    return link
                await self._drop(link, CloseCode.RECONNECTING)
                if session.is_closed:
                    return None
            if session.is_suspended:
                delay = min(
                    self._backoff.delay(), max(0.0, session.resume_deadline - self._clock())
                )
                await self._sleep(delay)
        return None

    async def _prove(self, link: PayloadLink) -> bool:
        """The resume proof on a fresh link; True when the session is open again."""
        session = self._session
        try:
            offer = session.begin_resume(self._entropy(RANDOM_BYTES))
            async with asyncio.timeout(self._step_timeout):
                await link.send_payload(offer)
                proof = session.resume_offer(await link.recv_payload())
                if proof is None:
                    self._dispatch()
                    return False
                await link.send_payload(proof)
                peer_proof = await link.recv_payload()
        except (ConnectionLost, TimeoutError) as exc:
            logger.info("resume proof failed: %s", getattr(exc, "reason", "timed out"))
            session.link_lost(self._clock())  # back to suspended; try again
            return False
        ok = session.resume_proof(peer_proof, self._clock())
        self._dispatch()
        self._wake.set()
        return ok

    async def _drop(self, link: PayloadLink, code: int) -> None:
        """Close a link without ever waiting long for a stalled network."""
        with contextlib.suppress(ConnectionLost, TimeoutError, OSError):
            async with asyncio.timeout(self._close_timeout):
                await link.close(code, "reconnecting" if code == CloseCode.RECONNECTING else "")
                return
        _abort(link)

    async def _reader(self, link: PayloadLink) -> None:
        session = self._session
        while not session.is_closed:
            try:
                payload = await link.recv_payload()
            except ConnectionLost as exc:
                self._lost(exc)
                return
            session.receive_record(payload, self._clock())
            self._dispatch()
            self._wake.set()

    async def _writer(self, link: PayloadLink) -> None:
        session = self._session
        while True:
            record = session.next_record(self._clock())
            if record is None:
                self._dispatch()
                if session.is_closed or session.is_suspended:
                    return
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await link.send_payload(record)
            except ConnectionLost as exc:
                self._lost(exc)
                return
            self._dispatch()

    async def _timer(self) -> None:
        while not self._session.is_closed:
            delay = self._session.next_deadline() - self._clock()
            await asyncio.sleep(max(0.0, min(delay, 1.0)))
            self._session.tick(self._clock())
            self._dispatch()
            self._wake.set()

    async def _supervise(self) -> None:
        # Once the session has ended (our CLOSE is on the wire by then, or the
        # peer's arrived, or a check failed), stop the tasks and drop the link.
        await self._closed.wait()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ended = self.ended
        code = 1000 if ended is None or ended.clean else 4000
        await self._drop(self._link, code)
