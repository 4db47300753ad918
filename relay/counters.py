"""Rate-limit and lockout counters that survive a relay restart.

Without this a restart (a crash, a deploy, or an attacker who found a way to
make the relay restart) handed every address and account a fresh allowance
and lifted every lockout. The limiters stay pure (:mod:`relay.limits`);
this module snapshots them into the ``limit_counters`` table and takes them
back at start-up:

* written every ``check_interval`` (only when something changed) and at
  shutdown, never on the hot path: a crash loses at most a few seconds;
* rows hold ages and remaining times, not instants, because some limiters
  run on the event loop's clock, which restarts with the process; the time
  the relay was down is credited on load, as if it had kept running;
* at most :data:`MAX_ROWS` keys per limiter are kept (the most recent), so
  a flood of names cannot make each snapshot huge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from relay.context import RelayContext
from relay.limits import FailureLimiter, Lockout
from relay.services import Database
from relay.store import LimitRow


__all__ = ["MAX_ROWS", "PersistentLimits", "loop_clock", "relay_limits"]

MAX_ROWS = 10_000

Limiter = FailureLimiter | Lockout


def loop_clock() -> float:
    """The running event loop's clock (what the handler passes as ``now``)."""
    return asyncio.get_running_loop().time()


def _aged(limiter: Limiter, rows: list[LimitRow], elapsed: float) -> list[LimitRow]:
    """Rows as they would be after ``elapsed`` more seconds."""
    elapsed = max(0.0, elapsed)
    if isinstance(limiter, Lockout):
        return [(k, n, age + elapsed, max(0.0, left - elapsed)) for k, n, age, left in rows]
    refill = elapsed * limiter.limit / limiter.window
    return [(k, missing - refill, b, c) for k, missing, b, c in rows if missing > refill]


class PersistentLimits:
    """Saves and restores named limiters through the relay's database.

    Args:
        db: the database (its worker thread).
        limiters: kind (a closed set, the table's key) -> (limiter, its clock).
        wall_clock: unix time, to tell how long the relay was down.
    """

    def __init__(
        self,
        db: Database,
        limiters: Mapping[str, tuple[Limiter, Callable[[], float]]],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.limiters = dict(limiters)
        self.wall_clock = wall_clock
        self._saved: dict[str, int] = {}

    async def load(self) -> int:
        """Take back the stored counters; return how many keys."""
        stored = await self.db.run(self.db.store.limits)
        now = self.wall_clock()
        count = 0
        for kind, (saved_at, rows) in stored.items():
            entry = self.limiters.get(kind)
            if entry is None:
                continue  # a limiter this version no longer has
            limiter, clock = entry
            aged = _aged(limiter, rows, now - saved_at)
            limiter.restore(aged, clock())
            count += len(aged)
            self._saved[kind] = limiter.changes
        return count

    async def save(self, *, force: bool = False) -> int:
        """Write the limiters that changed since the last save; return how many rows."""
        rows: dict[str, list[LimitRow]] = {}
        changes: dict[str, int] = {}
        for kind, (limiter, clock) in self.limiters.items():
            if force or self._saved.get(kind, 0) != limiter.changes:
                rows[kind] = limiter.export(clock(), MAX_ROWS)
                changes[kind] = limiter.changes
        if not rows:
            return 0
        await self.db.run(self.db.store.save_limits, rows, self.wall_clock())
        self._saved.update(changes)
        return sum(len(r) for r in rows.values())


def relay_limits(relay: RelayContext) -> PersistentLimits:
    """The persistent counters of a relay: every per-address and per-account limiter."""
    wall = relay.wall_clock
    return PersistentLimits(
        relay.db,
        {
            **relay.auth.limiters(),
            "address_rate": (relay.address_rate, loop_clock),
            "account_claims": (relay.signin.claim_rate, wall),
            "claim_lockout": (relay.signin.claim_lockout, wall),
            "address_claims": (relay.registry.claims, loop_clock),
            "address_registrations": (relay.registry.registrations, loop_clock),
        },
        wall_clock=wall,
    )
