"""Clipboard text sync on the technician's side (pure; the Qt app supplies the clipboard).

The twin of :mod:`client.core.control.clipboard` without the consent part
(the user's side enforces that): one on/off switch, a size limit, and an
event for every transfer. Both sides announce a
:class:`~common.protocol.messages.ClipboardPolicy`; text goes out only when
the user's side said it receives and the text fits its limit.

The two programs share no code outside ``common``, hence the twin.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

from common.protocol.messages import CLIPBOARD_MAX_TEXT, ClipboardPolicy, ClipboardText


__all__ = ["ClipboardPort", "TechnicianClipboard", "Transfer", "TransferOutcome"]

DEFAULT_MAX_BYTES = 1024 * 1024


class TransferOutcome(enum.Enum):
    SENT = "sent"
    APPLIED = "applied"
    OFF = "off"  # the technician's switch is off
    PEER_REFUSES = "peer_refuses"  # the user does not allow this direction now
    TOO_LARGE = "too_large"


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One clipboard transfer for the session record (no content).

    Attributes:
        to_user: True for technician -> user.
        size: UTF-8 bytes.
        outcome: what happened.
    """

    to_user: bool
    size: int
    outcome: TransferOutcome


class ClipboardPort(Protocol):
    def set_text(self, text: str) -> None: ...


class TechnicianClipboard:
    """The technician's clipboard sync: on/off, size limit, events."""

    def __init__(
        self, port: ClipboardPort, *, enabled: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if not 0 < max_bytes <= CLIPBOARD_MAX_TEXT:
            raise ValueError("max_bytes out of range")
        self._port = port
        self._enabled = enabled
        self._max = max_bytes
        self._peer = ClipboardPolicy(send=False, receive=False, max_bytes=0)
        self._last_text: str | None = None
        self._outgoing: list[ClipboardPolicy | ClipboardText] = []
        self._events: list[Transfer] = []

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def peer_policy(self) -> ClipboardPolicy:
        """What the user's side allows now."""
        return self._peer

    @property
    def policy(self) -> ClipboardPolicy:
        return ClipboardPolicy(send=self._enabled, receive=self._enabled, max_bytes=self._max)

    def start(self) -> None:
        """Announce the policy (call once the channel is open)."""
        self._outgoing.append(self.policy)

    def set_enabled(self, enabled: bool) -> None:
        if enabled != self._enabled:
            self._enabled = enabled
            self._outgoing.append(self.policy)

    def local_changed(self, text: str) -> None:
        """The technician's clipboard holds new text: send it if allowed."""
        if not self._enabled or text == self._last_text:
            return
        size = len(text.encode("utf-8"))
        if size > self._max:
            outcome = TransferOutcome.TOO_LARGE
        elif not self._peer.receive:
            outcome = TransferOutcome.PEER_REFUSES
        elif size > self._peer.max_bytes:
            outcome = TransferOutcome.TOO_LARGE
        else:
            outcome = TransferOutcome.SENT
            self._last_text = text
            self._outgoing.append(ClipboardText(text))
        self._events.append(Transfer(True, size, outcome))

    def receive(self, msg: ClipboardText | ClipboardPolicy) -> None:
        """A clipboard message from the user's side."""
        if isinstance(msg, ClipboardPolicy):
            self._peer = msg
            return
        size = len(msg.text.encode("utf-8"))
        if not self._enabled:
            outcome = TransferOutcome.OFF
        elif size > self._max:
            outcome = TransferOutcome.TOO_LARGE
        else:
            outcome = TransferOutcome.APPLIED
            self._last_text = msg.text
            self._port.set_text(msg.text)
        self._events.append(Transfer(False, size, outcome))

    def messages_to_send(self) -> list[ClipboardPolicy | ClipboardText]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def events_received(self) -> list[Transfer]:
        events, self._events = self._events, []
        return events
