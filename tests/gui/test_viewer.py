"""The screen viewer widget (offscreen): scaling, scrolling, dirty repaint, cursor, status."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from common.screen.geometry import Rect
from technician.core.screen.canvas import Canvas
from technician.core.screen.decoder import CursorImage
from technician.core.screen.receiver import (
    CanvasChanged,
    CursorChanged,
    FrameApplied,
    MonitorsChanged,
    ReceiverEvent,
    ReceiverStats,
    StatusChanged,
)
from technician.qt.viewer import ScreenPanel, format_stats


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform says so whenever a top-level window is shown.
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

RED, BLUE, GREEN, WHITE = (0, 0, 255), (255, 0, 0), (0, 255, 0), (255, 255, 255)  # B, G, R
BACKGROUND = (40, 40, 40)


class FakeReceiver:
    def __init__(self) -> None:
        self.listeners: list[Callable[[ReceiverEvent], None]] = []
        self.current = ReceiverStats()
        self.selected: list[int] = []
        self.keyframes: list[str] = []

    def add_listener(self, listener: Callable[[ReceiverEvent], None]) -> None:
        self.listeners.append(listener)

    def emit(self, event: ReceiverEvent) -> None:
        for listener in self.listeners:
            listener(event)

    def stats(self) -> ReceiverStats:
        return self.current

    def select_monitor(self, index: int) -> None:
        self.selected.append(index)

    def request_keyframe(self, reason: str = "") -> None:
        self.keyframes.append(reason)


def quadrants(w: int, h: int) -> Canvas:
    canvas = Canvas(w, h)
    px = canvas.pixels
    px[: h // 2, : w // 2, :3] = RED
    px[: h // 2, w // 2 :, :3] = BLUE
    px[h // 2 :, : w // 2, :3] = GREEN
    px[h // 2 :, w // 2 :, :3] = WHITE
    return canvas


def make_panel(
    qtbot: QtBot, canvas: Canvas, size: tuple[int, int] = (960, 600)
) -> tuple[ScreenPanel, FakeReceiver]:
    panel = ScreenPanel(stats_interval_ms=20)
    qtbot.addWidget(panel)
    receiver = FakeReceiver()
    panel.attach(receiver)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    receiver.emit(CanvasChanged(canvas))
    qtbot.waitUntil(lambda: panel.view.canvas is canvas, timeout=5000)
    return panel, receiver


def shown(panel: ScreenPanel) -> np.ndarray:
    """What the view's viewport shows, as (h, w, 4) B, G, R, A."""
    image = panel.view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return data.reshape(h, image.bytesPerLine() // 4, 4)[:, :w].copy()


def color(pixels: np.ndarray, x: float, y: float) -> tuple[int, int, int]:
    b, g, r = pixels[int(y), int(x), :3]
    return int(b), int(g), int(r)


def test_fit_to_window_scales_and_letterboxes(qtbot: QtBot) -> None:
    panel, _ = make_panel(qtbot, quadrants(1920, 1080))
    view = panel.view
    assert view.fit
    vw, vh = view.viewport().width(), view.viewport().height()
    scale = view.scale()
    assert scale == pytest.approx(min(vw / 1920, vh / 1080))
    pixels = shown(panel)
    o = view.origin()
    pw, ph = 1920 * scale, 1080 * scale
    assert color(pixels, o.x() + pw / 4, o.y() + ph / 4) == RED
    assert color(pixels, o.x() + 3 * pw / 4, o.y() + ph / 4) == BLUE
    assert color(pixels, o.x() + pw / 4, o.y() + 3 * ph / 4) == GREEN
    assert color(pixels, o.x() + 3 * pw / 4, o.y() + 3 * ph / 4) == WHITE
    if o.y() >= 2:
        assert color(pixels, vw / 2, 0) == BACKGROUND  # letterbox
    assert not view.horizontalScrollBar().isVisible()
    assert view.widget_to_view(QPointF(o.x() + 0.2, o.y() + 0.2)) == (0, 0)
    assert view.widget_to_view(QPointF(o.x() + pw - 0.2, o.y() + ph - 0.2)) == (1919, 1079)
    assert view.widget_to_view(QPointF(o.x() - 5, o.y() - 5)) is None


def test_one_to_one_with_scroll_bars(qtbot: QtBot) -> None:
    canvas = quadrants(1920, 1080)
    canvas.pixels[0, 0, :3] = (1, 2, 3)
    canvas.pixels[1079, 1919, :3] = (4, 5, 6)
    panel, _ = make_panel(qtbot, canvas)
    panel.fit_button.setChecked(False)
    view = panel.view
    assert not view.fit and view.scale() == 1.0
    qtbot.waitUntil(lambda: view.horizontalScrollBar().maximum() > 0, timeout=5000)
    vw, vh = view.viewport().width(), view.viewport().height()
    assert view.horizontalScrollBar().maximum() == 1920 - vw
    assert view.verticalScrollBar().maximum() == 1080 - vh
    assert color(shown(panel), 0, 0) == (1, 2, 3)
    view.horizontalScrollBar().setValue(view.horizontalScrollBar().maximum())
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())
    pixels = shown(panel)
    assert color(pixels, vw - 1, vh - 1) == (4, 5, 6)
    assert view.widget_to_view(QPointF(vw - 1, vh - 1)) == (1919, 1079)


