"""Connection caps and failure rate limits for the relay: pure, time injected.

Nothing here does I/O or reads a clock. Callers pass ``now`` (any monotonic
number of seconds) and the address key of the peer, as made by
:func:`address_key`.

``export(now)`` and ``restore(rows, now)`` turn a limiter's state into
clock-free rows (ages and remaining times, not instants) so that
:mod:`relay.counters` can keep it across a restart; ``changes`` counts the
updates, so that unchanged state is not written again.
"""

from __future__ import annotations

import ipaddress


__all__ = [
    "ConnectionLimiter",
    "FailureLimiter",
    "Lockout",
    "RateLimiter",
    "TokenBucket",
    "address_key",
]

# One IPv6 subscriber usually gets a whole /64; counting single addresses
# would let one host take as many slots as it likes.
_IPV6_PREFIX = 64


def address_key(address: str) -> str:
    """The key that limits are counted under for a peer address.

    IPv4 addresses (and IPv4-mapped IPv6 ones) count individually; IPv6
    addresses count per /64 network. Anything that does not parse (a Unix
    socket path, for instance) is used as is.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_PREFIX), strict=False))
    return str(ip)


class TokenBucket:
    """A bucket of ``capacity`` tokens that refills at ``rate`` tokens per second.

    Attributes:
        capacity: the most tokens the bucket holds (the allowed burst).
        rate: tokens added per second.
    """

    __slots__ = ("_tokens", "_updated", "capacity", "rate")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError("capacity and rate must be positive")
        self.capacity = capacity
        self.rate = rate
        self._tokens = float(capacity)
        self._updated = now

    def level(self, now: float) -> float:
        """Tokens available at ``now``."""
        # A clock that goes backwards must not mint tokens or drain them.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)
        return self._tokens

    def is_full(self, now: float) -> bool:
        """True when the bucket is back to capacity (it can be forgotten)."""
        return self.level(now) >= self.capacity

    def take(self, now: float, n: float = 1.0) -> bool:
        """Remove ``n`` tokens if there are that many; return whether it did."""
        if self.level(now) < n:
            return False
        self._tokens -= n
        return True

    def drain(self, now: float, n: float = 1.0) -> None:
        """Remove up to ``n`` tokens, stopping at zero."""
        self._tokens = max(0.0, self.level(now) - n)

    def wait_time(self, now: float, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are available (0 when they are now)."""
        return max(0.0, (n - self.level(now)) / self.rate)


