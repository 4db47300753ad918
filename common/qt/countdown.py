"""A once-a-second countdown to a deadline, for "Reconnecting… (N s)" lines on both sides."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer


__all__ = ["Countdown"]


class Countdown(QObject):
    """Calls ``on_tick(seconds_left)`` at once and then every second until stopped."""

    def __init__(
        self,
        parent: QObject,
        on_tick: Callable[[int], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._on_tick = on_tick
        self._clock = clock
        self._deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def start(self, deadline: float) -> None:
        """Count down to ``deadline`` (on ``clock``'s scale)."""
        self._deadline = deadline
        self._timer.start()
        self._tick()

    def stop(self) -> None:
        self._timer.stop()

    def seconds_left(self) -> int:
        return max(0, round(self._deadline - self._clock()))

    def _tick(self) -> None:
        self._on_tick(self.seconds_left())
