"""Application messages, one frozen dataclass per type, grouped by channel.

Every class names the channel it may travel on; the session refuses a
message that arrives on another channel. Type ids 64 and up are application
messages (1-31 relay, 32-63 pairing and identity).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar

from common.capability import Capability
from common.errors import ProtocolError
from common.protocol.channels import CHANNEL_SPECS, Channel
from common.protocol.codec import Message, message


__all__ = [
    "ALTGR_MASK",
    "ALT_MASK",
    "CAPABILITIES",
    "CLIPBOARD_MAX_TEXT",
    "CONTROL_MASK",
    "LOCK_MASK",
    "NUM_LOCK_MASK",
    "SHIFT_MASK",
    "SUPER_MASK",
    "WHEEL_NOTCH",
    "AppMessage",
    "AuditEvent",
    "CapabilityDeclined",
    "CapabilityGrant",
    "CapabilityRequest",
    "ChatText",
    "ClipboardPolicy",
    "ClipboardText",
    "ControlState",
    "ControlStatus",
    "CursorPosition",
    "CursorShape",
    "FileChunk",
    "FileEnd",
    "FileOffer",
    "FrameAck",
    "KeyEvent",
    "KeyframeRequest",
    "MonitorList",
    "PointerButton",
    "PointerMove",
    "ReleaseAll",
    "ScreenEncoding",
    "ScreenFrame",
    "ScreenStopReason",
    "ScreenStopped",
    "SelectMonitor",
    "TextInput",
    "Wheel",
    "WindowUpdate",
]

# What a user may grant, each separately (security.md 4.1), as wire strings.
CAPABILITIES: tuple[str, ...] = tuple(c.value for c in Capability)


class AppMessage(Message):
    """A message that travels on one application channel."""

    __slots__ = ()
    CHANNEL: ClassVar[Channel]


def _check_caps(caps: tuple[str, ...]) -> None:
    unknown = set(caps) - set(CAPABILITIES)
    if unknown:
        raise ProtocolError(f"unknown capability {sorted(unknown)[0]!r}")


# --- control ---


@message(64)
class CapabilityRequest(AppMessage):
    """Technician asks the user for capabilities (the user decides)."""

    CHANNEL = Channel.CONTROL
    capabilities: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})

    def check(self) -> None:
        _check_caps(self.capabilities)


@message(65)
class CapabilityGrant(AppMessage):
    """User states the full set of capabilities now granted."""

    CHANNEL = Channel.CONTROL
    capabilities: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})

    def check(self) -> None:
        _check_caps(self.capabilities)


@message(67)
class CapabilityDeclined(AppMessage):
    """User to technician: these were not granted; asking again is refused for a while.

    ``retry_after`` is in whole seconds (0: ask again whenever).
    """

    CHANNEL = Channel.CONTROL
    capabilities: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})
    retry_after: int = 0

    def check(self) -> None:
        _check_caps(self.capabilities)
        if not 0 <= self.retry_after <= 3600:
            raise ProtocolError("retry_after out of range")


@message(66)
class WindowUpdate(AppMessage):
    """Receiver grants more bytes of credit on a bulk channel (flow control)."""

    CHANNEL = Channel.CONTROL
    channel: Channel
    credit: int

    def check(self) -> None:
        if not CHANNEL_SPECS[self.channel].bulk:
            raise ProtocolError("window update for a channel that is not flow controlled")
        if not 0 < self.credit <= 1 << 30:
            raise ProtocolError("window credit out of range")


class ControlState(enum.IntEnum):
    """Remote control as the user's side enforces it (see ControlStatus)."""

    OFF = 0  # control is not granted
    ACTIVE = 1  # input is injected
    USER_ACTIVE = 2  # the user is using their mouse or keyboard; resumes by itself
    PAUSED = 3  # the user paused the session, or a Deskhand dialog is open
    STOPPED = 4  # the user took control back (hotkey or Stop); needs a new grant
    ENDED = 5  # the session is over


@message(72)
class ControlStatus(AppMessage):
    """User to technician: the state of remote control, on every change.

    Also sent (at most about once a second) while input is being refused;
    ``refused`` counts the input messages dropped since the previous status.
    """

    CHANNEL = Channel.CONTROL
    state: ControlState
    refused: int = 0

    def check(self) -> None:
        if not 0 <= self.refused < 1 << 32:
            raise ProtocolError("refused count out of range")


