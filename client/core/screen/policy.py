"""Per-tile history and the motion detector (pure: numpy and the time passed in).

:class:`TileHistory` remembers, for every tile of the view, how often it has
changed lately (``heat``), when it last changed, whether the viewer holds a
lossy copy of it, and whether lossless coding did poorly on it. The encoder
asks it which codec to use and which lossy tiles are due a lossless refresh.

:class:`MotionDetector` decides when a large area keeps changing (video,
scrolling, dragging) and so should go to the H.264 encoder as one region::

    TILES --(most of the last frames change >= min_fraction of the view)--> MOTION(region)
    MOTION --(nothing changed inside the region for still_after s)--> TILES (+ lossless refresh)
    MOTION --(the hot area moved away from the region)--> MOTION(new region)
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from common.screen.geometry import TILE, Rect, mask_to_rects, tile_grid, tiles_of


__all__ = ["MotionDetector", "MotionSettings", "TileHistory"]

BoolMask = npt.NDArray[np.bool_]


class TileHistory:
    """What we know about each tile of one view."""

    HEAT_DECAY = 0.7  # per frame: a tile changed in every frame converges to 1.0

    def __init__(self, width: int, height: int, tile: int = TILE) -> None:
        self.width, self.height, self.tile = width, height, tile
        rows, cols = tile_grid(width, height, tile)
        self.heat = np.zeros((rows, cols), np.float32)
        self.last_change = np.zeros((rows, cols), np.float64)
        self.lossy = np.zeros((rows, cols), np.bool_)
        self.photo = np.zeros((rows, cols), np.uint8)

    def frame(self, dirty: BoolMask, now: float) -> None:
        """One frame was produced; dirty marks the tiles it changed."""
        self.heat *= self.HEAT_DECAY
        self.heat[dirty] += 1.0 - self.HEAT_DECAY
        self.last_change[dirty] = now

    def mask_of(self, rects: Sequence[Rect]) -> BoolMask:
        mask = np.zeros(self.heat.shape, np.bool_)
        for rect in rects:
            mask[tiles_of(rect, self.tile)] = True
        return mask

    def hot(self, rect: Rect, threshold: float = 0.5) -> bool:
        """Whether the tiles under rect have mostly been changing frame after frame."""
        area = self.heat[tiles_of(rect, self.tile)]
        return bool(area.size and float(area.mean()) >= threshold)

    def photo_like(self, rect: Rect) -> bool:
        """Whether lossless coding recently did poorly on most of rect."""
        area = self.photo[tiles_of(rect, self.tile)]
        return bool(area.size and float(np.count_nonzero(area)) >= 0.5 * area.size)

    def sent(self, rect: Rect, *, lossy: bool, poor_lossless: bool | None = None) -> None:
        """Record how rect was just sent.

        A lossy rectangle makes every tile it touches lossy; a lossless one
        clears only the tiles it covers whole (the rest of a partly covered
        tile may still hold lossy pixels).
        """
        sl = tiles_of(rect, self.tile)
        if lossy:
            self.lossy[sl] = True
        else:
            t = self.tile
            right = rect.right if rect.right < self.width else -(-self.width // t) * t
            bottom = rect.bottom if rect.bottom < self.height else -(-self.height // t) * t
            whole = (slice(-(-rect.y // t), bottom // t), slice(-(-rect.x // t), right // t))
            self.lossy[whole] = False
        if poor_lossless is True:
            self.photo[sl] = 8
        elif poor_lossless is False:
            self.photo[sl] = np.maximum(self.photo[sl], 1) - 1

    def refresh_due(self, now: float, still_for: float, limit_tiles: int) -> list[Rect]:
        """Lossy tiles unchanged for still_for seconds, at most about limit_tiles of them.

        The caller sends them losslessly and then calls sent(..., lossy=False).
        """
        due = self.lossy & (now - self.last_change >= still_for)
        if not due.any():
            return []
        if int(np.count_nonzero(due)) > limit_tiles:
            # Refresh a band of whole tile rows at a time, top first.
            counts = np.cumsum(np.count_nonzero(due, axis=1))
            last_row = int(np.searchsorted(counts, limit_tiles)) + 1
            due[last_row:] = False
        return mask_to_rects(due, self.width, self.height, self.tile)

    def next_refresh(self, still_for: float) -> float | None:
        """When the earliest lossy tile becomes due a refresh (None: none is lossy)."""
        if not self.lossy.any():
            return None
        return float(self.last_change[self.lossy].min()) + still_for

    def mark_lossy(self, rect: Rect, now: float) -> None:
        """rect is lossy on the viewer and counts as changed now (so refreshed later)."""
        sl = tiles_of(rect, self.tile)
        self.lossy[sl] = True
        self.last_change[sl] = now


@dataclasses.dataclass(frozen=True)
class MotionSettings:
    """When a changing area becomes an H.264 region.

    Attributes:
        window: seconds of frame history considered.
        min_frames: frames needed in the window before motion is declared.
        min_fraction: a frame "moves" when it changes at least this share of
            the view...
        min_pixels: ...and at least this many pixels.
        share: the share of frames in the window that must move.
        still_after: seconds without change inside the region that end motion.
        hot: tile heat that counts as part of the moving area.
        align: region corners are multiples of this (even, for 4:2:0).
    """

    window: float = 0.5
    min_frames: int = 6
    min_fraction: float = 0.08
    min_pixels: int = 256 * 256
    share: float = 0.75
    still_after: float = 0.3
    hot: float = 0.4
    align: int = 16


class MotionDetector:
    """Decides the H.264 region from the frames' changes.

    Attributes:
        region: the current motion region, or None in tile mode.
        generation: bumps whenever region changes (a new H.264 stream).
    """

    def __init__(self, width: int, height: int, settings: MotionSettings | None = None) -> None:
        self.width, self.height = width, height
        self.settings = settings or MotionSettings()
        self.region: Rect | None = None
        self.generation = 0
        self._frames: collections.deque[tuple[float, bool]] = collections.deque()
        self._region_changed_at = 0.0

    def update(self, now: float, dirty_pixels: int, history: TileHistory) -> Rect | None:
        """Account for one frame; returns the region to use for it (or None)."""
        s = self.settings
        view = self.width * self.height
        moving = dirty_pixels >= max(s.min_pixels, s.min_fraction * view)
        self._frames.append((now, moving))
        while self._frames and now - self._frames[0][0] > s.window:
            self._frames.popleft()
        if self.region is not None:
            changed_inside = history.last_change[tiles_of(self.region, history.tile)].max()
            if now - float(changed_inside) >= s.still_after:
                self._set(None, now)
                return None
        sustained = len(self._frames) >= s.min_frames and sum(
            m for _, m in self._frames
        ) >= s.share * len(self._frames)
        if not sustained:
            return self.region
        hot = self._hot_box(history)
        if hot is None:
            return self.region
        if self.region is None:
            self._set(hot, now)
        elif not self.region.contains(hot) or hot.area < 0.5 * self.region.area:
            # The moving area moved or shrank a lot: restart the stream around it,
            # but not more often than once per window.
            if now - self._region_changed_at >= s.window:
                self._set(hot, now)
        return self.region

    def _hot_box(self, history: TileHistory) -> Rect | None:
        hot = history.heat >= self.settings.hot
        if not hot.any():
            return None
        rows = np.flatnonzero(hot.any(axis=1))
        cols = np.flatnonzero(hot.any(axis=0))
        t = history.tile
        box = Rect(
            int(cols[0]) * t,
            int(rows[0]) * t,
            (int(cols[-1]) + 1 - int(cols[0])) * t,
            (int(rows[-1]) + 1 - int(rows[0])) * t,
        )
        view = Rect(0, 0, self.width - self.width % 2, self.height - self.height % 2)
        box = box.align(self.settings.align, view)
        if box.w < 16 or box.h < 16:
            return None
        return box

    def _set(self, region: Rect | None, now: float) -> None:
        if region != self.region:
            self.region = region
            self.generation += 1
            self._region_changed_at = now

    def reset(self) -> None:
        self._set(None, 0.0)
        self._frames.clear()
