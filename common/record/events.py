"""What the support record says: a closed set of event kinds, each with its payload.

Every kind in :class:`EventKind` has exactly one payload dataclass here,
registered with :func:`_payload`. A payload holds only strings, integers,
booleans, enums (written as their string values) and ``None``, so it maps
onto canonical JSON (:mod:`common.record.jcs`) one to one, with no floats.
The session controllers build these from their typed core events; nothing
here knows about widgets or the network.

Never in the record: clipboard text, file contents, pairing codes, the
verification number. Chat text only when the organisation's policy keeps it
(:func:`chat_message`); otherwise its SHA-256 and length.

Each payload also says which actors may sign it (``ROLES``): a closing
report can only come from the technician, a join from the relay, and so on.
The verifier reports an event signed by the wrong side.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from common.capability import Capability
from common.record.jcs import MAX_SAFE_INTEGER, RecordFormatError


__all__ = [
    "PAYLOADS",
    "AbuseReported",
    "ActorRole",
    "CapabilityDeclined",
    "CapabilityGranted",
    "CapabilityRequested",
    "CapabilityRevoked",
    "ChatMessage",
    "ClipboardOutcome",
    "ClipboardTransferred",
    "CodeIssued",
    "ControlStarted",
    "ControlStopped",
    "Direction",
    "EventKind",
    "FileDecided",
    "FileDecision",
    "FileFinished",
    "FileOffered",
    "FileOutcome",
    "InboundRefused",
    "LinkLost",
    "LinkResumed",
    "PairingFailed",
    "PairingMode",
    "PairingSucceeded",
    "Payload",
    "PeerJoined",
    "PeerLeft",
    "ReportAmended",
    "ReportFiled",
    "ReportMissing",
    "RequestCreated",
    "SasConfirmed",
    "SasShown",
    "SessionEnded",
    "SessionPaused",
    "SessionResumed",
    "StopPressed",
    "StopSource",
    "StreamSealed",
    "TechnicianVerified",
    "chat_message",
    "payload_from_json",
    "payload_to_json",
    "sha256_hex",
]


class ActorRole(enum.StrEnum):
    """Who signs an event; each role keeps its own hash-chained stream."""

    USER = "user"  # the user client's device key
    TECHNICIAN = "technician"  # the technician's certified key
    RELAY = "relay"  # the relay's key: what only the relay sees (join, leave)


class EventKind(enum.StrEnum):
    # security.md 6.1
    REQUEST_CREATED = "request.created"
    CODE_ISSUED = "code.issued"
    PAIRING_SUCCEEDED = "pairing.succeeded"
    PAIRING_FAILED = "pairing.failed"
    TECHNICIAN_VERIFIED = "technician.verified"
    SAS_SHOWN = "sas.shown"
    SAS_CONFIRMED = "sas.confirmed"
    CAPABILITY_REQUESTED = "capability.requested"
    CAPABILITY_GRANTED = "capability.granted"
    CAPABILITY_DECLINED = "capability.declined"
    CAPABILITY_REVOKED = "capability.revoked"
    CONTROL_STARTED = "control.started"
    CONTROL_STOPPED = "control.stopped"
    FILE_OFFERED = "file.offered"
    FILE_DECIDED = "file.decided"
    FILE_FINISHED = "file.finished"
    CLIPBOARD_TRANSFERRED = "clipboard.transferred"
    CHAT_MESSAGE = "chat.message"
    STOP_PRESSED = "stop.pressed"
    ABUSE_REPORTED = "abuse.reported"
    SESSION_ENDED = "session.ended"
    # issue 11
    SESSION_PAUSED = "session.paused"
    SESSION_RESUMED = "session.resumed"
    INBOUND_REFUSED = "inbound.refused"
    LINK_LOST = "link.lost"
    LINK_RESUMED = "link.resumed"
    REPORT_FILED = "report.filed"
    REPORT_MISSING = "report.missing"
    REPORT_AMENDED = "report.amended"
    STREAM_SEALED = "stream.sealed"
    # the relay's own stream
    PEER_JOINED = "peer.joined"
    PEER_LEFT = "peer.left"


class Direction(enum.StrEnum):
    """Which way something crossed, the same words on both sides."""

    TO_USER = "to-user"
    TO_TECHNICIAN = "to-technician"


class PairingMode(enum.StrEnum):
    CODE = "code"
    QUEUE = "queue"


class ClipboardOutcome(enum.StrEnum):
    DELIVERED = "delivered"  # written to the receiving side's clipboard
    NOT_ALLOWED = "not-allowed"  # the grant, a pause or a switch stopped it
    TOO_LARGE = "too-large"


class FileDecision(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"


class FileOutcome(enum.StrEnum):
    COMPLETED = "completed"  # every byte arrived and the SHA-256 matched
    FAILED = "failed"
    CANCELLED = "cancelled"


class StopSource(enum.StrEnum):
    BUTTON = "button"
    TRAY = "tray"
    HOTKEY = "hotkey"


_USER = frozenset({ActorRole.USER})
_TECHNICIAN = frozenset({ActorRole.TECHNICIAN})
_RELAY = frozenset({ActorRole.RELAY})
_BOTH = frozenset({ActorRole.USER, ActorRole.TECHNICIAN})
_ALL = frozenset(ActorRole)

SHORT = 256  # ids, names, reasons
TEXT = 16 * 1024  # report fields, chat lines, abuse reports


def _hex(n: int) -> dict[str, int]:
    return {"hex": n}


def _max(n: int) -> dict[str, int]:
    return {"max": n}


@dataclasses.dataclass(frozen=True)
class Payload:
    """Base of every payload; KIND and ROLES are set by each subclass."""

    KIND: ClassVar[EventKind]
    ROLES: ClassVar[frozenset[ActorRole]]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(type(self), f, getattr(self, f.name))


PAYLOADS: dict[EventKind, type[Payload]] = {}
_P = TypeVar("_P", bound=type[Payload])


def _payload(kind: EventKind, roles: frozenset[ActorRole]) -> Callable[[_P], _P]:
    def register(cls: _P) -> _P:
        assert kind not in PAYLOADS, kind
        cls.KIND = kind
        cls.ROLES = roles
        PAYLOADS[kind] = cls
        return cls

    return register


# --- before and during pairing (user side) -------------------------------------


@_payload(EventKind.REQUEST_CREATED, _USER)
@dataclasses.dataclass(frozen=True)
class RequestCreated(Payload):
    request_id: str = dataclasses.field(metadata=_max(SHORT))
    category: str = dataclasses.field(metadata=_max(SHORT))


@_payload(EventKind.CODE_ISSUED, _USER)
@dataclasses.dataclass(frozen=True)
class CodeIssued(Payload):
    """A pairing code was shown (never the code itself)."""

    secret_digits: int
    expires_at_ms: int


@_payload(EventKind.PAIRING_SUCCEEDED, _BOTH)
@dataclasses.dataclass(frozen=True)
class PairingSucceeded(Payload):
    mode: PairingMode


@_payload(EventKind.PAIRING_FAILED, _BOTH)
@dataclasses.dataclass(frozen=True)
class PairingFailed(Payload):
    reason: str = dataclasses.field(metadata=_max(SHORT))


@_payload(EventKind.TECHNICIAN_VERIFIED, _USER)
@dataclasses.dataclass(frozen=True)
class TechnicianVerified(Payload):
    """The technician's certificate checked out: who the user was told is connecting.

    Attributes:
        key_sha256: SHA-256 of the technician's certified public key, hex.
    """

    name: str = dataclasses.field(metadata=_max(SHORT))
    organisation: str = dataclasses.field(metadata=_max(SHORT))
    key_sha256: str = dataclasses.field(metadata=_hex(32))


@_payload(EventKind.SAS_SHOWN, _BOTH)
@dataclasses.dataclass(frozen=True)
class SasShown(Payload):
    """The verification number was shown (not the number)."""


@_payload(EventKind.SAS_CONFIRMED, _USER)
@dataclasses.dataclass(frozen=True)
class SasConfirmed(Payload):
    """The user said the numbers match."""


# --- consent ------------------------------------------------------------------


@_payload(EventKind.CAPABILITY_REQUESTED, _TECHNICIAN)
@dataclasses.dataclass(frozen=True)
class CapabilityRequested(Payload):
    capability: Capability


@_payload(EventKind.CAPABILITY_GRANTED, _USER)
@dataclasses.dataclass(frozen=True)
class CapabilityGranted(Payload):
    capability: Capability


@_payload(EventKind.CAPABILITY_DECLINED, _USER)
@dataclasses.dataclass(frozen=True)
class CapabilityDeclined(Payload):
    capability: Capability


@_payload(EventKind.CAPABILITY_REVOKED, _USER)
@dataclasses.dataclass(frozen=True)
class CapabilityRevoked(Payload):
    capability: Capability


@_payload(EventKind.SESSION_PAUSED, _USER)
@dataclasses.dataclass(frozen=True)
class SessionPaused(Payload):
    pass


@_payload(EventKind.SESSION_RESUMED, _USER)
@dataclasses.dataclass(frozen=True)
class SessionResumed(Payload):
    pass


@_payload(EventKind.CONTROL_STARTED, _BOTH)
@dataclasses.dataclass(frozen=True)
class ControlStarted(Payload):
    pass


@_payload(EventKind.CONTROL_STOPPED, _BOTH)
@dataclasses.dataclass(frozen=True)
class ControlStopped(Payload):
    pass


@_payload(EventKind.INBOUND_REFUSED, _USER)
@dataclasses.dataclass(frozen=True)
class InboundRefused(Payload):
    """The user's gate dropped a message from the technician.

    Attributes:
        message_type: the message's type name.
        refusal: why ("not-granted", "paused", "not-expected").
        needs: the capability it would have needed, if any.
    """

    message_type: str = dataclasses.field(metadata=_max(SHORT))
    refusal: str = dataclasses.field(metadata=_max(SHORT))
    needs: Capability | None


# --- what crossed -------------------------------------------------------------


@_payload(EventKind.CLIPBOARD_TRANSFERRED, _BOTH)
@dataclasses.dataclass(frozen=True)
class ClipboardTransferred(Payload):
    """Clipboard text crossed or was refused: its size and hash, never the text."""

    direction: Direction
    size: int
    sha256: str = dataclasses.field(metadata=_hex(32))
    outcome: ClipboardOutcome


@_payload(EventKind.FILE_OFFERED, _BOTH)
@dataclasses.dataclass(frozen=True)
class FileOffered(Payload):
    transfer_id: str = dataclasses.field(metadata=_max(SHORT))
    name: str = dataclasses.field(metadata=_max(1024))
    size: int
    sha256: str = dataclasses.field(metadata=_hex(32))
    direction: Direction


@_payload(EventKind.FILE_DECIDED, _BOTH)
@dataclasses.dataclass(frozen=True)
class FileDecided(Payload):
    transfer_id: str = dataclasses.field(metadata=_max(SHORT))
    decision: FileDecision


@_payload(EventKind.FILE_FINISHED, _BOTH)
@dataclasses.dataclass(frozen=True)
class FileFinished(Payload):
    transfer_id: str = dataclasses.field(metadata=_max(SHORT))
    outcome: FileOutcome
    detail: str = dataclasses.field(default="", metadata=_max(SHORT))


@_payload(EventKind.CHAT_MESSAGE, _BOTH)
@dataclasses.dataclass(frozen=True)
class ChatMessage(Payload):
    """A chat line: always its hash and length, its text only if policy keeps it.

    Build it with :func:`chat_message`; a text that does not match its hash
    is refused, so a kept text is exactly what was hashed.

    Attributes:
        size: UTF-8 bytes of the text.
        text: the text, or None when the organisation keeps only the hash.
    """

    direction: Direction
    size: int
    sha256: str = dataclasses.field(metadata=_hex(32))
    text: str | None = dataclasses.field(metadata=_max(TEXT))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text is not None:
            raw = self.text.encode("utf-8", "surrogatepass")
            if len(raw) != self.size or sha256_hex(raw) != self.sha256:
                raise RecordFormatError("chat text does not match its size and SHA-256")


def chat_message(text: str, direction: Direction, *, keep_text: bool) -> ChatMessage:
    """The record of one chat line, keeping the text or only its hash (organisation policy)."""
    raw = text.encode("utf-8", "surrogatepass")
    return ChatMessage(direction, len(raw), sha256_hex(raw), text if keep_text else None)


# --- ends and links -----------------------------------------------------------


@_payload(EventKind.STOP_PRESSED, _USER)
@dataclasses.dataclass(frozen=True)
class StopPressed(Payload):
    source: StopSource


@_payload(EventKind.ABUSE_REPORTED, _USER)
@dataclasses.dataclass(frozen=True)
class AbuseReported(Payload):
    text: str = dataclasses.field(metadata=_max(TEXT))


@_payload(EventKind.LINK_LOST, _BOTH)
@dataclasses.dataclass(frozen=True)
class LinkLost(Payload):
    """The link dropped; the session waits for a resume."""


@_payload(EventKind.LINK_RESUMED, _BOTH)
@dataclasses.dataclass(frozen=True)
class LinkResumed(Payload):
    gap_ms: int


@_payload(EventKind.SESSION_ENDED, _BOTH)
@dataclasses.dataclass(frozen=True)
class SessionEnded(Payload):
    """The session ended.

    Attributes:
        reason: the ``EndReason`` value the CLOSE carried (or would have).
        abnormal: no authenticated CLOSE (a lost link, a crash seen by the peer).
        by_peer: the other side ended it.
    """

    reason: str = dataclasses.field(metadata=_max(64))
    abnormal: bool
    by_peer: bool


@_payload(EventKind.PEER_JOINED, _RELAY)
@dataclasses.dataclass(frozen=True)
class PeerJoined(Payload):
    role: ActorRole


@_payload(EventKind.PEER_LEFT, _RELAY)
@dataclasses.dataclass(frozen=True)
class PeerLeft(Payload):
    role: ActorRole


# --- the technician's report --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Report(Payload):
    """The closing report's fields, and the account that filed it.

    ``account`` is the relay account signed in when the report was filed;
    it is part of what the technician's key signs, so it cannot be changed
    afterwards.
    """

    problem: str = dataclasses.field(metadata=_max(TEXT))
    cause: str = dataclasses.field(metadata=_max(TEXT))
    resolution: str = dataclasses.field(metadata=_max(TEXT))
    category: str = dataclasses.field(metadata=_max(SHORT))
    outcome: str = dataclasses.field(metadata=_max(SHORT))
    notes: str = dataclasses.field(metadata=_max(TEXT))
    account: str = dataclasses.field(metadata=_max(SHORT))


@_payload(EventKind.REPORT_FILED, _TECHNICIAN)
@dataclasses.dataclass(frozen=True)
class ReportFiled(_Report):
    pass


@_payload(EventKind.REPORT_MISSING, _TECHNICIAN)
@dataclasses.dataclass(frozen=True)
class ReportMissing(Payload):
    """The session ended without a report (the tab was closed, or "End without report")."""


@_payload(EventKind.REPORT_AMENDED, _TECHNICIAN)
@dataclasses.dataclass(frozen=True)
class ReportAmended(_Report):
    """A report added (or corrected) after the technician's stream was sealed."""


