"""Events both sides' session objects report, besides their own."""

from __future__ import annotations

import dataclasses


__all__ = ["ChatReceived", "SessionOver"]


@dataclasses.dataclass(frozen=True)
class ChatReceived:
    """A chat line from the other side."""

    text: str
    sent_at_ms: int


@dataclasses.dataclass(frozen=True)
class SessionOver:
    """The session ended; reason is user-presentable."""

    reason: str
    clean: bool