def test_only_dirty_rects_are_repainted_and_updates_coalesce(qtbot: QtBot) -> None:
    canvas = quadrants(1920, 1080)
    panel, receiver = make_panel(qtbot, canvas)
    panel.fit_button.setChecked(False)
    view = panel.view
    qtbot.waitUntil(lambda: view.paint_count > 0, timeout=5000)
    before = view.paint_count
    with canvas.lock:
        canvas.pixels[100:110, 200:210, :3] = (9, 99, 199)
    receiver.emit(FrameApplied(2, (Rect(200, 100, 10, 10),), ReceiverStats()))
    qtbot.waitUntil(lambda: view.paint_count > before, timeout=5000)
    area = view.last_paint_rect
    assert area.width() <= 16 and area.height() <= 16  # not the whole viewport
    assert color(shown(panel), 205, 105) == (9, 99, 199)
    # A burst from the decode thread becomes one queued update, not a backlog.
    before = view.paint_count
    events = [FrameApplied(3 + i, (Rect(i, 0, 1, 1),), ReceiverStats()) for i in range(200)]
    worker = threading.Thread(target=lambda: [receiver.emit(e) for e in events])
    worker.start()
    worker.join(5)
    qtbot.waitUntil(lambda: view.paint_count > before, timeout=5000)
    qtbot.wait(50)
    assert view.paint_count - before <= 5


def test_status_strip(qtbot: QtBot) -> None:
    panel, receiver = make_panel(qtbot, quadrants(64, 64))
    receiver.current = ReceiverStats(
        fps=30, mbps=4.2, latency_ms=12.4, encoding="JPEG+zstd", width=1920, height=1080
    )
    expected = "30 fps · 12 ms · 4.2 Mbit/s · JPEG+zstd · 1920x1080"
    assert format_stats(receiver.current) == expected
    qtbot.waitUntil(lambda: panel.stats_label.text() == expected, timeout=5000)
    receiver.emit(StatusChanged("A screen update was refused: bad", error=True))
    qtbot.waitUntil(lambda: "refused" in panel.message_label.text(), timeout=5000)
    assert format_stats(ReceiverStats()).startswith("0 fps · - ms")


def test_a_pause_covers_the_frozen_picture_until_sharing_is_back(qtbot: QtBot) -> None:
    panel, receiver = make_panel(qtbot, quadrants(64, 64))
    assert not panel.overlay.isVisible()
    receiver.emit(StatusChanged("The user paused the session.", stopped=True))
    qtbot.waitUntil(panel.overlay.isVisible, timeout=5000)
    assert panel.overlay.text() == "The user paused the session."
    assert panel.overlay.geometry() == panel.view.rect()  # the whole picture
    receiver.emit(MonitorsChanged(((0, 0, 64, 64),), 0))  # a sharer starts again
    qtbot.waitUntil(lambda: not panel.overlay.isVisible(), timeout=5000)
    assert panel.message_label.text() == ""  # the status does not outlive the pause


