"""The scenario of tests/e2e/test_full_session.py, run by it in its own pytest process.

Not collected by the suite (no ``test_`` prefix): test_full_session.py runs
``pytest tests/e2e/full_session_driver.py`` with ``QT_QPA_PLATFORM=xcb`` and
``DISPLAY`` set to a private Xvfb, so this process's one QApplication draws on
a real X server (the suite's own QApplication is offscreen, and a process
cannot have two platforms). It writes what it saw as JSON to the file named
by ``$DESKHAND_FULL_SESSION_REPORT``; without that variable it skips.

The scenario: the relay set up as the demo does (``relay init``, ``account
create``, ``cert issue``: TLS, pinned) runs as a real subprocess; both apps
run here, wired as their app.py wires them, with real screen sharing (mss)
and real input injection (XTest) on the Xvfb.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from bench.relay_process import RelayProcess
from client.__main__ import parse_options
from client.core.control.service import ControlService
from client.core.screen.sharer import ScreenSharer
from common.net.runner import LoopThread
from demo.__main__ import Demo
from technician.__main__ import options_from
from technician.core.console import TabState
from technician.qt.app import build
from technician.qt.bridge import TechnicianBridge
from technician.qt.session_tab import SessionTab
from tests.gui.client_support import LEFT, WAIT_MS, ClientApp, pass_gate, tick


pytestmark = [pytest.mark.e2e, pytest.mark.x11, pytest.mark.gui]

REPORT_ENV = "DESKHAND_FULL_SESSION_REPORT"
PROBE = Path(__file__).resolve().parent.parent / "x11_probe.py"
# Where each window sits on the 1920x1080 Xvfb (no window manager: exactly there).
TECH_GEOMETRY = (0, 0, 1100, 700)
CLIENT_POS = (1150, 60)
PROBE_GEOMETRY = (1200, 720, 700, 340)
ALLOW_DELAY = 0.6  # the consent dialogs' delay before Allow can be clicked (seconds)
DESCRIPTION = "My printer is on fire"
CATEGORY = "Printing"


class Probe:
    """tests/x11_probe.py as a subprocess: a window on the user's desktop that logs its input."""

    def __init__(self, geometry: tuple[int, int, int, int]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PROBE), "--geometry", ",".join(map(str, geometry))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(os.environ, QT_QPA_PLATFORM="xcb"),
        )
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                with self._lock:
                    self.events.append(event)

    def seen(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == name]

    def stop(self) -> None:
        """Close its stdin (it quits), then wait; kill only if it will not go."""
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def wait_text(qtbot: QtBot, label: Any, pattern: str) -> None:
    def check() -> None:
        assert re.search(pattern, label.text()), label.text()

    qtbot.waitUntil(check, timeout=WAIT_MS)


def lines(chat: Any) -> list[str]:
    transcript = chat.transcript
    return [transcript.item(i).text() for i in range(transcript.count())]


