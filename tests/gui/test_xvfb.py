"""The Xvfb helper and fixtures work, and Qt's xcb platform runs on them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.xvfb import Xvfb


pytestmark = pytest.mark.x11


def _xdpyinfo(display: str) -> str:
    if shutil.which("xdpyinfo") is None:
        pytest.skip("xdpyinfo is not installed: apt-get install x11-utils")
    proc = subprocess.run(
        ["xdpyinfo", "-display", display],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _dimensions(info: str) -> list[str]:
    return re.findall(r"dimensions:\s+(\d+x\d+) pixels", info)


def test_session_xvfb_has_a_1920x1080_screen(xvfb: Xvfb) -> None:
    assert re.fullmatch(r":\d+", xvfb.display)
    info = _xdpyinfo(xvfb.display)
    assert _dimensions(info) == ["1920x1080"]
    assert re.search(r"depth of root window:\s+24 planes", info)


def test_x_display_sets_display(x_display: str, xvfb: Xvfb) -> None:
    assert x_display == xvfb.display
    assert os.environ["DISPLAY"] == x_display
    assert "WAYLAND_DISPLAY" not in os.environ
    assert xvfb.env()["DISPLAY"] == x_display


def test_custom_geometry_screens_and_stop() -> None:
    server = Xvfb(width=800, height=600, depth=24, screens=2)
    with server:
        pid = server.pid
        assert pid is not None
        number = server.display.lstrip(":")
        info = _xdpyinfo(server.display)
        assert _dimensions(info) == ["800x600", "800x600"]
    assert not server.running
    assert not _is_xvfb(pid)  # terminated and reaped
    assert not Path(f"/tmp/.X11-unix/X{number}").exists()


def _is_xvfb(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "Xvfb"
    except OSError:
        return False


QT_WINDOW = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication(sys.argv[:1])
    window = QWidget()
    window.setWindowTitle("deskhand xvfb test")
    window.resize(320, 200)
    window.show()
    deadline = QDeadlineTimer(10_000)
    handle = window.windowHandle()
    while not (handle is not None and handle.isExposed()) and not deadline.hasExpired():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        handle = window.windowHandle()
    screen = app.primaryScreen().geometry()
    print(json.dumps({
        "platform": app.platformName(),
        "exposed": bool(handle is not None and handle.isExposed()),
        "screen": [screen.width(), screen.height()],
        "window": [window.width(), window.height()],
    }))
    window.close()
    """
)


def test_qt_opens_a_window_on_xvfb(xvfb: Xvfb) -> None:
    env = xvfb.env()
    env["QT_QPA_PLATFORM"] = "xcb"
    proc = subprocess.run(
        [sys.executable, "-c", QT_WINDOW],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {
        "platform": "xcb",
        "exposed": True,
        "screen": [1920, 1080],
        "window": [320, 200],
    }, proc.stderr
