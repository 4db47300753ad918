"""Screen-sharing messages.

Registered by importing :mod:`common.protocol.messages`.

The user's side shares one *view*: a monitor, or all monitors together.
Frames carry rectangles of that view; the technician acknowledges them
(FrameAck paces the sender) and may ask for a keyframe or another monitor.
Cursor shape and position travel apart from the pixels. The structural
checks are here; technician.core.screen.decoder checks the payloads.
"""

from __future__ import annotations

import dataclasses
import enum

from common.errors import ProtocolError
from common.protocol.channels import Channel
from common.protocol.codec import message
from common.protocol.msg_base import AppMessage


__all__ = [
    "MAX_CURSOR_SIDE",
    "MAX_MONITORS",
    "MAX_RECTS",
    "MAX_VIEW_PIXELS",
    "MAX_VIEW_SIDE",
    "RECT_FIELDS",
    "CursorPosition",
    "CursorShape",
    "FrameAck",
    "KeyframeRequest",
    "MonitorList",
    "ScreenEncoding",
    "ScreenFrame",
    "ScreenStopReason",
    "ScreenStopped",
    "SelectMonitor",
]

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
