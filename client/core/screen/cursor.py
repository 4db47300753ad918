"""The pointer: its image (XFixes) and position, sent apart from the pixels.

:func:`shape_from_xfixes` turns an XFixes cursor image into a
:class:`~common.protocol.messages.CursorShape`; :class:`CursorTracker`
(pure) decides when a position is worth sending and how often to look.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zstandard

from common.protocol.messages import MAX_CURSOR_SIDE, CursorPosition, CursorShape
from common.screen.geometry import Rect


__all__ = ["CursorTracker", "shape_from_xfixes"]


def shape_from_xfixes(reply: Any) -> CursorShape:
    """A CursorShape from an XFixes GetCursorImage reply.

    XFixes gives premultiplied ARGB as 32-bit integers; in little-endian
    bytes that is B, G, R, A, which is what CursorShape carries. Images larger
    than MAX_CURSOR_SIDE are cropped around the hot spot's corner.
    """
    w, h = int(reply.width), int(reply.height)
    argb = np.asarray(reply.cursor_image, dtype=np.uint32)
    if argb.size != w * h or w == 0 or h == 0:
        argb = np.zeros(1, np.uint32)
        w = h = 1
    pixels = argb.astype("<u4").view(np.uint8).reshape(h, w, 4)
    cw, ch = min(w, MAX_CURSOR_SIDE), min(h, MAX_CURSOR_SIDE)
    pixels = np.ascontiguousarray(pixels[:ch, :cw])
    hot_x = min(max(int(reply.xhot), 0), cw - 1)
    hot_y = min(max(int(reply.yhot), 0), ch - 1)
    data = zstandard.ZstdCompressor(level=3).compress(pixels.tobytes())
    return CursorShape(int(reply.cursor_serial) & 0x7FFFFFFF, cw, ch, hot_x, hot_y, data)


class CursorTracker:
    """When to send the pointer's position, and how often to poll it.

    Polls fast (``active_interval``) while the pointer moves and slowly
    (``idle_interval``) once it has been still for ``idle_after`` seconds, so an
    idle desktop costs next to nothing.
    """

    def __init__(
        self,
        *,
        active_interval: float = 1 / 60,
        idle_interval: float = 1 / 10,
        idle_after: float = 1.0,
    ) -> None:
        self.active_interval = active_interval
        self.idle_interval = idle_interval
        self.idle_after = idle_after
        self._last: CursorPosition | None = None
        self._moved_at = -1e9
        self.serial = 0

    def interval(self, now: float) -> float:
        """Seconds until the next poll."""
        if now - self._moved_at < self.idle_after:
            return self.active_interval
        return self.idle_interval

    def position(self, root_x: int, root_y: int, view: Rect, now: float) -> CursorPosition | None:
        """The message to send for a pointer at (root_x, root_y), or None if nothing changed."""
        x, y = root_x - view.x, root_y - view.y
        visible = 0 <= x < view.w and 0 <= y < view.h
        msg = CursorPosition(x, y, self.serial, visible)
        if msg == self._last:
            return None
        if self._last is None or (msg.x, msg.y) != (self._last.x, self._last.y):
            self._moved_at = now
        self._last = msg
        return msg

    def forget(self) -> None:
        """Send the next position whatever it is (new view, new viewer)."""
        self._last = None
