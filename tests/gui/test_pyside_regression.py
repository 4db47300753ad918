"""PySide6 6.12.0 on Python 3.11 corrupts the interpreter in QPainter.drawImage.

Each call drops one reference to None; after a few thousand calls CPython
aborts with "Fatal Python error: none_dealloc" (docs: performance.md, "PySide6
6.12.0 crash"). pyproject.toml pins PySide6-Essentials<6.12; these tests fail
if a PySide6 with the bug comes back. The loop runs in a subprocess, since a
bad PySide6 kills the interpreter that runs it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import pytest


CALLS = 3000

# Cycles through the three overloads the bug affects: (x, y, image), (QPoint,
# image) and (QRect, image).
REPRO = textwrap.dedent(
    f"""
    import json, sys
    import PySide6
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtGui import QGuiApplication, QImage, QPainter

    app = QGuiApplication(sys.argv[:1])
    canvas = QImage(1920, 1080, QImage.Format.Format_RGB32)
    canvas.fill(0)
    source = QImage(64, 64, QImage.Format.Format_RGB32)
    source.fill(0xFF336699)
    painter = QPainter()
    before = sys.getrefcount(None)
    for i in range({CALLS}):
        painter.begin(canvas)
        x, y = (i * 64) % 1856, (i * 64) % 1016
        if i % 3 == 0:
            painter.drawImage(x, y, source)
        elif i % 3 == 1:
            painter.drawImage(QPoint(x, y), source)
        else:
            painter.drawImage(QRect(x, y, 64, 64), source)
        painter.end()
    after = sys.getrefcount(None)
    print(json.dumps({{
        "pyside6": PySide6.__version__,
        "python": sys.version.split()[0],
        "calls": {CALLS},
        "delta_per_call": (after - before) / {CALLS},
    }}))
    """
)


def test_draw_image_keeps_none_refcount() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", REPRO],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the drawImage loop died with exit status {proc.returncode} "
        f"(a PySide6 with the none_dealloc bug?)\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["calls"] == CALLS
    assert abs(result["delta_per_call"]) < 0.1, (
        f"None's refcount changed by {result['delta_per_call']:+.3f} per drawImage call "
        f"(PySide6 {result['pyside6']}, Python {result['python']})"
    )


def _release(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_pyside6_6_12_0_not_installed_on_python_3_11() -> None:
    found = {}
    for dist in ("PySide6-Essentials", "PySide6", "shiboken6"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    assert found, "no PySide6 distribution is installed"
    bad = {dist: v for dist, v in found.items() if _release(v) == (6, 12, 0)}
    assert not bad, f"PySide6 6.12.0 corrupts Python 3.11 (none_dealloc); installed: {bad}"
