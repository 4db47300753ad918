"""GUI tests draw off-screen by default.

Set DESKHAND_ONSCREEN=1 to use the platform from the environment instead (to
watch the widgets on a real display). This runs at import time, before any
QApplication exists; Qt reads QT_QPA_PLATFORM when the application is created.
"""

from __future__ import annotations

import os

import pytest


if os.environ.get("DESKHAND_ONSCREEN") != "1":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _gui_thread_gc(gui_thread_gc: None) -> None:
    """Every GUI test collects cyclic garbage on the GUI thread only (tests/conftest.py)."""
