"""Local user input under X11, told apart from the input Deskhand injects.

The user always wins: when they touch their mouse or keyboard, remote input
pauses (see :class:`~client.core.control.gate.ControlGate`). That needs to
know which input is the user's. XTest events look like any other input to
other clients, and XRecord reports them like physical ones, so this module
uses the *device* an event came from, plus a ledger of what we injected.

Approach. :class:`XActivityMonitor` selects XInput2 raw events
(RawKeyPress/Release, RawButtonPress/Release, RawMotion) on the root window
of its own X connection. The server delivers raw events whatever window has
the focus, and even while another client holds a grab (XI 2.1 and later).
Each raw event names the slave device it came from:

- from a physical device (any slave that is not an "XTEST" device), the
  event is the user's;
- from an XTEST device, it is ours only if the injector announced it first:
  :class:`~client.core.control.injector.XInjector` writes every event it
  fakes into an :class:`InjectionLedger` ("key 38 down", "motion to
  120,45") before sending it. A raw XTEST event that matches a pending entry
  younger than ``ttl`` is consumed as ours; anything else is the user's
  (another XTest client: xdotool, an on-screen keyboard, or a test that
  plays the user).

One desktop for both sides (the demo). When the technician console runs on
the user's own X display, the technician's mouse and keyboard are local
input too. :class:`ConsoleAttribution` tells them apart: input while the
keyboard focus is in a window whose WM_CLASS class is the console's
(``TECHNICIAN_CONSOLE_CLASS``, Qt's application name, set in
technician/qt/app.py), or, for pointer events, while the pointer is over
one, is flagged ``LocalInput.technician_console``. The monitor only flags;
the caller decides to ignore flagged input for the user-activity pause.
Focus and pointer windows are looked up at most every ``focus_ttl``
seconds, a window's class at most every ``class_ttl``.

Limits (documented, not solved):

- ``XWarpPointer`` (``xdotool mousemove``) makes no raw event: not seen.
- Another XTest client that sends exactly what we sent, within ``ttl`` of
  our sending it, is taken for us (practically only a replaying tool).
- Key autorepeat makes no raw events; a held key is one event.
- Any program on the user's display can name its window like the console
  and have input over it flagged; only the user-activity pause depends on
  the flag, never consent or the stop hotkey.
- For ``focus_ttl`` after the focus moves, input may still be attributed
  by the old focus.
- X11 only, one display. Wayland has no equivalent for an unprivileged
  client (libei portals would be the route there).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import struct
import time
from collections.abc import Callable, Collection
from typing import Any

from Xlib import X, display as xdisplay, error as xerror
from Xlib.ext import ge, xinput


__all__ = [
    "TECHNICIAN_CONSOLE_CLASS",
    "ConsoleAttribution",
    "InjectionLedger",
    "LocalInput",
    "RawEvent",
    "Signature",
    "WmClass",
    "XActivityMonitor",
    "is_technician_console",
    "parse_raw_event",
]

logger = logging.getLogger(__name__)

# ("motion", x, y), ("button", button, 1|0) or ("key", keycode, 1|0).
Signature = tuple[str, int, int]

# XInput2 raw event types (XI2.h).
RAW_KEY_PRESS = 13
RAW_KEY_RELEASE = 14
RAW_BUTTON_PRESS = 15
RAW_BUTTON_RELEASE = 16
RAW_MOTION = 17

_RAW_HEADER = struct.Struct("=HIIHHI4x")  # deviceid time detail sourceid valuators_len flags
_FP3232 = struct.Struct("=iI")


class InjectionLedger:
    """What we injected and have not yet seen come back, oldest first (pure).

    The injector calls :meth:`expect` before it fakes an event; the monitor
    calls :meth:`claim` for every XTEST event it sees. Entries older than
    ``ttl`` seconds are forgotten, so a lost event cannot hide the user's
    input for long.
    """

    def __init__(self, ttl: float = 1.0, capacity: int = 4096) -> None:
        if ttl <= 0 or capacity < 1:
            raise ValueError("ttl and capacity must be positive")
        self._ttl = ttl
        self._pending: collections.deque[tuple[float, Signature]] = collections.deque(
            maxlen=capacity
        )

    def __len__(self) -> int:
        return len(self._pending)

    def expect(self, signature: Signature, now: float) -> None:
        """Note that we are about to inject this event."""
        self._pending.append((now, signature))

    def claim(self, signature: Signature, now: float) -> bool:
        """True if the event is one of ours (and consume that entry)."""
        pending = self._pending
        while pending and pending[0][0] < now - self._ttl:
            pending.popleft()
        for index, (_, sig) in enumerate(pending):
            if sig == signature:
                del pending[index]
                return True
        return False


@dataclasses.dataclass(frozen=True)
class RawEvent:
    """The parts of an XInput2 raw event that matter here."""

    evtype: int
    deviceid: int
    sourceid: int
    detail: int
    # Axis number -> value (for the XTEST pointer, 0 and 1 are root x and y).
    valuators: dict[int, float]


def parse_raw_event(evtype: int, data: bytes) -> RawEvent | None:
    """Parse the bytes after a GenericEvent's evtype (python-xlib's ``data``).

    Returns None for anything that is not a well-formed raw event.
    """
    if not RAW_KEY_PRESS <= evtype <= RAW_MOTION or len(data) < _RAW_HEADER.size:
        return None
    deviceid, _time, detail, sourceid, mask_len, _flags = _RAW_HEADER.unpack_from(data, 0)
    offset = _RAW_HEADER.size
    if len(data) < offset + 4 * mask_len:
        return None
    axes: list[int] = []
    for word_index in range(mask_len):
        (word,) = struct.unpack_from("=I", data, offset + 4 * word_index)
        axes.extend(word_index * 32 + bit for bit in range(32) if word >> bit & 1)
    offset += 4 * mask_len
    if len(data) < offset + _FP3232.size * len(axes):
        return None
    values: dict[int, float] = {}
    for axis in axes:
        integral, fraction = _FP3232.unpack_from(data, offset)
        values[axis] = integral + fraction / 2**32
        offset += _FP3232.size
    return RawEvent(evtype, deviceid, sourceid, detail, values)


@dataclasses.dataclass(frozen=True)
class LocalInput:
    """One input event from the user (not from us).

    Attributes:
        kind: "key", "button" or "motion".
        detail: the keycode or button number; 0 for motion.
        pressed: press (True) or release; True for motion.
        keysym: for keys, the keysym of the key's first level; else 0.
        technician_console: made while a Deskhand technician console on this
            display had the focus (or, for pointer events, the pointer):
            the technician's own input on a shared desktop, not the user's.
    """

    kind: str
    detail: int
    pressed: bool
    keysym: int = 0
    technician_console: bool = False


# WM_CLASS is (instance, class). Qt sets the class to QApplication's
# applicationName (technician/qt/app.py: "Deskhand technician"); the instance
# is argv[0]'s base name, which differs between the entry point and -m.
WmClass = tuple[str, str]
TECHNICIAN_CONSOLE_CLASS = "Deskhand technician"

# GetInputFocus answers these instead of a window.
_FOCUS_NONE = 0
_FOCUS_POINTER_ROOT = 1


def is_technician_console(
    wm_class: WmClass | None, classes: Collection[str] = (TECHNICIAN_CONSOLE_CLASS,)
) -> bool:
    """True if a window of this WM_CLASS belongs to a technician console (pure)."""
    return wm_class is not None and wm_class[1] in classes


class ConsoleAttribution:
    """Says whether local input is the technician console's (pure, cached).

    Args:
        focus: the window with the keyboard focus (0: none, 1: PointerRoot).
        pointer: the top-level window under the pointer (0: none).
        wm_class: a window's WM_CLASS (found at, above or just below it), or None.
        classes: the WM_CLASS classes that mark a console.
        focus_ttl: seconds a focus or pointer answer is reused (hot path).
        class_ttl: seconds a window's verdict is reused (ids can be reused).
        max_windows: verdicts kept before the cache starts over.
    """

    def __init__(
        self,
        *,
        focus: Callable[[], int],
        pointer: Callable[[], int],
        wm_class: Callable[[int], WmClass | None],
        classes: Collection[str] = (TECHNICIAN_CONSOLE_CLASS,),
        focus_ttl: float = 0.05,
        class_ttl: float = 5.0,
        max_windows: int = 256,
    ) -> None:
        self._lookup = {"focus": focus, "pointer": pointer}
        self._wm_class = wm_class
        self._classes = frozenset(classes)
        self._focus_ttl = focus_ttl
        self._class_ttl = class_ttl
        self._max_windows = max_windows
        self._windows: dict[str, tuple[float, int]] = {}
        self._verdicts: dict[int, tuple[float, bool]] = {}

    def technician(self, kind: str, now: float) -> bool:
        """Is this input ("key", "button" or "motion") the technician console's?"""
        focus = self._window("focus", now)
        if focus > _FOCUS_POINTER_ROOT and self._is_console(focus, now):
            return True
        # Keys go to the focus; only with PointerRoot focus do they follow the pointer.
        if kind == "key" and focus != _FOCUS_POINTER_ROOT:
            return False
        pointer = self._window("pointer", now)
        return pointer > _FOCUS_POINTER_ROOT and self._is_console(pointer, now)

    def forget(self) -> None:
        """Drop every cached answer (e.g. when windows come and go)."""
        self._windows.clear()
        self._verdicts.clear()

    def _window(self, source: str, now: float) -> int:
        cached = self._windows.get(source)
        if cached is not None and now - cached[0] < self._focus_ttl:
            return cached[1]
        window = self._lookup[source]()
        self._windows[source] = (now, window)
        return window

    def _is_console(self, window: int, now: float) -> bool:
        cached = self._verdicts.get(window)
        if cached is not None and now - cached[0] < self._class_ttl:
            return cached[1]
        verdict = is_technician_console(self._wm_class(window), self._classes)
        if len(self._verdicts) >= self._max_windows:
            self._verdicts.clear()
        self._verdicts[window] = (now, verdict)
        return verdict