class FailureLimiter:
    """Per-key token buckets that only failures drain.

    A key may fail ``limit`` times in a burst; after that it is blocked until
    its bucket refills, at ``limit`` tokens per ``window`` seconds. Buckets
    that are full again are forgotten, so memory follows recent failures.

    Args:
        limit: failures allowed in a burst.
        window: seconds for an empty bucket to refill completely.
        max_keys: the most keys remembered; past it the oldest are dropped.
    """

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self.changes = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def blocked(self, key: str, now: float) -> bool:
        """True when ``key`` has no failure left to spend at ``now``."""
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.level(now) < 1.0

    def record_failure(self, key: str, now: float) -> None:
        """Charge one failure to ``key``."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self.sweep(now)
            bucket = TokenBucket(self.limit, self.limit / self.window, now)
        bucket.drain(now)
        # Re-inserting keeps the dict ordered by last failure, oldest first.
        self._buckets[key] = bucket
        self.changes += 1

    def export(self, now: float, limit: int) -> list[tuple[str, float, float, float]]:
        """The ``limit`` most recent keys as ``(key, tokens missing, 0, 0)``, full ones left out."""
        rows = []
        for key, bucket in list(self._buckets.items())[-limit:]:
            missing = bucket.capacity - bucket.level(now)
            if missing > 0:
                rows.append((key, missing, 0.0, 0.0))
        return rows

    def restore(self, rows: list[tuple[str, float, float, float]], now: float) -> None:
        """Take back exported rows, ``now`` being on this limiter's clock.

        Callers age the rows first (add the tokens refilled while the relay
        was down); rows beyond ``max_keys`` are dropped, oldest first.
        """
        for key, missing, _, _ in rows[-self.max_keys :]:
            bucket = TokenBucket(self.limit, self.limit / self.window, now)
            bucket.drain(now, min(float(self.limit), max(0.0, missing)))
            self._buckets.pop(key, None)
            self._buckets[key] = bucket

    def sweep(self, now: float) -> None:
        """Forget full buckets; then, if still too many, the oldest ones."""
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        excess = len(self._buckets) - self.max_keys + 1
        for key in list(self._buckets)[: max(0, excess)]:
            del self._buckets[key]

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may act again (0 when it may now)."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait_time(now)


class RateLimiter(FailureLimiter):
    """Per-key token buckets that every event drains: ``limit`` events per ``window``.

    A key may act ``limit`` times in a burst, then at the refill rate.
    """

    def allow(self, key: str, now: float) -> bool:
        """Count one event for ``key`` if its bucket allows it; return whether it did."""
        if self.blocked(key, now):
            return False
        self.record_failure(key, now)
        return True


class Lockout:
    """Locks a key out for ``duration`` seconds after ``limit`` failures within ``window``.

    A success clears the key's failures. Used for brute-force protection of
    sign-ins and claims per account: unlike a token bucket, a lockout does
    not leak one attempt per refill period while it lasts.

    Args:
        limit: failures that trigger the lockout.
        window: failures older than this (counted from the first) are forgotten.
        duration: how long the lockout lasts.
        max_keys: the most keys remembered; past it the oldest are dropped.
    """

    def __init__(
        self, limit: int, window: float, duration: float, *, max_keys: int = 100_000
    ) -> None:
        if limit < 1 or window <= 0 or duration <= 0 or max_keys < 1:
            raise ValueError("limit, window, duration and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.duration = duration
        self.max_keys = max_keys
        # key -> (failures, first failure time, locked until)
        self._state: dict[str, tuple[int, float, float]] = {}
        self.changes = 0

    def __len__(self) -> int:
        return len(self._state)

    def locked_for(self, key: str, now: float) -> float:
        """Seconds of lockout left for ``key`` (0 when it is not locked)."""
        state = self._state.get(key)
        if state is None:
            return 0.0
        return max(0.0, state[2] - now)

    def failure(self, key: str, now: float) -> bool:
        """Count a failure; return True when it (now) locks the key out."""
        self.changes += 1
        count, first, until = self._state.pop(key, (0, now, 0.0))
        if until > now:
            self._state[key] = (count, first, until)
            return True
        if now - first > self.window:
            count, first = 0, now
        count += 1
        if count >= self.limit:
            count, first, until = 0, now, now + self.duration
        if len(self._state) >= self.max_keys:
            self._forget(now)
        self._state[key] = (count, first, until)
        return until > now

    def success(self, key: str, now: float) -> None:
        """Forget the key's failures (a lockout in force stays)."""
        state = self._state.get(key)
        if state is not None and state[2] <= now:
            del self._state[key]
            self.changes += 1

    def export(self, now: float, limit: int) -> list[tuple[str, float, float, float]]:
        """The ``limit`` most recent keys as ``(key, failures, age of the first, lockout left)``."""
        rows = []
        for key, (count, first, until) in list(self._state.items())[-limit:]:
            left = max(0.0, until - now)
            if left > 0 or now - first <= self.window:
                rows.append((key, float(count), now - first, left))
        return rows

    def restore(self, rows: list[tuple[str, float, float, float]], now: float) -> None:
        """Take back exported rows (aged by the caller), ``now`` being on this limiter's clock."""
        for key, count, age, left in rows[-self.max_keys :]:
            self._state.pop(key, None)
            self._state[key] = (int(count), now - age, now + left if left > 0 else 0.0)

    def _forget(self, now: float) -> None:
        stale = [
            k
            for k, (_, first, until) in self._state.items()
            if until <= now and now - first > self.window
        ]
        for key in stale:
            del self._state[key]
        excess = len(self._state) - self.max_keys + 1
        for key in list(self._state)[: max(0, excess)]:
            del self._state[key]


class ConnectionLimiter:
    """Counts open connections, in total and per key, against two caps.

    Args:
        per_key: the most connections one key may hold.
        total: the most connections overall.
    """

    def __init__(self, per_key: int, total: int) -> None:
        if per_key < 1 or total < 1:
            raise ValueError("connection caps must be positive")
        self.per_key = per_key
        self.total_cap = total
        self._counts: dict[str, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        """Connections currently counted."""
        return self._total

    def count(self, key: str) -> int:
        """Connections currently counted for ``key``."""
        return self._counts.get(key, 0)

    def acquire(self, key: str) -> str | None:
        """Count a new connection for ``key``.

        Returns:
            None when it was counted, otherwise why not (and nothing changed).
        """
        if self._total >= self.total_cap:
            return "relay is at its connection limit"
        if self._counts.get(key, 0) >= self.per_key:
            return "too many connections from this address"
        self._counts[key] = self._counts.get(key, 0) + 1
        self._total += 1
        return None

    def release(self, key: str) -> None:
        """Stop counting one connection of ``key``.

        Raises:
            KeyError: ``key`` holds no counted connection (a caller bug).
        """
        n = self._counts[key]
        if n == 1:
            del self._counts[key]
        else:
            self._counts[key] = n - 1
        self._total -= 1
