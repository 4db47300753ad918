"""One websocket connection as the relay sees it, and its outbox.

A :class:`Peer` is the handle the registry stores for a connection. Queue
users and queue watchers also get an :class:`Outbox`: relay-initiated
messages (queue entries, positions, Requeued) go through it, so one slow
reader never blocks whoever caused the update, and messages reach each peer
in the order they were decided.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from common.protocol.relay_wire import CloseCode
from relay.limits import address_key
from relay.registry import RelayRejection
from relay.services import Principal


__all__ = ["MIN_OUTBOX", "Outbox", "Peer"]

# Queue updates one peer may have pending before it counts as not reading
# (at least; a queue watch's first batch is one message per request).
MIN_OUTBOX = 512


class Peer:
    """One websocket connection: the handle the registry stores for it.

    Attributes:
        ws: the connection.
        id: a small number that names the connection in logs.
        address: the remote IP address; key: its limit key (IPv6: the /64).
        opened_at: loop time when the handler started.
        expires_at: loop time when its nameplate expires (code-flow users).
        last_frame: loop time of the last message from this peer once paired.
        partner: the other side once paired.
        ending: set when another task decided this connection must close.
        scope: the asyncio.Timeout bounding this peer's await in progress.
        frames, bytes: forwarded messages and bytes received from this peer.
        principal: the signed-in account, for technicians that sent a token.
        request_id: the help request this user posted or resumed, or the one
            this technician claimed.
        request_done: the request left the queue through this connection
            (started, cancelled or expired): nothing to put back.
        outbox: relay-initiated messages (queue users and watchers).
        send_lock: orders the outbox against the handover to a technician.
        position: the queue position last told to this user.
        requeued_until: loop time until which Forward frames from this user,
            meant for a technician who just left, are dropped rather than refused.
    """

    __slots__ = (
        "address",
        "bytes",
        "ending",
        "expires_at",
        "frames",
        "id",
        "key",
        "last_frame",
        "opened_at",
        "outbox",
        "partner",
        "position",
        "principal",
        "request_done",
        "request_id",
        "requeued_until",
        "scope",
        "send_lock",
        "ws",
    )

    def __init__(self, ws: ServerConnection, id: int, address: str, now: float) -> None:
        self.ws = ws
        self.id = id
        self.address = address
        self.key = address_key(address)
        self.opened_at = now
        self.expires_at: float | None = None
        self.last_frame = now
        self.partner: Peer | None = None
        self.ending: RelayRejection | None = None
        self.frames = 0
        self.bytes = 0
        self.scope: asyncio.Timeout | None = None
        self.principal: Principal | None = None
        self.request_id: bytes | None = None
        self.request_done = False
        self.outbox: Outbox | None = None
        self.send_lock = asyncio.Lock()
        self.position = -1
        self.requeued_until = -math.inf

    def __repr__(self) -> str:
        return f"<Peer {self.id}>"

    def end_soon(self, code: CloseCode, reason: str) -> None:
        """Make this peer's task close its connection with ``code``.

        The first decision wins; the task wakes at once from whatever it
        awaits and closes the connection itself.
        """
        if self.ending is None:
            self.ending = RelayRejection(code, reason)
        self.rearm(-math.inf)

    def rearm(self, deadline: float) -> None:
        """Move the deadline of the await in progress (its state changed)."""
        scope = self.scope
        if scope is not None and not scope.expired():
            scope.reschedule(max(deadline, asyncio.get_running_loop().time()))


class Outbox:
    """A bounded queue of messages to one peer, sent by its own task.

    Args:
        peer: whose connection the messages go to.
        send_timeout: the longest one send may wait for the peer to read.
        limit: messages that may be pending before the peer counts as not reading.
    """

    def __init__(self, peer: Peer, send_timeout: float, limit: int = MIN_OUTBOX) -> None:
        self._peer = peer
        self._send_timeout = send_timeout
        self._limit = limit
        self._pending: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._paused = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sending task (in the running loop)."""
        self._task = asyncio.create_task(self._run(), name=f"relay-outbox-{self._peer.id}")

    async def stop(self) -> None:
        """Stop sending; pending messages are dropped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def push(self, data: bytes) -> None:
        """Queue ``data``; a peer that lets too much pile up is ended (not reading)."""
        if self._paused:
            return
        if len(self._pending) >= self._limit:
            self._pending.clear()
            self._peer.end_soon(CloseCode.IDLE_TIMEOUT, "not reading queue updates")
            return
        self._pending.append(data)
        self._wake.set()

    def pause(self) -> None:
        """Drop what is pending and ignore pushes until :meth:`resume` (the peer is paired)."""
        self._paused = True
        self._pending.clear()

    def resume(self) -> None:
        """Accept pushes again (the peer is back in the queue)."""
        self._paused = False

    async def _run(self) -> None:
        peer = self._peer
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                data = self._pending.popleft()
                async with peer.send_lock:
                    if self._paused:
                        continue
                    try:
                        async with asyncio.timeout(self._send_timeout):
                            await peer.ws.send(data)
                    except TimeoutError:
                        peer.end_soon(CloseCode.IDLE_TIMEOUT, "not reading")
                        return
                    except ConnectionClosed:
                        return
