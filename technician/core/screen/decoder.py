"""Decoding of untrusted screen frames (no I/O, no threads).

Everything here comes from the other party. :class:`FrameDecoder` refuses any
frame that is malformed, oversized or inconsistent with what came before
(wrong dimensions, a rectangle outside the view, a payload that inflates to
more or less than its rectangle, an H.264 stream that was never started...)
by raising :class:`ScreenDecodeError`, and nothing else. Memory is bounded
before any payload is inflated: the view is at most ``max_pixels``, the
rectangles of one frame cover at most the view's area (so one frame decodes
to at most one view of pixels, 4 bytes each), zstd output is capped at the
rectangle's size, JPEG headers are checked before decoding and the H.264
decoder is told the largest picture it may allocate.

What remains trusted is FFmpeg's H.264 parser itself (through PyAV): a
memory-safety bug there is reachable by a hostile user's stream. That is
the known residual risk (docs/architecture.md, "Screen sharing").

After an error the decoder insists on a keyframe (the caller should ask for
one): a delta on top of a picture we could not build would be garbage.
"""

from __future__ import annotations

import collections
import dataclasses
import typing

import av
import numpy as np
import numpy.typing as npt
import simplejpeg
import zstandard

from common.errors import ProtocolError
from common.protocol.messages import (
    MAX_CURSOR_SIDE,
    MAX_RECTS,
    MAX_VIEW_PIXELS,
    RECT_FIELDS,
    CursorShape,
    ScreenEncoding,
    ScreenFrame,
)
from common.screen.frame import frame_rects
from common.screen.geometry import Rect


__all__ = [
    "CursorImage",
    "DecodedFrame",
    "DecoderLimits",
    "FrameDecoder",
    "Pixels",
    "ScreenDecodeError",
    "decode_cursor",
]

Pixels = npt.NDArray[np.uint8]


class ScreenDecodeError(ProtocolError):
    """A frame or cursor from the other side was refused; the text says why."""


@dataclasses.dataclass(frozen=True)
class DecoderLimits:
    """Bounds on what one frame may make the decoder do.

    Attributes:
        max_pixels: the largest view accepted (width * height). The
            rectangles of one frame may cover at most the view's area: the
            sender's rectangles never overlap, so a frame that covers more
            is hostile (at 2 views, one frame of a 37.7-megapixel view
            decoded to about 300 MB).
        max_rects: rectangles per frame.
        max_h264_streams: H.264 regions alive at the same time.
        max_window: the largest zstd window (bytes of history) accepted.
    """

    max_pixels: int = MAX_VIEW_PIXELS
    max_rects: int = MAX_RECTS
    max_h264_streams: int = 2
    max_window: int = 1 << 25


@dataclasses.dataclass(frozen=True)
class DecodedFrame:
    """A checked frame, decoded into BGRA arrays ready to blit.

    Attributes:
        rects: each rectangle and its pixels (h, w, 4), in paint order.
        encodings: how many rectangles used each encoding.
        payload_bytes: the encoded size of the frame's rectangles.
    """

    seq: int
    keyframe: bool
    width: int
    height: int
    latency_us: int
    rects: list[tuple[Rect, Pixels]]
    encodings: collections.Counter[ScreenEncoding]
    payload_bytes: int


@dataclasses.dataclass(frozen=True)
class CursorImage:
    """A decoded pointer image (premultiplied BGRA) and its hot spot."""

    serial: int
    width: int
    height: int
    hot_x: int
    hot_y: int
    pixels: Pixels


class _H264Stream:
    """One H.264 decoder for one rectangle of the view."""

    def __init__(self, rect: Rect) -> None:
        self.rect = rect
        self.context = av.CodecContext.create("h264", "r")
        self.context.thread_count = 1
        # Refuse, inside FFmpeg, any picture larger than the rectangle: a hostile
        # SPS cannot make the decoder allocate a huge frame.
        self.context.options = {"max_pixels": str(rect.w * rect.h)}

    def decode(self, data: bytes | memoryview) -> Pixels:
        try:
            frames = self.context.decode(av.Packet(bytes(data)))
        except (av.FFmpegError, ValueError, MemoryError) as exc:
            raise ScreenDecodeError(f"H.264 data could not be decoded: {exc}") from None
        if len(frames) != 1:
            raise ScreenDecodeError(f"H.264 access unit gave {len(frames)} pictures, not 1")
        frame = frames[0]
        if (frame.width, frame.height) != (self.rect.w, self.rect.h):
            raise ScreenDecodeError(
                f"H.264 picture is {frame.width}x{frame.height}, "
                f"its rectangle {self.rect.w}x{self.rect.h}"
            )
        try:
            # reformat + a view of the plane: to_ndarray copies row by row (3 ms at 720p).
            bgra = frame.reformat(format="bgra")
            plane = bgra.planes[0]
            rows = np.frombuffer(memoryview(plane), np.uint8).reshape(bgra.height, plane.line_size)
        except (av.FFmpegError, ValueError) as exc:
            raise ScreenDecodeError(f"H.264 picture could not be converted: {exc}") from None
        w, h = self.rect.w, self.rect.h
        return typing.cast(Pixels, rows[:h, : w * 4].reshape(h, w, 4))


