"""Input injection on X11 through XTest, with keysym-to-keycode mapping.

Why XTest, and not pynput's ``type()`` or ``press('a')``: pynput sends
character keys with XSendEvent, which most applications ignore and XRecord
never sees (performance.md section 6). XTest events go through the server's
input path exactly like a physical keyboard's, so every client gets them.

XTest injects *keycodes*; the technician sends *keysyms*. The pure
:class:`KeyboardModel` turns one into the other against the user's current
keyboard mapping:

- a keysym found on a key's first or second level is pressed on that key,
  with Shift pressed or released around it when the character needs the
  other level (``A`` without Shift held: Shift down, ``a`` key, Shift up);
  function keys (Return, F5, arrows...) are pressed as they are, so the
  technician's modifiers apply to them;
- a keysym on no key (``é``, ``ß`` and ``€`` on a US layout) is bound to a
  spare keycode, one with no symbols, with XChangeKeyboardMapping. Spare
  keycodes are reused least recently used first and never rebound within
  ``rebind_guard`` seconds of their last use: a client that reloads the
  keymap late (after the MappingNotify) would otherwise read the *next*
  binding. Every binding is undone by :meth:`XInjector.restore_keymap`.

Buttons follow X11: 1 left, 2 middle, 3 right, 4/5 wheel up/down, 6/7 wheel
left/right, 8/9 back/forward. Pointer moves are absolute root-window
coordinates, so they reach every monitor of a Xinerama or RandR desktop.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from Xlib import X, display as xdisplay
from Xlib.ext import xtest

from client.core.control.activity import InjectionLedger, Signature
from client.core.control.gate import MODIFIER_KEYSYMS
from common.errors import DeskhandError
from common.protocol.messages import WHEEL_NOTCH


__all__ = [
    "BindKey",
    "FakeKey",
    "InjectorPort",
    "InjectorUnavailable",
    "KeyboardModel",
    "Keymap",
    "WheelAccumulator",
    "XInjector",
    "is_character_keysym",
    "keysym_for_char",
]

logger = logging.getLogger(__name__)

NO_SYMBOL = 0
# The least time between releasing a key and pressing it again (see KeyboardModel.ready_at).
REPEAT_GAP = 0.004
XK_SHIFT_L = 0xFFE1
XK_SHIFT_R = 0xFFE2
XK_RETURN = 0xFF0D
XK_TAB = 0xFF09
XK_BACKSPACE = 0xFF08

_CONTROL_CHARS = {"\n": XK_RETURN, "\r": XK_RETURN, "\t": XK_TAB, "\b": XK_BACKSPACE}


class InjectorUnavailable(DeskhandError):
    """Input cannot be injected here (no X display, or no XTest)."""


def keysym_for_char(char: str) -> int:
    """The X11 keysym that types one character.

    Latin-1 characters are their own keysyms; other characters use the
    Unicode keysyms (0x01000000 + code point); newline, tab and backspace
    map to Return, Tab and BackSpace.
    """
    if len(char) != 1:
        raise ValueError("one character expected")
    if char in _CONTROL_CHARS:
        return _CONTROL_CHARS[char]
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 + code


def is_character_keysym(keysym: int) -> bool:
    """True for keysyms that type a character (not function or modifier keys)."""
    return 0x20 <= keysym < 0xFE00 or 0x01000000 <= keysym <= 0x0110FFFF


class Keymap:
    """A copy of the X keyboard mapping: keysyms per keycode (pure).

    Args:
        min_keycode: the keycode of ``rows[0]``.
        rows: the keysyms of each keycode, by column (X's GetKeyboardMapping).
    """

    def __init__(self, min_keycode: int, rows: Sequence[Sequence[int]]) -> None:
        if not rows or min_keycode < 8:
            raise ValueError("a keymap needs keycodes from 8 up")
        self.min_keycode = min_keycode
        self.width = max(2, max(len(row) for row in rows))
        self._rows = [list(row) + [NO_SYMBOL] * (self.width - len(row)) for row in rows]
        self._index: dict[int, list[tuple[int, int]]] = {}
        self._reindex()

    def _reindex(self) -> None:
        self._index = {}
        for offset, row in enumerate(self._rows):
            for column in (0, 1):
                keysym = row[column]
                if keysym != NO_SYMBOL:
                    self._index.setdefault(keysym, []).append((offset + self.min_keycode, column))

    @property
    def max_keycode(self) -> int:
        return self.min_keycode + len(self._rows) - 1

    def row(self, keycode: int) -> tuple[int, ...]:
        return tuple(self._rows[keycode - self.min_keycode])

    def keysym(self, keycode: int, column: int) -> int:
        return self._rows[keycode - self.min_keycode][column]

    def lookup(self, keysym: int) -> list[tuple[int, int]]:
        """(keycode, column) pairs that give keysym on the first two levels, column first."""
        return sorted(self._index.get(keysym, ()), key=lambda kc: (kc[1], kc[0]))

    def empty_keycodes(self) -> list[int]:
        """Keycodes with no symbol at all, highest first (the spare ones)."""
        return [
            offset + self.min_keycode
            for offset in range(len(self._rows) - 1, -1, -1)
            if not any(self._rows[offset])
        ]

    def set_row(self, keycode: int, keysyms: Sequence[int]) -> None:
        row = list(keysyms) + [NO_SYMBOL] * (self.width - len(keysyms))
        self._rows[keycode - self.min_keycode] = row[: self.width]
        self._reindex()


@dataclasses.dataclass(frozen=True)
class BindKey:
    """Set keycode's symbols (every level) to keysym; NO_SYMBOL clears it."""

    keycode: int
    keysym: int


@dataclasses.dataclass(frozen=True)
class FakeKey:
    keycode: int
    pressed: bool


KeyOp = BindKey | FakeKey


class KeyboardModel:
    """Plans the XTest key events for keysyms (pure; see the module docstring).

    It remembers which keycode it pressed for each held keysym (the release
    goes to the same key even if the mapping changed) and which spare
    keycodes it bound.
    """

    def __init__(self, keymap: Keymap, *, rebind_guard: float = 0.25) -> None:
        self._keymap = keymap
        self._guard = rebind_guard
        self._held: dict[int, int] = {}  # keysym -> keycode, in press order
        self._bound: dict[int, int] = {}  # spare keycode -> keysym
        self._last_used: dict[int, float] = {}  # spare keycode -> time
        self._spares = keymap.empty_keycodes()
        self._released_at: dict[int, float] = {}  # keycode -> when we last released it
        self.retry_at = 0.0

    @property
    def keymap(self) -> Keymap:
        return self._keymap

    @property
    def held(self) -> dict[int, int]:
        """Held keysyms and their keycodes, in press order."""
        return dict(self._held)

    @property
    def bound(self) -> dict[int, int]:
        """Spare keycodes we bound, and their keysyms."""
        return dict(self._bound)

    def reload(self, keymap: Keymap) -> None:
        """The keyboard mapping changed under us (a layout switch): start over from it."""
        self._bound = {
            kc: ks
            for kc, ks in self._bound.items()
            if keymap.min_keycode <= kc <= keymap.max_keycode and keymap.keysym(kc, 0) == ks
        }
        self._spares = sorted(set(keymap.empty_keycodes()) | set(self._bound), reverse=True)
        self._keymap = keymap

    def _shift_held(self) -> list[int]:
        return [kc for ks, kc in self._held.items() if ks in (XK_SHIFT_L, XK_SHIFT_R)]

    def _shift_keycode(self) -> int | None:
        found = self._keymap.lookup(XK_SHIFT_L) or self._keymap.lookup(XK_SHIFT_R)
        return found[0][0] if found else None

    def _spare_for(self, keysym: int, now: float, *, wait: bool) -> tuple[int, list[KeyOp]] | None:
        for keycode, bound in self._bound.items():
            if bound == keysym:
                self._last_used[keycode] = now
                return keycode, []
        held = set(self._held.values())
        free = [kc for kc in self._spares if kc not in self._bound]
        if free:
            keycode = free[0]
        else:
            candidates = [kc for kc in self._bound if kc not in held]
            if not candidates:
                return None
            keycode = min(candidates, key=lambda kc: self._last_used.get(kc, 0.0))
            ready = self._last_used.get(keycode, 0.0) + self._guard
            if wait and now < ready:
                self.retry_at = ready
                return None
        self._bound[keycode] = keysym
        self._last_used[keycode] = now
        self._keymap.set_row(keycode, (keysym, keysym))
        return keycode, [BindKey(keycode, keysym)]

    def press(self, keysym: int, now: float, *, wait: bool = False) -> list[KeyOp] | None:
        """The ops that press keysym, or None when it cannot be pressed now.

        With ``wait``, None may also mean "a spare keycode frees up at
        :attr:`retry_at`"; without it, a busy spare is reused at once.
        """
        if keysym in self._held:  # pressed again while held: a repeat
            return [FakeKey(self._held[keysym], True)]
        candidates = self._keymap.lookup(keysym)
        ops: list[KeyOp] = []
        if not candidates:
            spare = self._spare_for(keysym, now, wait=wait)
            if spare is None:
                return None
            keycode, ops = spare
            ops.append(FakeKey(keycode, True))
        elif not is_character_keysym(keysym) or keysym in MODIFIER_KEYSYMS:
            keycode = candidates[0][0]
            ops.append(FakeKey(keycode, True))
        else:
            keycode, ops = self._press_character(keysym, candidates)
        if keycode in self._last_used:
            self._last_used[keycode] = now
        self._held[keysym] = keycode
        return ops

    def _press_character(
        self, keysym: int, candidates: list[tuple[int, int]]
    ) -> tuple[int, list[KeyOp]]:
        shifts = self._shift_held()
        want = 1 if shifts else 0
        for keycode, column in candidates:
            if column == want:
                return keycode, [FakeKey(keycode, True)]
        keycode, column = candidates[0]
        if column == 1:  # needs Shift, which is not held: press it around the key
            shift = self._shift_keycode()
            if shift is None:
                return keycode, [FakeKey(keycode, True)]
            return keycode, [FakeKey(shift, True), FakeKey(keycode, True), FakeKey(shift, False)]
        shifted = self._keymap.keysym(keycode, 1)
        if shifted in (NO_SYMBOL, keysym):  # Shift changes nothing on this key
            return keycode, [FakeKey(keycode, True)]
        # Shift is held but the character is on the first level: lift it around the key.
        ops: list[KeyOp] = [FakeKey(kc, False) for kc in shifts]
        ops.append(FakeKey(keycode, True))
        ops.extend(FakeKey(kc, True) for kc in shifts)
        return keycode, ops

    def release(self, keysym: int, now: float = 0.0) -> list[KeyOp]:
        """The ops that release keysym (none if we do not hold it)."""
        keycode = self._held.pop(keysym, None)
        if keycode is None:
            return []
        self._released_at[keycode] = now
        return [FakeKey(keycode, False)]

    def ready_at(self, keysym: int) -> float:
        """When keysym may be pressed without looking like an auto-repeat.

        X clients (Qt, GTK) take a release followed by a press of the same
        key with the same server timestamp for auto-repeat; X timestamps are
        milliseconds, so a second press of a key waits ``REPEAT_GAP``.
        """
        if keysym in self._held:
            return 0.0
        keycodes = [kc for kc, _ in self._keymap.lookup(keysym)]
        released = [self._released_at[kc] for kc in keycodes if kc in self._released_at]
        return max(released, default=-REPEAT_GAP) + REPEAT_GAP

    def type_char(self, char: str, now: float) -> list[KeyOp] | None:
        """Press and release the key for one character; None means retry at :attr:`retry_at`."""
        keysym = keysym_for_char(char)
        if keysym in self._held:  # the technician holds it: type it on the same key
            keycode = self._held.pop(keysym)
            self._released_at[keycode] = now
            return [FakeKey(keycode, False), FakeKey(keycode, True), FakeKey(keycode, False)]
        ready = self.ready_at(keysym)
        if now < ready:
            self.retry_at = ready
            return None
        pressed = self.press(keysym, now, wait=True)
        if pressed is None:
            return None
        keycode = self._held.pop(keysym)
        self._released_at[keycode] = now
        # Release the key right after its press, inside any Shift dance, as a
        # typist would: Shift down, key down, key up, Shift up.
        down = pressed.index(FakeKey(keycode, True))
        return [*pressed[: down + 1], FakeKey(keycode, False), *pressed[down + 1 :]]

    def restore(self) -> list[KeyOp]:
        """Unbind every spare keycode we bound that is not held."""
        held = set(self._held.values())
        ops: list[KeyOp] = []
        for keycode in sorted(self._bound):
            if keycode in held:
                continue
            ops.append(BindKey(keycode, NO_SYMBOL))
            self._keymap.set_row(keycode, ())
            del self._bound[keycode]
        return ops


class WheelAccumulator:
    """Turns Wheel deltas (1/120 notch) into whole X wheel clicks (pure).

    The remainder is kept for the next delta on the same axis and dropped
    when the direction changes.
    """

    def __init__(self) -> None:
        self._x = 0
        self._y = 0

    @staticmethod
    def _step(acc: int, delta: int) -> tuple[int, int]:
        if acc and delta and (acc > 0) != (delta > 0):
            acc = 0
        acc += delta
        clicks = int(acc / WHEEL_NOTCH)  # toward zero
        return clicks, acc - clicks * WHEEL_NOTCH

    def add(self, dx: int, dy: int) -> tuple[int, int]:
        """Clicks to inject now: (right > 0 / left < 0, up > 0 / down < 0)."""
        clicks_x, self._x = self._step(self._x, dx)
        clicks_y, self._y = self._step(self._y, dy)
        return clicks_x, clicks_y


class InjectorPort(Protocol):
    """What the control service needs from an injector (XInjector, or a test fake)."""

    def move(self, x: int, y: int) -> None: ...
    def button(self, button: int, pressed: bool) -> None: ...
    def scroll(self, clicks_x: int, clicks_y: int) -> None: ...
    def key(self, keysym: int, pressed: bool) -> bool: ...
    def key_ready_at(self, keysym: int) -> float: ...
    def type_text(self, text: str) -> int: ...
    def retry_at(self) -> float: ...
    def restore_keymap(self) -> None: ...
    def close(self) -> None: ...


# X wheel buttons: up, down, left, right.
_WHEEL_UP, _WHEEL_DOWN, _WHEEL_LEFT, _WHEEL_RIGHT = 4, 5, 6, 7
_MAX_CLICKS = 100


class XInjector:
    """Injects input into an X display with XTest (see the module docstring).

    Not thread safe: use it from one thread (the asyncio loop's).

    Raises (from the constructor):
        InjectorUnavailable: no display, or the server has no XTest.
    """

    def __init__(
        self,
        display_name: str | None = None,
        *,
        ledger: InjectionLedger | None = None,
        clock: Callable[[], float] = time.monotonic,
        rebind_guard: float = 0.25,
    ) -> None:
        try:
            self._display = xdisplay.Display(display_name)
        except Exception as exc:  # python-xlib raises several unrelated types
            raise InjectorUnavailable(f"Cannot open the X display: {exc}") from None
        if not self._display.has_extension("XTEST"):
            self._display.close()
            raise InjectorUnavailable("The X server has no XTEST extension.")
        self._ledger = ledger
        self._clock = clock
        screen = self._display.screen()
        self.width = int(screen.width_in_pixels)
        self.height = int(screen.height_in_pixels)
        self._keyboard = KeyboardModel(self._load_keymap(), rebind_guard=rebind_guard)
        self._own_changes: list[int] = []  # keycodes whose MappingNotify is ours
        self._closed = False

    @property
    def keyboard(self) -> KeyboardModel:
        return self._keyboard

    def _load_keymap(self) -> Keymap:
        info = self._display.display.info
        first, last = int(info.min_keycode), int(info.max_keycode)
        rows = self._display.get_keyboard_mapping(first, last - first + 1)
        return Keymap(first, [tuple(int(k) for k in row) for row in rows])

    def _expect(self, signature: Signature) -> None:
        if self._ledger is not None:
            self._ledger.expect(signature, self._clock())

    def _notice_mapping_changes(self) -> None:
        # Keep our copy of the keymap current when someone else (a layout
        # switch) changes it; our own changes come back as MappingNotify too.
        display = self._display
        changed = False
        while display.pending_events():
            event = display.next_event()
            if event.type != X.MappingNotify or event.request != X.MappingKeyboard:
                continue
            if event.count == 1 and event.first_keycode in self._own_changes:
                self._own_changes.remove(event.first_keycode)
                continue
            changed = True
        if changed:
            self._keyboard.reload(self._load_keymap())

    def move(self, x: int, y: int) -> None:
        x = min(max(x, 0), self.width - 1)
        y = min(max(y, 0), self.height - 1)
        self._expect(("motion", x, y))
        xtest.fake_input(self._display, X.MotionNotify, x=x, y=y)
        self._display.flush()

    def _button(self, button: int, pressed: bool) -> None:
        self._expect(("button", button, int(pressed)))
        xtest.fake_input(self._display, X.ButtonPress if pressed else X.ButtonRelease, button)

    def button(self, button: int, pressed: bool) -> None:
        self._button(button, pressed)
        self._display.flush()

    def scroll(self, clicks_x: int, clicks_y: int) -> None:
        for clicks, positive, negative in (
            (clicks_y, _WHEEL_UP, _WHEEL_DOWN),
            (clicks_x, _WHEEL_RIGHT, _WHEEL_LEFT),
        ):
            button = positive if clicks > 0 else negative
            for _ in range(min(abs(clicks), _MAX_CLICKS)):
                self._button(button, True)
                self._button(button, False)
        self._display.flush()

    def _run(self, ops: Sequence[KeyOp]) -> None:
        for op in ops:
            if isinstance(op, BindKey):
                row = (op.keysym,) * 2 if op.keysym != NO_SYMBOL else ()
                padded = tuple(row) + (NO_SYMBOL,) * (self._keyboard.keymap.width - len(row))
                self._display.change_keyboard_mapping(op.keycode, [padded])
                self._own_changes.append(op.keycode)
            else:
                self._expect(("key", op.keycode, int(op.pressed)))
                kind = X.KeyPress if op.pressed else X.KeyRelease
                xtest.fake_input(self._display, kind, op.keycode)
        self._display.flush()

    def key(self, keysym: int, pressed: bool) -> bool:
        """Press or release keysym; False when it cannot be typed here."""
        self._notice_mapping_changes()
        if pressed:
            ops = self._keyboard.press(keysym, self._clock())
        else:
            ops = self._keyboard.release(keysym, self._clock())
        if ops is None:
            return False
        self._run(ops)
        return True

    def key_ready_at(self, keysym: int) -> float:
        """When a press of keysym may go (see KeyboardModel.ready_at)."""
        return self._keyboard.ready_at(keysym)

    def type_text(self, text: str) -> int:
        """Type as much of text as possible now; returns how many characters.

        Fewer than ``len(text)`` means a key must wait (the same key again
        within REPEAT_GAP, or a spare keycode cooling down): call again with
        the rest at :meth:`retry_at`.
        """
        self._notice_mapping_changes()
        done = 0
        for char in text:
            ops = self._keyboard.type_char(char, self._clock())
            if ops is None:
                break
            self._run(ops)
            done += 1
        return done

    def retry_at(self) -> float:
        return self._keyboard.retry_at

    def held_keysyms(self) -> list[int]:
        return list(self._keyboard.held)

    def restore_keymap(self) -> None:
        """Give back the spare keycodes we bound (call once typing has settled)."""
        if not self._closed:
            self._run(self._keyboard.restore())

    def close(self) -> None:
        """Release what we still hold, restore the keymap, close the connection."""
        if self._closed:
            return
        try:
            for keysym in reversed(list(self._keyboard.held)):
                self._run(self._keyboard.release(keysym, self._clock()))
            self.restore_keymap()
            # A round trip before closing: without it the server was seen to
            # drop the last keymap change along with the connection.
            self._display.sync()
            self._display.close()
        except Exception:  # the server may be gone already
            logger.debug("closing the injector's display failed", exc_info=True)
        self._closed = True
