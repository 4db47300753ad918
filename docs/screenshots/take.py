"""Screenshots of every screen of both apps, taken under Xvfb (xcb) with a tray host.

Run from the repository root:

    .venv/bin/python docs/screenshots/take.py [OUTDIR]

It starts its own Xvfb and trayer, drives the user client through every
screen against an in-process relay and a scripted technician, then runs the
technician console's GUI tests on the same display with DESKHAND_SCREENSHOTS
set, which save a picture of each console screen. Everything it starts is
stopped by pid. The README shows a selection of the pictures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


sys.path.insert(0, os.getcwd())

from tests.xvfb import Xvfb


OUT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent)
OUT.mkdir(parents=True, exist_ok=True)

xvfb = Xvfb(1280, 800)
xvfb.start()
os.environ["DISPLAY"] = xvfb.display
os.environ["QT_QPA_PLATFORM"] = "xcb"
os.environ.pop("WAYLAND_DISPLAY", None)
# A desktop-like background, so screenshots of the screen are not all black.
subprocess.run(["xsetroot", "-solid", "#3a6ea5"], check=False) if shutil.which("xsetroot") else None
trayer = subprocess.Popen(
    [
        "trayer",
        "--edge",
        "top",
        "--align",
        "right",
        "--width",
        "10",
        "--height",
        "24",
        "--SetDockType",
        "true",
        "--transparent",
        "false",
        "--tint",
        "0x202020",
    ],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
time.sleep(1.0)

from PySide6.QtCore import QPoint, QRect  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel, QWidget  # noqa: E402


app = QApplication([sys.argv[0]])
app.setApplicationName("Deskhand")

from client.core.control.service import ControlService  # noqa: E402
from client.core.options import ClientOptions  # noqa: E402
from client.core.screen.sharer import ScreenSharer  # noqa: E402
from client.qt.app import build_flow, tray_available  # noqa: E402
from client.qt.bridge import ClientBridge  # noqa: E402
from client.qt.shell import ClientShell  # noqa: E402
from common.net.runner import LoopThread  # noqa: E402
from common.protocol.messages import ChatText  # noqa: E402
from tests.gui.client_support import RelayThread, TechPeer  # noqa: E402
from tests.pki import make_org  # noqa: E402


def wait(ms: int = 300) -> None:
    QTest.qWait(ms)


def cleanup() -> None:
    trayer.terminate()
    trayer.wait(5)
    xvfb.stop()


def until(check, ms: int = 10000) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + ms / 1000
    while not check():
        if time.monotonic() > deadline:
            cleanup()
            raise SystemExit(f"timed out waiting for {check}")
        QTest.qWait(30)


def shot(widget: QWidget, name: str) -> None:
    wait(250)
    path = OUT / f"{name}.png"
    assert widget.grab().save(str(path)), path
    print(path)


def screen_shot(name: str, rect: QRect | None = None) -> None:
    wait(400)
    pixmap = QGuiApplication.primaryScreen().grabWindow(0)
    if rect is not None:
        pixmap = pixmap.copy(rect)
    path = OUT / f"{name}.png"
    assert pixmap.save(str(path)), path
    print(path)


# A fake "application with a problem" on the desktop, for the screenshot feature.
problem = QLabel("Spreadsheet — Error 0x80070005: access denied while printing")
problem.setStyleSheet("background: white; padding: 40px; font-size: 20px; color: #333;")
problem.setGeometry(380, 300, 700, 200)
problem.show()

print("tray available:", tray_available())
relay = RelayThread()
org = make_org()
tech = TechPeer(relay.url, org.technician("Jane Doe", org="ACME IT"))
loop = LoopThread("shots-client")
loop.start()
options = ClientOptions(relay.url, org.key.public_bytes, "Bob's laptop")
flow = build_flow(options, sharer_factory=ScreenSharer, control_factory=ControlService.for_x11)
bridge = ClientBridge(loop, flow)
shell = ClientShell(
    bridge,
    use_tray=tray_available(),
    clipboard=QGuiApplication.clipboard(),
    default_name="Bob Example",
)
window = shell.window
shell.start()
window.move(20, 40)
until(window.isVisible)

shot(window, "client-home")
tray = shell.tray
if tray is not None:
    geo = tray.icon.geometry()
    screen_shot("client-tray-idle", QRect(geo.x() - 200, 0, 220 + geo.width(), 30))
    tray.menu.popup(QPoint(geo.x() - 180, geo.bottom() + 2))
    until(tray.menu.isVisible)
    screen_shot("client-tray-menu", QRect(geo.x() - 320, 0, 360, 140))
    tray.menu.hide()

window.on_request_clicked()
window.gate.confirm_box.setChecked(True)
shot(window, "client-anti-scam")
window.gate.refuse_button.click()
shot(window, "client-report")
window.report.done_button.click()

window.on_request_clicked()
window.gate.confirm_box.setChecked(True)
window.gate.continue_button.click()
form = window.form
form.description_edit.setPlainText(
    "Printing from the spreadsheet fails with error 0x80070005 since this morning."
)
form.category_box.setCurrentIndex(form.category_box.findText("Printing"))
form.summary_box.click()
until(lambda: form.draft().summary != "")
form.screenshot_button.click()
until(lambda: form.screenshot is not None and window.isVisible())
shot(window, "client-request-form")
form.preview_button.click()
until(lambda: window.screenshot_dialog is not None)
assert window.screenshot_dialog is not None
shot(window.screenshot_dialog, "client-screenshot-preview")
window.screenshot_dialog.close()

form.send_button.click()
until(lambda: window.queue_label.text().startswith("You are"))
shot(window, "client-queue")

queue = tech.watch()
[item] = queue.items
tech.run(queue.close())
connecting = tech.claim(item.request_id, requested=("view", "control"))
until(lambda: window.consent_dialog is not None)
dialog = window.consent_dialog
assert dialog is not None
shot(dialog, "client-consent-countdown")
until(dialog.allow_button.isEnabled)
shot(dialog, "client-consent")
dialog.allow_button.click()
until(connecting.done)
until(lambda: window.page == "connected")
tech.send(ChatText(1, "Hello Bob, I am Jane from ACME IT. I can see the error now.", 0))
until(lambda: window.chat.transcript.count() >= 2)
window.chat.entry.setText("Thanks! It started this morning.")
window.chat.send_button.click()
wait(500)
shot(window, "client-connected")
until(shell.bar.isVisible)
shot(shell.bar, "client-session-bar")
screen_shot("client-desktop-during-session")

tech.ask(("control", "clipboard"))
until(lambda: shell.more_rights_dialog is not None)
more = shell.more_rights_dialog
assert more is not None
more.checkboxes["control"].setChecked(True)
until(more.allow_button.isEnabled)
shot(more, "client-more-rights")
more.allow_button.click()
wait(500)
shot(shell.bar, "client-session-bar-controlled")
if tray is not None:
    geo = tray.icon.geometry()
    screen_shot("client-tray-controlled", QRect(geo.x() - 200, 0, 220 + geo.width(), 30))

shell.bar.stop_button.click()
until(lambda: window.page == "home")

# The code flow, and an impostor.
window.on_code_clicked()
window.gate.confirm_box.setChecked(True)
window.gate.continue_button.click()
until(lambda: bool(window.code_label.text()))
shot(window, "client-code")
impostor = TechPeer(relay.url, make_org().technician("Jane Doe", org="ACME IT"))
attempt = impostor.connect(window.code_label.text())
try:
    until(lambda: window.failure_dialog is not None or attempt.done())
finally:
    if attempt.done() and attempt.exception() is not None:
        print("impostor:", repr(attempt.exception()))
until(lambda: window.failure_dialog is not None)
assert window.failure_dialog is not None
shot(window.failure_dialog, "client-verification-failed")
window.failure_dialog.close()

bridge.shutdown(5)
loop.stop()
impostor.stop()
tech.stop()
relay.stop()

# The technician console: its GUI tests save a picture of each screen.
console = subprocess.run(
    [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *sorted(str(p) for p in Path("tests/gui").glob("test_technician_*.py")),
    ],
    env=dict(os.environ, DESKHAND_SCREENSHOTS=str(OUT), QT_QPA_PLATFORM="xcb"),
    check=False,
    timeout=600,
)
cleanup()
print("done" if console.returncode == 0 else f"console tests failed: {console.returncode}")
sys.exit(console.returncode)
