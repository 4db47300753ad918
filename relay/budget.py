"""Buffer budgets in bytes: per connection and for the whole relay. Pure.

A connection's *queued* bytes are frames it sent that the relay has received
and not yet handed on; its *sending* bytes are those being written to it.
Only queued bytes decide back-pressure on a connection (the relay stops
reading from it), because they are what that connection makes the relay
hold. Both count for the relay's total: over ``total``, the connection
holding the most is the one to close.

Keys are whatever the caller uses for a connection (hashable, by identity).
"""

from __future__ import annotations

from collections.abc import Hashable


__all__ = ["ByteBudget"]


class ByteBudget:
    """Bytes held per connection and in total, against two caps.

    Args:
        per_connection: queued bytes past which reading from a connection pauses.
        total: bytes (queued and sending, every connection) past which the
            relay is overloaded.
    """

    def __init__(self, per_connection: int, total: int) -> None:
        if per_connection < 1 or total < per_connection:
            raise ValueError("per_connection must be positive and total at least as big")
        self.per_connection = per_connection
        self.total_cap = total
        self._queued: dict[Hashable, int] = {}
        self._sending: dict[Hashable, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        """Bytes held right now, every connection together."""
        return self._total

    @property
    def overloaded(self) -> bool:
        """True while the total is over its cap."""
        return self._total > self.total_cap

    def held(self, key: Hashable) -> int:
        """Bytes held for ``key``: queued from it plus being sent to it."""
        return self._queued.get(key, 0) + self._sending.get(key, 0)

    def set_queued(self, key: Hashable, n: int) -> None:
        """``key`` now has ``n`` bytes queued."""
        old = self._queued.get(key, 0)
        if n:
            self._queued[key] = n
        else:
            self._queued.pop(key, None)
        self._total += n - old

    def add_sending(self, key: Hashable, n: int) -> None:
        """``n`` more (or, negative, fewer) bytes are being sent to ``key``."""
        value = self._sending.get(key, 0) + n
        if value:
            self._sending[key] = value
        else:
            self._sending.pop(key, None)
        self._total += n

    def must_pause(self, key: Hashable) -> bool:
        """True when reading from ``key`` should pause (its queue is over budget)."""
        return self._queued.get(key, 0) > self.per_connection

    def may_resume(self, key: Hashable) -> bool:
        """True when a paused ``key`` may be read again (half its budget, for hysteresis)."""
        return self._queued.get(key, 0) <= self.per_connection // 2

    def largest(self) -> Hashable | None:
        """The connection holding the most bytes (None when nothing is held)."""
        keys = set(self._queued) | set(self._sending)
        return max(keys, key=self.held, default=None)

    def forget(self, key: Hashable) -> None:
        """``key`` is gone: what it held is free."""
        self._total -= self._queued.pop(key, 0) + self._sending.pop(key, 0)
