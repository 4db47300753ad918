"""QueueWatch: the live help-request queue, as a signed-in technician sees it.

The relay streams every request (QueueEntry), says when the first batch is
complete (QueueSynced), then pushes changes: a request added, claimed, back
in the queue, its user away or back (QueueEntry again), and removed
(QueueRemoved: started, cancelled, expired). :class:`QueueWatch` keeps the
current list, ordered and numbered, and reports each change to listeners
and through :meth:`QueueWatch.next_change`.

The watch also keeps the sign-in fresh: before the token expires it asks
the relay for a new one on this connection (RenewToken -> LoggedIn).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

from common.errors import ConnectionLost, InvalidState
from common.net.relay_link import RelayLink
from common.protocol.relay_wire import (
    LoggedIn,
    QueueEntry,
    QueueRemoved,
    QueueSynced,
    RemovalReason,
    RequestState,
)


__all__ = ["QueueChange", "QueueItem", "QueueWatch"]

# Renew when this share of the token's lifetime is left.
_RENEW_AT = 1 / 3
# Ask again after this long if a renewal got no answer.
_RENEW_RETRY = 30.0


@dataclasses.dataclass(frozen=True)
class QueueItem:
    """One help request in the queue.

    Attributes:
        request_id: its id, in hex (pass it to ``TechnicianClient.claim``).
        position: 1 for the next waiting request; 0 while it is claimed.
        claimed: a technician took it and is pairing with the user.
        user_connected: False while the user is away (it cannot be claimed then).
        waiting_since: when it was posted, unix seconds.
        name, description, category, system_summary: what the user sent
            (untrusted text: show it as plain text).
        claimed_by: the claiming technician (shown to supervisors, admins, and the claimer).
        claimed_by_me: this account claimed it.
    """

    request_id: str
    position: int
    claimed: bool
    user_connected: bool
    waiting_since: float
    name: str
    description: str
    category: str
    system_summary: str
    claimed_by: str
    claimed_by_me: bool


@dataclasses.dataclass(frozen=True)
class QueueChange:
    """Something happened to the queue.

    Attributes:
        kind: "updated" (added or changed), "removed", "synced" (the first
            complete list arrived) or "closed" (the watch ended: see reason).
        request_id: the request concerned ("" for synced and closed).
        reason: for removed: "started", "cancelled" or "expired"; for
            closed: why, ready to show.
    """

    kind: str
    request_id: str = ""
    reason: str = ""


_REMOVED = {
    RemovalReason.STARTED: "started",
    RemovalReason.CANCELLED: "cancelled",
    RemovalReason.EXPIRED: "expired",
}

Listener = Callable[[QueueChange], None]


class QueueWatch:
    """A live view of the relay's queue over one authenticated connection.

    Made by ``TechnicianClient.watch_queue()``; do not build one directly.

    Attributes:
        closed: why the watch ended (None while it runs).
    """

    def __init__(
        self,
        link: RelayLink,
        *,
        token_expires_in: float,
        on_token: Callable[[LoggedIn], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._on_token = on_token
        self._clock = clock
        self._entries: dict[bytes, QueueEntry] = {}
        self._listeners: list[Listener] = []
        self._changes: asyncio.Queue[QueueChange] = asyncio.Queue()
        self._synced = asyncio.Event()
        self._renew_at = clock() + token_expires_in * (1 - _RENEW_AT)
        self._tasks: list[asyncio.Task[None]] = []
        self.closed: ConnectionLost | None = None

    def start(self) -> None:
        """Start reading (in the running loop)."""
        if self._tasks:
            raise InvalidState("queue watch already started")
        self._tasks = [
            asyncio.create_task(self._read(), name="deskhand-queue-reader"),
            asyncio.create_task(self._renew(), name="deskhand-token-renewal"),
        ]

    # --- the view -------------------------------------------------------------------

    @property
    def items(self) -> list[QueueItem]:
        """Every request, oldest first, with positions among the waiting ones."""
        ordered = sorted(self._entries.values(), key=lambda e: (e.waiting_since, e.request_id))
        items: list[QueueItem] = []
        n = 0
        for entry in ordered:
            waiting = entry.state is RequestState.WAITING
            n += waiting
            items.append(
                QueueItem(
                    request_id=entry.request_id.hex(),
                    position=n if waiting else 0,
                    claimed=not waiting,
                    user_connected=entry.user_connected,
                    waiting_since=entry.waiting_since,
                    name=entry.name,
                    description=entry.description,
                    category=entry.category,
                    system_summary=entry.system_summary,
                    claimed_by=entry.claimed_by,
                    claimed_by_me=entry.claimed_by_me,
                )
            )
        return items

    def item(self, request_id: str) -> QueueItem | None:
        """One request by its hex id, if it is in the queue."""
        for item in self.items:
            if item.request_id == request_id:
                return item
        return None

    @property
    def synced(self) -> bool:
        """True once the relay sent the whole queue."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait until the whole queue arrived (bound it with ``asyncio.timeout``).

        Raises:
            ConnectionLost: the watch ended first.
        """
        if self.closed is not None:
            raise self.closed
        waiter = asyncio.create_task(self._synced.wait())
        try:
            await asyncio.wait([waiter, *self._tasks[:1]], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._synced.is_set():
            raise self.closed or ConnectionLost("The queue watch ended.")

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(change)`` for every change, in the loop thread."""
        self._listeners.append(listener)

    async def next_change(self) -> QueueChange:
        """The next change (they also go to the listeners)."""
        return await self._changes.get()

    async def close(self) -> None:
        """Stop watching and close the connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._link.close()
        if self.closed is None:
            self.closed = ConnectionLost("You stopped watching the queue.")

    # --- internals ------------------------------------------------------------------

    def _emit(self, change: QueueChange) -> None:
        self._changes.put_nowait(change)
        for listener in list(self._listeners):
            listener(change)

    async def _read(self) -> None:
        try:
            while True:
                msg = await self._link.recv_control()
                if isinstance(msg, QueueEntry):
                    self._entries[msg.request_id] = msg
                    self._emit(QueueChange("updated", msg.request_id.hex()))
                elif isinstance(msg, QueueRemoved):
                    self._entries.pop(msg.request_id, None)
                    self._emit(QueueChange("removed", msg.request_id.hex(), _REMOVED[msg.reason]))
                elif isinstance(msg, QueueSynced):
                    self._synced.set()
                    self._emit(QueueChange("synced"))
                elif isinstance(msg, LoggedIn):
                    self._renew_at = self._clock() + msg.expires_in * (1 - _RENEW_AT)
                    self._on_token(msg)
                else:
                    raise ConnectionLost(f"Unexpected {type(msg).__name__} on the queue watch.")
        except ConnectionLost as exc:
            self.closed = exc
            self._emit(QueueChange("closed", reason=exc.reason))
            for task in self._tasks[1:]:
                task.cancel()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self._renew_at - self._clock()))
            if self._clock() < self._renew_at:
                continue  # a LoggedIn moved the time while we slept
            self._renew_at = self._clock() + _RENEW_RETRY
            try:
                await self._link.renew_token()
            except ConnectionLost:
                return
