"""The relay's websocket connections, guarded before and after the upgrade.

``serve(create_connection=...)`` builds one :class:`websockets` connection
per accepted TCP socket. The class made by :func:`guarded_connection` adds:

* **A cap on unfinished upgrades per address**, checked the moment the
  socket is accepted (before any byte is read): the relay's own connection
  caps only apply once the upgrade is done, and a socket that never sends
  its request would otherwise hold a file descriptor for ``open_timeout``.
  Excess sockets are dropped at once. Trusted proxies are exempt (every
  client behind them shares their address).
* **Byte budgets.** websockets pauses reading after a number of *frames*
  (16 frames of 1 MiB: 16 MiB for one peer that its partner never reads).
  Here reading also pauses when the frames waiting in a connection's queue
  add up to ``max_buffered_per_connection`` bytes, and resumes at half of
  it. Bytes being written to a connection count too, for the relay's total:
  over ``max_buffered_total`` the connection holding the most is closed
  with OVERLOADED.

The pure decisions are :class:`relay.limits.ConnectionLimiter` and
:class:`relay.budget.ByteBudget`; this module only wires them into
websockets. It relies on websockets 17's ``Assembler``/``SimpleQueue``
(pinned in pyproject.toml, exercised by tests/integration/test_relay_dos.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from typing import Any

from websockets.asyncio.messages import Assembler, SimpleQueue
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame
from websockets.typing import DataLike

from common.protocol.relay_wire import CloseCode
from relay.budget import ByteBudget
from relay.limits import ConnectionLimiter, address_key
from relay.proxy import Networks, client_address, is_trusted


__all__ = ["Guards", "guarded_connection", "remote_address"]

_OVERLOADED_REASON = "the relay is out of buffer space; reconnect"
# How long an overloaded connection gets to take its close frame.
_OVERLOAD_CLOSE = 1.0


class Guards:
    """The shared state of every guarded connection of one relay.

    Args:
        handshakes: pending upgrades, per address key and in total.
        budget: buffered bytes.
        trusted: reverse proxies (exempt from the handshake cap).
        on_refused: told the reason (a closed set) when a socket is dropped.
    """

    def __init__(
        self,
        handshakes: ConnectionLimiter,
        budget: ByteBudget,
        trusted: Networks,
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.handshakes = handshakes
        self.budget = budget
        self.trusted = trusted
        self.on_refused = on_refused
        self.overload_closes = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def close_overloaded(self, connection: ServerConnection) -> None:
        async def close() -> None:
            try:
                async with asyncio.timeout(_OVERLOAD_CLOSE):
                    await connection.close(CloseCode.OVERLOADED, _OVERLOADED_REASON)
            except TimeoutError:
                connection.transport.abort()

        self.overload_closes += 1
        self.on_refused("buffer_total")
        task = asyncio.get_running_loop().create_task(close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _CountingQueue(SimpleQueue[Frame]):
    """websockets' frame queue, also counting the bytes in it."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def put(self, item: Frame) -> None:
        self.bytes += len(item.data)
        super().put(item)

    async def get(self, block: bool = True) -> Frame:
        item = await super().get(block)
        self.bytes -= len(item.data)
        return item

    def put_back(self, items: Sequence[Frame]) -> None:
        self.bytes += sum(len(i.data) for i in items)
        super().put_back(items)


class _BudgetAssembler(Assembler):
    """Pauses on frames (websockets' rule) or on bytes (ours), whichever comes first."""

    def __init__(
        self,
        connection: ServerConnection,
        guards: Guards,
        high: int | None,
        low: int | None,
        pause: Callable[[], Any],
        resume: Callable[[], Any],
    ) -> None:
        super().__init__(high, low, pause=pause, resume=resume)
        self.frames = self._counted = _CountingQueue()
        self._connection = connection
        self._guards = guards
        self._overloaded = False

    def maybe_pause(self) -> None:
        budget = self._guards.budget
        budget.set_queued(self._connection, self._counted.bytes)
        too_many = self.high is not None and len(self.frames) > self.high
        if not self.paused and (too_many or budget.must_pause(self._connection)):
            self.paused = True
            self.pause()
        if budget.overloaded:
            victim = budget.largest()
            if isinstance(victim, _Guarded) and not victim.overloaded:
                victim.overloaded = True
                self._guards.close_overloaded(victim)

    def maybe_resume(self) -> None:
        budget = self._guards.budget
        budget.set_queued(self._connection, self._counted.bytes)
        few = self.low is None or len(self.frames) <= self.low
        if self.paused and few and budget.may_resume(self._connection):
            self.paused = False
            self.resume()


class _Guarded(ServerConnection):
    guards: Guards
    overloaded: bool = False
    _gate_key: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        guards = self.guards
        if not is_trusted(ip, guards.trusted):
            key = address_key(ip)
            refusal = guards.handshakes.acquire(key)
            if refusal is not None:
                guards.on_refused("handshakes")
                self.transport.abort()
                return
            self._gate_key = key
        old = self.recv_messages
        self.recv_messages = _BudgetAssembler(
            self, guards, old.high, old.low, old.pause, old.resume
        )

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().handshake(*args, **kwargs)
        finally:
            # Upgraded, answered over HTTP, failed or timed out: no longer pending.
            self._release_gate()

    async def send(
        self,
        message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike],
        *,
        text: bool | None = None,
    ) -> None:
        size = len(message) if isinstance(message, bytes | bytearray | memoryview | str) else 0
        budget = self.guards.budget
        budget.add_sending(self, size)
        try:
            await super().send(message, text=text)
        finally:
            budget.add_sending(self, -size)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_gate()
        self.guards.budget.forget(self)
        super().connection_lost(exc)

    def _release_gate(self) -> None:
        key, self._gate_key = self._gate_key, None
        if key is not None:
            with contextlib.suppress(KeyError):
                self.guards.handshakes.release(key)


def guarded_connection(guards: Guards) -> type[ServerConnection]:
    """The connection class for ``serve(create_connection=...)`` of one relay."""
    return type("GuardedConnection", (_Guarded,), {"guards": guards})


def remote_address(ws: ServerConnection, trusted: Networks) -> str:
    """The client's address: the TCP peer's, or the one trusted proxies forwarded."""
    address = ws.remote_address
    peer = str(address[0]) if isinstance(address, tuple) and address else "unknown"
    if not trusted or ws.request is None:
        return peer
    return client_address(peer, ws.request.headers.get_all("X-Forwarded-For"), trusted)
