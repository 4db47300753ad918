"""The technician's input, as messages for the user's side (pure, no Qt).

Three jobs, each a small piece the Qt event filter
(:mod:`technician.qt.input_capture`) drives:

- **Where.** :class:`ViewTransform` maps a point of the viewer widget to a
  pixel of the user's desktop: fit-to-window scaling (letterboxed), 1:1
  with scroll offsets, for one monitor or all of them (remote coordinates
  are the user's desktop coordinates, as in ``MonitorList``).
- **What.** :func:`translate_key` decides whether a key press travels as a
  keysym (special keys, shortcuts, ASCII) or as text (é, ß, €, anything an
  input method produced). :data:`SPECIAL_KEYS` and :func:`special_sequence`
  give the menu's sequences (Ctrl+Alt+Del, Alt+Tab, Print Screen...).
- **When.** :class:`InputQueue` coalesces pointer moves: at most one per
  ``min_move_interval`` and only the newest, while buttons, wheel and keys
  go at once, each after the move that precedes it. A fast drag does not
  flood the link, and order is never changed.

:class:`RemoteInput` puts them together and remembers what the technician
holds, so that losing focus releases it (:meth:`RemoteInput.release_all`).
The user's side enforces consent whatever this side sends.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from common.protocol.messages import (
    ALT_MASK,
    CONTROL_MASK,
    SHIFT_MASK,
    SUPER_MASK,
    AppMessage,
    ControlState,
    ControlStatus,
    KeyEvent,
    PointerButton,
    PointerMove,
    ReleaseAll,
    TextInput,
    Wheel,
)


__all__ = [
    "SPECIAL_KEYS",
    "InputQueue",
    "Rect",
    "RemoteInput",
    "ViewTransform",
    "describe_control_status",
    "keysym_for_char",
    "region_for",
    "special_sequence",
    "translate_key",
]

# Keysyms used here (X11 keysymdef.h).
XK_ESCAPE = 0xFF1B
XK_TAB = 0xFF09
XK_DELETE = 0xFFFF
XK_PRINT = 0xFF61
XK_F4 = 0xFFC1
XK_SHIFT_L = 0xFFE1
XK_CONTROL_L = 0xFFE3
XK_ALT_L = 0xFFE9
XK_SUPER_L = 0xFFEB

_MODIFIER_BITS = {
    XK_SHIFT_L: SHIFT_MASK,
    XK_CONTROL_L: CONTROL_MASK,
    XK_ALT_L: ALT_MASK,
    XK_SUPER_L: SUPER_MASK,
}

# The special-keys menu: label -> keys pressed in order, released in reverse.
SPECIAL_KEYS: dict[str, tuple[int, ...]] = {
    "Ctrl+Alt+Del": (XK_CONTROL_L, XK_ALT_L, XK_DELETE),
    "Alt+Tab": (XK_ALT_L, XK_TAB),
    "Alt+Shift+Tab": (XK_ALT_L, XK_SHIFT_L, XK_TAB),
    "Print Screen": (XK_PRINT,),
    "Escape": (XK_ESCAPE,),
    "Super": (XK_SUPER_L,),
    "Ctrl+Esc": (XK_CONTROL_L, XK_ESCAPE),
    "Ctrl+Shift+Esc": (XK_CONTROL_L, XK_SHIFT_L, XK_ESCAPE),
    "Alt+F4": (XK_ALT_L, XK_F4),
}


# --- where ---


@dataclasses.dataclass(frozen=True)
class Rect:
    """A rectangle of the user's desktop, in its pixels."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError("a rectangle needs a positive size")

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.width and self.y <= y < self.y + self.height

    def clamp(self, x: int, y: int) -> tuple[int, int]:
        return (
            min(max(x, self.x), self.x + self.width - 1),
            min(max(y, self.y), self.y + self.height - 1),
        )


def region_for(monitors: Sequence[tuple[int, int, int, int]], selected: int = 0) -> Rect:
    """The desktop area a view shows: monitor ``selected`` (1-based), or 0 for all.

    Takes ``MonitorList.monitors`` and ``MonitorList.selected``.
    """
    if not monitors:
        raise ValueError("no monitors")
    if selected:
        return Rect(*monitors[selected - 1])
    left = min(m[0] for m in monitors)
    top = min(m[1] for m in monitors)
    right = max(m[0] + m[2] for m in monitors)
    bottom = max(m[1] + m[3] for m in monitors)
    return Rect(left, top, right - left, bottom - top)


