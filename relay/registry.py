"""The pairing registry: who waits behind which nameplate, and who is paired.

Pure logic: no I/O, no asyncio, no clock. Every method that depends on time
takes ``now`` (seconds on any monotonic scale) and randomness comes from an
injected :class:`random.Random` (by default the operating system's).

Connections are opaque *handles* chosen by the caller (the websocket
handler stores its per-connection object). Each handle moves through::

    connect()          register()                claim() by a technician
      ──> NEW ─────────────────> WAITING ──────────────────────────> PAIRED
           │  claim(nameplate)                                         │
           ├──────────────────────────────────────────────────────> PAIRED
           │  enter(QUEUED): a user posted a help request             │
           ├──────────────────> QUEUED ──join() with a technician──> PAIRED
           │                       ^                                   │
           │                       └──────requeue() (tech left)──── CLOSED
           │  enter(CONSOLE): a technician watching the queue
           └──────────────────> CONSOLE

    WAITING ──(code expired)──> CLOSED        PAIRED ──(partner left)──> CLOSED
    any state ──disconnect()──> (forgotten)

A refusal raises :class:`RelayRejection` carrying the websocket close code
to send; the registry is unchanged by it, except that every claim and every
registration is charged to its address, successful or not.

Nameplates have three digits while fewer than three quarters of the
three-digit ones are in use, then four: the space grows to 9900 before the
short codes run out, and users keep short codes whenever the relay is not
busy. Holding many nameplates needs many addresses: each address (IPv6:
each /64) may hold ``max_waiting_per_address`` and register
``registrations_per_window`` per ``registration_window``. A proof of work
was considered and not chosen: it costs a user's laptop more than an
attacker's servers, while addresses are what an attacker has fewest of.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
import secrets
from collections.abc import Hashable
from typing import Generic, NoReturn, TypeVar

from common.errors import DeskhandError, InvalidState
from common.protocol.relay_wire import NAMEPLATE_MAX, NAMEPLATE_MIN, SID_BYTES, CloseCode
from relay.limits import ConnectionLimiter, RateLimiter, address_key


__all__ = [
    "Counts",
    "Pairing",
    "PeerState",
    "Registration",
    "Registry",
    "RelayRejection",
]

H = TypeVar("H", bound=Hashable)

# Random draws before falling back to listing the free nameplates: cheap while
# the registry is mostly empty, and still uniform over the free ones.
_DRAWS = 8
_SHORT_MAX = 999
# Three-digit nameplates in use before new ones get four digits.
_SHORT_IN_USE = (_SHORT_MAX - NAMEPLATE_MIN + 1) * 3 // 4
_ALL_NAMEPLATES = NAMEPLATE_MAX - NAMEPLATE_MIN + 1


class RelayRejection(DeskhandError):
    """The relay refuses a request; the connection closes with ``code``.

    Attributes:
        code: the websocket close code to send.
        reason: a short, user-presentable reason (no codes, no payloads).
    """

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"RelayRejection({self.code.name}, {self.reason!r})"


class PeerState(enum.Enum):
    """Where one connection stands in the pairing flow."""

    NEW = "new"
    """Connected; neither Register nor Claim yet."""
    WAITING = "waiting"
    """A user holding a nameplate, waiting for a technician."""
    PAIRED = "paired"
    """One side of an active pair; frames are forwarded."""
    CLOSED = "closed"
    """The code expired or the partner left; the connection must be closed."""
    QUEUED = "queued"
    """A user whose help request waits in the queue."""
    CONSOLE = "console"
    """A signed-in technician watching the queue."""


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    """What a user gets for registering.

    Attributes:
        nameplate: the number that goes in the pairing code.
        sid: the random session id both peers will see.
        expires_at: when the nameplate can no longer be claimed (``now`` scale).
        expires_in: whole seconds until then, as told to the user.
    """

    nameplate: int
    sid: bytes
    expires_at: float
    expires_in: int


@dataclasses.dataclass(frozen=True, slots=True)
class Pairing(Generic[H]):
    """A successful claim.

    Attributes:
        sid: the session id (the one the user got in its Registration).
        user: the handle that registered.
        technician: the handle that claimed.
    """

    sid: bytes
    user: H
    technician: H


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    """Gauges for monitoring (``/healthz``)."""

    connections: int
    waiting_codes: int
    active_pairs: int
    queued_users: int = 0
    consoles: int = 0


@dataclasses.dataclass(slots=True, eq=False)
class _Peer(Generic[H]):
    handle: H
    key: str
    state: PeerState = PeerState.NEW
    nameplate: int | None = None
    partner: _Peer[H] | None = None


@dataclasses.dataclass(slots=True, eq=False)
class _Slot(Generic[H]):
    user: _Peer[H]
    sid: bytes
    expires_at: float
    technician: _Peer[H] | None = None


class Registry(Generic[H]):
    """Pairing state of every connection to one relay.

    Args:
        code_ttl: seconds a nameplate stays claimable after registering.
        max_waiting: the most users waiting at once (at most 9900 nameplates).
        max_waiting_per_address: the most users one address (IPv6: /64) may
            have waiting at once.
        registrations_per_window: registrations one address may make in a
            burst, refilled over registration_window seconds.
        max_connections: the most connections in total.
        max_connections_per_address: the most connections from one address
            (IPv6: one /64).
        address_claims_per_window: claims one address may make in a burst,
            successful or not (a claim burns a user's code either way).
        address_claim_window: seconds for that allowance to refill completely.
        rng: the source of nameplates and session ids.
    """

    def __init__(
        self,
        *,
        code_ttl: float = 600.0,
        max_waiting: int = _ALL_NAMEPLATES,
        max_connections: int = 1000,
        max_connections_per_address: int = 20,
        address_claims_per_window: int = 20,
        address_claim_window: float = 600.0,
        max_waiting_per_address: int = 5,
        registrations_per_window: int = 10,
        registration_window: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < code_ttl <= 24 * 3600:
            raise ValueError("code_ttl must be in (0, 86400] seconds")
        if max_waiting < 1:
            raise ValueError("max_waiting must be positive")
        self.code_ttl = code_ttl
        self.max_waiting = max_waiting
        self._rng = rng if rng is not None else secrets.SystemRandom()
        self._connections = ConnectionLimiter(max_connections_per_address, max_connections)
        self.claims = RateLimiter(address_claims_per_window, address_claim_window)
        self.registrations = RateLimiter(registrations_per_window, registration_window)
        self.max_waiting_per_address = max_waiting_per_address
        # address key -> users waiting behind a code from there
        self._waiting_from: dict[str, int] = {}
        self._short_in_use = 0
        self._peers: dict[H, _Peer[H]] = {}
        # Every nameplate in use: waiting (technician is None) or paired.
        self._slots: dict[int, _Slot[H]] = {}
        self._waiting = 0
        # Pairs made by join() (the queue): they hold no nameplate.
        self._joined = 0
        self._in_state: dict[PeerState, int] = {PeerState.QUEUED: 0, PeerState.CONSOLE: 0}

    # --- queries --------------------------------------------------------------

    def counts(self) -> Counts:
        """Connections, waiting nameplates and active pairs right now."""
        return Counts(
            connections=len(self._peers),
            waiting_codes=self._waiting,
            active_pairs=len(self._slots) - self._waiting + self._joined,
            queued_users=self._in_state[PeerState.QUEUED],
            consoles=self._in_state[PeerState.CONSOLE],
        )

    def state(self, handle: H) -> PeerState:
        """The state of a connected handle.

        Raises:
            KeyError: the handle is not connected.
        """
        return self._peers[handle].state

    def partner(self, handle: H) -> H | None:
        """The other side of the handle's pair, if it is paired."""
        peer = self._peers.get(handle)
        if peer is None or peer.partner is None:
            return None
        return peer.partner.handle

    def __contains__(self, handle: object) -> bool:
        return handle in self._peers

    # --- transitions ----------------------------------------------------------

    def connect(self, handle: H, address: str) -> None:
        """Admit a new connection from ``address``; its state becomes NEW.

        Raises:
            RelayRejection: TOO_MANY_CONNECTIONS, in total or from this address.
            InvalidState: the handle is already connected.
        """
        if handle in self._peers:
            raise InvalidState("handle already connected")
        key = address_key(address)
        refusal = self._connections.acquire(key)
        if refusal is not None:
            raise RelayRejection(CloseCode.TOO_MANY_CONNECTIONS, refusal)
        self._peers[handle] = _Peer(handle, key)

    def register(self, handle: H, now: float) -> Registration:
        """Give a NEW connection a free nameplate; it becomes WAITING.

        Raises:
            RelayRejection: RELAY_FULL when no nameplate can be given out.
            InvalidState: the handle is not NEW.
        """
        peer = self._expect(handle, PeerState.NEW)
        self.purge_expired(now)
        if self._waiting_from.get(peer.key, 0) >= self.max_waiting_per_address:
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "too many codes waiting from this address; use one"
            )
        if not self.registrations.allow(peer.key, now):
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "too many codes asked from this address; wait"
            )
        nameplate = self._free_nameplate() if self._waiting < self.max_waiting else None
        if nameplate is None:
            raise RelayRejection(CloseCode.RELAY_FULL, "relay is busy; try again later")
        sid = self._rng.randbytes(SID_BYTES)
        expires_at = now + self.code_ttl
        self._slots[nameplate] = _Slot(peer, sid, expires_at)
        self._short_in_use += nameplate <= _SHORT_MAX
        self._waiting += 1
        self._waiting_from[peer.key] = self._waiting_from.get(peer.key, 0) + 1
        peer.state = PeerState.WAITING
        peer.nameplate = nameplate
        return Registration(nameplate, sid, expires_at, math.ceil(self.code_ttl))

    def claim(self, handle: H, nameplate: int, now: float) -> Pairing[H]:
        """Pair a NEW connection with the user waiting behind ``nameplate``.

        Both become PAIRED. Every claim counts against the claimer's
        address, successful or not: a random claim that succeeds burns a
        waiting user's code just as surely as one that fails.

        Raises:
            RelayRejection: RATE_LIMITED, UNKNOWN_CODE, CODE_EXPIRED or
                ALREADY_CLAIMED.
            InvalidState: the handle is not NEW.
        """
        tech = self._expect(handle, PeerState.NEW)
        if not self.claims.allow(tech.key, now):
            raise RelayRejection(CloseCode.RATE_LIMITED, "too many claims from this address; wait")
        slot = self._slots.get(nameplate)
        if slot is None:
            self._fail(tech, now, CloseCode.UNKNOWN_CODE, "no one is waiting for this code")
        elif slot.technician is not None:
            self._fail(tech, now, CloseCode.ALREADY_CLAIMED, "this code was already used")
        elif now >= slot.expires_at:
            self._expire(nameplate, slot)
            self._fail(tech, now, CloseCode.CODE_EXPIRED, "this code has expired")
        user = slot.user
        slot.technician = tech
        self._waiting -= 1
        self._unwait(user.key)
        user.state = tech.state = PeerState.PAIRED
        user.partner, tech.partner = tech, user
        tech.nameplate = nameplate
        return Pairing(slot.sid, user.handle, tech.handle)

    def enter(self, handle: H, state: PeerState) -> None:
        """Move a NEW connection to QUEUED (a help request) or CONSOLE (a queue watcher).

        Raises:
            InvalidState: the handle is not NEW, or ``state`` is neither.
        """
        if state not in self._in_state:
            raise InvalidState(f"cannot enter {state.value}")
        peer = self._expect(handle, PeerState.NEW)
        self._set_state(peer, state)

    def join(self, user: H, technician: H, sid: bytes) -> Pairing[H]:
        """Pair a QUEUED user with a NEW technician (a claimed help request).

        Raises:
            InvalidState: the user is not QUEUED or the technician not NEW.
        """
        queued = self._expect(user, PeerState.QUEUED)
        tech = self._expect(technician, PeerState.NEW)
        self._set_state(queued, PeerState.PAIRED)
        tech.state = PeerState.PAIRED
        queued.partner, tech.partner = tech, queued
        self._joined += 1
        return Pairing(sid, user, technician)

    def requeue(self, user: H) -> None:
        """A joined user whose technician left goes back to QUEUED.

        Raises:
            InvalidState: the user is not CLOSED (its partner did not just leave).
        """
        peer = self._expect(user, PeerState.CLOSED)
        self._set_state(peer, PeerState.QUEUED)

    def rejoin(self, user: H, technician: H) -> None:
        """Pair two NEW connections that resumed a session (relay.resume); no nameplate.

        Raises:
            InvalidState: either is not NEW.
        """
        first, second = self._expect(user, PeerState.NEW), self._expect(technician, PeerState.NEW)
        first.state = second.state = PeerState.PAIRED
        first.partner, second.partner = second, first
        self._joined += 1

    def purge_expired(self, now: float) -> list[H]:
        """Free every nameplate whose code expired at ``now``.

        Returns:
            The users that were waiting behind them, now CLOSED. The caller
            should close their connections (with CODE_EXPIRED).
        """
        expired = [
            (n, s) for n, s in self._slots.items() if s.technician is None and now >= s.expires_at
        ]
        for nameplate, slot in expired:
            self._expire(nameplate, slot)
        return [slot.user.handle for _, slot in expired]

    def disconnect(self, handle: H) -> H | None:
        """Forget a connection, whatever its state; frees what it held.

        Returns:
            The partner when this ended an active pair. The partner is now
            CLOSED: the caller should tell it (PeerLeft) and close it.
            None otherwise, including for an unknown handle.
        """
        peer = self._peers.pop(handle, None)
        if peer is None:
            return None
        self._connections.release(peer.key)
        partner = peer.partner
        if peer.state is PeerState.WAITING and peer.nameplate is not None:
            self._drop_slot(peer.nameplate)
            self._waiting -= 1
            self._unwait(peer.key)
        elif peer.state is PeerState.PAIRED and peer.nameplate is not None:
            self._drop_slot(peer.nameplate)
        elif peer.state is PeerState.PAIRED:
            self._joined -= 1
        self._set_state(peer, PeerState.CLOSED)
        peer.partner = None
        if partner is None:
            return None
        partner.state = PeerState.CLOSED
        partner.partner = None
        return partner.handle

    # --- internals ------------------------------------------------------------

    def _expect(self, handle: H, state: PeerState) -> _Peer[H]:
        peer = self._peers.get(handle)
        if peer is None:
            raise InvalidState("handle is not connected")
        if peer.state is not state:
            raise InvalidState(f"handle is {peer.state.value}, not {state.value}")
        return peer

    def _set_state(self, peer: _Peer[H], state: PeerState) -> None:
        if peer.state in self._in_state:
            self._in_state[peer.state] -= 1
        if state in self._in_state:
            self._in_state[state] += 1
        peer.state = state

    def _fail(self, peer: _Peer[H], now: float, code: CloseCode, reason: str) -> NoReturn:
        raise RelayRejection(code, reason)

    def _expire(self, nameplate: int, slot: _Slot[H]) -> None:
        self._drop_slot(nameplate)
        self._waiting -= 1
        self._unwait(slot.user.key)
        slot.user.state = PeerState.CLOSED

    def _drop_slot(self, nameplate: int) -> None:
        del self._slots[nameplate]
        self._short_in_use -= nameplate <= _SHORT_MAX

    def _unwait(self, key: str) -> None:
        n = self._waiting_from[key]
        if n == 1:
            del self._waiting_from[key]
        else:
            self._waiting_from[key] = n - 1

    def _free_nameplate(self) -> int | None:
        if self._short_in_use < _SHORT_IN_USE:
            return self._draw(NAMEPLATE_MIN, _SHORT_MAX) or self._draw(
                _SHORT_MAX + 1, NAMEPLATE_MAX
            )
        return self._draw(_SHORT_MAX + 1, NAMEPLATE_MAX) or self._draw(NAMEPLATE_MIN, _SHORT_MAX)

    def _draw(self, low: int, high: int) -> int | None:
        for _ in range(_DRAWS):
            n = self._rng.randint(low, high)
            if n not in self._slots:
                return n
        free = [n for n in range(low, high + 1) if n not in self._slots]
        return self._rng.choice(free) if free else None
