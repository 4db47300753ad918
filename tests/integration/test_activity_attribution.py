"""On a shared desktop, input in the technician console is flagged (real Xvfb).

XActivityMonitor watches the display; a separate XTest connection plays the
person at the keyboard (not in the injector's ledger, so it is local input).
Windows are made with python-xlib, named like the console or like anything
else; one test runs a real Qt window with the console's application name.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from Xlib import XK, X, display as xdisplay
from Xlib.ext import xtest

from client.core.control.activity import (
    TECHNICIAN_CONSOLE_CLASS,
    InjectionLedger,
    LocalInput,
    XActivityMonitor,
)
from tests.xvfb import Xvfb


pytestmark = pytest.mark.x11

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def desktop() -> Iterator[Xvfb]:
    with Xvfb(1280, 800, 24) as server:
        yield server


class Desk:
    """Two top-level windows side by side and an XTest 'person' on one connection."""

    def __init__(self, server: Xvfb) -> None:
        self.conn = xdisplay.Display(server.display)
        root = self.conn.screen().root
        self.console = self._window(root, 0, ("deskhand-technician", TECHNICIAN_CONSOLE_CLASS))
        self.other = self._window(root, 640, ("xterm", "XTerm"))
        self.conn.sync()

    def _window(self, root: object, x: int, wm_class: tuple[str, str]) -> object:
        window = root.create_window(x, 0, 600, 600, 0, X.CopyFromParent)  # type: ignore[attr-defined]
        window.set_wm_class(*wm_class)
        window.map()
        return window

    def focus(self, window: object) -> None:
        self.conn.set_input_focus(window, X.RevertToParent, X.CurrentTime)
        self.conn.sync()

    def key(self, name: str = "a") -> None:
        code = self.conn.keysym_to_keycode(XK.string_to_keysym(name))
        xtest.fake_input(self.conn, X.KeyPress, code)
        xtest.fake_input(self.conn, X.KeyRelease, code)
        self.conn.sync()

    def move(self, x: int, y: int) -> None:
        xtest.fake_input(self.conn, X.MotionNotify, x=x, y=y)
        self.conn.sync()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def desk(desktop: Xvfb) -> Iterator[Desk]:
    desk = Desk(desktop)
    yield desk
    desk.close()


@pytest.fixture
def monitor(desktop: Xvfb) -> Iterator[XActivityMonitor]:
    monitor = XActivityMonitor(desktop.display, ledger=InjectionLedger(), focus_ttl=0.0)
    yield monitor
    monitor.close()


def collect(monitor: XActivityMonitor, count: int) -> list[LocalInput]:
    found: list[LocalInput] = []
    deadline = time.monotonic() + TIMEOUT
    while len(found) < count and time.monotonic() < deadline:
        select.select([monitor.fileno()], [], [], 0.1)
        found.extend(monitor.read())
    assert len(found) >= count, found
    return found


def test_keys_in_the_console_are_flagged(desk: Desk, monitor: XActivityMonitor) -> None:
    desk.focus(desk.console)
    desk.key()
    events = collect(monitor, 2)
    assert [(e.kind, e.pressed) for e in events] == [("key", True), ("key", False)]
    assert all(e.technician_console for e in events)


def test_keys_in_another_window_are_the_users(desk: Desk, monitor: XActivityMonitor) -> None:
    desk.focus(desk.other)
    desk.key()
    events = collect(monitor, 2)
    assert not any(e.technician_console for e in events)


def test_pointer_over_the_console_flags_pointer_events_not_keys(
    desk: Desk, monitor: XActivityMonitor
) -> None:
    desk.focus(desk.other)
    desk.move(100, 100)  # over the console
    moves = collect(monitor, 1)
    assert moves[-1].kind == "motion" and moves[-1].technician_console
    desk.key()  # keys still go to the focused window: the user's
    keys = [e for e in collect(monitor, 2) if e.kind == "key"]
    assert keys and not any(e.technician_console for e in keys)
    desk.move(900, 100)  # over the other window
    assert not collect(monitor, 1)[-1].technician_console


def test_switching_focus_is_seen_after_focus_ttl(desktop: Xvfb, desk: Desk) -> None:
    monitor = XActivityMonitor(desktop.display, ledger=InjectionLedger(), focus_ttl=0.05)
    try:
        desk.move(900, 100)
        desk.focus(desk.console)
        desk.key()
        assert all(e.technician_console for e in collect(monitor, 2))
        desk.focus(desk.other)
        time.sleep(0.1)
        desk.key()
        assert not any(e.technician_console for e in collect(monitor, 2))
    finally:
        monitor.close()


def test_disabled_attribution_flags_nothing(desktop: Xvfb, desk: Desk) -> None:
    monitor = XActivityMonitor(desktop.display, ledger=InjectionLedger(), console_classes=())
    try:
        desk.focus(desk.console)
        desk.key()
        assert not any(e.technician_console for e in collect(monitor, 2))
    finally:
        monitor.close()


QT_CONSOLE = """
import sys
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication(sys.argv[:1])
app.setApplicationName(sys.argv[1])  # as technician/qt/app.py does
window = QWidget()
window.setGeometry(0, 0, 600, 600)
window.show()
sys.stdin.read()
"""


def test_a_qt_window_with_the_consoles_application_name_is_flagged(
    desktop: Xvfb, desk: Desk, monitor: XActivityMonitor
) -> None:
    env = desktop.env()
    env["QT_QPA_PLATFORM"] = "xcb"
    desk.focus(desk.other)
    proc = subprocess.Popen(
        [sys.executable, "-c", QT_CONSOLE, TECHNICIAN_CONSOLE_CLASS],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        # Find the Qt window among the top-level windows once it is mapped.
        ours = {desk.console.id, desk.other.id}  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        qt_window = None
        while qt_window is None:
            assert time.monotonic() < deadline, "the Qt window never appeared"
            time.sleep(0.05)
            for child in desk.conn.screen().root.query_tree().children:
                attrs = child.get_attributes()
                if child.id not in ours and attrs.map_state == X.IsViewable:
                    qt_window = child
        desk.focus(qt_window)
        monitor.read()
        desk.key()
        assert all(e.technician_console for e in collect(monitor, 2))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
