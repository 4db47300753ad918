"""The technician's copy of the shared view: a BGRX numpy array behind a lock.

The receiver's decode thread blits decoded rectangles into
:attr:`Canvas.pixels` while holding :attr:`Canvas.lock`; the viewer paints
from the same array (wrapped in a QImage without copying) holding the same
lock, so it never shows half a rectangle. A new view size means a new Canvas.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from common.screen.geometry import Rect
from technician.core.screen.decoder import DecodedFrame


__all__ = ["Canvas"]


class Canvas:
    """One view's pixels, (height, width, 4) uint8 in B, G, R, X order.

    Attributes:
        width, height: the view's size.
        pixels: the array (C-contiguous, rows of width * 4 bytes).
        lock: held while pixels change, and by readers that need a stable picture.
        seq: the last frame applied.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels: npt.NDArray[np.uint8] = np.zeros((height, width, 4), np.uint8)
        self.pixels[..., 3] = 255
        self.lock = threading.Lock()
        self.seq = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def apply(self, frame: DecodedFrame) -> list[Rect]:
        """Blit a decoded frame; returns the rectangles that changed."""
        if (frame.width, frame.height) != self.size:
            raise ValueError("frame and canvas differ in size")
        dirty = []
        with self.lock:
            for rect, pixels in frame.rects:
                self.pixels[rect.y : rect.bottom, rect.x : rect.right] = pixels
                dirty.append(rect)
            self.seq = frame.seq
        return dirty

    def copy(self) -> npt.NDArray[np.uint8]:
        """A consistent copy of the pixels."""
        with self.lock:
            return self.pixels.copy()
