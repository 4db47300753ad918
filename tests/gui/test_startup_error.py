"""A start-up error shows on screen when nobody sees standard error (a menu launch).

The real client and console run as processes on a private Xvfb with a
settings file that does not exist, standard error going to a pipe (not a
terminal), as when they are started from a desktop menu. A dialog must say
what is wrong and where the settings are looked for; closing it exits with
the usage status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.xvfb import Xvfb


pytestmark = [pytest.mark.x11]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0


def texts_seen(log: Path) -> str:
    if not log.exists():
        return ""
    seen = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        seen.append(str(record.get("text", "")))
    return "\n".join(seen)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("client", "client.toml"),
        ("technician", "--config technician.toml"),
    ],
)
def test_a_bad_settings_file_is_explained_in_a_dialog(
    tmp_path: Path, module: str, expected: str
) -> None:
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: apt-get install xdotool")
    missing = tmp_path / "no-such-settings.toml"
    log = tmp_path / "widgets.jsonl"
    with Xvfb(1280, 800, 24) as server:
        env = dict(server.env(), QT_QPA_PLATFORM="xcb", DESKHAND_WIDGET_LOG=str(log))
        env.pop("DESKHAND_NO_ERROR_DIALOG", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(missing)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + WAIT
            while str(missing) not in texts_seen(log) and time.monotonic() < deadline:
                assert proc.poll() is None, "it exited without showing the error"
                time.sleep(0.1)
            shown = texts_seen(log)
            assert str(missing) in shown, shown
            assert expected in shown, shown
            subprocess.run(["xdotool", "key", "Return"], env=server.env(), check=True, timeout=10)
            assert proc.wait(timeout=WAIT) == 2
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stderr is not None:
                stderr = proc.stderr.read().decode(errors="replace")
                proc.stderr.close()
        assert str(missing) in stderr  # and still on standard error, for terminals