# --- input (technician -> user; enforced by client.core.control.gate) ---
#
# Coordinates are absolute pixels of the user's X root window (the virtual
# desktop that spans every monitor). Keys are X11 keysyms, modifier masks are
# X11 masks: whatever the technician's platform, the user's side injects them
# without translation.

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


# --- chat, clipboard, record ---


@message(96)
class ChatText(AppMessage):
    CHANNEL = Channel.CHAT
    msg_id: int
    text: str = dataclasses.field(metadata={"max": 8192})
    sent_at_ms: int = 0


CLIPBOARD_MAX_TEXT = 2 * 1024 * 1024 - 64


@message(104)
class ClipboardText(AppMessage):
    """The sender's clipboard text (sent only where both ClipboardPolicy allow it)."""

    CHANNEL = Channel.CLIPBOARD
    MAX_SIZE = 2 * 1024 * 1024
    text: str = dataclasses.field(metadata={"max": CLIPBOARD_MAX_TEXT})


@message(105)
class ClipboardPolicy(AppMessage):
    """What the sender's side will do with clipboard text, sent on every change.

    Attributes:
        send: the sender will send its clipboard text.
        receive: the sender accepts the peer's clipboard text.
        max_bytes: the largest text (UTF-8 bytes) the sender accepts.
    """

    CHANNEL = Channel.CLIPBOARD
    send: bool
    receive: bool
    max_bytes: int

    def check(self) -> None:
        if not 0 <= self.max_bytes <= CLIPBOARD_MAX_TEXT:
            raise ProtocolError("clipboard size limit out of range")


@message(112)
class AuditEvent(AppMessage):
    """One event for the session record (signed records come with the audit issue)."""

    CHANNEL = Channel.RECORD
    MAX_SIZE = 256 * 1024
    seq: int
    ts_ms: int
    event: str = dataclasses.field(metadata={"max": 64})
    data: str = dataclasses.field(default="", metadata={"max": 200 * 1024})


# --- screen ---
#
# The user's side shares one *view*: a monitor, or all monitors together.
# Frames carry rectangles of that view; the technician acknowledges them
# (FrameAck paces the sender) and may ask for a keyframe or another monitor.
# Cursor shape and position travel apart from the pixels. The structural
# checks are here; technician.core.screen.decoder checks the payloads.

MAX_VIEW_SIDE = 16384
MAX_VIEW_PIXELS = 8192 * 4608  # two 4K monitors side by side fit with room to spare
MAX_RECTS = 4096
RECT_FIELDS = 6  # x, y, width, height, encoding, payload length
MAX_MONITORS = 16
MAX_CURSOR_SIDE = 256


class ScreenEncoding(enum.IntEnum):
    """How one rectangle's payload is encoded.

    RAW_BGRA: width*height*4 bytes, rows of B, G, R, X.
    ZSTD: one zstd frame that inflates to exactly the RAW_BGRA bytes.
    JPEG: a baseline JPEG of exactly width x height.
    H264: the next access unit of the H.264 stream that covers this rect.
    H264_KEY: starts a new H.264 stream for this rect (an IDR access unit).
    FILL: 4 bytes B, G, R, X; the whole rectangle is that colour.
    PALETTE: few colours. flags (1 byte: bit 0 = indices zstd-compressed,
        bit 1 = the colours of the previous PALETTE rectangle again, since the
        last keyframe), colours - 1 (1 byte), the colours unless reused (3
        bytes each: B, G, R), then rows of indices packed at 1, 2, 4 or 8 bits
        (2, 4, 16 or 256 colours at most), most significant bits first, each
        row padded to a whole byte.
    """

    RAW_BGRA = 0
    ZSTD = 1
    JPEG = 2
    H264 = 3
    H264_KEY = 4
    FILL = 5
    PALETTE = 6


def _check_view(width: int, height: int) -> None:
    if not (0 < width <= MAX_VIEW_SIDE and 0 < height <= MAX_VIEW_SIDE):
        raise ProtocolError("screen size out of range")
    if width * height > MAX_VIEW_PIXELS:
        raise ProtocolError("screen larger than the viewer accepts")


