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

Limits (documented, not solved):

- ``XWarpPointer`` (``xdotool mousemove``) makes no raw event: not seen.
- Another XTest client that sends exactly what we sent, within ``ttl`` of
  our sending it, is taken for us (practically only a replaying tool).
- Key autorepeat makes no raw events; a held key is one event.
- X11 only, one display. Wayland has no equivalent for an unprivileged
  client (libei portals would be the route there).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import struct
import time
from collections.abc import Callable

from Xlib import X, display as xdisplay
from Xlib.ext import ge, xinput


__all__ = [
    "InjectionLedger",
    "LocalInput",
    "RawEvent",
    "Signature",
    "XActivityMonitor",
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
    """

    kind: str
    detail: int
    pressed: bool
    keysym: int = 0


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
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._display = xdisplay.Display(display_name)
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
            if raw.sourceid in self._xtest and self._ledger.claim(signature, self._clock()):
                continue
            pressed = raw.evtype in (RAW_KEY_PRESS, RAW_BUTTON_PRESS, RAW_MOTION)
            keysym = display.keycode_to_keysym(raw.detail, 0) if kind == "key" else 0
            found.append(LocalInput(kind, raw.detail if kind != "motion" else 0, pressed, keysym))
        return found

    def close(self) -> None:
        try:
            self._display.close()
        except Exception:  # the server may be gone already
            logger.debug("closing the activity monitor's display failed", exc_info=True)


def _device_name(name: object) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return str(name)
