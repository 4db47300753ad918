"""Clipboard text sync on the user's side (pure; the Qt app supplies the clipboard).

The app calls :meth:`ClipboardSync.local_changed` when the user's clipboard
changes (``QClipboard.dataChanged``) and implements :class:`ClipboardPort`
to write the technician's text. Messages go through the caller, like the
gate's: drain :meth:`~ClipboardSync.messages_to_send` and
:meth:`~ClipboardSync.events_received` after every call.

Policy (security.md 4.1: never automatic, per direction, size cap):

- nothing moves unless the user granted the "clipboard" capability;
- the user toggles each direction: ``to_technician`` and ``from_technician``;
- both sides announce a :class:`~common.protocol.messages.ClipboardPolicy`
  (will send, will receive, size limit). Text goes out only when the peer
  said it receives and the text fits its limit; text that arrives is
  applied only if this side allows that direction, whatever the peer sent;
- text larger than ``max_bytes`` (UTF-8) is refused both ways;
- every transfer, done or refused, is a :class:`ClipboardTransfer` event
  for the session record. Events carry sizes and outcomes, never the text.
  Changes of the user's clipboard while the capability is off or the
  direction is closed are not recorded at all (they are none of the
  session's business);
- text written from the technician does not bounce back when the
  clipboard reports the change.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Protocol

from common.protocol.messages import CLIPBOARD_MAX_TEXT, ClipboardPolicy, ClipboardText


__all__ = [
    "DEFAULT_MAX_BYTES",
    "ClipboardPort",
    "ClipboardSync",
    "ClipboardTransfer",
    "Direction",
    "Outcome",
]

DEFAULT_MAX_BYTES = 1024 * 1024


class Direction(enum.Enum):
    TO_TECHNICIAN = "to_technician"
    FROM_TECHNICIAN = "from_technician"


class Outcome(enum.Enum):
    SENT = "sent"  # handed to the channel
    APPLIED = "applied"  # written to the user's clipboard
    NOT_GRANTED = "not_granted"  # the user has not granted the clipboard
    DIRECTION_OFF = "direction_off"  # the user closed this direction
    PEER_REFUSES = "peer_refuses"  # the technician does not accept text now
    TOO_LARGE = "too_large"  # over the size limit


@dataclasses.dataclass(frozen=True)
class ClipboardTransfer:
    """One clipboard transfer for the session record (no content).

    Attributes:
        direction: which way the text went, or would have.
        size: its size in UTF-8 bytes.
        outcome: what happened to it.
    """

    direction: Direction
    size: int
    outcome: Outcome


class ClipboardPort(Protocol):
    """The real clipboard (the Qt app implements it)."""

    def set_text(self, text: str) -> None: ...


class ClipboardSync:
    """The user's side of clipboard sync (see the module docstring)."""

    def __init__(
        self,
        port: ClipboardPort,
        *,
        granted: Iterable[str] = (),
        to_technician: bool = True,
        from_technician: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not 0 < max_bytes <= CLIPBOARD_MAX_TEXT:
            raise ValueError("max_bytes out of range")
        self._port = port
        self._granted = "clipboard" in set(granted)
        self._to_technician = to_technician
        self._from_technician = from_technician
        self._max = max_bytes
        self._peer = ClipboardPolicy(send=False, receive=False, max_bytes=0)
        self._announced: ClipboardPolicy | None = None
        self._last_text: str | None = None  # the last text that crossed, either way
        self._outgoing: list[ClipboardPolicy | ClipboardText] = []
        self._events: list[ClipboardTransfer] = []

    @property
    def policy(self) -> ClipboardPolicy:
        """What this side announces."""
        return ClipboardPolicy(
            send=self._granted and self._to_technician,
            receive=self._granted and self._from_technician,
            max_bytes=self._max,
        )

    @property
    def peer_policy(self) -> ClipboardPolicy:
        return self._peer

    def _announce(self) -> None:
        policy = self.policy
        if policy != self._announced:
            self._announced = policy
            self._outgoing.append(policy)

    def start(self) -> None:
        """Announce the policy (call once the channel is open)."""
        self._announce()

    def set_granted(self, capabilities: Iterable[str]) -> None:
        self._granted = "clipboard" in set(capabilities)
        self._announce()

    def set_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        """The user's per-direction toggles."""
        self._to_technician = to_technician
        self._from_technician = from_technician
        self._announce()

    def local_changed(self, text: str) -> None:
        """The user's clipboard now holds text: send it if everything allows."""
        if not (self._granted and self._to_technician) or text == self._last_text:
            return
        size = len(text.encode("utf-8"))
        if size > min(self._max, CLIPBOARD_MAX_TEXT):
            outcome = Outcome.TOO_LARGE
        elif not self._peer.receive:
            outcome = Outcome.PEER_REFUSES
        elif size > self._peer.max_bytes:
            outcome = Outcome.TOO_LARGE
        else:
            outcome = Outcome.SENT
            self._last_text = text
            self._outgoing.append(ClipboardText(text))
        self._events.append(ClipboardTransfer(Direction.TO_TECHNICIAN, size, outcome))

    def receive(self, msg: ClipboardText | ClipboardPolicy) -> None:
        """A clipboard message from the technician."""
        if isinstance(msg, ClipboardPolicy):
            self._peer = msg
            return
        size = len(msg.text.encode("utf-8"))
        if not self._granted:
            outcome = Outcome.NOT_GRANTED
        elif not self._from_technician:
            outcome = Outcome.DIRECTION_OFF
        elif size > self._max:
            outcome = Outcome.TOO_LARGE
        else:
            outcome = Outcome.APPLIED
            self._last_text = msg.text
            self._port.set_text(msg.text)
        self._events.append(ClipboardTransfer(Direction.FROM_TECHNICIAN, size, outcome))

    def messages_to_send(self) -> list[ClipboardPolicy | ClipboardText]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def events_received(self) -> list[ClipboardTransfer]:
        events, self._events = self._events, []
        return events