@message(128)
class ScreenFrame(AppMessage):
    """One update of the shared view: rectangles painted in order.

    Attributes:
        seq: 1, 2, 3... for one sharing session; acknowledged by FrameAck.
        keyframe: the view starts over at width x height (the viewer drops
            its old picture and any H.264 stream); otherwise a delta.
        width, height: the size of the view this frame belongs to.
        latency_us: the sender's smoothed capture-to-acknowledgement time, for
            display; 0 when there is no new value (sent about once a second).
        rects: RECT_FIELDS integers per rectangle (x, y, width, height,
            encoding, payload length).
        data: the payloads, one after the other, in rectangle order.
    """

    CHANNEL = Channel.SCREEN
    MAX_SIZE = 48 * 1024 * 1024
    seq: int
    keyframe: bool
    width: int
    height: int
    latency_us: int
    rects: tuple[int, ...] = dataclasses.field(metadata={"max_items": MAX_RECTS * RECT_FIELDS})
    data: bytes = dataclasses.field(metadata={"max": 48 * 1024 * 1024 - 64 * 1024})

    def check(self) -> None:
        if self.seq < 1:
            raise ProtocolError("frame sequence number out of range")
        _check_view(self.width, self.height)
        if not 0 <= self.latency_us < 1 << 40:
            raise ProtocolError("frame timing out of range")
        fields = self.rects
        if len(fields) % RECT_FIELDS:
            raise ProtocolError("rectangle list is not whole rectangles")
        total = 0
        for i in range(0, len(fields), RECT_FIELDS):
            x, y, w, h, encoding, length = fields[i : i + RECT_FIELDS]
            if not (0 <= x and 0 <= y and 0 < w and 0 < h):
                raise ProtocolError("rectangle out of range")
            if x + w > self.width or y + h > self.height:
                raise ProtocolError("rectangle outside the screen")
            if length < 0:
                raise ProtocolError("negative payload length")
            if encoding == ScreenEncoding.RAW_BGRA:
                if length != w * h * 4:
                    raise ProtocolError("raw rectangle payload has the wrong length")
            elif encoding == ScreenEncoding.FILL:
                if length != 4:
                    raise ProtocolError("fill rectangle payload has the wrong length")
            elif encoding in (ScreenEncoding.H264, ScreenEncoding.H264_KEY):
                if w % 2 or h % 2:
                    raise ProtocolError("H.264 rectangle must have even sides")
            elif encoding == ScreenEncoding.PALETTE:
                if length < 3:
                    raise ProtocolError("palette rectangle payload too short")
            elif encoding not in (ScreenEncoding.ZSTD, ScreenEncoding.JPEG):
                raise ProtocolError(f"unknown screen encoding {encoding}")
            total += length
        if total != len(self.data):
            raise ProtocolError("payload lengths do not add up to the frame data")


@message(129)
class FrameAck(AppMessage):
    """Viewer to sharer: every frame up to seq is on the viewer's canvas.

    Acknowledgements are cumulative, so a lost one is repaired by the next.

    Attributes:
        seq: the newest frame applied.
        decode_us: time from the frame's arrival to its being applied.
    """

    CHANNEL = Channel.SCREEN
    seq: int
    decode_us: int = 0

    def check(self) -> None:
        if self.seq < 0 or not 0 <= self.decode_us < 1 << 40:
            raise ProtocolError("frame acknowledgement out of range")


@message(130)
class KeyframeRequest(AppMessage):
    """Viewer to sharer: send the whole view again (joined, lost sync, error)."""

    CHANNEL = Channel.SCREEN
    reason: str = dataclasses.field(default="", metadata={"max": 200})


@message(131)
class MonitorList(AppMessage):
    """Sharer to viewer: the user's monitors and which view is shared.

    Attributes:
        geometry: four integers per monitor (x, y, width, height) in the
            coordinates of the whole desktop.
        selected: 0 for all monitors together, n for monitor n (1-based).
    """

    CHANNEL = Channel.SCREEN
    geometry: tuple[int, ...] = dataclasses.field(metadata={"max_items": 4 * MAX_MONITORS})
    selected: int = 0

    @property
    def monitors(self) -> list[tuple[int, int, int, int]]:
        g = self.geometry
        return [(g[i], g[i + 1], g[i + 2], g[i + 3]) for i in range(0, len(g), 4)]

    def check(self) -> None:
        if len(self.geometry) % 4 or not self.geometry:
            raise ProtocolError("monitor list is not whole monitors")
        for x, y, w, h in self.monitors:
            if abs(x) > 1 << 20 or abs(y) > 1 << 20:
                raise ProtocolError("monitor position out of range")
            _check_view(w, h)
        if not 0 <= self.selected <= len(self.geometry) // 4:
            raise ProtocolError("selected monitor out of range")