def _has_idr(data: bytes | memoryview) -> bool:
    # Annex B: NAL units follow 00 00 01 start codes; type 5 is an IDR slice.
    raw = bytes(data[:4096]) if len(data) > 4096 else bytes(data)
    start = raw.find(b"\x00\x00\x01")
    while start >= 0 and start + 3 < len(raw):
        if raw[start + 3] & 0x1F == 5:
            return True
        start = raw.find(b"\x00\x00\x01", start + 3)
    return False


class FrameDecoder:
    """Checks and decodes the frames of one sharing session, in order.

    Not thread safe: use it from one thread (the receiver's decode thread).
    """

    def __init__(self, limits: DecoderLimits | None = None) -> None:
        self.limits = limits or DecoderLimits()
        self._zstd = zstandard.ZstdDecompressor(max_window_size=self.limits.max_window)
        self._streams: collections.OrderedDict[Rect, _H264Stream] = collections.OrderedDict()
        self._last_seq = 0
        self._size: tuple[int, int] | None = None
        self._palette: Pixels | None = None

    @property
    def needs_keyframe(self) -> bool:
        """No picture to build on (start, or after an error): only a keyframe will do."""
        return self._size is None

    def reset(self) -> None:
        """Forget the picture and H.264 state; the next frame must be a keyframe."""
        self._size = None
        self._streams.clear()
        self._palette = None

    def decode(self, frame: ScreenFrame) -> DecodedFrame:
        """Check and decode one frame.

        Raises:
            ScreenDecodeError: the frame is refused, and the decoder has reset
                itself: it now waits for a keyframe.
        """
        try:
            return self._decode(frame)
        except ScreenDecodeError:
            self.reset()
            raise
        except ProtocolError as exc:
            self.reset()
            raise ScreenDecodeError(str(exc)) from None

    def _decode(self, frame: ScreenFrame) -> DecodedFrame:
        frame.check()
        lim = self.limits
        # A keyframe starts the picture over, whatever its number (a new
        # sharing session numbers from 1 again); changes must come in order.
        if not frame.keyframe and frame.seq <= self._last_seq:
            raise ScreenDecodeError(f"frame {frame.seq} arrived after frame {self._last_seq}")
        self._last_seq = frame.seq
        width, height = frame.width, frame.height
        if width * height > lim.max_pixels:
            raise ScreenDecodeError(f"a {width}x{height} screen is larger than this viewer accepts")
        if frame.keyframe:
            self._size = (width, height)
            self._streams.clear()
            self._palette = None
        elif self._size is None:
            raise ScreenDecodeError("a change arrived before any whole picture")
        elif self._size != (width, height):
            raise ScreenDecodeError(
                f"a {width}x{height} change arrived for a "
                f"{self._size[0]}x{self._size[1]} picture without a keyframe"
            )
        count = len(frame.rects) // RECT_FIELDS
        if count > lim.max_rects:
            raise ScreenDecodeError(f"{count} rectangles in one frame is too many")
        fields = frame.rects
        area = sum(fields[i + 2] * fields[i + 3] for i in range(0, len(fields), RECT_FIELDS))
        if area > width * height:
            raise ScreenDecodeError(
                f"the rectangles of one frame cover {area} pixels, more than the"
                f" {width}x{height} screen"
            )
        decoded: list[tuple[Rect, Pixels]] = []
        encodings: collections.Counter[ScreenEncoding] = collections.Counter()
        for item in frame_rects(frame):
            decoded.append((item.rect, self._decode_rect(item.rect, item.encoding, item.data)))
            encodings[item.encoding] += 1
        return DecodedFrame(
            frame.seq,
            frame.keyframe,
            width,
            height,
            frame.latency_us,
            decoded,
            encodings,
            len(frame.data),
        )

    def _decode_rect(
        self, rect: Rect, encoding: ScreenEncoding, data: bytes | memoryview
    ) -> Pixels:
        w, h = rect.w, rect.h
        if encoding is ScreenEncoding.RAW_BGRA:
            return np.frombuffer(data, np.uint8).reshape(h, w, 4)
        if encoding is ScreenEncoding.FILL:
            return np.broadcast_to(np.frombuffer(data, np.uint8), (h, w, 4))
        if encoding is ScreenEncoding.ZSTD:
            return self._inflate(data, w * h * 4).reshape(h, w, 4)
        if encoding is ScreenEncoding.JPEG:
            return _decode_jpeg(data, w, h)
        if encoding is ScreenEncoding.PALETTE:
            return self._decode_palette(data, w, h)
        if encoding is ScreenEncoding.H264_KEY:
            if not _has_idr(data):
                raise ScreenDecodeError("an H.264 stream must start with an IDR picture")
            self._streams.pop(rect, None)
            if len(self._streams) >= self.limits.max_h264_streams:
                self._streams.popitem(last=False)
            fresh = self._streams[rect] = _H264Stream(rect)
            return fresh.decode(data)
        if encoding is ScreenEncoding.H264:
            stream = self._streams.get(rect)
            if stream is None:
                raise ScreenDecodeError("H.264 data for a rectangle with no stream started")
            self._streams.move_to_end(rect)
            return stream.decode(data)
        raise ScreenDecodeError(f"unknown encoding {encoding}")  # pragma: no cover

    def _decode_palette(self, data: bytes | memoryview, w: int, h: int) -> Pixels:
        view = memoryview(data)
        if len(view) < 2:
            raise ScreenDecodeError("palette rectangle too short")
        flags, n = view[0], view[1] + 1
        if flags & ~3:
            raise ScreenDecodeError("unknown palette flags")
        if flags & 2:
            palette = self._palette
            if palette is None or len(palette) != n:
                raise ScreenDecodeError("palette reused before one was sent")
            end = 2
        else:
            end = 2 + 3 * n
            if len(view) < end:
                raise ScreenDecodeError("palette rectangle shorter than its palette")
            # A copy: a view would keep the whole frame's data alive.
            palette = np.frombuffer(view[2:end], np.uint8).reshape(n, 3).copy()
            self._palette = palette
        bpp = 1 if n <= 2 else 2 if n <= 4 else 4 if n <= 16 else 8
        per_byte = 8 // bpp
        row = -(-w // per_byte)
        expected = row * h
        if flags & 1:
            packed = self._inflate(view[end:], expected)
        else:
            packed = np.frombuffer(view[end:], np.uint8)
            if len(packed) != expected:
                raise ScreenDecodeError(f"palette indices are {len(packed)} bytes, not {expected}")
        rows = packed.reshape(h, row)
        if bpp == 8:
            idx = rows[:, :w]
        else:
            shifts = np.arange(8 - bpp, -1, -bpp, dtype=np.uint8)
            mask = np.uint8((1 << bpp) - 1)
            idx = ((rows[:, :, None] >> shifts) & mask).reshape(h, row * per_byte)[:, :w]
        if int(idx.max()) >= n:
            raise ScreenDecodeError("palette index beyond the palette")
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = palette[idx]
        out[..., 3] = 255
        return out

    def _inflate(self, data: bytes | memoryview, expected: int) -> Pixels:
        return _inflate(self._zstd, data, expected)


def _inflate(dctx: zstandard.ZstdDecompressor, data: bytes | memoryview, expected: int) -> Pixels:
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise ScreenDecodeError(f"zstd data is not valid: {exc}") from None
    if declared not in (-1, expected):
        raise ScreenDecodeError(f"zstd data inflates to {declared} bytes, not {expected}")
    try:
        # The size check above matters: when a frame declares its size, zstandard
        # allocates that much whatever max_output_size says.
        raw = dctx.decompress(data, max_output_size=expected, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ScreenDecodeError(f"zstd data could not be inflated: {exc}") from None
    if len(raw) != expected:
        raise ScreenDecodeError(f"zstd data inflated to {len(raw)} bytes, not {expected}")
    return np.frombuffer(raw, np.uint8)


def _decode_jpeg(data: bytes | memoryview, w: int, h: int) -> Pixels:
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        if (width, height) != (w, h):
            raise ScreenDecodeError(f"JPEG is {width}x{height}, its rectangle {w}x{h}")
        pixels: Pixels = simplejpeg.decode_jpeg(data, colorspace="BGRA")
    except ValueError as exc:
        raise ScreenDecodeError(f"JPEG data could not be decoded: {exc}") from None
    if pixels.shape != (h, w, 4):
        raise ScreenDecodeError("JPEG decoded to the wrong size")
    return pixels


def decode_cursor(shape: CursorShape) -> CursorImage:
    """Check and inflate a pointer image.

    Raises:
        ScreenDecodeError: the shape is refused.
    """
    try:
        shape.check()
    except ProtocolError as exc:
        raise ScreenDecodeError(str(exc)) from None
    if shape.width > MAX_CURSOR_SIDE or shape.height > MAX_CURSOR_SIDE:  # pragma: no cover
        raise ScreenDecodeError("cursor too large")
    expected = shape.width * shape.height * 4
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << 20)  # rare: no need to share one
    pixels = _inflate(dctx, memoryview(shape.data), expected)
    return CursorImage(
        shape.serial,
        shape.width,
        shape.height,
        shape.hot_x,
        shape.hot_y,
        pixels.reshape(shape.height, shape.width, 4),
    )