@_payload(EventKind.STREAM_SEALED, _ALL)
@dataclasses.dataclass(frozen=True)
class StreamSealed(Payload):
    """The last event of a stream: it commits to everything its actor signed before.

    Attributes:
        count: how many events came before this one in the stream.
        last_hash: the hash of the last of them, hex (security.md 9 case 45:
            whoever carries the stream cannot drop events unseen).
    """

    count: int
    last_hash: str = dataclasses.field(metadata=_hex(32))


# --- the JSON mapping -----------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HEX_DIGITS = frozenset("0123456789abcdef")


def _check_field(cls: type[Payload], f: dataclasses.Field[Any], value: object) -> None:
    """Raise RecordFormatError unless value fits field f (used on build and on parse)."""
    allowed = _field_types(cls)[f.name]
    if value is None:
        if type(None) not in allowed:
            raise RecordFormatError(f"{cls.KIND}.{f.name} may not be null")
        return
    if not any(type(value) is t for t in allowed):  # exact: a bool is no int, a str no enum
        raise RecordFormatError(f"{cls.KIND}.{f.name} has the wrong type")
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_SAFE_INTEGER:
            raise RecordFormatError(f"{cls.KIND}.{f.name} is out of range")
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        if "hex" in f.metadata:
            if len(value) != 2 * f.metadata["hex"] or not _HEX_DIGITS.issuperset(value):
                raise RecordFormatError(
                    f"{cls.KIND}.{f.name} is not {f.metadata['hex']} bytes of hex"
                )
        elif len(value) > f.metadata.get("max", SHORT):
            raise RecordFormatError(f"{cls.KIND}.{f.name} is too long")


