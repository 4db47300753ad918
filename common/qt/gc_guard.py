"""Python's cyclic garbage collector, run on the GUI thread only.

The apps run asyncio in a second thread (:class:`~common.net.runner.LoopThread`).
Python collects cyclic garbage in whichever thread happens to allocate when a
threshold is crossed; if that is the loop thread and the garbage holds Qt
objects, Qt destroys them off the GUI thread, which can crash the process
(a segmentation fault was seen in the test suite). So automatic collection
is switched off and the same thresholds are checked on a GUI-thread timer.
Reference counting, which frees almost everything, is not affected.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


__all__ = ["GuiThreadCollector"]


class GuiThreadCollector(QObject):
    """While it runs, cyclic garbage is collected only by its timer, on the GUI thread."""

    def __init__(self, parent: QObject, *, interval_ms: int = 250) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Collect once more here, and give collection back to Python."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> None:
        """Collect the generations whose counts passed Python's own thresholds."""
        first, second, third = gc.get_count()
        limit0, limit1, limit2 = self._thresholds
        if third > limit2:
            gc.collect(2)
        elif second > limit1:
            gc.collect(1)
        elif first > limit0:
            gc.collect(0)