def test_4k_screen_fits_and_scrolls(qtbot: QtBot) -> None:
    panel, _ = make_panel(qtbot, quadrants(3840, 2160), size=(1280, 800))
    view = panel.view
    pixels = shown(panel)
    s, o = view.scale(), view.origin()
    assert s < 0.4
    assert color(pixels, o.x() + 3840 * s * 0.25, o.y() + 2160 * s * 0.75) == GREEN
    assert color(pixels, o.x() + 3840 * s * 0.75, o.y() + 2160 * s * 0.25) == BLUE
    panel.fit_button.setChecked(False)
    qtbot.waitUntil(lambda: view.horizontalScrollBar().maximum() > 0, timeout=5000)
    assert view.horizontalScrollBar().maximum() == 3840 - view.viewport().width()
    view.horizontalScrollBar().setValue(2000)
    view.verticalScrollBar().setValue(1200)
    assert color(shown(panel), 10, 10) == WHITE  # (2010, 1210) is bottom right


def test_two_monitors_side_by_side_and_monitor_choice(qtbot: QtBot) -> None:
    canvas = Canvas(3840, 1080)
    canvas.pixels[:, :1920, :3] = RED
    canvas.pixels[:, 1920:, :3] = BLUE
    panel, receiver = make_panel(qtbot, canvas)
    receiver.emit(MonitorsChanged(((0, 0, 1920, 1080), (1920, 0, 1920, 1080)), 0))
    qtbot.waitUntil(lambda: panel.monitor_box.count() == 3, timeout=5000)
    assert [panel.monitor_box.itemText(i) for i in range(3)] == [
        "All monitors (3840x1080)",
        "Monitor 1 (1920x1080)",
        "Monitor 2 (1920x1080)",
    ]
    assert receiver.selected == []  # filling the list is not a choice
    view = panel.view
    s, o = view.scale(), view.origin()
    pixels = shown(panel)
    assert color(pixels, o.x() + 3840 * s * 0.25, o.y() + 540 * s) == RED
    assert color(pixels, o.x() + 3840 * s * 0.75, o.y() + 540 * s) == BLUE
    panel.monitor_box.setCurrentIndex(2)
    assert receiver.selected == [2]


def test_remote_cursor_is_drawn(qtbot: QtBot) -> None:
    panel, receiver = make_panel(qtbot, quadrants(1920, 1080))
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[...] = (0, 255, 0, 255)  # opaque green, premultiplied
    image = CursorImage(1, 8, 8, 0, 0, pixels)
    receiver.emit(CursorChanged(image, 1500, 200, True))  # inside the blue quadrant
    view = panel.view
    s, o = view.scale(), view.origin()
    x, y = o.x() + 1500 * s + 2, o.y() + 200 * s + 2
    qtbot.waitUntil(lambda: color(shown(panel), x, y) == GREEN, timeout=5000)
    receiver.emit(CursorChanged(image, 1500, 200, False))
    qtbot.waitUntil(lambda: color(shown(panel), x, y) == BLUE, timeout=5000)


def test_a_new_canvas_replaces_the_old_one(qtbot: QtBot) -> None:
    panel, receiver = make_panel(qtbot, quadrants(1920, 1080))
    small = Canvas(640, 480)
    small.pixels[..., :3] = WHITE
    receiver.emit(CanvasChanged(small))
    qtbot.waitUntil(lambda: panel.view.canvas is small, timeout=5000)
    o, s = panel.view.origin(), panel.view.scale()
    assert color(shown(panel), o.x() + 320 * s, o.y() + 240 * s) == WHITE
