"""One frame: grab, diff, encode (synchronous; runs in the sharer's worker thread).

:class:`FramePipeline` owns the *reference picture*: the pixels the viewer
was last sent, at full quality. Each :meth:`~FramePipeline.produce` grabs the
damaged part of the view (or all of it), diffs it against the reference,
copies what changed into the reference, and encodes the changes:

- rectangles outside the motion region go through :class:`TileEncoder`
  (zstd, FILL or JPEG per rectangle);
- if the motion detector has a region and anything in it changed, the region
  goes out as one H.264 picture;
- lossy tiles that have been still for ``refresh_after`` seconds are sent
  again losslessly.

It does no I/O besides the capture port, so tests drive it with a fake
capture and a fake clock.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from client.core.screen.capture import ScreenCapture
from client.core.screen.damage import changed_rects
from client.core.screen.encoder import EncoderSettings, H264Region, TileEncoder
from client.core.screen.pacing import Quality
from client.core.screen.policy import MotionDetector, MotionSettings, TileHistory
from common.protocol.messages import ScreenEncoding
from common.screen.frame import EncodedRect
from common.screen.geometry import TILE, Rect, bounding_box


__all__ = ["FrameJob", "FramePipeline", "Produced", "StageTimes", "split_rect", "subtract"]

Pixels = npt.NDArray[np.uint8]

BLOCK_W, BLOCK_H = 512, 256  # large changes are cut into blocks this big (codec per block)


@dataclasses.dataclass(frozen=True)
class FrameJob:
    """What the sharer asks of one produce() call.

    Attributes:
        view: the shared view, in desktop coordinates.
        damage: damaged rectangles in view coordinates, or None when unknown
            (polling: the whole view is grabbed and diffed).
        keyframe: send the whole view and start over.
        quality: the adapter's current settings.
        refresh: also send due lossless refreshes.
    """

    view: Rect
    damage: list[Rect] | None
    keyframe: bool
    quality: Quality
    refresh: bool = True


@dataclasses.dataclass
class StageTimes:
    grab: float = 0.0
    diff: float = 0.0
    encode: float = 0.0


@dataclasses.dataclass(frozen=True)
class Produced:
    """A frame ready to send (see ScreenFrame for the fields' meaning)."""

    keyframe: bool
    width: int
    height: int
    captured_at: float
    rects: list[EncodedRect]
    times: StageTimes
    changed_pixels: int
    encodings: collections.Counter[ScreenEncoding]
    h264_region: Rect | None

    @property
    def payload_bytes(self) -> int:
        return sum(r.size for r in self.rects)


def split_rect(rect: Rect, bw: int = BLOCK_W, bh: int = BLOCK_H) -> list[Rect]:
    """Cut a rectangle into blocks of at most bw x bh."""
    if rect.w <= bw and rect.h <= bh:
        return [rect]
    return [
        Rect(x, y, min(bw, rect.right - x), min(bh, rect.bottom - y))
        for y in range(rect.y, rect.bottom, bh)
        for x in range(rect.x, rect.right, bw)
    ]


def subtract(rect: Rect, hole: Rect) -> list[Rect]:
    """rect minus hole, as up to four rectangles."""
    inter = rect.intersect(hole)
    if inter.empty:
        return [rect]
    parts = [
        Rect(rect.x, rect.y, rect.w, inter.y - rect.y),  # above
        Rect(rect.x, inter.bottom, rect.w, rect.bottom - inter.bottom),  # below
        Rect(rect.x, inter.y, inter.x - rect.x, inter.h),  # left
        Rect(inter.right, inter.y, rect.right - inter.right, inter.h),  # right
    ]
    return [p for p in parts if not p.empty]


class FramePipeline:
    """Produces frames of one view from a capture backend. One thread only."""

    def __init__(
        self,
        capture: ScreenCapture,
        clock: Callable[[], float],
        *,
        encoder: EncoderSettings | None = None,
        motion: MotionSettings | None = None,
        refresh_after: float = 0.3,
        refresh_tiles: int = 64,
    ) -> None:
        self.capture = capture
        self.clock = clock
        self.encoder_settings = encoder or EncoderSettings()
        self.motion_settings = motion or MotionSettings()
        self.refresh_after = refresh_after
        self.refresh_tiles = refresh_tiles
        self._tiles = TileEncoder(self.encoder_settings)
        self._view: Rect | None = None
        self._reference: Pixels = np.zeros((0, 0, 4), np.uint8)
        self.history = TileHistory(0, 0)
        self.motion = MotionDetector(0, 0, self.motion_settings)
        self._h264: H264Region | None = None
        self._h264_generation = -1

    def next_refresh(self) -> float | None:
        """When a lossless refresh falls due (None: nothing lossy on the viewer)."""
        if self._view is None:
            return None
        return self.history.next_refresh(self.refresh_after)

    @property
    def motion_active(self) -> bool:
        return self.motion.region is not None

    def _start_view(self, view: Rect) -> None:
        self._view = view
        self._reference = np.zeros((view.h, view.w, 4), np.uint8)
        self.history = TileHistory(view.w, view.h)
        self.motion = MotionDetector(view.w, view.h, self.motion_settings)
        self._h264 = None
        self._h264_generation = -1
        self._tiles.reset()

    def produce(self, job: FrameJob) -> Produced | None:
        """Grab, diff and encode; None when nothing changed."""
        view = job.view
        keyframe = job.keyframe or view != self._view
        if keyframe:
            self._start_view(view)
        times = StageTimes()
        whole = Rect(0, 0, view.w, view.h)
        t0 = self.clock()
        captured_at = t0
        if keyframe:
            pixels = self.capture.grab(view)
            t1 = self.clock()
            self._reference[...] = pixels
            changed = [whole]
            times.grab, times.diff = t1 - t0, 0.0
            t2 = t1
        else:
            areas = self._grab_areas(job.damage, whole)
            grabbed = [(area, self.capture.grab(area.translate(view.x, view.y))) for area in areas]
            t1 = self.clock()
            changed = []
            for area, pixels in grabbed:
                ref = self._reference[area.y : area.bottom, area.x : area.right]
                for rect in changed_rects(ref, pixels):
                    ref[rect.y : rect.bottom, rect.x : rect.right] = pixels[
                        rect.y : rect.bottom, rect.x : rect.right
                    ]
                    changed.append(rect.translate(area.x, area.y))
            t2 = self.clock()
            times.grab, times.diff = t1 - t0, t2 - t1
        now = t2
        changed_pixels = sum(r.area for r in changed)
        self.history.frame(self.history.mask_of(changed), now)
        region = self.motion.update(now, changed_pixels, self.history)
        if not self.encoder_settings.h264:
            region = None
        if region is None:
            if self._h264 is not None:
                # Motion stopped: the region's tiles get their lossless refresh
                # once still (they were marked lossy as H.264 went out).
                self._h264 = None
        elif keyframe or self.motion.generation != self._h264_generation:
            threads = self.encoder_settings.h264_threads
            self._h264 = H264Region(region, job.quality.h264_crf, threads)
            self._h264_generation = self.motion.generation
        encoded = self._encode(changed, job, now, keyframe)
        times.encode = self.clock() - t2
        if not encoded:
            return None
        encodings = collections.Counter(r.encoding for r in encoded)
        return Produced(
            keyframe,
            view.w,
            view.h,
            captured_at,
            encoded,
            times,
            changed_pixels,
            encodings,
            self._h264.rect if self._h264 is not None else None,
        )

    def _grab_areas(self, damage: list[Rect] | None, whole: Rect) -> list[Rect]:
        if damage is None:
            return [whole]
        rects = [r.align(TILE, whole) for r in damage]
        rects = [r for r in rects if not r.empty]
        if not rects:
            return []
        box = bounding_box(rects)
        if len(rects) <= 8 and sum(r.area for r in rects) < 0.5 * box.area:
            return rects
        return [box]

    def _encode(
        self, changed: list[Rect], job: FrameJob, now: float, keyframe: bool
    ) -> list[EncodedRect]:
        out: list[EncodedRect] = []
        ref = self._reference
        history = self.history
        quality = job.quality.jpeg_quality
        h264 = self._h264
        tile_rects: list[Rect] = []
        h264_due = keyframe and h264 is not None
        for rect in changed:
            if h264 is not None and not rect.intersect(h264.rect).empty:
                h264_due = True
                tile_rects += subtract(rect, h264.rect)
            else:
                tile_rects.append(rect)
        for rect in tile_rects:
            for block in split_rect(rect):
                pixels = ref[block.y : block.bottom, block.x : block.right]
                out += self._tiles.encode(block, pixels, history, quality)
        if h264 is not None and h264_due:
            r = h264.rect
            out.append(h264.encode(ref[r.y : r.bottom, r.x : r.right]))
            history.mark_lossy(r, now)
        if job.refresh and not keyframe:
            due = history.refresh_due(now, self.refresh_after, self.refresh_tiles)
            for rect in due:
                parts = subtract(rect, h264.rect) if h264 is not None else [rect]
                for part in parts:
                    for block in split_rect(part):
                        pixels = ref[block.y : block.bottom, block.x : block.right]
                        out += self._tiles.encode(block, pixels, history, quality, refresh=True)
        return out
