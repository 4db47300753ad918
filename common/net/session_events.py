"""Events both sides' session controllers report, besides their own.

The cores say *what* happened with enums; the UI packages decide the words.
"""

from __future__ import annotations

import dataclasses
import enum

from common.clipboard import ClipboardTransfer
from common.session import EndCause, SessionEnded


__all__ = [
    "ChatReceived",
    "ClipboardMoved",
    "ClipboardWrite",
    "EndReason",
    "Reconnected",
    "Reconnecting",
    "SessionClosed",
    "end_reason_of",
]


class EndReason(enum.StrEnum):
    """Why a session ended. The value is what goes in the authenticated CLOSE."""

    USER_STOPPED = "user-stopped"  # the user's Stop, tray Stop or the stop hotkey
    TECHNICIAN_ENDED = "technician-ended"
    USER_QUIT = "user-quit"  # the user's app was closed
    TECHNICIAN_QUIT = "technician-quit"
    PEER_ENDED = "peer-ended"  # a clean CLOSE with a reason we do not know
    CONNECTION_LOST = "connection-lost"  # abnormal end: no CLOSE, no resume in time
    SECURITY = "security"  # a record failed its checks: tampering, or a broken peer
    INTERNAL_ERROR = "internal-error"  # a feature failed here; the session was closed cleanly


@dataclasses.dataclass(frozen=True)
class ChatReceived:
    """A chat line from the other side."""

    text: str
    sent_at_ms: int


@dataclasses.dataclass(frozen=True)
class ClipboardWrite:
    """Put this text on this side's clipboard (the other side sent it, and it is allowed)."""

    text: str


@dataclasses.dataclass(frozen=True)
class ClipboardMoved:
    """Clipboard text crossed, or was refused (sizes only, never the text)."""

    transfer: ClipboardTransfer


@dataclasses.dataclass(frozen=True)
class Reconnecting:
    """The link dropped; the session waits for it until ``deadline`` (monotonic seconds)."""

    deadline: float


@dataclasses.dataclass(frozen=True)
class Reconnected:
    """The link is back: the same peer, the same grants."""


@dataclasses.dataclass(frozen=True)
class SessionClosed:
    """The one end-of-session event, on both sides.

    Attributes:
        reason: why.
        by_peer: the other side (or the network) ended it, not this side.
        detail: the secure session's own explanation, for logs and the record.
    """

    reason: EndReason
    by_peer: bool
    detail: str = ""


def end_reason_of(ended: SessionEnded, own: EndReason | None) -> EndReason:
    """Map the secure session's end to an :class:`EndReason`.

    Args:
        ended: how the secure session ended.
        own: the reason this side closed with, if it did.
    """
    if not ended.by_peer and own is not None:
        return own
    if ended.clean:
        try:
            return EndReason(ended.reason)
        except ValueError:
            return EndReason.PEER_ENDED
    if ended.cause is EndCause.SECURITY:
        return EndReason.SECURITY
    return EndReason.CONNECTION_LOST
