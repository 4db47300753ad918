"""GuiThreadCollector: no automatic cyclic GC while it runs; its timer collects instead."""

from __future__ import annotations

import gc
import weakref

from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from common.qt.gc_guard import GuiThreadCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def make_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_cycles_wait_for_the_gui_thread_timer(qtbot: QtBot) -> None:
    parent = QObject()
    collector = GuiThreadCollector(parent, interval_ms=10)
    collector.start()
    try:
        assert not gc.isenabled()
        gc.collect()
        ref = make_cycle()
        for _ in range(3 * gc.get_threshold()[0]):  # would trigger automatic collection
            make_cycle()
        assert ref() is not None  # nothing collected it behind our back
        qtbot.waitUntil(lambda: ref() is None, timeout=2000)  # the timer's check did
    finally:
        collector.stop()
    assert not gc.isenabled()  # the tests' own collector (tests/gui/conftest.py) still runs
