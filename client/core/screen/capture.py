"""Screen capture with mss over MIT-SHM (used from the sharer's worker thread only).

:class:`MssCapture` lists the monitors (mss reads RandR 1.5 monitors, so
virtual monitors set with ``xrandr --setmonitor`` count) and grabs any
rectangle of the desktop into a numpy array. mss copies each grab out of its
shared-memory segment into a fresh buffer, which the caller may keep (the
sharer keeps only the changed tiles, in its reference picture).

MIT-SHM matters: without it a full-screen grab is about 12 times slower
(performance.md section 1). ``require_shm=True`` makes its absence an error;
otherwise it is logged as a warning and reported in :attr:`MssCapture.shm`.

After a resolution change the mss connection must be reopened (its
shared-memory segment is sized for the old root window): :meth:`reopen`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from common.errors import DeskhandError
from common.screen.geometry import Rect


__all__ = ["CaptureError", "Monitor", "MssCapture", "ScreenCapture"]

logger = logging.getLogger(__name__)

Pixels = npt.NDArray[np.uint8]


class CaptureError(DeskhandError):
    """The screen cannot be captured (no display, no MIT-SHM when required...)."""


@dataclasses.dataclass(frozen=True)
class Monitor:
    """One monitor, in desktop coordinates."""

    rect: Rect
    primary: bool = False
    name: str = ""


class ScreenCapture(Protocol):
    """What the sharer needs from a capture backend (tests pass fakes)."""

    def monitors(self) -> list[Monitor]:
        """The monitors, in order (index 1 is the first); never empty."""
        ...

    def desktop(self) -> Rect:
        """The bounding box of all monitors (the "all monitors" view)."""
        ...

    def grab(self, rect: Rect) -> Pixels:
        """Pixels of rect (desktop coordinates) as a (h, w, 4) BGRX array."""
        ...

    def reopen(self) -> None:
        """Reconnect after a resolution change."""
        ...

    def close(self) -> None: ...


class MssCapture:
    """mss (XShmGetImage) capture of an X display.

    Attributes:
        shm: MIT-SHM is in use (False after a fallback to XGetImage).
    """

    def __init__(self, display: str | None = None, *, require_shm: bool = False) -> None:
        self._display = display
        self._require_shm = require_shm
        self._sct: Any = None
        self._monitors: list[Monitor] = []
        self._desktop = Rect(0, 0, 0, 0)
        self.shm = False
        self.reopen()

    def reopen(self) -> None:
        import mss  # imported late so that tests without X load this module
        from mss.exception import ScreenShotError

        self.close()
        try:
            kwargs: dict[str, Any] = {"backend": "xshmgetimage"}
            if self._display:
                kwargs["display"] = self._display
            self._sct = mss.MSS(**kwargs)
            raw = self._sct.monitors
        except ScreenShotError as exc:
            raise CaptureError(f"Cannot capture the screen: {exc}") from None
        if not raw:
            raise CaptureError("The display reports no screen to capture.")
        all_mon = raw[0]
        self._desktop = Rect(all_mon["left"], all_mon["top"], all_mon["width"], all_mon["height"])
        monitors = [
            Monitor(
                Rect(m["left"], m["top"], m["width"], m["height"]),
                bool(m.get("is_primary", False)),
                str(m.get("output", "")),
            )
            for m in raw[1:]
        ]
        self._monitors = monitors or [Monitor(self._desktop, True)]
        # One small grab tells whether MIT-SHM works on this connection.
        self.grab(Rect(self._desktop.x, self._desktop.y, 1, 1))
        status = " ".join(self._sct.performance_status)
        self.shm = "MIT-SHM is working" in status
        if not self.shm:
            message = f"MIT-SHM is not available, capture will be slow ({status or 'no reason'})"
            if self._require_shm:
                self.close()
                raise CaptureError(message)
            logger.warning(message)

    def monitors(self) -> list[Monitor]:
        return list(self._monitors)

    def desktop(self) -> Rect:
        return self._desktop

    def grab(self, rect: Rect) -> Pixels:
        from mss.exception import ScreenShotError

        if self._sct is None:
            raise CaptureError("capture is closed")
        region = {"left": rect.x, "top": rect.y, "width": rect.w, "height": rect.h}
        try:
            shot = self._sct.grab(region)
        except ScreenShotError as exc:
            raise CaptureError(f"Screen grab failed: {exc}") from None
        pixels: Pixels = np.frombuffer(shot.raw, np.uint8).reshape(rect.h, rect.w, 4)
        return pixels

    def close(self) -> None:
        if self._sct is not None:
            try:
                self._sct.close()
            finally:
                self._sct = None
