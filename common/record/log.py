"""Signed, hash-chained record events, and the log that appends them.

An event's signed body is the canonical JSON (:mod:`common.record.jcs`) of::

    {"v": 1, "session": ..., "seq": n, "ts_ms": t,
     "actor": {"role": ..., "key": hex}, "kind": ..., "data": {...},
     "prev": hex}

- ``seq`` counts the actor's own events from 1; ``prev`` is the hash of the
  actor's previous event (32 zero bytes before the first). Each actor (the
  user's device, the technician, the relay) keeps its own chain, so neither
  side waits for the other, and one side cannot reorder or drop the other's
  events without breaking a signature or a chain.
- ``hash = SHA-256(0x00 || body)``: RFC 6962 leaf hashing, so the same hash
  can later be a leaf of the relay's Merkle log.
- ``sig`` is the actor's Ed25519 signature over ``CONTEXT || body``; the label
  keeps a record signature from ever being valid as another kind of
  Deskhand signature (and the reverse).

On the wire and on disk one event is the canonical JSON of
``{"event": body, "sig": hex}``: :meth:`SignedEvent.to_bytes` and
:func:`parse_event`. Pure: no I/O, and time is passed in.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.crypto.signing_keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, signed_data
from common.errors import InvalidState
from common.record.events import (
    ActorRole,
    EventKind,
    Payload,
    ReportAmended,
    StreamSealed,
    payload_from_json,
    payload_to_json,
)
from common.record.jcs import MAX_SAFE_INTEGER, RecordFormatError, canonicalize, parse_canonical


__all__ = [
    "CONTEXT",
    "FORMAT_VERSION",
    "GENESIS",
    "HASH_BYTES",
    "MAX_EVENT_BYTES",
    "Actor",
    "RecordLog",
    "SignedEvent",
    "event_hash",
    "parse_event",
    "public_key_bytes",
]

FORMAT_VERSION = 1
CONTEXT = b"deskhand record event v1\x00"
HASH_BYTES = 32
GENESIS = bytes(HASH_BYTES)  # the "previous hash" of a stream's first event
MAX_EVENT_BYTES = 256 * 1024  # the record channel's message limit (AuditEvent.MAX_SIZE)
_MAX_SESSION = 128


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who signed an event: a role and that role's raw Ed25519 public key."""

    role: ActorRole
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != PUBLIC_KEY_BYTES:
            raise RecordFormatError("an actor key is 32 bytes")


@dataclasses.dataclass(frozen=True)
class SignedEvent:
    """One event of the record, as its actor signed it.

    Built by :class:`RecordLog` or :func:`parse_event`; constructing one by
    hand (or with :func:`dataclasses.replace`, as the tampering tests do)
    does not check the signature: :func:`common.record.verify.verify_log`
    does.
    """

    session: str
    seq: int
    ts_ms: int
    actor: Actor
    payload: Payload
    prev: bytes
    signature: bytes

    @property
    def kind(self) -> EventKind:
        return self.payload.KIND

    def body(self) -> dict[str, Any]:
        """The signed part as a JSON object."""
        return {
            "v": FORMAT_VERSION,
            "session": self.session,
            "seq": self.seq,
            "ts_ms": self.ts_ms,
            "actor": {"role": self.actor.role.value, "key": self.actor.key.hex()},
            "kind": self.kind.value,
            "data": payload_to_json(self.payload),
            "prev": self.prev.hex(),
        }

    @functools.cached_property
    def body_bytes(self) -> bytes:
        """The canonical bytes that are hashed and signed."""
        return canonicalize(self.body())

    @functools.cached_property
    def hash(self) -> bytes:
        """SHA-256(0x00 || body): the chain link, and the Merkle leaf hash."""
        return event_hash(self.body_bytes)

    def to_bytes(self) -> bytes:
        """The event as one canonical JSON object (a line of a bundle, with no newline)."""
        return canonicalize({"event": self.body(), "sig": self.signature.hex()})


