"""A whole support session, end to end, through a real relay and both real apps.

The relay is set up as the demo sets it up (``relay init``, ``account create``,
``cert issue``: TLS with a pinned certificate) and runs as a subprocess. Both
apps run in one Qt process on a private Xvfb with the xcb platform, so the
user's screen is really captured and the technician's input really injected
with XTest: tests/e2e/full_session_driver.py is that process (a pytest run of
its own: this suite's QApplication is offscreen, and a process has one).

Request (anti-scam gate, form) -> claim from the live queue -> consent (after
the dialog's delay) -> view -> control (asked, granted; a click and a key in
the viewer reach a probe window on the user's display) -> chat both ways ->
pause (no rights left) -> Stop (the technician's tab shows the end) -> the
end-session form (one JSON line in the console's data dir).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.xvfb import INSTALL_HINT, Xvfb


pytestmark = [pytest.mark.e2e, pytest.mark.x11]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "full_session_driver.py"
DRIVER_TIMEOUT = 80  # seconds: pytest-timeout fails the driver's test first, which cleans up
STEPS = [
    "relay",
    "signed-in",
    "request",
    "claim",
    "consent",
    "view",
    "control",
    "chat",
    "pause",
    "stop",
    "report",
]


def test_a_whole_session_on_xvfb(tmp_path: Path) -> None:
    if shutil.which("Xvfb") is None:
        pytest.skip(f"Xvfb is not installed: {INSTALL_HINT}")
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: apt-get install xdotool")
    out = tmp_path / "report.json"
    # A display of its own: the session's XTest input and keymap stay out of other tests.
    with Xvfb(1920, 1080, 24) as server:
        env = server.env()
        env.update(
            QT_QPA_PLATFORM="xcb",
            PYTHONUNBUFFERED="1",
            DESKHAND_FULL_SESSION_REPORT=str(out),
        )
        env.pop("DESKHAND_ONSCREEN", None)
        # Its own process group: on a timeout, the driver and what it started go together.
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-o", f"timeout={DRIVER_TIMEOUT}", "--basetemp", str(tmp_path / "driver"),
                str(DRIVER),
            ],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=DRIVER_TIMEOUT + 20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stdout[-6000:] + stderr[-3000:]
    found = json.loads(out.read_text(encoding="utf-8"))
    assert found["steps"] == STEPS, stdout[-6000:]

    # View: the user's whole X screen reached the technician's viewer.
    assert found["canvas_size"] == [1920, 1080]
    # Control: the technician's click landed where it was aimed, on the user's display.
    assert found["probe_ready"]["platform"] == "xcb"
    press, target = found["probe_press"], found["target"]
    assert press["button"] == 1
    assert abs(press["x"] - target[0]) <= 3 and abs(press["y"] - target[1]) <= 3
    assert found["pointer"] == [press["x"], press["y"]]  # xdotool getmouselocation
    assert found["probe_key"]["text"] == "q"
    # Chat went both ways.
    assert found["client_chat"] == ["You: Hello from Bob", "Technician: Looking at it now"]
    assert found["technician_chat"] == ["User: Hello from Bob", "You: Looking at it now"]
    # Paused: the technician holds no rights.
    assert found["paused_granted_label"] == "The user allows: nothing right now (paused?)"
    assert found["ended_banner"] == "The session ended: The user stopped the session."

    record = found["record"]
    assert Path(found["reports_file"]).name == "reports.jsonl"
    assert record["report"] == {
        "category": "Printing",
        "cause": "A paper jam near the fuser",
        "notes": "",
        "outcome": "Resolved",
        "problem": "My printer is on fire",
        "resolution": "Cleared the jam; printed a test page.",
    }
    assert record["technician"] == "demo"
    assert record["technician_name"] == "Demo Technician (Demo IT)"
    assert record["origin"]["kind"] == "queue" and record["origin"]["name"] == "Bob Example"
    assert record["granted"] == ["view", "control"]
    assert record["end"] == "The session ended: The user stopped the session."
    assert [(c["who"], c["text"]) for c in record["chat"]] == [
        ("user", "Hello from Bob"),
        ("technician", "Looking at it now"),
    ]
    # Both windows showed this number at consent.
    assert record["verification_number"] == found["sas"]
    # The relay (a subprocess) stopped cleanly on SIGTERM.
    assert found["relay_exit"] == 0