def _signature(raw: RawEvent) -> tuple[str, Signature]:
    if raw.evtype == RAW_MOTION:
        x = round(raw.valuators.get(0, -1.0))
        y = round(raw.valuators.get(1, -1.0))
        return "motion", ("motion", x, y)
    if raw.evtype in (RAW_BUTTON_PRESS, RAW_BUTTON_RELEASE):
        return "button", ("button", raw.detail, int(raw.evtype == RAW_BUTTON_PRESS))
    return "key", ("key", raw.detail, int(raw.evtype == RAW_KEY_PRESS))


class XActivityMonitor:
    """Reports the user's own input on an X display (see the module docstring).

    Call :meth:`read` whenever :meth:`fileno` is readable (``loop.add_reader``)
    and from the same thread as the injector that shares the ledger.

    Args:
        console_classes: WM_CLASS classes of technician console windows whose
            input is flagged ``technician_console`` (empty: never flag).
        focus_ttl: how long a focus or pointer-window lookup is reused.

    Raises (from the constructor):
        OSError / Xlib errors: the display cannot be opened.
        RuntimeError: the server lacks XInput 2.2.
    """

    def __init__(
        self,
        display_name: str | None = None,
        *,
        ledger: InjectionLedger,
        clock: Callable[[], float] = time.monotonic,
        console_classes: Collection[str] = (TECHNICIAN_CONSOLE_CLASS,),
        focus_ttl: float = 0.05,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._display = xdisplay.Display(display_name)
        self._root = self._display.screen().root
        # Empty console_classes: no lookups at all, nothing is ever flagged.
        self._attribution: ConsoleAttribution | None = None
        if console_classes:
            self._attribution = ConsoleAttribution(
                focus=self._focus_window,
                pointer=self._pointer_window,
                wm_class=self._client_class,
                classes=console_classes,
                focus_ttl=focus_ttl,
            )
        try:
            if not self._display.has_extension(xinput.extname):
                raise RuntimeError("the X server has no XInput extension")
            self._opcode: int = self._display.display.get_extension_major(xinput.extname)
            reply = xinput.XIQueryVersion(
                display=self._display.display,
                opcode=self._opcode,
                major_version=2,
                minor_version=2,
            )
            if (reply.major_version, reply.minor_version) < (2, 1):
                raise RuntimeError("the X server's XInput is older than 2.1")
            self._xtest: set[int] = set()
            self._known: set[int] = set()
            self._refresh_devices()
            mask = (
                xinput.RawKeyPressMask
                | xinput.RawKeyReleaseMask
                | xinput.RawButtonPressMask
                | xinput.RawButtonReleaseMask
                | xinput.RawMotionMask
            )
            self._display.screen().root.xinput_select_events([(xinput.AllDevices, mask)])
            self._display.flush()
        except BaseException:
            self._display.close()
            raise

    def _refresh_devices(self) -> None:
        info = self._display.xinput_query_device(xinput.AllDevices)
        self._known = {int(dev.deviceid) for dev in info.devices}
        self._xtest = {
            int(dev.deviceid) for dev in info.devices if "XTEST" in _device_name(dev.name)
        }

    def fileno(self) -> int:
        return int(self._display.fileno())

    def read(self) -> list[LocalInput]:
        """Every local input event that has arrived (never blocks)."""
        found: list[LocalInput] = []
        display = self._display
        attribution = self._attribution
        while display.pending_events():
            event = display.next_event()
            if event.type == X.MappingNotify:
                if event.request in (X.MappingKeyboard, X.MappingModifier):
                    display.refresh_keyboard_mapping(event)
                continue
            if event.type != ge.GenericEventCode or event.extension != self._opcode:
                continue
            raw = parse_raw_event(event.evtype, bytes(event.data))
            # Each event comes once for the slave and once for its master;
            # the slave's copy (deviceid == sourceid) names the real source.
            if raw is None or raw.deviceid != raw.sourceid:
                continue
            if raw.sourceid not in self._known:
                self._refresh_devices()
            kind, signature = _signature(raw)
            now = self._clock()
            if raw.sourceid in self._xtest and self._ledger.claim(signature, now):
                continue
            pressed = raw.evtype in (RAW_KEY_PRESS, RAW_BUTTON_PRESS, RAW_MOTION)
            keysym = display.keycode_to_keysym(raw.detail, 0) if kind == "key" else 0
            technician = attribution is not None and attribution.technician(kind, now)
            found.append(
                LocalInput(kind, raw.detail if kind != "motion" else 0, pressed, keysym, technician)
            )
        return found

    # --- console attribution: the X lookups (round trips, cached by ConsoleAttribution) ---

    def _focus_window(self) -> int:
        try:
            focus: Any = self._display.get_input_focus().focus
        except xerror.XError:
            return _FOCUS_NONE
        return int(focus) if isinstance(focus, int) else int(focus.id)

    def _pointer_window(self) -> int:
        try:
            child: Any = self._root.query_pointer().child
        except xerror.XError:
            return _FOCUS_NONE
        return int(child) if isinstance(child, int) else int(child.id)

    def _client_class(self, window_id: int) -> WmClass | None:
        """WM_CLASS of the window, of an ancestor below the root, or of a client in a frame."""
        display = self._display
        root_id = int(self._root.id)
        try:
            window = display.create_resource_object("window", window_id)
            for _ in range(16):  # ancestors, up to the top-level window
                found = window.get_wm_class()
                if found is not None:
                    return _wm_class(found)
                parent = window.query_tree().parent
                parent_id = int(parent) if isinstance(parent, int) else int(parent.id)
                if parent_id in (0, root_id):
                    break
                window = parent
            # A reparenting window manager's frame: the client is a few levels down.
            level = [window]
            for _ in range(3):
                level = [child for win in level for child in win.query_tree().children][:64]
                for child in level:
                    found = child.get_wm_class()
                    if found is not None:
                        return _wm_class(found)
        except xerror.XError:  # the window went away meanwhile
            return None
        return None

    def close(self) -> None:
        try:
            self._display.close()
        except Exception:  # the server may be gone already
            logger.debug("closing the activity monitor's display failed", exc_info=True)


def _wm_class(found: tuple[Any, Any]) -> WmClass:
    return _device_name(found[0]), _device_name(found[1])


def _device_name(name: object) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return str(name)
