"""Clipboard text sync, the part both sides share (pure; each app supplies its clipboard).

Each side wraps one :class:`ClipboardSync` and tells it what this side
allows right now through two readers: ``may_send()`` and ``may_receive()``.
On the user's side they ask the capability authority (granted, not paused)
and the user's per-direction toggles; on the technician's side, the
technician's switch. Nothing here keeps a copy of a grant.

Protocol: both sides announce a :class:`~common.protocol.messages.ClipboardPolicy`
(will send, will receive, size limit), again whenever it changes
(:meth:`ClipboardSync.refresh`). Text goes out only when this side may send
and the peer said it receives and the text fits its limit. Text that arrives
is applied only if this side may receive, whatever the peer announced.
Text over ``max_bytes`` (UTF-8) is refused both ways. Every transfer, done
or refused, is a :class:`ClipboardTransfer` event: sizes and outcomes,
never the text. Local changes while this side may not send are not events
at all (they are none of the session's business). Text that just crossed
does not bounce back when the clipboard reports the change.

Drain :meth:`~ClipboardSync.messages_to_send` and
:meth:`~ClipboardSync.events_received` after every call.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Protocol

from common.protocol.messages import CLIPBOARD_MAX_TEXT, ClipboardPolicy, ClipboardText


__all__ = [
    "DEFAULT_MAX_BYTES",
    "CallbackClipboard",
    "ClipboardPort",
    "ClipboardSync",
    "ClipboardTransfer",
    "Flow",
    "Outcome",
]

DEFAULT_MAX_BYTES = 1024 * 1024


class Flow(enum.Enum):
    """Which way text went, from this side's point of view."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Outcome(enum.Enum):
    SENT = "sent"  # handed to the channel
    APPLIED = "applied"  # written to this side's clipboard
    NOT_ALLOWED = "not_allowed"  # this side does not accept text now (grant, pause, switch)
    PEER_REFUSES = "peer_refuses"  # the other side does not accept text now
    TOO_LARGE = "too_large"  # over a size limit


@dataclasses.dataclass(frozen=True)
class ClipboardTransfer:
    """One clipboard transfer for the session record and the UI (no content).

    Attributes:
        flow: outbound (this side's text) or inbound.
        size: UTF-8 bytes.
        outcome: what happened to it.
    """

    flow: Flow
    size: int
    outcome: Outcome


class ClipboardPort(Protocol):
    """The real clipboard (the Qt app implements it)."""

    def set_text(self, text: str) -> None: ...


class CallbackClipboard:
    """A clipboard port that hands the text to a callback (each app's UI writes it)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def set_text(self, text: str) -> None:
        self._write(text)


class ClipboardSync:
    """One side's clipboard sync (see the module docstring)."""

    def __init__(
        self,
        port: ClipboardPort,
        *,
        may_send: Callable[[], bool],
        may_receive: Callable[[], bool],
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not 0 < max_bytes <= CLIPBOARD_MAX_TEXT:
            raise ValueError("max_bytes out of range")
        self._port = port
        self._may_send = may_send
        self._may_receive = may_receive
        self._max = max_bytes
        self._peer = ClipboardPolicy(send=False, receive=False, max_bytes=0)
        self._announced: ClipboardPolicy | None = None
        self._last_text: str | None = None  # the last text that crossed, either way
        self._outgoing: list[ClipboardPolicy | ClipboardText] = []
        self._events: list[ClipboardTransfer] = []

    @property
    def policy(self) -> ClipboardPolicy:
        """What this side announces now."""
        return ClipboardPolicy(
            send=self._may_send(), receive=self._may_receive(), max_bytes=self._max
        )

    @property
    def peer_policy(self) -> ClipboardPolicy:
        """What the other side announced last."""
        return self._peer

    @property
    def max_bytes(self) -> int:
        return self._max

    def refresh(self) -> None:
        """Announce the policy if it changed (call at start and after every grant change)."""
        policy = self.policy
        if policy != self._announced:
            self._announced = policy
            self._outgoing.append(policy)

    def local_changed(self, text: str) -> None:
        """This side's clipboard now holds text: send it if everything allows."""
        if not self._may_send() or text == self._last_text:
            return
        size = len(text.encode("utf-8"))
        if size > self._max:
            outcome = Outcome.TOO_LARGE
        elif not self._peer.receive:
            outcome = Outcome.PEER_REFUSES
        elif size > self._peer.max_bytes:
            outcome = Outcome.TOO_LARGE
        else:
            outcome = Outcome.SENT
            self._last_text = text
            self._outgoing.append(ClipboardText(text))
        self._events.append(ClipboardTransfer(Flow.OUTBOUND, size, outcome))

    def receive(self, msg: ClipboardText | ClipboardPolicy) -> None:
        """A clipboard message from the other side."""
        if isinstance(msg, ClipboardPolicy):
            self._peer = msg
            return
        size = len(msg.text.encode("utf-8"))
        if not self._may_receive():
            outcome = Outcome.NOT_ALLOWED
        elif size > self._max:
            outcome = Outcome.TOO_LARGE
        else:
            outcome = Outcome.APPLIED
            self._last_text = msg.text
            self._port.set_text(msg.text)
        self._events.append(ClipboardTransfer(Flow.INBOUND, size, outcome))

    def messages_to_send(self) -> list[ClipboardPolicy | ClipboardText]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def events_received(self) -> list[ClipboardTransfer]:
        events, self._events = self._events, []
        return events
