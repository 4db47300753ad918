"""The one-command demo sets up a relay with an account, starts both apps on Xvfb, stops cleanly."""

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
    assert summary["healthz"] is True  # over TLS, trusting only the relay's own certificate
    assert summary["health"]["status"] == "ok"
    # The console signed in with the demo account's password (given on its stdin).
    assert summary["technician_signed_in"] is True
    assert summary["alive"] == {"relay": True, "client": True, "technician": True}
    # SIGTERM makes each program shut down cleanly, not die.
    assert summary["exit_status"] == {"relay": 0, "client": 0, "technician": 0}
    assert summary["display"].startswith(":")

    # The demo set up the relay with its own commands: init, account create, cert issue.
    relay_dir = tmp_path / "relay"
    for name in ("relay.toml", "relay.pin", "tls/relay.crt", "org/org.pub", "relay.sqlite3"):
        assert (relay_dir / name).is_file(), name
    assert (tmp_path / "technician" / "technician.cert").is_file()
    listening = json.loads((tmp_path / "logs" / "relay.log").read_text().splitlines()[0])
    assert listening["event"] == "listening" and listening["tls"] is True
    pin = (relay_dir / "relay.pin").read_text().strip()
    for settings in ("client.toml", "technician.toml"):
        text = (tmp_path / settings).read_text()
        assert f'relay_url = "{listening["url"]}"' in text and f'relay_pin = "{pin}"' in text
    assert 'account = "demo"' in (tmp_path / "technician.toml").read_text()
    accounts = subprocess.run(
        [sys.executable, "-m", "relay", "account", "list", "--json",
         "--config", str(relay_dir / "relay.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert [(a["name"], a["role"]) for a in json.loads(accounts.stdout)] == [("demo", "technician")]


def test_demo_keeps_its_data_dir_and_renews_the_password(tmp_path: Path) -> None:
    """A second run on the same directory reuses the relay and account (new password)."""
    if shutil.which("Xvfb") is None:
        pytest.skip(f"Xvfb is not installed: {INSTALL_HINT}")
    command = [sys.executable, "-m", "demo", "--xvfb", "--smoke", "1", "--data-dir", str(tmp_path)]
    for _ in range(2):
        proc = subprocess.run(
            command,
            cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["ok"] is True and summary["technician_signed_in"] is True


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
