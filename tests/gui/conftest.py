"""GUI tests draw off-screen by default.

Set DESKHAND_ONSCREEN=1 to use the platform from the environment instead (to
watch the widgets on a real display). This runs at import time, before any
QApplication exists; Qt reads QT_QPA_PLATFORM when the application is created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication

from common.qt.gc_guard import GuiThreadCollector


if os.environ.get("DESKHAND_ONSCREEN") != "1":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def gui_thread_gc(qapp: QApplication) -> Iterator[None]:
    """As in the apps: cyclic garbage is collected on the GUI thread only.

    The tests run real cores and relays in other threads; a collection there
    that frees Qt objects crashed the suite once.
    """
    collector = GuiThreadCollector(qapp)
    collector.start()
    yield
    collector.stop()
    collector.deleteLater()
