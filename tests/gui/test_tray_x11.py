"""The real tray icon under Xvfb, with a real system-tray host (trayer), and the fallback
to a window when the desktop has no tray.

Each test runs ``python -m client`` in a subprocess on the xcb platform and inspects
the X server from outside with python-xlib (and xdotool for clicks), as a user's desktop
would see the app.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from Xlib import X, display as xdisplay
from Xlib.error import XError

from tests.xvfb import Xvfb


pytestmark = [pytest.mark.gui, pytest.mark.x11]

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 15_000
TITLE = "Deskhand — remote help"


@pytest.fixture(scope="module")
def screen() -> Iterator[Xvfb]:
    """A private X server: the tray host must not show up in other tests' screens."""
    with Xvfb(1280, 800) as server:
        yield server


@pytest.fixture
def x(screen: Xvfb) -> Iterator[xdisplay.Display]:
    conn = xdisplay.Display(screen.display)
    try:
        yield conn
    finally:
        conn.close()


def tray_owner(conn: xdisplay.Display) -> int:
    atom = conn.intern_atom("_NET_SYSTEM_TRAY_S0")
    owner = conn.get_selection_owner(atom)
    return 0 if owner in (0, X.NONE) else int(owner.id)


@pytest.fixture
def trayer(qtbot: QtBot, screen: Xvfb, x: xdisplay.Display) -> Iterator[subprocess.Popen[bytes]]:
    """Debian's trayer as the system-tray host, docked at the top right."""
    if shutil.which("trayer") is None:
        pytest.skip("trayer is not installed (apt-get install trayer)")
    proc = subprocess.Popen(
        [
            "trayer",
            "--edge", "top",
            "--align", "right",
            "--width", "10",
            "--height", "24",
            "--SetDockType", "true",
            "--transparent", "false",
            "--tint", "0x202020",
        ],
        env=screen.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        qtbot.waitUntil(lambda: tray_owner(x) != 0, timeout=WAIT_MS)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
        qtbot.waitUntil(lambda: tray_owner(x) == 0, timeout=WAIT_MS)


class App:
    """``python -m client`` on the xcb platform; stderr is collected in a file."""

    def __init__(self, screen: Xvfb, tmp_path: Path, *args: str) -> None:
        key = tmp_path / "org.pub"
        key.write_text("ab" * 32 + "\n")
        self.log = tmp_path / "client.log"
        env = screen.env()
        env["QT_QPA_PLATFORM"] = "xcb"
        env["PYTHONFAULTHANDLER"] = "1"
        env.pop("DESKHAND_RELAY_URL", None)
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "client",
                    "--relay", "ws://127.0.0.1:9/v1/peer",
                    "--org-key", str(key),
                    "--device", "Tray test",
                    *args,
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )  # fmt: skip

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, as a logout would: the app must quit cleanly (status 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler writes the stacks
            self.proc.wait(5)
            pytest.fail(f"the client did not quit on SIGTERM:\n{self.stderr()}")


@pytest.fixture
def run_app(screen: Xvfb, tmp_path: Path) -> Iterator[Any]:
    apps: list[App] = []

    def start(*args: str) -> App:
        app = App(screen, tmp_path, *args)
        apps.append(app)
        return app

    try:
        yield start
    finally:
        for app in apps:
            if app.proc.poll() is None:
                app.proc.kill()
                app.proc.wait(5)


# --- looking at the X server ----------------------------------------------------------


def descendants(window: Any) -> Iterator[Any]:
    try:
        children = window.query_tree().children
    except XError:
        return
    for child in children:
        yield child
        yield from descendants(child)


def wm_class(window: Any) -> tuple[str, ...]:
    try:
        return tuple(window.get_wm_class() or ())
    except XError:
        return ()


def net_wm_name(conn: xdisplay.Display, window: Any) -> str:
    try:
        prop = window.get_full_property(
            conn.intern_atom("_NET_WM_NAME"), conn.intern_atom("UTF8_STRING")
        )
    except XError:
        return ""
    if prop is None:
        return ""
    value = prop.value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def trayer_panel(conn: xdisplay.Display) -> Any:
    root = conn.screen().root
    for window in root.query_tree().children:
        if wm_class(window) == ("panel", "trayer"):
            return window
    return None


def deskhand_in(window: Any) -> list[Any]:
    return [w for w in descendants(window) if wm_class(w)[1:] == ("Deskhand",)]


def viewable(window: Any) -> bool:
    try:
        return bool(window.get_attributes().map_state == X.IsViewable)
    except XError:
        return False


def main_window(conn: xdisplay.Display) -> Any:
    for window in descendants(conn.screen().root):
        if net_wm_name(conn, window) == TITLE and viewable(window):
            return window
    return None


def distinct_colours(conn: xdisplay.Display, window: Any) -> int:
    """How many colours the window shows on screen (read from the root window)."""
    geometry = window.get_geometry()
    root = conn.screen().root
    origin = window.translate_coords(root, 0, 0)
    x, y = -origin.x, -origin.y
    image = root.get_image(x, y, geometry.width, geometry.height, X.ZPixmap, 0xFFFFFFFF)
    data = bytes(image.data)
    return len({data[i : i + 3] for i in range(0, len(data), 4)})


def popup_menus(conn: xdisplay.Display) -> list[Any]:
    """Deskhand's viewable popup menus (Qt maps them as override-redirect windows)."""
    menu_type = conn.intern_atom("_NET_WM_WINDOW_TYPE_POPUP_MENU")
    found = []
    for window in deskhand_in(conn.screen().root):
        try:
            prop = window.get_full_property(
                conn.intern_atom("_NET_WM_WINDOW_TYPE"), X.AnyPropertyType
            )
        except XError:
            continue
        if prop is not None and menu_type in prop.value and viewable(window):
            found.append(window)
    return found


def close_like_a_window_manager(conn: xdisplay.Display, window: Any) -> None:
    """The close button of a window manager: a WM_DELETE_WINDOW client message."""
    from Xlib.protocol import event

    protocols = conn.intern_atom("WM_PROTOCOLS")
    delete = conn.intern_atom("WM_DELETE_WINDOW")
    message = event.ClientMessage(
        window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
    )
    window.send_event(message)
    conn.flush()


def xdotool(screen: Xvfb, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=screen.env(), check=True, timeout=10)


# --- the tests ------------------------------------------------------------------------


@pytest.mark.usefixtures("trayer")
def test_the_icon_shows_in_a_real_system_tray(
    qtbot: QtBot, screen: Xvfb, x: xdisplay.Display, run_app: Any
) -> None:
    app = run_app("--hidden")
    qtbot.waitUntil(lambda: "running in the system tray" in app.stderr(), timeout=WAIT_MS)
    panel = trayer_panel(x)
    assert panel is not None

    # The icon is embedded in the tray host, shown, and drawn.
    def embedded() -> None:
        icons = [w for w in deskhand_in(panel) if viewable(w)]
        assert len(icons) == 1
        geometry = icons[0].get_geometry()
        assert 16 <= geometry.width <= 32 and 16 <= geometry.height <= 32
        assert distinct_colours(x, icons[0]) > 3

    qtbot.waitUntil(embedded, timeout=WAIT_MS)
    # Started hidden: no window until the icon is clicked.
    assert main_window(x) is None
    [icon] = deskhand_in(panel)
    origin = icon.translate_coords(x.screen().root, 0, 0)
    geometry = icon.get_geometry()
    cx, cy = -origin.x + geometry.width // 2, -origin.y + geometry.height // 2

    # Right click: the menu opens (rebuilt from the state); Escape closes it.
    xdotool(screen, "mousemove", str(cx), str(cy), "click", "3")
    qtbot.waitUntil(lambda: len(popup_menus(x)) == 1, timeout=WAIT_MS)
    xdotool(screen, "key", "Escape")
    qtbot.waitUntil(lambda: popup_menus(x) == [], timeout=WAIT_MS)

    # Left click: the window.
    xdotool(screen, "mousemove", str(cx), str(cy), "click", "1")
    qtbot.waitUntil(lambda: main_window(x) is not None, timeout=WAIT_MS)
    # Closing it only hides it: the app stays in the tray.
    close_like_a_window_manager(x, main_window(x))
    qtbot.waitUntil(lambda: main_window(x) is None, timeout=WAIT_MS)
    assert app.proc.poll() is None
    assert [w for w in deskhand_in(panel) if viewable(w)]
    assert "error" not in app.stderr().lower()
    assert app.stop() == 0


def test_without_a_tray_the_app_falls_back_to_its_window(
    qtbot: QtBot, x: xdisplay.Display, run_app: Any
) -> None:
    assert tray_owner(x) == 0
    # Even when asked to start hidden: with no tray there would be nothing to click.
    app = run_app("--hidden")
    qtbot.waitUntil(
        lambda: "no system tray on this desktop: showing a window instead" in app.stderr(),
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: main_window(x) is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: distinct_colours(x, main_window(x)) > 3, timeout=WAIT_MS)
    # Without a tray the window is the app: closing it quits, cleanly.
    close_like_a_window_manager(x, main_window(x))
    qtbot.waitUntil(lambda: app.proc.poll() is not None, timeout=WAIT_MS)
    assert app.proc.returncode == 0, app.stderr()


@pytest.mark.usefixtures("trayer")
def test_no_tray_flag_keeps_the_window(qtbot: QtBot, x: xdisplay.Display, run_app: Any) -> None:
    app = run_app("--no-tray")
    qtbot.waitUntil(lambda: "--no-tray was given" in app.stderr(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: main_window(x) is not None, timeout=WAIT_MS)
    panel = trayer_panel(x)
    assert panel is not None and deskhand_in(panel) == []
    assert app.stop() == 0
