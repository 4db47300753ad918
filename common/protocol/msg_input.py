"""Input messages (technician -> user; enforced by client.core.control.gate).

Registered by importing :mod:`common.protocol.messages`.

Coordinates are absolute pixels of the user's X root window (the virtual
desktop that spans every monitor). Keys are X11 keysyms, modifier masks are
X11 masks: whatever the technician's platform, the user's side injects them
without translation.
"""

from __future__ import annotations

import dataclasses

from common.errors import ProtocolError
from common.protocol.channels import Channel
from common.protocol.codec import message
from common.protocol.msg_base import AppMessage


__all__ = [
    "ALTGR_MASK",
    "ALT_MASK",
    "CONTROL_MASK",
    "LOCK_MASK",
    "NUM_LOCK_MASK",
    "SHIFT_MASK",
    "SUPER_MASK",
    "WHEEL_NOTCH",
    "KeyEvent",
    "PointerButton",
    "PointerMove",
    "ReleaseAll",
    "TextInput",
    "Wheel",
]

# X11 modifier mask bits carried by KeyEvent.modifiers.
SHIFT_MASK = 1 << 0
LOCK_MASK = 1 << 1
CONTROL_MASK = 1 << 2
ALT_MASK = 1 << 3  # Mod1
NUM_LOCK_MASK = 1 << 4  # Mod2
SUPER_MASK = 1 << 6  # Mod4
ALTGR_MASK = 1 << 7  # Mod5 (ISO_Level3_Shift)

# One notch of a mouse wheel, in Wheel units (Qt's angleDelta uses the same).
WHEEL_NOTCH = 120

_COORD_MIN, _COORD_MAX = -32768, 32767


@message(80)
class PointerMove(AppMessage):
    """Move the pointer to (x, y) on the user's virtual desktop."""

    CHANNEL = Channel.INPUT
    x: int
    y: int

    def check(self) -> None:
        if not (_COORD_MIN <= self.x <= _COORD_MAX and _COORD_MIN <= self.y <= _COORD_MAX):
            raise ProtocolError("pointer position out of range")


@message(81)
class PointerButton(AppMessage):
    """Press or release a mouse button, numbered as X11 does.

    1 left, 2 middle, 3 right, 8 back, 9 forward. Buttons 4-7 are the wheel
    on X11 and are refused here: send :class:`Wheel` instead.
    """

    CHANNEL = Channel.INPUT
    button: int
    pressed: bool

    def check(self) -> None:
        if not 1 <= self.button <= 32 or 4 <= self.button <= 7:
            raise ProtocolError("button out of range")


@message(82)
class Wheel(AppMessage):
    """Scroll by (dx, dy) in 1/120 of a notch (WHEEL_NOTCH per notch).

    dy > 0 scrolls up (wheel turned away from the user), dx > 0 scrolls
    right. The user's side injects whole notches and keeps the remainder.
    """

    CHANNEL = Channel.INPUT
    dx: int
    dy: int

    def check(self) -> None:
        if abs(self.dx) > 10_000 or abs(self.dy) > 10_000:
            raise ProtocolError("wheel step out of range")


@message(83)
class KeyEvent(AppMessage):
    """An X11 keysym pressed or released, with the modifier mask at that time.

    Modifier keys travel as key events of their own (Shift_L, Control_L...);
    ``modifiers`` (SHIFT_MASK, CONTROL_MASK...) says which the technician
    held when a key was pressed, so that the user's side can release a
    modifier whose release was lost.
    """

    CHANNEL = Channel.INPUT
    keysym: int
    pressed: bool
    modifiers: int = 0

    def check(self) -> None:
        if not 0 < self.keysym <= 0x1FFFFFFF or not 0 <= self.modifiers <= 0xFFFF:
            raise ProtocolError("key out of range")


@message(84)
class TextInput(AppMessage):
    """Type this text (any Unicode, e.g. from a non-ASCII key or an input method)."""

    CHANNEL = Channel.INPUT
    text: str = dataclasses.field(metadata={"max": 4096})


@message(85)
class ReleaseAll(AppMessage):
    """Release every key and button the technician holds (e.g. the viewer lost focus)."""

    CHANNEL = Channel.INPUT
