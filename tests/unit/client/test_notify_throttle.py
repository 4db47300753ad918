"""NotificationThrottle: repeats and bursts stay out of the tray; warnings always show."""

from __future__ import annotations

from client.qt.notify_throttle import NotificationThrottle


def test_a_burst_shows_one_and_repeats_wait() -> None:
    throttle = NotificationThrottle(min_interval=4.0, repeat_window=30.0)
    assert throttle.admit("Deskhand", "Clipboard sent", 0.0)
    assert not throttle.admit("Deskhand", "Clipboard received", 1.0)  # too soon
    assert not throttle.admit("Deskhand", "Clipboard sent", 10.0)  # the same again
    assert throttle.admit("Deskhand", "Clipboard received", 10.0)
    assert throttle.admit("Deskhand", "Clipboard sent", 31.0)  # the repeat window is over


def test_warnings_always_show() -> None:
    throttle = NotificationThrottle()
    assert throttle.admit("Deskhand", "hello", 0.0)
    assert throttle.admit("Technician NOT verified", "bad certificate", 0.1, warning=True)
    assert throttle.admit("Technician NOT verified", "bad certificate", 0.2, warning=True)
