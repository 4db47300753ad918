"""Rectangles and tile grids (pure, no I/O).

Screens are cut into square tiles (:data:`TILE` pixels). Changed tiles are
merged into few rectangles: runs along each tile row, then runs of rows with
the same horizontal extent stacked into one rectangle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


__all__ = ["TILE", "Rect", "bounding_box", "mask_to_rects", "tile_grid", "tiles_of"]

TILE = 64


class Rect(NamedTuple):
    """A rectangle of pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    def intersect(self, other: Rect) -> Rect:
        """The overlap; empty (w or h 0) when there is none."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.right, other.right), min(self.bottom, other.bottom)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def union(self, other: Rect) -> Rect:
        """The smallest rectangle holding both (an empty one counts for nothing)."""
        if self.empty:
            return other
        if other.empty:
            return self
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1, y1 = max(self.right, other.right), max(self.bottom, other.bottom)
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def contains(self, other: Rect) -> bool:
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def translate(self, dx: int, dy: int) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.w, self.h)

    def align(self, step: int, bounds: Rect) -> Rect:
        """Grow outwards to multiples of step (from bounds' origin), then clip to bounds."""
        x0 = bounds.x + (self.x - bounds.x) // step * step
        y0 = bounds.y + (self.y - bounds.y) // step * step
        x1 = bounds.x + -(-(self.right - bounds.x) // step) * step
        y1 = bounds.y + -(-(self.bottom - bounds.y) // step) * step
        return Rect(x0, y0, x1 - x0, y1 - y0).intersect(bounds)


def bounding_box(rects: Iterable[Rect]) -> Rect:
    """The union of rects; Rect(0, 0, 0, 0) when there are none."""
    box = Rect(0, 0, 0, 0)
    for rect in rects:
        box = box.union(rect)
    return box


def tile_grid(width: int, height: int, tile: int = TILE) -> tuple[int, int]:
    """Rows and columns of tiles covering width x height (the last ones may be partial)."""
    return -(-height // tile), -(-width // tile)


def tiles_of(rect: Rect, tile: int = TILE) -> tuple[slice, slice]:
    """The tile rows and columns that rect touches, as slices into a tile mask."""
    if rect.empty:
        return slice(0, 0), slice(0, 0)
    return (
        slice(rect.y // tile, -(-rect.bottom // tile)),
        slice(rect.x // tile, -(-rect.right // tile)),
    )


def mask_to_rects(
    mask: npt.NDArray[np.bool_], width: int, height: int, tile: int = TILE
) -> list[Rect]:
    """Merge the set tiles of a (rows, cols) mask into rectangles clipped to the screen.

    Runs of set tiles along each row become one span; spans with the same
    columns on consecutive rows are stacked. Every set tile is covered exactly
    once, and no unset tile is covered.
    """
    rows, cols = mask.shape
    if not mask.any():
        return []
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    open_spans: dict[tuple[int, int], int] = {}  # (c0, c1) -> first row
    rects: list[Rect] = []
    screen = Rect(0, 0, width, height)

    def close(c0: int, c1: int, r0: int, r1: int) -> None:
        rect = Rect(c0 * tile, r0 * tile, (c1 - c0) * tile, (r1 - r0) * tile)
        rects.append(rect.intersect(screen))

    for r in range(rows):
        starts = np.flatnonzero(edges[r] == 1)
        ends = np.flatnonzero(edges[r] == -1)
        spans = {(int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
        for span in [s for s in open_spans if s not in spans]:
            close(span[0], span[1], open_spans.pop(span), r)
        for span in spans:
            open_spans.setdefault(span, r)
    for span, r0 in open_spans.items():
        close(span[0], span[1], r0, rows)
    return rects
