"""The one-command demo starts the relay and both apps on Xvfb, and stops them cleanly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.xvfb import INSTALL_HINT


pytestmark = [pytest.mark.e2e, pytest.mark.x11]

ROOT = Path(__file__).resolve().parents[2]


def test_demo_smoke_on_xvfb(tmp_path: Path) -> None:
    if shutil.which("Xvfb") is None:
        pytest.skip(f"Xvfb is not installed: {INSTALL_HINT}")
    proc = subprocess.run(
        [sys.executable, "-m", "demo", "--xvfb", "--smoke", "5", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["event"] == "smoke"
    assert summary["ok"] is True
    assert summary["healthz"] is True
    assert summary["health"]["status"] == "ok"
    assert summary["alive"] == {"relay": True, "client": True, "technician": True}
    # SIGTERM makes each program shut down cleanly, not die.
    assert summary["exit_status"] == {"relay": 0, "client": 0, "technician": 0}
    assert summary["display"].startswith(":")

    # The demo made its organisation and technician with the admin commands.
    assert (tmp_path / "org" / "org.pub").is_file()
    assert (tmp_path / "technician" / "technician.cert").is_file()
    assert "listening" in (tmp_path / "logs" / "relay.log").read_text()


def test_demo_refuses_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "demo", "--smoke", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "deskhand-demo: error: --smoke must be between 0 and 3600 seconds"
    ]
