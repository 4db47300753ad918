"""Suspended pairs: who may come back after a dropped link (pure: no I/O, ``now`` passed in).

While paired, each side tells the relay the public ids it would resume
under (``Resumable``: derived one-way from the session secret, see
common.crypto.resume). When one side's connection drops abnormally, the
pair becomes *suspended* for ``grace`` seconds under those ids, and the
relay closes the other side with PEER_SUSPENDED so it reconnects too. Each
side then opens a new connection with ``Resume(ids, role)``; the first one
waits, the second one joins it, and the entry is gone: a ticket joins once.

A relay restart loses this table. Rather than persisting it, the relay
accepts *unknown* ids for ``grace`` seconds after it started and pairs the
two connections that present the same id (a fresh route): the end-to-end
proof, not the relay, decides whether they really are the two halves of one
session (docs/architecture.md, "Resume after a dropped link").

Entries are keyed by every id a side offered (current and previous), and
a side that comes back while the relay still thinks its old connection is
alive suspends the pair there and then (the old connection is stale).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Generic, TypeVar

from common.protocol.relay_wire import CloseCode, PeerRole
from relay.registry import RelayRejection


__all__ = ["Arrival", "ResumeTable"]

H = TypeVar("H", bound=Hashable)

MAX_GRACE = 600.0


@dataclasses.dataclass(frozen=True)
class _Offer(Generic[H]):
    handle: H
    role: PeerRole
    ids: frozenset[bytes]
    account: int | None


@dataclasses.dataclass(eq=False)
class _Entry(Generic[H]):
    ids: frozenset[bytes]
    expires_at: float
    # The account each role was signed in with (None: none); unknown on a fresh route.
    accounts: dict[PeerRole, int | None] | None
    waiting: dict[PeerRole, H] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Arrival(Generic[H]):
    """What a Resume hello found.

    Attributes:
        partner: the other side, already waiting: join it now. None: wait.
        expires_at: when to give up waiting (RESUME_EXPIRED).
        stale: connections the relay still had for this pair; the caller
            closes them (the first with REPLACED, the partner's with
            PEER_SUSPENDED so that it comes back too).
    """

    partner: H | None
    expires_at: float
    stale: tuple[tuple[H, CloseCode], ...] = ()


def _ids(current: bytes, previous: bytes) -> frozenset[bytes]:
    return frozenset(i for i in (current, previous) if i)


class ResumeTable(Generic[H]):
    """Suspended pairs of one relay process.

    Args:
        grace: seconds a suspended pair waits for both sides (at most 600).
        started_at: when this relay started (``now`` scale): unknown ids are
            accepted until ``started_at + grace``.
        max_entries: the most suspended pairs at once (RELAY_FULL beyond).
    """

    def __init__(self, grace: float, started_at: float, max_entries: int = 1000) -> None:
        if not 0 < grace <= MAX_GRACE:
            raise ValueError("the resume grace period must be in (0, 600] seconds")
        self.grace = grace
        self.started_at = started_at
        self.max_entries = max_entries
        self._offers: dict[H, _Offer[H]] = {}
        self._offered: dict[bytes, H] = {}
        self._entries: dict[bytes, _Entry[H]] = {}
        self._waiting: dict[H, _Entry[H]] = {}
        # Ids that joined once, until the fresh-route window closes (no replays).
        self._used: set[bytes] = set()

    def __len__(self) -> int:
        return len({id(e) for e in self._entries.values()})

    # --- while paired -----------------------------------------------------------

    def offer(
        self, handle: H, role: PeerRole, current: bytes, previous: bytes, account: int | None
    ) -> None:
        """A paired connection's ids (replacing what it offered before)."""
        self._drop_offer(handle)
        offer = _Offer(handle, role, _ids(current, previous), account)
        self._offers[handle] = offer
        for i in offer.ids:
            self._offered[i] = handle

    def suspend(self, handle: H, partner: H, now: float) -> bool:
        """``handle``'s link dropped: keep the pair for a resume if both sides offered.

        Returns:
            True when the pair is now suspended (tell the partner to come back).
        """
        mine, theirs = self._drop_offer(handle), self._drop_offer(partner)
        if mine is None or theirs is None or mine.role is theirs.role:
            return False
        if not mine.ids & theirs.ids:
            return False
        self._purge(now)
        if len(self) >= self.max_entries:
            return False
        accounts = {mine.role: mine.account, theirs.role: theirs.account}
        entry: _Entry[H] = _Entry(mine.ids | theirs.ids, now + self.grace, accounts)
        for i in entry.ids:
            self._entries[i] = entry
        return True

    def forget(self, handle: H) -> None:
        """A connection ended: drop its offer and its place among the waiting."""
        self._drop_offer(handle)
        entry = self._waiting.pop(handle, None)
        if entry is not None:
            for role, waiting in list(entry.waiting.items()):
                if waiting == handle:
                    del entry.waiting[role]

    # --- coming back ------------------------------------------------------------

    def arrive(
        self,
        handle: H,
        role: PeerRole,
        current: bytes,
        previous: bytes,
        account: int | None,
        now: float,
    ) -> Arrival[H]:
        """A ``Resume`` hello.

        Raises:
            RelayRejection: UNKNOWN_RESUME (no such pair, or already joined),
                FORBIDDEN (signed in as another account), RELAY_FULL.
        """
        self._purge(now)
        ids = _ids(current, previous)
        stale: list[tuple[H, CloseCode]] = []
        entry = self._find(ids)
        if entry is None:
            entry, stale = self._suspend_live(ids, role, now)
        if entry is None:
            if now >= self.started_at + self.grace or ids & self._used:
                raise RelayRejection(
                    CloseCode.UNKNOWN_RESUME, "no session to resume under this ticket"
                )
            if len(self) >= self.max_entries:
                raise RelayRejection(CloseCode.RELAY_FULL, "relay is busy; try again later")
            # A fresh route: the relay restarted and forgot; the proof decides.
            entry = _Entry(ids, self.started_at + self.grace, None)
            for i in ids:
                self._entries[i] = entry
        if entry.accounts is not None:
            expected = entry.accounts.get(role)
            if role not in entry.accounts:
                raise RelayRejection(
                    CloseCode.UNKNOWN_RESUME, "no session to resume under this ticket"
                )
            if expected is not None and account != expected:
                raise RelayRejection(
                    CloseCode.FORBIDDEN, "sign in as the technician who had the session"
                )
        previous_handle = entry.waiting.get(role)
        if previous_handle is not None and previous_handle != handle:
            # An older attempt of the same side (its connection is half-dead).
            stale.append((previous_handle, CloseCode.REPLACED))
            self._waiting.pop(previous_handle, None)
        entry.waiting[role] = handle
        self._waiting[handle] = entry
        other = PeerRole.USER if role is PeerRole.TECHNICIAN else PeerRole.TECHNICIAN
        partner = entry.waiting.get(other)
        if partner is None:
            return Arrival(None, entry.expires_at, tuple(stale))
        self._remove(entry)
        self._used |= entry.ids
        return Arrival(partner, entry.expires_at, tuple(stale))

    def expires_at(self, handle: H) -> float | None:
        """When a waiting connection gives up (None: it is not waiting)."""
        entry = self._waiting.get(handle)
        return entry.expires_at if entry is not None else None

    # --- internals --------------------------------------------------------------

    def _find(self, ids: frozenset[bytes]) -> _Entry[H] | None:
        for i in ids:
            entry = self._entries.get(i)
            if entry is not None:
                return entry
        return None

    def _suspend_live(
        self, ids: frozenset[bytes], role: PeerRole, now: float
    ) -> tuple[_Entry[H] | None, list[tuple[H, CloseCode]]]:
        # The relay still has the pair: the side coming back knows its old
        # connection is dead even if the relay has not noticed yet.
        for i in ids:
            old = self._offered.get(i)
            if old is None:
                continue
            offer = self._offers[old]
            partner = next(
                (
                    o.handle
                    for o in self._offers.values()
                    if o.handle != old and o.ids & offer.ids and o.role is not offer.role
                ),
                None,
            )
            if partner is None:
                return None, []
            mine, theirs = (old, partner) if offer.role is role else (partner, old)
            if not self.suspend(mine, theirs, now):
                return None, []
            return self._find(ids), [
                (mine, CloseCode.REPLACED),
                (theirs, CloseCode.PEER_SUSPENDED),
            ]
        return None, []

    def _drop_offer(self, handle: H) -> _Offer[H] | None:
        offer = self._offers.pop(handle, None)
        if offer is not None:
            for i in offer.ids:
                if self._offered.get(i) == handle:
                    del self._offered[i]
        return offer

    def _remove(self, entry: _Entry[H]) -> None:
        for i in entry.ids:
            if self._entries.get(i) is entry:
                del self._entries[i]
        for waiting in entry.waiting.values():
            if self._waiting.get(waiting) is entry:
                del self._waiting[waiting]

    def _purge(self, now: float) -> None:
        expired = {id(e): e for e in self._entries.values() if now >= e.expires_at}
        for entry in expired.values():
            self._remove(entry)
        if now >= self.started_at + self.grace and self._used:
            # Past the fresh-route window an unknown id is refused anyway.
            self._used.clear()
