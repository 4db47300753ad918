"""SecureChannel: runs a SecureSession over a relay link with asyncio.

Three tasks per channel: a reader (link -> session), a writer (session ->
link, in priority order) and a timer (heartbeats, rekeying, silent peers).
Events reach listeners in the loop thread and an internal queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from common.errors import ConnectionLost, InvalidState
from common.protocol.channels import CHANNEL_SPECS
from common.protocol.messages import AppMessage
from common.session import SecureSession, SessionEnded, SessionEvent


__all__ = ["PayloadLink", "SecureChannel"]

Listener = Callable[[SessionEvent], None]

_EARLY_EVENTS = 64


class PayloadLink(Protocol):
    async def send_payload(self, payload: bytes) -> None: ...
    async def recv_payload(self) -> bytes: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class SecureChannel:
    """An open, encrypted session with the other side.

    Attributes:
        sas: the verification number both sides show.
        granted, requested: capabilities at pairing time (what the user granted,
            what the technician asked for).
        technician: the verified technician (user side only, else None).
        device: what the user chose to tell about their device.
        ended: how the session ended, once it has.
    """

    def __init__(
        self,
        link: PayloadLink,
        session: SecureSession,
        *,
        clock: Callable[[], float] = time.monotonic,
        bulk_backlog: int = 1 << 20,
    ) -> None:
        self._link = link
        self._session = session
        self._clock = clock
        self._bulk_backlog = bulk_backlog
        self._listeners: list[Listener] = []
        # Events wait in a queue only for a consumer of next_event(). Until one
        # asks, keep just the latest few: apps that use listeners never read
        # the queue, and at video rates it would grow without end.
        self._queue: asyncio.Queue[SessionEvent] | None = None
        self._early: collections.deque[SessionEvent] = collections.deque(maxlen=_EARLY_EVENTS)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self.sas = session.sas
        self.granted = session.granted
        self.requested = session.requested
        self.technician = session.technician
        self.device = session.device
        self.ended: SessionEnded | None = None

    def start(self) -> None:
        """Start the reader, writer and timer tasks (in the running loop)."""
        if self._tasks:
            raise InvalidState("channel already started")
        self._tasks = [
            asyncio.create_task(self._reader(), name="deskhand-reader"),
            asyncio.create_task(self._writer(), name="deskhand-writer"),
            asyncio.create_task(self._timer(), name="deskhand-timer"),
        ]
        self._supervisor = asyncio.create_task(self._supervise(), name="deskhand-supervisor")

    @property
    def session(self) -> SecureSession:
        return self._session

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling listener (no error if it was not registered)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_listener(self, listener: Listener) -> None:
        """Call listener(event) for every event, in the loop thread."""
        self._listeners.append(listener)

    async def next_event(self) -> SessionEvent:
        """The next event (messages, then exactly one SessionEnded).

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
        """Queue a message now (interactive channels: input, control, chat)."""
        self._session.send(msg)
        self._wake.set()

    async def send(self, msg: AppMessage) -> None:
        """Queue a message; on bulk channels, wait while the backlog is large."""
        if CHANNEL_SPECS[msg.CHANNEL].bulk:
            while (
                self._session.is_open
                and self._session.queued_bytes(msg.CHANNEL) > self._bulk_backlog
            ):
                self._drained.clear()
                await self._drained.wait()
        self.send_nowait(msg)

    async def close(self, reason: str = "Session ended.", *, timeout: float = 5.0) -> None:
        """End the session with an authenticated CLOSE, then drop the link."""
        if self._session.is_open:
            self._session.close(reason)
            self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._closed.wait()
        if not self._closed.is_set():
            # The link is stuck: give up on a clean close.
            self._session.connection_lost()
            self._dispatch()
        if self._supervisor is not None:
            await self._supervisor

    async def wait_closed(self) -> SessionEnded:
        await self._closed.wait()
        assert self.ended is not None
        return self.ended

    # --- tasks ---

    def _dispatch(self) -> None:
        for event in self._session.events_received():
            if isinstance(event, SessionEnded):
                if self.ended is not None:
                    continue
                self.ended = event
            for listener in self._listeners:
                listener(event)
            if self._queue is not None:
                self._queue.put_nowait(event)
            else:
                self._early.append(event)
            if isinstance(event, SessionEnded):
                self._closed.set()
                self._drained.set()
                self._wake.set()

    async def _reader(self) -> None:
        while not self._session.is_closed:
            try:
                payload = await self._link.recv_payload()
            except ConnectionLost:
                self._session.connection_lost()
                self._dispatch()
                return
            self._session.receive_record(payload, self._clock())
            self._dispatch()
            self._wake.set()

    async def _writer(self) -> None:
        while True:
            record = self._session.next_record(self._clock())
            if record is None:
                self._dispatch()
                if self._session.is_closed:
                    return
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._link.send_payload(record)
            except ConnectionLost:
                self._session.connection_lost()
                self._dispatch()
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
        with contextlib.suppress(ConnectionLost):
            await self._link.close(code, "session ended")