def pointer_location() -> tuple[int, int]:
    out = subprocess.run(
        ["xdotool", "getmouselocation", "--shell"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in out.split())
    return int(fields["X"]), int(fields["Y"])


@pytest.fixture
def report() -> Iterator[dict[str, Any]]:
    path = os.environ.get(REPORT_ENV)
    if not path:
        pytest.skip(f"run by tests/e2e/test_full_session.py (it sets {REPORT_ENV})")
    found: dict[str, Any] = {"steps": []}
    try:
        yield found
    finally:
        Path(path).write_text(json.dumps(found), encoding="utf-8")


def test_full_session(qtbot: QtBot, tmp_path: Path, report: dict[str, Any]) -> None:
    steps: list[str] = report["steps"]
    # --- the relay, set up with its own commands, as the demo does ---
    demo = Demo(tmp_path)
    password = demo.prepare_relay()
    relay = RelayProcess(config=demo.relay_dir / "relay.toml").start()
    loop: LoopThread | None = None
    bridge: TechnicianBridge | None = None
    app: ClientApp | None = None
    probe: Probe | None = None
    try:
        assert relay.tls and relay.url.startswith("wss://127.0.0.1:")
        demo.relay_url, demo.relay_port = relay.url, relay.port
        client_toml, technician_toml = demo.write_app_settings()
        steps.append("relay")

        # --- the technician's console, signed in with the demo account ---
        options = options_from(
            ["--config", str(technician_toml), "--password-stdin"],
            io.StringIO(password + "\n"),
        )
        assert options.password is not None
        loop = LoopThread("e2e-technician-loop")
        loop.start()
        bridge, console = build(options, loop)
        qtbot.addWidget(console)
        console.setGeometry(*TECH_GEOMETRY)
        console.show()
        console.sign_in(options.account, options.password)
        wait_text(qtbot, console.queue_page.queue_status, "^Live: nobody is waiting")
        steps.append("signed-in")

        # --- the user's client, from the client.toml the relay's setup gave ---
        client_options = parse_options(["--config", str(client_toml)])
        app = ClientApp(
            qtbot,
            client_options.relay_url,
            client_options.org_public_key,
            pin=client_options.pin,
            sharer_factory=ScreenSharer,
            control_factory=ControlService.for_x11,
            allow_delay=ALLOW_DELAY,
        )
        app.window.move(*CLIENT_POS)

        # --- request: the anti-scam gate, the form, the queue ---
        window = app.window
        qtbot.mouseClick(window.request_button, LEFT)
        pass_gate(qtbot, window)
        assert window.page == "form"
        window.form.description_edit.setPlainText(DESCRIPTION)
        window.form.category_box.setCurrentText(CATEGORY)
        qtbot.mouseClick(window.form.send_button, LEFT)
        qtbot.waitUntil(lambda: window.page == "queue", timeout=WAIT_MS)
        page = console.queue_page
        qtbot.waitUntil(page.claim_button.isEnabled, timeout=WAIT_MS)
        assert page.details_title.text() == f"Bob Example — {CATEGORY}"
        assert page.details_text.text() == DESCRIPTION
        steps.append("request")

        # --- claim ---
        qtbot.mouseClick(page.claim_button, LEFT)
        qtbot.waitUntil(lambda: bool(console.sessions), timeout=WAIT_MS)
        (tab,) = console.sessions.values()
        steps.append("claim")

        # --- consent: Allow waits for its delay, then the session opens ---
        qtbot.waitUntil(lambda: app.window.consent_dialog is not None, timeout=WAIT_MS)
        dialog = app.window.consent_dialog
        assert dialog is not None
        assert not dialog.allow_button.isEnabled()  # not at once: the delay
        for capability, box in dialog.checkboxes.items():
            if box.isChecked() != (capability == "view"):
                tick(qtbot, box)
        qtbot.waitUntil(dialog.allow_button.isEnabled, timeout=WAIT_MS)
        qtbot.mouseClick(dialog.allow_button, LEFT)
        qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)
        qtbot.waitUntil(app.shell.bar.isVisible, timeout=WAIT_MS)
        sas = re.fullmatch(r"Verification number: (\d+)", tab.sas_label.text())
        assert sas is not None and sas.group(1) in app.window.sas_label.text()
        report["sas"] = sas.group(1)
        assert tab.granted_label.text() == "The user allows: view"
        steps.append("consent")

        # --- view: the user's real X screen in the technician's viewer ---
        view = tab.screen_panel.view
        qtbot.waitUntil(lambda: view.canvas is not None, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: view.paint_count > 0, timeout=WAIT_MS)
        assert view.canvas is not None
        report["canvas_size"] = list(view.canvas.size)
        steps.append("view")

        # --- control: asked, granted by the user, then input reaches the X display ---
        qtbot.mouseClick(tab.control_button, LEFT)
        qtbot.waitUntil(lambda: app.shell.more_rights_dialog is not None, timeout=WAIT_MS)
        more = app.shell.more_rights_dialog
        assert more is not None and set(more.checkboxes) == {"control"}
        tick(qtbot, more.checkboxes["control"])
        qtbot.waitUntil(more.allow_button.isEnabled, timeout=WAIT_MS)
        qtbot.mouseClick(more.allow_button, LEFT)
        qtbot.waitUntil(lambda: tab.capture is not None, timeout=WAIT_MS)
        # The user's side reports control ACTIVE just before it announces the grant, and the
        # tab then writes "The user allowed control." over it; either says control is on.
        wait_text(qtbot, tab.control_label, "^(You have control|The user allowed control)\\.$")
        assert tab.granted_label.text() == "The user allows: view, control"
        # The probe opens now, so that it holds the keyboard focus of the X display.
        probe = Probe(PROBE_GEOMETRY)
        qtbot.waitUntil(lambda: bool(probe.seen("ready") or probe.seen("failed")), timeout=15_000)
        assert probe.seen("ready"), probe.events
        report["probe_ready"] = probe.seen("ready")[0]
        px, py, pw, ph = PROBE_GEOMETRY
        target = (px + pw // 2, py + ph // 2)
        transform = tab._transform()
        assert transform is not None
        vx, vy = transform.to_viewer(*target)
        viewport = view.viewport()
        at = QPoint(round(vx), round(vy))
        qtbot.mouseClick(viewport, LEFT, pos=at)
        qtbot.waitUntil(lambda: len(probe.seen("release")) >= 1, timeout=WAIT_MS)
        press = probe.seen("press")[0]
        report["probe_press"] = press
        report["target"] = list(target)
        report["pointer"] = list(pointer_location())
        tolerance = 1 + 1 / transform.scale
        assert press["button"] == 1
        assert abs(press["x"] - target[0]) <= tolerance, (press, target)
        assert abs(press["y"] - target[1]) <= tolerance, (press, target)
        qtbot.keyClick(viewport, Qt.Key.Key_Q)
        qtbot.waitUntil(lambda: any(k["text"] == "q" for k in probe.seen("key")), timeout=WAIT_MS)
        report["probe_key"] = probe.seen("key")[0]
        steps.append("control")

        # --- chat, both ways ---
        qtbot.keyClicks(app.window.chat.entry, "Hello from Bob")
        qtbot.keyClick(app.window.chat.entry, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: "User: Hello from Bob" in lines(tab.chat), timeout=WAIT_MS)
        qtbot.keyClicks(tab.chat.entry, "Looking at it now")
        qtbot.keyClick(tab.chat.entry, Qt.Key.Key_Return)
        qtbot.waitUntil(
            lambda: any("Looking at it now" in line for line in lines(app.window.chat)),
            timeout=WAIT_MS,
        )
        report["client_chat"] = lines(app.window.chat)
        report["technician_chat"] = lines(tab.chat)
        steps.append("chat")

        # --- pause: the technician is left with no rights ---
        app.shell.bar.pause_button.click()
        qtbot.waitUntil(lambda: tab.granted == (), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: tab.capture is None, timeout=WAIT_MS)
        report["paused_granted_label"] = tab.granted_label.text()
        steps.append("pause")

        # --- stop: the technician's tab shows the session ended ---
        app.shell.bar.stop_button.click()
        qtbot.waitUntil(lambda: tab.state is TabState.ENDED, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: app.window.page == "home", timeout=WAIT_MS)
        report["ended_banner"] = tab.banner_label.text()
        assert tab.file_button.isVisible()
        steps.append("stop")

        # --- the end-session form: the report, as one JSON line in the data dir ---
        reports = options.data_dir / "reports.jsonl"
        file_report(qtbot, tab, reports)
        qtbot.waitUntil(lambda: not console.sessions, timeout=WAIT_MS)  # the tab closed
        (line,) = reports.read_text(encoding="utf-8").splitlines()
        report["record"] = json.loads(line)
        report["reports_file"] = str(reports)
        steps.append("report")
    finally:
        if probe is not None:
            probe.stop()
        if app is not None:
            app.close()
        if bridge is not None:
            bridge.shutdown()
        if loop is not None:
            loop.stop()
        report["relay_exit"] = relay.stop()


def file_report(qtbot: QtBot, tab: SessionTab, reports: Path) -> None:
    qtbot.mouseClick(tab.file_button, LEFT)
    dialog = tab.end_dialog
    assert dialog is not None
    assert dialog.problem.text() == DESCRIPTION
    assert dialog.category.currentText() == CATEGORY
    qtbot.keyClicks(dialog.cause, "A paper jam near the fuser")
    dialog.resolution.setPlainText("Cleared the jam; printed a test page.")
    dialog.outcome.setCurrentText("Resolved")
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    qtbot.mouseClick(ok, LEFT)
    assert dialog.error.text() == ""
    qtbot.waitUntil(reports.exists, timeout=WAIT_MS)
