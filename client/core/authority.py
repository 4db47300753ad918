"""The capability authority: the one owner of what the technician may do right now.

Pure. The user's grants live here, on the user's machine; the technician's
app is never trusted to limit itself (security.md 4.1). Every feature asks
:meth:`CapabilityAuthority.allows`; none keeps a copy. The effective grants
are what was granted minus what a pause suspends (a pause suspends all).

:meth:`CapabilityAuthority.admit` is the inbound gate: every message from
the technician is mapped by type to the capability it needs, and dropped
when that is not allowed now. Types the technician has no business sending
(a screen frame, a grant...) are never admitted.
"""

from __future__ import annotations

import dataclasses
import enum

from common.capability import Capability, ordered
from common.protocol.messages import (
    AppMessage,
    AuditEvent,
    CapabilityRequest,
    ChatText,
    ClipboardPolicy,
    ClipboardText,
    FileChunk,
    FileEnd,
    FileOffer,
    FrameAck,
    KeyEvent,
    KeyframeRequest,
    PointerButton,
    PointerMove,
    ReleaseAll,
    SelectMonitor,
    TextInput,
    Wheel,
)


__all__ = ["Admission", "CapabilityAuthority", "Refusal", "required_capability"]

# What each message from the technician needs. None: always admitted while
# the session is open (asking, chatting, stating a policy, the record).
_FROM_TECHNICIAN: dict[type[AppMessage], Capability | None] = {
    CapabilityRequest: None,
    ChatText: None,
    AuditEvent: None,
    ClipboardPolicy: None,
    ClipboardText: Capability.CLIPBOARD,
    PointerMove: Capability.CONTROL,
    PointerButton: Capability.CONTROL,
    Wheel: Capability.CONTROL,
    KeyEvent: Capability.CONTROL,
    TextInput: Capability.CONTROL,
    ReleaseAll: Capability.CONTROL,
    FrameAck: Capability.VIEW,
    KeyframeRequest: Capability.VIEW,
    SelectMonitor: Capability.VIEW,
    FileOffer: Capability.FILES,
    FileChunk: Capability.FILES,
    FileEnd: Capability.FILES,
}


class Refusal(enum.Enum):
    NOT_GRANTED = "not-granted"
    PAUSED = "paused"
    NOT_EXPECTED = "not-expected"  # the technician never sends this type


@dataclasses.dataclass(frozen=True)
class Admission:
    """The gate's verdict on one inbound message.

    Attributes:
        refusal: None when admitted.
        needs: the capability the message needs (None: none, or not expected).
    """

    refusal: Refusal | None
    needs: Capability | None = None

    @property
    def admitted(self) -> bool:
        return self.refusal is None


def required_capability(message_type: type[AppMessage]) -> Capability | None:
    """The capability a message type from the technician needs (KeyError: never allowed)."""
    return _FROM_TECHNICIAN[message_type]


class CapabilityAuthority:
    """Granted capabilities and the pause, for one session on the user's side."""

    def __init__(self, granted: tuple[Capability | str, ...] = ()) -> None:
        self._granted = frozenset(ordered(granted))
        self._paused = False
        self._closed = False

    # --- reading ---

    @property
    def granted(self) -> tuple[Capability, ...]:
        """What the user granted, whether or not paused."""
        return ordered(self._granted)

    @property
    def effective(self) -> tuple[Capability, ...]:
        """What the technician may use right now (nothing while paused or closed)."""
        if self._paused or self._closed:
            return ()
        return self.granted

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def closed(self) -> bool:
        return self._closed

    def allows(self, capability: Capability) -> bool:
        """May the technician use this capability right now?"""
        return not self._paused and not self._closed and capability in self._granted

    def admit(self, message: AppMessage) -> Admission:
        """The inbound gate: may this message from the technician be acted on now?"""
        try:
            needs = _FROM_TECHNICIAN[type(message)]
        except KeyError:
            return Admission(Refusal.NOT_EXPECTED)
        if self._closed:
            return Admission(Refusal.NOT_GRANTED, needs)
        if needs is None:
            return Admission(None)
        if needs not in self._granted:
            return Admission(Refusal.NOT_GRANTED, needs)
        if self._paused:
            return Admission(Refusal.PAUSED, needs)
        return Admission(None, needs)

    # --- the user's decisions (each returns whether anything changed) ---

    def grant(self, capabilities: tuple[Capability, ...]) -> bool:
        if self._closed:
            return False
        before = self._granted
        self._granted = before | set(capabilities)
        return self._granted != before

    def revoke(self, capabilities: tuple[Capability, ...]) -> bool:
        before = self._granted
        self._granted = before - set(capabilities)
        return self._granted != before

    def set_paused(self, paused: bool) -> bool:
        if self._closed or paused == self._paused:
            return False
        self._paused = paused
        return True

    def close(self) -> None:
        """The session is over: nothing is allowed any more, for good."""
        self._granted = frozenset()
        self._closed = True
