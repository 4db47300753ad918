"""Per-region hybrid encoding: zstd tiles, JPEG, H.264 (runs in the worker thread).

Which codec a rectangle gets (:func:`choose_codec`, pure):

- small rectangles, and anything being refreshed: lossless: a PALETTE of a
  few colours with bit-packed indices when that is smallest (a typed glyph
  takes about 20 bytes, as in VNC Tight), else zstd level 1 on raw BGRX, or
  a 4-byte FILL when the rectangle is one colour;
- large rectangles whose tiles keep changing, and rectangles where lossless
  coding recently did poorly (photo-like content): JPEG at the adapter's
  quality;
- otherwise, large rectangles are first split by a cheap per-tile test
  (:func:`photo_tiles`: how many pixels repeat their left neighbour, which is
  most of them in text and UI and almost none in photos), so that a keyframe
  with a window over a photo wallpaper sends the window losslessly and the
  wallpaper as JPEG; then zstd is tried, and if it keeps more than
  ``lossless_limit`` of the raw size on a large rectangle, JPEG is sent
  instead and the tiles are remembered as photo-like.

Large regions that keep changing go to :class:`H264Region` (x264
ultrafast/zerolatency, yuv420p) as one picture per frame; the motion
detector in :mod:`.policy` picks the region, and tiles it covered are
refreshed losslessly once the motion stops.
"""

from __future__ import annotations

import dataclasses
import enum
import fractions

import av
import numpy as np
import numpy.typing as npt
import simplejpeg
import zstandard

from client.core.screen.policy import TileHistory
from common.protocol.messages import ScreenEncoding
from common.screen.frame import EncodedRect
from common.screen.geometry import TILE, Rect, mask_to_rects, tile_grid


__all__ = [
    "Codec",
    "EncoderSettings",
    "H264Region",
    "TileEncoder",
    "choose_codec",
    "pack_palette",
    "photo_tiles",
]

Pixels = npt.NDArray[np.uint8]


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """Knobs of the encoders.

    Attributes:
        zstd_level: 1 is the measured sweet spot (performance.md section 2).
        lossless_limit: zstd output / raw size above which a large rectangle
            is sent as JPEG instead.
        lossy_min_pixels: rectangles smaller than this are always lossless
            (a JPEG's headers alone are about 600 bytes).
        hot_jpeg_pixels: rectangles at least this large whose tiles keep
            changing go straight to JPEG (smaller ones, like a line being
            typed, stay lossless).
        jpeg_subsampling: "420" (fast, small) or "444" (crisper coloured text).
        h264: whether H.264 may be used at all.
        h264_threads: x264 threads (1 keeps the cost predictable).
    """

    zstd_level: int = 1
    lossless_limit: float = 0.2
    lossy_min_pixels: int = 64 * 64
    hot_jpeg_pixels: int = 256 * 256
    jpeg_subsampling: str = "420"
    h264: bool = True
    h264_threads: int = 1


def photo_tiles(pixels: Pixels, tile: int = TILE, threshold: float = 0.3) -> npt.NDArray[np.bool_]:
    """Which tiles of pixels look like a photo: few pixels repeat their left neighbour.

    Returns a (rows, cols) mask over tiles counted from pixels' (0, 0).
    """
    h, w = pixels.shape[:2]
    u = pixels.view(np.uint32).reshape(h, w)
    same = np.ones((h, w), np.bool_)
    np.equal(u[:, 1:], u[:, :-1], out=same[:, 1:])
    rows, cols = tile_grid(w, h, tile)
    sums = np.add.reduceat(same, np.arange(0, h, tile), axis=0, dtype=np.int32)
    sums = np.add.reduceat(sums, np.arange(0, w, tile), axis=1)
    heights = np.minimum(tile, h - np.arange(rows) * tile)
    widths = np.minimum(tile, w - np.arange(cols) * tile)
    mask: npt.NDArray[np.bool_] = sums < threshold * np.outer(heights, widths)
    return mask


PALETTE_MAX_PIXELS = 128 * 128
PALETTE_MAX_COLORS = 16