_TYPES: dict[type[Payload], dict[str, tuple[type, ...]]] = {}


def _field_types(cls: type[Payload]) -> dict[str, tuple[type, ...]]:
    """Each field's allowed runtime types, from its annotation (cached)."""
    found = _TYPES.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = {}
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
            found[f.name] = tuple(members)
        _TYPES[cls] = found
    return found


def payload_to_json(payload: Payload) -> dict[str, object]:
    """The payload as a JSON object (enums as their values)."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(payload):
        value = getattr(payload, f.name)
        out[f.name] = value.value if isinstance(value, enum.Enum) else value
    return out


def payload_from_json(kind: EventKind, data: Mapping[str, object]) -> Payload:
    """The payload of kind from its JSON object: exactly its members, each of its type.

    Raises:
        RecordFormatError: a missing or unknown member, a wrong type, a value
            out of range or a text that does not match its hash.
    """
    cls = PAYLOADS[kind]
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    if set(data) != names:
        extra = sorted(set(data) - names)
        missing = sorted(names - set(data))
        raise RecordFormatError(f"{kind} members differ: unknown {extra}, missing {missing}")
    values: dict[str, object] = {}
    for f in fields:
        raw = data[f.name]
        values[f.name] = raw
        for t in _field_types(cls)[f.name]:
            if isinstance(t, type) and issubclass(t, enum.Enum) and type(raw) is str:
                try:
                    values[f.name] = t(raw)
                except ValueError:
                    raise RecordFormatError(f"{kind}.{f.name}: unknown value {raw!r}") from None
    return cls(**values)
