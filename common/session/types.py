"""The secure session's limits and events (see :mod:`common.session`)."""

from __future__ import annotations

import dataclasses
import enum

from common.crypto.record import MAX_PLAINTEXT
from common.protocol.channels import Channel
from common.protocol.messages import AppMessage


__all__ = [
    "DATA_HEADER",
    "EndCause",
    "LinkLost",
    "LinkRestored",
    "MessageReceived",
    "SessionEnded",
    "SessionEvent",
    "SessionLimits",
]

DATA_HEADER = 2


@dataclasses.dataclass(frozen=True)
class SessionLimits:
    """Timers and sizes of a session.

    Attributes:
        resume_grace: how long a dropped link may take to come back.
        retransmit_budget: unacknowledged reliable bytes kept per direction;
            beyond it the session cannot resume until the peer catches up.
        ack_bytes, ack_interval: acknowledge after this much reliable data,
            or this long after the first unacknowledged record.
    """

    heartbeat_interval: float = 5.0
    peer_timeout: float = 15.0
    rekey_records: int = 1 << 20
    rekey_bytes: int = 16 << 30
    rekey_interval: float = 900.0
    fragment_size: int = 64 * 1024
    initial_window: int = 4 * 1024 * 1024
    resume_grace: float = 120.0
    retransmit_budget: int = 4 * 1024 * 1024
    ack_bytes: int = 256 * 1024
    ack_interval: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.fragment_size <= MAX_PLAINTEXT - DATA_HEADER:
            raise ValueError("fragment_size must fit in one record")
        if self.initial_window < self.fragment_size:
            raise ValueError("initial_window must hold at least one fragment")
        if self.peer_timeout <= self.heartbeat_interval:
            raise ValueError("peer_timeout must exceed heartbeat_interval")
        if not 0 < self.resume_grace <= 600:
            raise ValueError("resume_grace must be in (0, 600] seconds")
        if self.retransmit_budget < 2 * self.fragment_size:
            raise ValueError("retransmit_budget must hold at least two fragments")
        if not 0 < self.ack_bytes <= self.retransmit_budget // 2:
            raise ValueError("ack_bytes must be at most half the retransmit budget")
        if not 0 < self.ack_interval < self.peer_timeout:
            raise ValueError("ack_interval must be positive and below peer_timeout")


@dataclasses.dataclass(frozen=True)
class MessageReceived:
    channel: Channel
    message: AppMessage


class EndCause(enum.Enum):
    """Why a session ended: what callers branch on (the reason is for people)."""

    CLOSED = "closed"
    """We ended it (close())."""
    PEER_CLOSED = "peer_closed"
    """The other side ended it with an authenticated CLOSE."""
    PEER_SILENT = "peer_silent"
    """The other side stopped responding and the session could not be resumed."""
    SECURITY = "security"
    """A record, proof or message failed a check (tampering, replay, wrong secret)."""
    LINK_LOST = "link_lost"
    """The link dropped and did not come back in time: an abnormal end."""
    RESUME_REFUSED = "resume_refused"
    """The relay refused to resume the session (unknown or used ticket, sign-in)."""


def _infer_cause(clean: bool, by_peer: bool) -> EndCause:
    if clean:
        return EndCause.PEER_CLOSED if by_peer else EndCause.CLOSED
    return EndCause.LINK_LOST


@dataclasses.dataclass(frozen=True, init=False)
class SessionEnded:
    """The session is over.

    Attributes:
        reason: user-presentable.
        clean: an authenticated CLOSE was exchanged.
        by_peer: the other side (or the network) ended it, not us.
        cause: why, as an enum (inferred from clean/by_peer when not given).
    """

    reason: str
    clean: bool
    by_peer: bool
    cause: EndCause

    def __init__(
        self, reason: str, clean: bool, by_peer: bool, cause: EndCause | None = None
    ) -> None:
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "clean", clean)
        object.__setattr__(self, "by_peer", by_peer)
        object.__setattr__(self, "cause", cause or _infer_cause(clean, by_peer))


@dataclasses.dataclass(frozen=True)
class LinkLost:
    """The link dropped; the session is suspended until ``resume_deadline`` (session clock)."""

    resume_deadline: float


@dataclasses.dataclass(frozen=True)
class LinkRestored:
    """The session resumed on a new link: nothing reliable was lost.

    Screen data in flight was dropped: the sharing side should send a
    keyframe, the viewing side has discarded any partial frame.
    """


SessionEvent = MessageReceived | SessionEnded | LinkLost | LinkRestored