def pack_palette(
    pixels: Pixels, zstd: zstandard.ZstdCompressor, previous: bytes | None = None
) -> tuple[bytes, bytes] | None:
    """The PALETTE payload for pixels and its colours; None: too many colours.

    When the colours equal previous (the colours of the last PALETTE sent),
    the payload refers to them instead of repeating them.
    """
    h, w = pixels.shape[:2]
    bgr = pixels.view(np.uint32).reshape(h, w) & np.uint32(0x00FFFFFF)
    colors, inverse = np.unique(bgr, return_inverse=True)
    n = len(colors)
    if n > PALETTE_MAX_COLORS:
        return None
    bpp = 1 if n <= 2 else 2 if n <= 4 else 4
    per_byte = 8 // bpp
    row = -(-w // per_byte)
    idx = np.zeros((h, row * per_byte), np.uint8)
    idx[:, :w] = inverse.reshape(h, w)
    shifts = np.arange(8 - bpp, -1, -bpp, dtype=np.uint8)
    packed: bytes = bytes(
        np.bitwise_or.reduce(idx.reshape(h, row, per_byte) << shifts, axis=2, dtype=np.uint8)
    )
    flags = 0
    if len(packed) >= 64:
        squeezed = zstd.compress(packed)
        if len(squeezed) < len(packed):
            packed, flags = squeezed, 1
    palette = bytes(colors.astype("<u4").view(np.uint8).reshape(n, 4)[:, :3])
    if palette == previous:
        return bytes((flags | 2, n - 1)) + packed, palette
    return bytes((flags, n - 1)) + palette + packed, palette


class Codec(enum.Enum):
    LOSSLESS = "lossless"
    JPEG = "jpeg"
    TRY_LOSSLESS = "try"


def choose_codec(
    rect: Rect, history: TileHistory, settings: EncoderSettings, *, refresh: bool = False
) -> Codec:
    """Pick the codec for one changed rectangle (see the module docstring)."""
    if refresh or rect.area < settings.lossy_min_pixels:
        return Codec.LOSSLESS
    if history.photo_like(rect) or (rect.area >= settings.hot_jpeg_pixels and history.hot(rect)):
        return Codec.JPEG
    return Codec.TRY_LOSSLESS


class TileEncoder:
    """Encodes rectangles of the view with zstd, FILL or JPEG. One thread only."""

    def __init__(self, settings: EncoderSettings | None = None) -> None:
        self.settings = settings or EncoderSettings()
        self._zstd = zstandard.ZstdCompressor(level=self.settings.zstd_level)
        self._palette: bytes | None = None  # the colours of the last PALETTE sent

    def reset(self) -> None:
        """A keyframe starts: the viewer forgets the last palette too."""
        self._palette = None

    def lossless(self, rect: Rect, pixels: Pixels) -> EncodedRect:
        """The smallest of PALETTE (few colours), zstd of the BGRX rows, or FILL."""
        packed = None
        if rect.area <= PALETTE_MAX_PIXELS:
            packed = pack_palette(pixels, self._zstd, self._palette)
            if packed is not None:
                payload, colours = packed
                if len(colours) == 3:  # one colour
                    return EncodedRect(rect, ScreenEncoding.FILL, colours + b"\xff")
                if len(payload) <= 128:
                    self._palette = colours
                    return EncodedRect(rect, ScreenEncoding.PALETTE, payload)
        flat = np.ascontiguousarray(pixels)
        if flat is pixels:
            flat = pixels.copy()
        flat[..., 3] = 255
        data = self._zstd.compress(flat.data.cast("B"))
        if len(data) < 64 and flat.size >= 64:
            first = flat.reshape(-1, 4)[0]
            if (flat.view(np.uint32) == first.view(np.uint32)[0]).all():
                return EncodedRect(rect, ScreenEncoding.FILL, first.tobytes())
        if packed is not None and len(packed[0]) < len(data):
            self._palette = packed[1]
            return EncodedRect(rect, ScreenEncoding.PALETTE, packed[0])
        return EncodedRect(rect, ScreenEncoding.ZSTD, data)

    def jpeg(self, rect: Rect, pixels: Pixels, quality: int) -> EncodedRect:
        data = simplejpeg.encode_jpeg(
            pixels,
            quality,
            colorspace="BGRA",
            colorsubsampling=self.settings.jpeg_subsampling,
        )
        return EncodedRect(rect, ScreenEncoding.JPEG, data)

    def encode(
        self,
        rect: Rect,
        pixels: Pixels,
        history: TileHistory,
        quality: int,
        *,
        refresh: bool = False,
    ) -> list[EncodedRect]:
        """Encode one changed rectangle and record in history how it went."""
        codec = choose_codec(rect, history, self.settings, refresh=refresh)
        if codec is Codec.JPEG:
            history.sent(rect, lossy=True)
            return [self.jpeg(rect, pixels, quality)]
        if codec is Codec.LOSSLESS:
            history.sent(rect, lossy=False)
            return [self.lossless(rect, pixels)]
        if rect.area >= 4 * TILE * TILE:
            photo = photo_tiles(pixels)
            if photo.any() and not photo.all():
                out: list[EncodedRect] = []
                h, w = pixels.shape[:2]
                for part in mask_to_rects(photo, w, h):
                    history.sent(part.translate(rect.x, rect.y), lossy=True, poor_lossless=True)
                    sub = pixels[part.y : part.bottom, part.x : part.right]
                    out.append(self.jpeg(part.translate(rect.x, rect.y), sub, quality))
                for part in mask_to_rects(~photo, w, h):
                    sub = pixels[part.y : part.bottom, part.x : part.right]
                    out.append(
                        self._try_lossless(part.translate(rect.x, rect.y), sub, history, quality)
                    )
                return out
            if photo.all():
                history.sent(rect, lossy=True, poor_lossless=True)
                return [self.jpeg(rect, pixels, quality)]
        return [self._try_lossless(rect, pixels, history, quality)]

    def _try_lossless(
        self, rect: Rect, pixels: Pixels, history: TileHistory, quality: int
    ) -> EncodedRect:
        out = self.lossless(rect, pixels)
        if rect.area >= self.settings.lossy_min_pixels and (
            out.size > self.settings.lossless_limit * rect.area * 4
        ):
            history.sent(rect, lossy=True, poor_lossless=True)
            return self.jpeg(rect, pixels, quality)
        history.sent(rect, lossy=False, poor_lossless=False)
        return out


class H264Region:
    """One H.264 stream covering one rectangle of the view.

    The first picture is an IDR and goes out as H264_KEY; later ones as
    H264. A new region (or a keyframe) means a new H264Region.
    """

    def __init__(self, rect: Rect, crf: int, threads: int = 1) -> None:
        if rect.w % 2 or rect.h % 2 or rect.empty:
            raise ValueError("an H.264 region needs even, non-zero sides")
        self.rect = rect
        self.crf = crf
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height = rect.w, rect.h
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = fractions.Fraction(1, 1000)
        ctx.thread_count = threads
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "crf": str(crf),
            # No surprise IDRs: the viewer asks for a keyframe when it needs one.
            "x264-params": "keyint=infinite:scenecut=0",
        }
        self._ctx = ctx
        self._pts = 0

    def encode(self, pixels: Pixels) -> EncodedRect:
        """Encode the region's current pixels (h, w, 4) as the next picture."""
        # from_numpy_buffer wraps the array (from_ndarray copies it row by row:
        # 5 ms for 1280x720 on the reference machine).
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(pixels), format="bgra")
        frame = frame.reformat(format="yuv420p")
        frame.pts = self._pts
        first = self._pts == 0
        self._pts += 1
        packets = self._ctx.encode(frame)
        data = b"".join(bytes(p) for p in packets)
        if not data:
            raise RuntimeError("x264 returned no data for a zero-latency picture")
        encoding = ScreenEncoding.H264_KEY if first else ScreenEncoding.H264
        return EncodedRect(self.rect, encoding, data)