@message(132)
class SelectMonitor(AppMessage):
    """Viewer to sharer: share monitor index (1-based), or 0 for all of them."""

    CHANNEL = Channel.SCREEN
    index: int

    def check(self) -> None:
        if not 0 <= self.index <= MAX_MONITORS:
            raise ProtocolError("monitor index out of range")


@message(133)
class CursorShape(AppMessage):
    """Sharer to viewer: a pointer image, referred to later by its serial.

    Attributes:
        data: zstd of width*height*4 bytes, premultiplied B, G, R, A rows.
    """

    CHANNEL = Channel.SCREEN
    MAX_SIZE = 512 * 1024
    serial: int
    width: int
    height: int
    hot_x: int
    hot_y: int
    data: bytes = dataclasses.field(metadata={"max": 500 * 1024})

    def check(self) -> None:
        if not (0 < self.width <= MAX_CURSOR_SIDE and 0 < self.height <= MAX_CURSOR_SIDE):
            raise ProtocolError("cursor size out of range")
        if not (0 <= self.hot_x < self.width and 0 <= self.hot_y < self.height):
            raise ProtocolError("cursor hot spot outside the cursor")
        if self.serial < 0:
            raise ProtocolError("cursor serial out of range")


@message(134)
class CursorPosition(AppMessage):
    """Sharer to viewer: where the pointer is, in view coordinates.

    Travels on the control channel so that it never waits behind a frame.
    """

    CHANNEL = Channel.CONTROL
    x: int
    y: int
    serial: int
    visible: bool = True

    def check(self) -> None:
        if abs(self.x) > 1 << 20 or abs(self.y) > 1 << 20 or self.serial < 0:
            raise ProtocolError("cursor position out of range")


class ScreenStopReason(enum.StrEnum):
    """Why the user's side stopped sharing (the value travels in ScreenStopped.reason)."""

    PAUSED = "paused"
    VIEW_REVOKED = "view-revoked"
    SESSION_ENDED = "session-ended"
    FAILED = "failed"


@message(135)
class ScreenStopped(AppMessage):
    """Sharer to viewer: no more frames for now (the user paused or took back view).

    It travels on the control channel, so it overtakes any screen data still
    queued (which the user's side discards when view ends). ``reason`` is a
    :class:`ScreenStopReason` value; older peers sent free text.
    """

    CHANNEL = Channel.CONTROL
    reason: str = dataclasses.field(default="", metadata={"max": 200})


# --- files ---


@message(144)
class FileOffer(AppMessage):
    CHANNEL = Channel.FILE
    transfer_id: bytes = dataclasses.field(metadata={"max": 16})
    name: str = dataclasses.field(metadata={"max": 1024})
    size: int
    sha256: bytes = dataclasses.field(metadata={"max": 32})

    def check(self) -> None:
        if len(self.transfer_id) != 16 or len(self.sha256) != 32 or self.size < 0:
            raise ProtocolError("invalid file offer")


@message(145)
class FileChunk(AppMessage):
    CHANNEL = Channel.FILE
    MAX_SIZE = 2 * 1024 * 1024
    transfer_id: bytes = dataclasses.field(metadata={"max": 16})
    offset: int
    data: bytes = dataclasses.field(metadata={"max": 1 << 20})

    def check(self) -> None:
        if len(self.transfer_id) != 16 or self.offset < 0:
            raise ProtocolError("invalid file chunk")


@message(146)
class FileEnd(AppMessage):
    CHANNEL = Channel.FILE
    transfer_id: bytes = dataclasses.field(metadata={"max": 16})
    cancelled: bool = False

    def check(self) -> None:
        if len(self.transfer_id) != 16:
            raise ProtocolError("invalid file end")