def event_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _hex_bytes(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * length or value != value.lower():
        raise RecordFormatError(f"{what} is not {length} bytes of lowercase hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RecordFormatError(f"{what} is not hex") from None


def _member(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if type(value) is not kind:  # exact: true is not an integer here
        raise RecordFormatError(f"event member {name!r} is missing or not a {kind.__name__}")
    return value


def _exact_members(obj: object, names: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != names:
        raise RecordFormatError(f"{what} does not have exactly the members {sorted(names)}")
    return obj


def parse_event(data: bytes) -> SignedEvent:
    """Parse one event written by :meth:`SignedEvent.to_bytes`; the signature is not checked.

    Raises:
        RecordFormatError: anything but one canonical, well-formed event of
            a known kind (the only error, whatever the bytes).
    """
    outer = _exact_members(
        parse_canonical(data, max_bytes=MAX_EVENT_BYTES), {"event", "sig"}, "an event"
    )
    signature = _hex_bytes(outer["sig"], SIGNATURE_BYTES, "the signature")
    body = _exact_members(
        outer["event"],
        {"v", "session", "seq", "ts_ms", "actor", "kind", "data", "prev"},
        "an event body",
    )
    if body["v"] != FORMAT_VERSION or type(body["v"]) is not int:
        raise RecordFormatError(f"unknown record format {body['v']!r}")
    session = _member(body, "session", str)
    if not 0 < len(session) <= _MAX_SESSION:
        raise RecordFormatError("the session id is empty or too long")
    seq = _member(body, "seq", int)
    ts_ms = _member(body, "ts_ms", int)
    if seq < 1 or ts_ms < 0:
        raise RecordFormatError("seq starts at 1 and times are not negative")
    actor_obj = _exact_members(body["actor"], {"role", "key"}, "the actor")
    try:
        role = ActorRole(actor_obj["role"])
        kind = EventKind(body["kind"])
    except ValueError:
        raise RecordFormatError("unknown actor role or event kind") from None
    actor = Actor(role, _hex_bytes(actor_obj["key"], PUBLIC_KEY_BYTES, "the actor key"))
    data_obj = body["data"]
    if not isinstance(data_obj, dict):
        raise RecordFormatError("event data is not an object")
    payload = payload_from_json(kind, data_obj)
    prev = _hex_bytes(body["prev"], HASH_BYTES, "the previous hash")
    return SignedEvent(session, seq, ts_ms, actor, payload, prev, signature)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class RecordLog:
    """One actor's stream for one session: signs and chains each event it is given.

    It keeps only the head (sequence number and hash); storing, spooling and
    uploading the events it returns is the caller's business. After
    :meth:`seal` only report amendments may follow (a report filed later).
    """

    def __init__(self, session: str, role: ActorRole, key: Ed25519PrivateKey) -> None:
        if not 0 < len(session) <= _MAX_SESSION:
            raise ValueError("the session id is empty or too long")
        self._session = session
        self._key = key
        self._actor = Actor(role, public_key_bytes(key))
        self._seq = 0
        self._head = GENESIS
        self._last_ts = 0
        self._sealed = False

    @classmethod
    def resume(cls, last: SignedEvent, key: Ed25519PrivateKey) -> RecordLog:
        """Go on with a stream after a restart, from its last event (e.g. to add an amendment).

        Raises:
            ValueError: last was not signed with key.
        """
        log = cls(last.session, last.actor.role, key)
        if last.actor != log._actor:
            raise ValueError("the last event was signed with another key")
        log._seq, log._head, log._last_ts = last.seq, last.hash, last.ts_ms
        log._sealed = last.kind in (EventKind.STREAM_SEALED, EventKind.REPORT_AMENDED)
        return log

    @property
    def actor(self) -> Actor:
        return self._actor

    @property
    def count(self) -> int:
        """How many events this stream holds so far."""
        return self._seq

    @property
    def head(self) -> bytes:
        """The hash of the last event (GENESIS before the first)."""
        return self._head

    @property
    def sealed(self) -> bool:
        return self._sealed

    def append(self, payload: Payload, now_ms: int) -> SignedEvent:
        """Sign payload as the next event, at now_ms (wall-clock milliseconds).

        Raises:
            ValueError: this actor's role may not sign payload's kind.
            InvalidState: the stream is sealed and payload is not a report
                amendment, or a report amendment before the seal.
        """
        if self._actor.role not in payload.ROLES:
            raise ValueError(f"{self._actor.role} may not record {payload.KIND}")
        if isinstance(payload, StreamSealed):
            raise ValueError("use seal() to close the stream")
        amendment = isinstance(payload, ReportAmended)
        if self._sealed and not amendment:
            raise InvalidState("the stream is sealed; only a report amendment may follow")
        if amendment and not self._sealed:
            raise InvalidState("an amendment comes after the stream is sealed; file the report")
        return self._sign(payload, now_ms)

    def seal(self, now_ms: int) -> SignedEvent:
        """Close the stream with a commitment to its count and last hash (security.md 9 case 45)."""
        if self._sealed:
            raise InvalidState("the stream is already sealed")
        event = self._sign(StreamSealed(self._seq, self._head.hex()), now_ms)
        self._sealed = True
        return event

    def _sign(self, payload: Payload, now_ms: int) -> SignedEvent:
        if self._seq >= MAX_SAFE_INTEGER:
            raise InvalidState("the stream is full")
        # A wall clock that steps back must not stop the record; the event
        # keeps the last time instead, and times never go backwards.
        ts = max(int(now_ms), self._last_ts)
        unsigned = SignedEvent(
            self._session, self._seq + 1, ts, self._actor, payload, self._head, b""
        )
        signature = self._key.sign(signed_data(CONTEXT, unsigned.body_bytes))
        event = dataclasses.replace(unsigned, signature=signature)
        event.__dict__["body_bytes"] = unsigned.body_bytes  # the same body: keep its bytes
        self._seq, self._head, self._last_ts = event.seq, event.hash, ts
        return event
