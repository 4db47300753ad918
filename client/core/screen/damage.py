"""Knowing what changed: X DAMAGE events where the server has them, tile diffs always.

:func:`changed_rects` (pure numpy) compares freshly grabbed pixels with the
reference picture (what the viewer was last sent) tile by tile: equal 64-row
strips are skipped at memcmp speed, unequal strips are compared pixel by
pixel, and the changed tiles are merged into rectangles, each shrunk to the
exact changed pixels when it is small.

:class:`DamageAccumulator` (pure) collects damage rectangles into a tile mask
until the sharer takes them.

:class:`X11Events` is the thin adapter to the X server, on its own Xlib
connection in the event-loop thread: DAMAGE events on the root window (where
changes happen), RandR screen-change events (resolution changes), XFixes
cursor-change events, and pointer queries. Without the DAMAGE extension the
sharer falls back to polling: it grabs the view at a modest rate and lets
:func:`changed_rects` find the changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from common.screen.geometry import TILE, Rect, mask_to_rects, tile_grid, tiles_of


__all__ = ["DamageAccumulator", "X11Events", "changed_rects"]

logger = logging.getLogger(__name__)

Pixels = npt.NDArray[np.uint8]
TIGHTEN_MAX_AREA = 32 * TILE * TILE


def _u32(pixels: Pixels) -> npt.NDArray[np.uint32]:
    # (h, w, 4) uint8 with contiguous pixels -> (h, w) uint32, no copy.
    return pixels.view(np.uint32).reshape(pixels.shape[:2])


def changed_rects(reference: Pixels, current: Pixels, tile: int = TILE) -> list[Rect]:
    """Rectangles (in the arrays' coordinates) where current differs from reference.

    Both are (h, w, 4) uint8 arrays of the same shape, whose (0, 0) sits on a
    tile corner. Every changed pixel is inside a returned rectangle.
    """
    if reference.shape != current.shape:
        raise ValueError("reference and current differ in shape")
    h, w = current.shape[:2]
    if h == 0 or w == 0:
        return []
    ref, cur = _u32(reference), _u32(current)
    rows, cols = tile_grid(w, h, tile)
    mask = np.zeros((rows, cols), np.bool_)
    col_starts = np.arange(0, w, tile)
    for r in range(rows):
        y0, y1 = r * tile, min(h, (r + 1) * tile)
        a, b = ref[y0:y1], cur[y0:y1]
        if np.array_equal(a, b):
            continue
        changed_cols = (a != b).any(axis=0)
        mask[r] = np.logical_or.reduceat(changed_cols, col_starts)
    rects = mask_to_rects(mask, w, h, tile)
    return [_tighten(ref, cur, rect) if rect.area <= TIGHTEN_MAX_AREA else rect for rect in rects]


def _tighten(ref: npt.NDArray[np.uint32], cur: npt.NDArray[np.uint32], rect: Rect) -> Rect:
    sl = (slice(rect.y, rect.bottom), slice(rect.x, rect.right))
    diff = ref[sl] != cur[sl]
    rows = np.flatnonzero(diff.any(axis=1))
    cols = np.flatnonzero(diff.any(axis=0))
    if not rows.size:  # pragma: no cover - the tile was found changed
        return rect
    return Rect(
        rect.x + int(cols[0]),
        rect.y + int(rows[0]),
        int(cols[-1]) - int(cols[0]) + 1,
        int(rows[-1]) - int(rows[0]) + 1,
    )


class DamageAccumulator:
    """Damage rectangles of one view, kept as a tile mask until taken."""

    def __init__(self, width: int, height: int, tile: int = TILE) -> None:
        self.width, self.height, self.tile = width, height, tile
        self._mask = np.zeros(tile_grid(width, height, tile), np.bool_)
        self._any = False

    @property
    def pending(self) -> bool:
        return self._any

    def add(self, rect: Rect) -> None:
        """Note damage (view coordinates; clipped to the view)."""
        rect = rect.intersect(Rect(0, 0, self.width, self.height))
        if rect.empty:
            return
        self._mask[tiles_of(rect, self.tile)] = True
        self._any = True

    def add_all(self) -> None:
        self._mask[:] = True
        self._any = True

    def take(self) -> list[Rect]:
        """The damaged area as tile-aligned rectangles; clears it."""
        if not self._any:
            return []
        rects = mask_to_rects(self._mask, self.width, self.height, self.tile)
        self._mask[:] = False
        self._any = False
        return rects


DamageCallback = Callable[[Rect], None]


def _open_display(name: str | None) -> Any:
    """An Xlib connection with its own extension event and error tables.

    python-xlib keeps those tables on the class, shared by every connection
    of the process, so a second connection to a server with other extensions
    (other event numbers) fails or misreads events. Each connection made here
    gets private tables; other connections keep the shared ones.
    """
    from Xlib import display as xdisplay, error as xerror
    from Xlib.protocol import display as pdisplay, event as xevent

    cls: Any = pdisplay.Display
    shared = cls.event_classes, cls.error_classes
    cls.event_classes = xevent.event_class.copy()
    cls.error_classes = xerror.xerror_class.copy()
    try:
        connection = xdisplay.Display(name)
        connection.display.event_classes = cls.event_classes
        connection.display.error_classes = cls.error_classes
    finally:
        cls.event_classes, cls.error_classes = shared
    return connection


class X11Events:
    """DAMAGE, RandR and XFixes events from the X server, in the event-loop thread.

    Args:
        display_name: the X display (None: $DISPLAY).
        on_damage: called with each damaged rectangle (root coordinates).
        on_screen_change: called when the root window changes size or monitors.
        on_cursor_change: called when the pointer image changes.

    Attributes:
        has_damage: the server reports damage (else the caller must poll).
        has_cursor: the server gives pointer images (XFixes 2+).
    """

    def __init__(
        self,
        display_name: str | None,
        on_damage: DamageCallback,
        on_screen_change: Callable[[], None],
        on_cursor_change: Callable[[], None],
    ) -> None:
        from Xlib import X  # X is optional at import
        from Xlib.ext import damage, randr, xfixes

        self._X = X
        self._damage_ext = damage
        self._on_damage = on_damage
        self._on_screen_change = on_screen_change
        self._on_cursor_change = on_cursor_change
        self.display: Any = _open_display(display_name)
        try:
            self.root: Any = self.display.screen().root
            self.has_damage = bool(self.display.has_extension("DAMAGE"))
            self.has_cursor = bool(self.display.has_extension("XFIXES"))
            self.has_randr = bool(self.display.has_extension("RANDR"))
            self._damage_id: int | None = None
            if self.has_damage:
                self.display.damage_query_version()
                self._damage_id = self.root.damage_create(damage.DamageReportRawRectangles)
            if self.has_cursor:
                self.display.xfixes_query_version()
                self.display.xfixes_select_cursor_input(
                    self.root, xfixes.XFixesDisplayCursorNotifyMask
                )
            if self.has_randr:
                self.root.xrandr_select_input(
                    randr.RRScreenChangeNotifyMask | randr.RRCrtcChangeNotifyMask
                )
            self.root.change_attributes(event_mask=X.StructureNotifyMask)
            events = self.display.extension_event
            self._damage_event: int | None = events.DamageNotify if self.has_damage else None
            self._cursor_event: int | None = (
                events.DisplayCursorNotify[0] if self.has_cursor else None
            )
            self._randr_event: int | None = events.ScreenChangeNotify if self.has_randr else None
            self.display.flush()
        except BaseException:
            # Never leak the connection (python-xlib's extension tables are
            # shared between connections, and a second display with other
            # extensions can fail here).
            self.display.close()
            raise

    def fileno(self) -> int:
        return int(self.display.fileno())

    def process(self) -> None:
        """Handle every event that has arrived (call when the fd is readable).

        Also call after any request that waits for a reply: Xlib may have read
        events from the socket while waiting, and the fd will not wake us for them.
        """
        d = self.display
        screen_changed = cursor_changed = False
        while d.pending_events():
            event = d.next_event()
            etype = event.type
            if etype == self._damage_event:
                area = event.area
                self._on_damage(Rect(area.x, area.y, area.width, area.height))
            elif etype == self._cursor_event:
                cursor_changed = True
            elif etype == self._randr_event or (
                etype == self._X.ConfigureNotify and event.window == self.root
            ):
                screen_changed = True
        if screen_changed:
            self._on_screen_change()
        if cursor_changed:
            self._on_cursor_change()

    def query_pointer(self) -> tuple[int, int]:
        """The pointer's root coordinates."""
        reply = self.root.query_pointer()
        return int(reply.root_x), int(reply.root_y)

    def cursor_image(self) -> Any:
        """The XFixes cursor image reply (x, y, width, height, xhot, yhot, serial, pixels)."""
        return self.display.xfixes_get_cursor_image(self.root)

    def close(self) -> None:
        try:
            if self._damage_id is not None:
                self.display.damage_destroy(self._damage_id)
            self.display.close()
        except Exception:  # the server may already be gone
            logger.debug("closing the X connection failed", exc_info=True)
