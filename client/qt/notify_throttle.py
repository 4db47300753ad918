"""Which notifications reach the tray, so that they never pile up (pure; time passed in).

- the same title and text again within ``repeat_window`` seconds: not shown again;
- at most one notification every ``min_interval`` seconds: the rest only go to
  the window's status line (the latest wins there);
- warnings always show.
"""

from __future__ import annotations

import math


__all__ = ["NotificationThrottle"]


class NotificationThrottle:
    def __init__(self, *, min_interval: float = 4.0, repeat_window: float = 30.0) -> None:
        self._min_interval = min_interval
        self._repeat_window = repeat_window
        self._last_shown_at = -math.inf
        self._seen: dict[tuple[str, str], float] = {}

    def admit(self, title: str, text: str, now: float, *, warning: bool = False) -> bool:
        """Show this one in the tray now? (False: the status line only.)"""
        key = (title, text)
        for old, at in list(self._seen.items()):
            if now - at >= self._repeat_window:
                del self._seen[old]
        if warning:
            self._seen[key] = now
            self._last_shown_at = now
            return True
        if key in self._seen or now - self._last_shown_at < self._min_interval:
            return False
        self._seen[key] = now
        self._last_shown_at = now
        return True
