"""A small honest session for the support-record tests: both sides' streams, signed."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.capability import Capability
from common.record.events import (
    ActorRole,
    CapabilityGranted,
    CapabilityRequested,
    ChatMessage,
    ClipboardOutcome,
    ClipboardTransferred,
    ControlStarted,
    ControlStopped,
    Direction,
    PairingMode,
    PairingSucceeded,
    ReportFiled,
    SessionEnded,
    SessionPaused,
    SessionResumed,
    chat_message,
    sha256_hex,
)
from common.record.log import RecordLog, SignedEvent, public_key_bytes
from common.record.verify import RecordTrust


SESSION = "5e5510n"
T0 = 1_760_000_000_000


def fixed_key(n: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


USER_KEY = fixed_key(1)
TECH_KEY = fixed_key(2)
RELAY_KEY = fixed_key(3)
TRUST = RecordTrust(
    user=frozenset({public_key_bytes(USER_KEY)}),
    technician=frozenset({public_key_bytes(TECH_KEY)}),
    relay=frozenset({public_key_bytes(RELAY_KEY)}),
)


def report(**changes: str) -> ReportFiled:
    fields = {
        "problem": "Printer offline",
        "cause": "Driver",
        "resolution": "Reinstalled the driver",
        "category": "Printing",
        "outcome": "Resolved",
        "notes": "",
        "account": "alice",
    }
    fields.update(changes)
    return ReportFiled(**fields)


def user_chat(text: str = "hello") -> ChatMessage:
    return chat_message(text, Direction.TO_TECHNICIAN, keep_text=True)


def streams(*, with_report: bool = True) -> tuple[list[SignedEvent], list[SignedEvent]]:
    """(user events, technician events) of a short, honest, sealed session."""
    user = RecordLog(SESSION, ActorRole.USER, USER_KEY)
    tech = RecordLog(SESSION, ActorRole.TECHNICIAN, TECH_KEY)
    u: list[SignedEvent] = []
    t: list[SignedEvent] = []
    t.append(tech.append(PairingSucceeded(PairingMode.QUEUE), T0))
    u.append(user.append(PairingSucceeded(PairingMode.QUEUE), T0 + 1))
    t.append(tech.append(CapabilityRequested(Capability.CONTROL), T0 + 10))
    u.append(user.append(CapabilityGranted(Capability.VIEW), T0 + 20))
    u.append(user.append(CapabilityGranted(Capability.CONTROL), T0 + 21))
    t.append(tech.append(ControlStarted(), T0 + 30))
    u.append(user.append(user_chat(), T0 + 40))
    digest = sha256_hex(b"some copied text")
    u.append(
        user.append(
            ClipboardTransferred(Direction.TO_TECHNICIAN, 16, digest, ClipboardOutcome.DELIVERED),
            T0 + 50,
        )
    )
    u.append(user.append(SessionPaused(), T0 + 60))
    u.append(user.append(SessionResumed(), T0 + 70))
    t.append(tech.append(ControlStopped(), T0 + 80))
    t.append(tech.append(SessionEnded("technician-ended", abnormal=False, by_peer=False), T0 + 90))
    u.append(user.append(SessionEnded("technician-ended", abnormal=False, by_peer=True), T0 + 91))
    u.append(user.seal(T0 + 92))
    if with_report:
        t.append(tech.append(report(), T0 + 100))
        t.append(tech.seal(T0 + 101))
    return u, t


def record() -> list[SignedEvent]:
    u, t = streams()
    return [*t, *u]
