"""A Qt window that reports every input event it receives, as JSON lines.

Run it as a separate process on an X display (tests/integration/test_control_*.py,
bench/input.py)::

    DISPLAY=:N QT_QPA_PLATFORM=xcb python tests/x11_probe.py --geometry 100,100,800,600

It opens one frameless window at the given geometry (root coordinates; Xvfb
has no window manager, so the window lands exactly there), gives it the
keyboard focus, prints ``{"event": "ready", ...}`` once the window is exposed
and focused, then one line per event:

- ``press`` / ``release`` / ``dblclick``: ``button`` (Qt's value: 1 left,
  2 right, 4 middle, 8 back, 16 forward), ``x``, ``y`` (global), ``mods``;
- ``move``: ``x``, ``y`` (global), ``buttons`` (the held mask), ``mods``;
- ``wheel``: ``dx``, ``dy`` (Qt's angleDelta), ``x``, ``y``, ``mods``;
- ``key`` / ``keyup``: ``key`` (Qt.Key value), ``text``, ``mods``,
  ``keysym`` (nativeVirtualKey on xcb), ``repeat``.

Modifiers are Qt.KeyboardModifier values (shift 0x02000000, control
0x04000000, alt 0x08000000, meta 0x10000000). Every line also carries ``t``,
the CLOCK_MONOTONIC time when the event reached the window (seconds, as a
float), for latency measurements. The probe exits when stdin closes or after
``--lifetime`` seconds, whichever is first.

``--fill '#rrggbb'`` paints the window in one solid colour (a pattern to look
for in screenshots of a viewer); ``--click-focus`` makes a press in the window
activate it, as a click-to-focus window manager would (Xvfb has none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSocketNotifier, Qt, QTimer
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget


def _emit(record: dict[str, Any]) -> None:
    record["t"] = time.monotonic()
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _mods(event: QKeyEvent | QMouseEvent | QWheelEvent) -> int:
    return int(event.modifiers().value)


class Recorder(QObject):
    """Records the window's input events (as an application-wide filter)."""

    def __init__(self, window: QWidget, *, click_focus: bool = False) -> None:
        super().__init__(window)
        self._window = window
        self._click_focus = click_focus

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is not self._window.windowHandle():
            return False
        kind = event.type()
        if isinstance(event, QMouseEvent):
            pos = event.globalPosition()
            names = {
                QEvent.Type.MouseButtonPress: "press",
                QEvent.Type.MouseButtonRelease: "release",
                QEvent.Type.MouseButtonDblClick: "dblclick",
                QEvent.Type.MouseMove: "move",
            }
            name = names.get(kind)
            if name == "press" and self._click_focus and not self._window.isActiveWindow():
                self._window.activateWindow()
            if name == "move":
                _emit(
                    {
                        "event": "move",
                        "x": round(pos.x()),
                        "y": round(pos.y()),
                        "buttons": int(event.buttons().value),
                        "mods": _mods(event),
                    }
                )
            elif name is not None:
                _emit(
                    {
                        "event": name,
                        "button": int(event.button().value),
                        "x": round(pos.x()),
                        "y": round(pos.y()),
                        "mods": _mods(event),
                    }
                )
        elif isinstance(event, QWheelEvent):
            angle, pos = event.angleDelta(), event.globalPosition()
            _emit(
                {
                    "event": "wheel",
                    "dx": angle.x(),
                    "dy": angle.y(),
                    "x": round(pos.x()),
                    "y": round(pos.y()),
                    "mods": _mods(event),
                }
            )
        elif isinstance(event, QKeyEvent) and kind in (
            QEvent.Type.KeyPress,
            QEvent.Type.KeyRelease,
        ):
            _emit(
                {
                    "event": "key" if kind == QEvent.Type.KeyPress else "keyup",
                    "key": int(event.key()),
                    "text": event.text(),
                    "mods": _mods(event),
                    "keysym": int(event.nativeVirtualKey()),
                    "repeat": event.isAutoRepeat(),
                }
            )
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--geometry", default="0,0,640,480", help="x,y,width,height")
    parser.add_argument("--lifetime", type=float, default=120.0)
    parser.add_argument("--fill", default="", help="a solid background colour, #rrggbb")
    parser.add_argument("--click-focus", action="store_true", help="a press activates the window")
    args = parser.parse_args(argv)
    x, y, width, height = (int(v) for v in args.geometry.split(","))

    app = QApplication(sys.argv[:1])
    app.setStyleSheet("")
    window = QWidget(None, Qt.WindowType.FramelessWindowHint)
    window.setWindowTitle("deskhand input probe")
    window.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled, False)
    window.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    window.setMouseTracking(True)
    window.setGeometry(x, y, width, height)
    if args.fill:
        palette = window.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(args.fill))
        window.setPalette(palette)
        window.setAutoFillBackground(True)
    recorder = Recorder(window, click_focus=args.click_focus)
    window.show()

    deadline = time.monotonic() + 15.0

    def wait_ready() -> None:
        handle = window.windowHandle()
        if handle is not None and handle.isExposed():
            window.raise_()
            window.activateWindow()
            window.setFocus()
            if app.focusWindow() is handle:
                app.installEventFilter(recorder)
                geo = window.geometry()
                _emit(
                    {
                        "event": "ready",
                        "x": geo.x(),
                        "y": geo.y(),
                        "w": geo.width(),
                        "h": geo.height(),
                        "platform": app.platformName(),
                    }
                )
                return
        if time.monotonic() > deadline:
            _emit({"event": "failed", "reason": "the window was not exposed and focused"})
            app.exit(1)
            return
        QTimer.singleShot(20, wait_ready)

    QTimer.singleShot(0, wait_ready)

    # Leave when the parent closes our stdin (or dies), and in any case at the end.
    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            notifier.setEnabled(False)
            app.quit()

    notifier.activated.connect(on_stdin)
    QTimer.singleShot(int(args.lifetime * 1000), app.quit)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