@dataclasses.dataclass(frozen=True)
class ViewTransform:
    """Maps viewer widget coordinates to the user's desktop, and back.

    The viewer draws ``region`` (a part of the user's desktop) with its
    top-left corner at ``(origin_x, origin_y)`` in widget coordinates, at
    ``scale`` widget pixels per desktop pixel. Use :meth:`fit` or
    :meth:`one_to_one` rather than the constructor.

    Attributes:
        monitors: the user's monitors. When the view spans several, a point
            in a gap between them is moved to the nearest monitor.
    """

    region: Rect
    scale: float
    origin_x: float
    origin_y: float
    monitors: tuple[Rect, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError("scale must be positive")

    @classmethod
    def fit(
        cls,
        region: Rect,
        viewport_width: float,
        viewport_height: float,
        *,
        upscale: bool = False,
        monitors: Iterable[Rect] = (),
    ) -> ViewTransform:
        """The whole region scaled into the viewport, centred (letterboxed)."""
        if viewport_width <= 0 or viewport_height <= 0:
            raise ValueError("the viewport has no area")
        scale = min(viewport_width / region.width, viewport_height / region.height)
        if not upscale:
            scale = min(scale, 1.0)
        return cls(
            region,
            scale,
            (viewport_width - region.width * scale) / 2,
            (viewport_height - region.height * scale) / 2,
            tuple(monitors),
        )

    @classmethod
    def one_to_one(
        cls,
        region: Rect,
        viewport_width: float,
        viewport_height: float,
        *,
        scroll_x: float = 0.0,
        scroll_y: float = 0.0,
        device_pixel_ratio: float = 1.0,
        monitors: Iterable[Rect] = (),
    ) -> ViewTransform:
        """One desktop pixel per device pixel, scrolled by (scroll_x, scroll_y).

        Scroll offsets are in widget pixels (a scroll bar's value). An image
        smaller than the viewport is centred on that axis.
        """
        scale = 1.0 / device_pixel_ratio
        width, height = region.width * scale, region.height * scale
        origin_x = (viewport_width - width) / 2 if width < viewport_width else -scroll_x
        origin_y = (viewport_height - height) / 2 if height < viewport_height else -scroll_y
        return cls(region, scale, origin_x, origin_y, tuple(monitors))

    def _raw(self, vx: float, vy: float) -> tuple[int, int]:
        return (
            self.region.x + math.floor((vx - self.origin_x) / self.scale),
            self.region.y + math.floor((vy - self.origin_y) / self.scale),
        )

    def _on_monitor(self, x: int, y: int) -> tuple[int, int]:
        if not self.monitors or any(m.contains(x, y) for m in self.monitors):
            return x, y
        best = min(
            (m.clamp(x, y) for m in self.monitors),
            key=lambda p: (p[0] - x) ** 2 + (p[1] - y) ** 2,
        )
        return best

    def to_remote(self, vx: float, vy: float) -> tuple[int, int] | None:
        """The desktop pixel under a viewer point, or None outside the picture."""
        if not (math.isfinite(vx) and math.isfinite(vy)):
            return None
        x, y = self._raw(vx, vy)
        if not self.region.contains(x, y):
            return None
        return self._on_monitor(x, y)

    def to_remote_clamped(self, vx: float, vy: float) -> tuple[int, int]:
        """The nearest desktop pixel to a viewer point (for drags that leave the picture)."""
        if not (math.isfinite(vx) and math.isfinite(vy)):
            vx, vy = self.origin_x, self.origin_y
        return self._on_monitor(*self.region.clamp(*self._raw(vx, vy)))

    def to_viewer(self, x: int, y: int) -> tuple[float, float]:
        """The viewer point at the centre of desktop pixel (x, y)."""
        return (
            self.origin_x + (x - self.region.x + 0.5) * self.scale,
            self.origin_y + (y - self.region.y + 0.5) * self.scale,
        )


# --- what ---


def keysym_for_char(char: str) -> int:
    """The X11 keysym of one character (Latin-1 directly, else the Unicode keysym)."""
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 + code


def _printable(text: str) -> bool:
    return bool(text) and all(c.isprintable() or c == " " for c in text)


def translate_key(*, special: int | None, base: str, text: str, modifiers: int) -> int | str | None:
    """What one key press sends: a keysym, a text, or nothing.

    Args:
        special: the keysym of a non-character key (Escape, F5, Shift...),
            or None for character keys.
        base: the character printed on the key, "" if unknown (Qt: the
            key code when it is a character).
        text: the text the key produced on this side ("" for none).
        modifiers: the X modifier mask held.

    Returns:
        A keysym for a KeyEvent (special keys; shortcuts with Ctrl, Alt or
        Super, sent as the key's character, capital when Shift is held; and
        printable ASCII), a str for a TextInput (any other text: é, ß, €,
        or what an input method composed), or None (a dead key, say).
    """
    if special is not None:
        return special
    shortcut = modifiers & (CONTROL_MASK | ALT_MASK | SUPER_MASK)
    # AltGr on Windows reports Ctrl+Alt with the character it made: that is text.
    altgr = modifiers & CONTROL_MASK and modifiers & ALT_MASK and _printable(text)
    if shortcut and not altgr:
        if len(base) != 1:
            return None
        char = base.upper() if modifiers & SHIFT_MASK else base.lower()
        return keysym_for_char(char)
    if not _printable(text):
        return None
    if len(text) == 1 and 0x20 <= ord(text) < 0x7F:
        return ord(text)
    return text


def special_sequence(keysyms: Sequence[int]) -> list[KeyEvent]:
    """Press keysyms in order, then release them in reverse, with modifier masks."""
    events: list[KeyEvent] = []
    mask = 0
    for keysym in keysyms:
        events.append(KeyEvent(keysym, True, mask))
        mask |= _MODIFIER_BITS.get(keysym, 0)
    for keysym in reversed(keysyms):
        mask &= ~_MODIFIER_BITS.get(keysym, 0)
        events.append(KeyEvent(keysym, False, mask))
    return events


def describe_control_status(status: ControlStatus) -> str:
    """A sentence for the technician about the user's side."""
    text = {
        ControlState.OFF: "Control is not allowed. Ask the user for control.",
        ControlState.ACTIVE: "You have control.",
        ControlState.USER_ACTIVE: "The user is using the mouse or keyboard; "
        "your input waits until they stop.",
        ControlState.PAUSED: "The user paused the session or has a Deskhand window open; "
        "your input waits.",
        ControlState.STOPPED: "The user took control back.",
        ControlState.ENDED: "The session is over.",
    }[status.state]
    if status.refused and status.state is not ControlState.ACTIVE:
        noun = "input" if status.refused == 1 else "inputs"
        text += f" ({status.refused} {noun} refused.)"
    return text


# --- when ---


class InputQueue:
    """Orders and paces outgoing input (see the module docstring).

    :meth:`push` messages as they happen, :meth:`take` what may go now, and
    call :meth:`take` again by :meth:`next_deadline` when a move is waiting.
    """

    def __init__(self, min_move_interval: float = 1 / 120) -> None:
        if min_move_interval < 0:
            raise ValueError("min_move_interval must not be negative")
        self._interval = min_move_interval
        self._ready: list[AppMessage] = []
        self._move: PointerMove | None = None
        self._last_move_at = float("-inf")
        self.pushed = 0
        self.coalesced = 0

    def push(self, msg: AppMessage, now: float) -> None:
        self.pushed += 1
        if isinstance(msg, PointerMove):
            if self._move is not None:
                self.coalesced += 1
            self._move = msg
            self._release_move(now, force=False)
            return
        self._release_move(now, force=True)
        self._ready.append(msg)

    def _release_move(self, now: float, *, force: bool) -> None:
        if self._move is not None and (force or now >= self._last_move_at + self._interval):
            self._ready.append(self._move)
            self._move = None
            self._last_move_at = now

    def take(self, now: float) -> list[AppMessage]:
        """Messages to send now, in order."""
        self._release_move(now, force=False)
        ready, self._ready = self._ready, []
        return ready

    def next_deadline(self) -> float | None:
        return None if self._move is None else self._last_move_at + self._interval

    @property
    def waiting(self) -> bool:
        return self._move is not None or bool(self._ready)


class RemoteInput:
    """The technician's pointer and keyboard, as messages (pure).

    Coordinates are viewer widget coordinates; :attr:`transform` maps them
    (set it whenever the view's scale, scroll or monitor changes; with no
    transform, pointer input is dropped). Buttons are numbered as X11 does
    (1 left, 2 middle, 3 right, 8 back, 9 forward).
    """

    def __init__(self, *, min_move_interval: float = 1 / 120) -> None:
        self.transform: ViewTransform | None = None
        self._queue = InputQueue(min_move_interval)
        self._buttons: dict[int, None] = {}
        self._keys: dict[int, None] = {}
        self._position: tuple[int, int] | None = None

    @property
    def queue(self) -> InputQueue:
        return self._queue

    @property
    def held_buttons(self) -> tuple[int, ...]:
        return tuple(self._buttons)

    @property
    def held_keys(self) -> tuple[int, ...]:
        return tuple(self._keys)

    def _point(self, vx: float, vy: float) -> tuple[int, int] | None:
        if self.transform is None:
            return None
        if self._buttons:  # a drag keeps going at the edge of the picture
            return self.transform.to_remote_clamped(vx, vy)
        return self.transform.to_remote(vx, vy)

    def _move_to(self, point: tuple[int, int], now: float) -> None:
        if point != self._position:
            self._position = point
            self._queue.push(PointerMove(*point), now)

    def pointer_move(self, vx: float, vy: float, now: float) -> None:
        point = self._point(vx, vy)
        if point is not None:
            self._move_to(point, now)

    def pointer_button(self, button: int, pressed: bool, vx: float, vy: float, now: float) -> None:
        if pressed:
            point = self._point(vx, vy)
            if point is None or button in self._buttons:
                return  # outside the picture, or already down
            self._move_to(point, now)
            self._buttons[button] = None
        else:
            if button not in self._buttons:
                return
            point = self._point(vx, vy)
            if point is not None:
                self._move_to(point, now)
            del self._buttons[button]
        self._queue.push(PointerButton(button, pressed), now)

    def wheel(self, dx: int, dy: int, vx: float, vy: float, now: float) -> None:
        """Scroll (Wheel units: 1/120 notch, dy > 0 up, dx > 0 right) at a viewer point."""
        point = self._point(vx, vy)
        if point is None or not (dx or dy):
            return
        self._move_to(point, now)
        limit = 10_000
        self._queue.push(Wheel(max(-limit, min(dx, limit)), max(-limit, min(dy, limit))), now)

    def key(self, keysym: int, pressed: bool, modifiers: int, now: float) -> None:
        """A key went down or up. A press of a key already down is dropped:
        the user's side repeats held keys itself."""
        if pressed:
            if keysym in self._keys:
                return
            self._keys[keysym] = None
        else:
            if keysym not in self._keys:
                return
            del self._keys[keysym]
        self._queue.push(KeyEvent(keysym, pressed, modifiers), now)

    def text(self, text: str, now: float) -> None:
        for start in range(0, len(text), 1024):  # well inside TextInput's 4096 bytes
            self._queue.push(TextInput(text[start : start + 1024]), now)

    def special(self, keysyms: Sequence[int], now: float) -> None:
        """Send a special-key sequence (e.g. ``SPECIAL_KEYS["Ctrl+Alt+Del"]``)."""
        for event in special_sequence(keysyms):
            self._queue.push(event, now)

    def release_all(self, now: float) -> None:
        """Release everything held (the viewer lost focus), then ask the user's side to."""
        for keysym in reversed(list(self._keys)):
            self._queue.push(KeyEvent(keysym, False, 0), now)
        for button in reversed(list(self._buttons)):
            self._queue.push(PointerButton(button, False), now)
        self._keys.clear()
        self._buttons.clear()
        self._queue.push(ReleaseAll(), now)

    def take(self, now: float) -> list[AppMessage]:
        return self._queue.take(now)

    def next_deadline(self) -> float | None:
        return self._queue.next_deadline()
