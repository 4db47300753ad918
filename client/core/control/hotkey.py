"""The stop hotkey as a real global grab on X11 (security.md 4.2).

:class:`GlobalHotkey` grabs the stop combination (default
Ctrl+Alt+Shift+End) on every root window with ``XGrabKey``, on its own X
connection. The X server then hands the key to us and not to the focused
application, whatever has the focus. The modifiers pressed before End still
reach the focused application: a passive grab activates on End only.

A grab matches the modifier state exactly, so the combination is grabbed
once for every subset of the lock modifiers (Caps Lock, and the ModN bits
that hold Num Lock and Scroll Lock in the current modifier map). The grabs
follow keymap and modifier-map changes (``MappingNotify``), which the
injector causes when it binds spare keycodes.

Interface for an asyncio adapter::

    hotkey = GlobalHotkey(display)          # raises HotkeyUnavailable / HotkeyTaken
    loop.add_reader(hotkey.fileno(), lambda: hotkey.read() and end_everything())
    ...
    hotkey.close()                          # ungrabs and closes its connection

:meth:`GlobalHotkey.read` never blocks and costs one non-blocking socket read
when nothing happened. It counts a press when End goes down with the
modifiers held; auto-repeat while End stays down is not counted again.

Limits: X11 only. An active keyboard grab by another client (a screen
locker, a game, a remote-desktop viewer that grabs the keyboard) takes
precedence over any passive grab; the raw-event :class:`HotkeyDetector`
still sees the keys then. Keypad End (KP_End) is not grabbed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence

from Xlib import X, display as xdisplay, error as xerror

from common.errors import DeskhandError
from common.protocol.messages import (
    ALT_MASK,
    ALTGR_MASK,
    CONTROL_MASK,
    LOCK_MASK,
    NUM_LOCK_MASK,
    SHIFT_MASK,
    SUPER_MASK,
)


__all__ = [
    "DEFAULT_KEYSYM",
    "DEFAULT_MODIFIERS",
    "GlobalHotkey",
    "GrabPlan",
    "HotkeyTaken",
    "HotkeyUnavailable",
    "PressCounter",
    "modifier_bits",
    "plan_grabs",
]

logger = logging.getLogger(__name__)

XK_END = 0xFF57
DEFAULT_KEYSYM = XK_END
DEFAULT_MODIFIERS = CONTROL_MASK | ALT_MASK | SHIFT_MASK

# Keysyms whose modifier bit we look up in the modifier map.
_ALT = (0xFFE9, 0xFFEA, 0xFFE7, 0xFFE8)  # Alt_L Alt_R Meta_L Meta_R
_SUPER = (0xFFEB, 0xFFEC)  # Super_L Super_R
_ALTGR = (0xFE03, 0xFF7E)  # ISO_Level3_Shift Mode_switch
_NUM_LOCK = (0xFF7F,)
_SCROLL_LOCK = (0xFF14,)
_X_LOCK_MASK = 1 << 1

# The eight modifier-map rows, in X order: Shift Lock Control Mod1..Mod5.
ModifierMap = Sequence[Sequence[int]]


class HotkeyUnavailable(DeskhandError):
    """The global stop hotkey cannot be set up here (fall back to detecting it)."""


class HotkeyTaken(HotkeyUnavailable):
    """Another program already holds the grab on this key combination."""


def modifier_bits(
    modmap: ModifierMap, keycodes_of: Callable[[int], Iterable[int]]
) -> dict[str, int]:
    """Which X modifier bit holds Alt, Super, AltGr, Num Lock and Scroll Lock (pure).

    Args:
        modmap: the eight rows of keycodes (``XGetModifierMapping``).
        keycodes_of: keysym -> the keycodes that produce it.

    Returns a mask (0 if the key is in no row) for "alt", "super", "altgr",
    "num_lock" and "scroll_lock".
    """

    def bit_for(keysyms: Sequence[int]) -> int:
        wanted = {code for keysym in keysyms for code in keycodes_of(keysym) if code}
        for row, codes in enumerate(modmap):
            if wanted.intersection(codes):
                return 1 << row
        return 0

    return {
        "alt": bit_for(_ALT),
        "super": bit_for(_SUPER),
        "altgr": bit_for(_ALTGR),
        "num_lock": bit_for(_NUM_LOCK),
        "scroll_lock": bit_for(_SCROLL_LOCK),
    }


class GrabPlan(tuple[tuple[int, int], ...]):
    """The (keycode, X modifier mask) pairs to grab."""


def plan_grabs(keycodes: Iterable[int], modifiers: int, bits: dict[str, int]) -> GrabPlan:
    """Every (keycode, mask) to grab so the hotkey works whatever locks are on (pure).

    Args:
        keycodes: the keycodes that produce the hotkey's keysym.
        modifiers: the required modifiers, as protocol masks (``CONTROL_MASK``...).
        bits: from :func:`modifier_bits`.

    Raises:
        HotkeyUnavailable: no keycode, or a required modifier has no key.
    """
    required = modifiers & (SHIFT_MASK | CONTROL_MASK)
    for flag, name, fallback in (
        (ALT_MASK, "alt", 1 << 3),
        (SUPER_MASK, "super", 1 << 6),
        (ALTGR_MASK, "altgr", 1 << 7),
        (NUM_LOCK_MASK, "num_lock", 1 << 4),
    ):
        if modifiers & flag:
            bit = bits.get(name, 0) or fallback
            required |= bit
    if modifiers & LOCK_MASK:
        raise HotkeyUnavailable("the stop hotkey cannot include Caps Lock")
    codes = sorted({code for code in keycodes if code})
    if not codes:
        raise HotkeyUnavailable("no key on this keyboard produces the stop hotkey's key")
    locks = sorted({_X_LOCK_MASK, bits.get("num_lock", 0), bits.get("scroll_lock", 0)} - {0})
    # A lock bit that is also a required modifier is not a lock here.
    locks = [bit for bit in locks if not bit & required]
    masks = sorted(
        {
            required | sum(combo)
            for size in range(len(locks) + 1)
            for combo in itertools.combinations(locks, size)
        }
    )
    return GrabPlan((code, mask) for code in codes for mask in masks)


class PressCounter:
    """Counts presses of the grabbed key, auto-repeat collapsed (pure).

    With plain X auto-repeat a held key sends release+press pairs that share
    one timestamp; with detectable auto-repeat (XKB) it sends presses only.
    Both are one press here.
    """

    def __init__(self) -> None:
        self._down: set[int] = set()
        self._released_at: dict[int, int] = {}
        self._count = 0

    def press(self, keycode: int, time: int) -> None:
        if keycode in self._down:
            return  # detectable auto-repeat
        self._down.add(keycode)
        if self._released_at.pop(keycode, None) == time:
            return  # the release+press pair of plain auto-repeat
        self._count += 1

    def release(self, keycode: int, time: int) -> None:
        self._down.discard(keycode)
        self._released_at[keycode] = time

    def take(self) -> int:
        """Presses since the last take."""
        count, self._count = self._count, 0
        return count


class _Errors:
    """Collects the asynchronous errors of a batch of requests."""

    def __init__(self) -> None:
        self.errors: list[xerror.XError] = []

    def __call__(self, err: xerror.XError, request: object) -> int:
        self.errors.append(err)
        return 1


class GlobalHotkey:
    """The stop hotkey, grabbed on the X display (see the module docstring).

    Args:
        display_name: the X display (default: $DISPLAY).
        keysym: the key (default End).
        modifiers: protocol masks that must be held (default Ctrl+Alt+Shift).

    Raises (from the constructor):
        HotkeyTaken: another client holds the grab (X BadAccess).
        HotkeyUnavailable: no X display, or the key or a modifier is not on
            the keyboard.

    Use from one thread. :meth:`read` raises Xlib's ConnectionClosedError
    if the X server went away.
    """

    def __init__(
        self,
        display_name: str | None = None,
        *,
        keysym: int = DEFAULT_KEYSYM,
        modifiers: int = DEFAULT_MODIFIERS,
    ) -> None:
        self._keysym = keysym
        self._modifiers = modifiers
        self._counter = PressCounter()
        self._grabbed: GrabPlan = GrabPlan()
        self._closed = False
        try:
            self._display = xdisplay.Display(display_name)
        except Exception as exc:  # Xlib raises several types for "no display"
            raise HotkeyUnavailable(
                f"cannot open the X display for the stop hotkey: {exc}"
            ) from exc
        try:
            self._roots = [
                self._display.screen(number).root for number in range(self._display.screen_count())
            ]
            self._grab(self._plan())
        except BaseException:
            self._display.close()
            raise

    @property
    def grabbed(self) -> bool:
        """True while the grabs are in place (False after close or a lost regrab)."""
        return bool(self._grabbed) and not self._closed

    def fileno(self) -> int:
        return int(self._display.fileno())

    def read(self) -> int:
        """Hotkey presses since the last call (never blocks)."""
        if self._closed:
            return 0
        display = self._display
        remap = False
        while display.pending_events():
            event = display.next_event()
            if event.type == X.KeyPress:
                self._counter.press(event.detail, event.time)
            elif event.type == X.KeyRelease:
                self._counter.release(event.detail, event.time)
            elif event.type == X.MappingNotify:
                if event.request == X.MappingKeyboard:
                    display.refresh_keyboard_mapping(event)
                remap = remap or event.request in (X.MappingKeyboard, X.MappingModifier)
        if remap:
            self._regrab()
        return self._counter.take()

    def close(self) -> None:
        """Release the grabs and close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._ungrab(self._grabbed)
            self._display.close()
        except Exception:  # the server may be gone already
            logger.debug("closing the hotkey's display failed", exc_info=True)
        self._grabbed = GrabPlan()

    # --- grabbing ---

    def _plan(self) -> GrabPlan:
        display = self._display
        modmap = display.get_modifier_mapping()

        def keycodes_of(keysym: int) -> list[int]:
            return [code for code, _index in display.keysym_to_keycodes(keysym)]

        bits = modifier_bits(modmap, keycodes_of)
        return plan_grabs(keycodes_of(self._keysym), self._modifiers, bits)

    def _grab(self, plan: GrabPlan) -> None:
        errors = _Errors()
        for root in self._roots:
            for keycode, mask in plan:
                root.grab_key(
                    keycode, mask, False, X.GrabModeAsync, X.GrabModeAsync, onerror=errors
                )
        self._display.sync()  # the errors arrive asynchronously
        if errors.errors:
            # Ungrabbing only ever releases our own grabs.
            self._ungrab(plan)
            if any(isinstance(err, xerror.BadAccess) for err in errors.errors):
                raise HotkeyTaken(
                    "Another program already uses the stop hotkey (Ctrl+Alt+Shift+End) "
                    "on this desktop, so Deskhand cannot reserve it."
                )
            raise HotkeyUnavailable(
                f"the X server refused the stop hotkey grab: {errors.errors[0]}"
            )
        self._grabbed = plan

    def _ungrab(self, plan: GrabPlan) -> None:
        ignore = _Errors()
        for root in self._roots:
            for keycode, mask in plan:
                root.ungrab_key(keycode, mask, onerror=ignore)
        self._display.sync()

    def _regrab(self) -> None:
        try:
            plan = self._plan()
        except HotkeyUnavailable:
            logger.warning("the stop hotkey's key left the keymap; keeping the old grabs")
            return
        if plan == self._grabbed:
            return
        self._ungrab(self._grabbed)
        self._grabbed = GrabPlan()
        try:
            self._grab(plan)
        except HotkeyUnavailable:
            logger.warning("the stop hotkey could not be grabbed again after a keymap change")
