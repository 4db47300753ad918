"""The technician's view of the user's screen: a thin Qt layer over ScreenReceiver.

:class:`ScreenView` paints the receiver's canvas (a numpy array wrapped in a
QImage without copying) either fitted to the window or at 1:1 with scroll
bars, repaints only the rectangles that changed, and draws the remote
pointer. :class:`ScreenPanel` adds the controls and the status strip (frames
per second, latency, bandwidth, current encoding, picture size) and is what a
window embeds::

    panel = ScreenPanel()
    panel.attach(receiver)          # GUI thread; receiver attached to a channel

Decoding happens in the receiver's thread; its events reach the GUI thread
through one queued signal, coalesced so that a slow GUI never builds a queue
(dirty rectangles are merged until the next paint). Each paintEvent calls
QPainter.drawImage once for the picture (never per rectangle: see
performance.md on PySide6 6.12.0).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPalette, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from common.screen.geometry import Rect
from technician.core.screen.canvas import Canvas
from technician.core.screen.receiver import (
    CanvasChanged,
    CursorChanged,
    FrameApplied,
    MonitorsChanged,
    ReceiverEvent,
    ReceiverStats,
    StatusChanged,
)


__all__ = ["ReceiverPort", "ScreenPanel", "ScreenView", "format_stats"]


class ReceiverPort(Protocol):
    """What the panel needs from a ScreenReceiver (tests pass fakes)."""

    def add_listener(self, listener: Callable[[ReceiverEvent], None]) -> None: ...
    def stats(self) -> ReceiverStats: ...
    def select_monitor(self, index: int) -> None: ...
    def request_keyframe(self, reason: str = "") -> None: ...


def format_stats(stats: ReceiverStats) -> str:
    """The status strip's text, e.g. "30 fps · 12 ms · 4.2 Mbit/s · JPEG+zstd · 1920x1080"."""
    latency = "- ms" if stats.latency_ms is None else f"{stats.latency_ms:.0f} ms"
    size = f"{stats.width}x{stats.height}" if stats.width else "no picture yet"
    return f"{stats.fps:.0f} fps · {latency} · {stats.mbps:.1f} Mbit/s · {stats.encoding} · {size}"


class _Relay(QObject):
    """Carries receiver events to the GUI thread, coalescing frame updates.

    Signals:
        other: a ReceiverEvent that is not a frame (object).
        frames: frame updates are waiting; call take() (no arguments).
    """

    other = Signal(object)
    frames = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._dirty: list[Rect] = []
        self._pending = False

    def on_receiver_event(self, event: ReceiverEvent) -> None:
        # Any thread: only hand over.
        if isinstance(event, FrameApplied):
            with self._lock:
                self._dirty += event.dirty
                if self._pending:
                    return
                self._pending = True
            self.frames.emit()
        else:
            self.other.emit(event)

    def take(self) -> list[Rect]:
        with self._lock:
            dirty, self._dirty = self._dirty, []
            self._pending = False
        return dirty


class ScreenView(QAbstractScrollArea):
    """Paints a Canvas: fitted to the window, or 1:1 with scroll bars.

    Signals:
        painted: a paint event showed the canvas up to this frame (int seq).

    Attributes:
        paint_count: paint events so far (for tests and diagnostics).
        last_paint_rect: the viewport rectangle the last paint event covered.
    """

    painted = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas: Canvas | None = None
        self._image: QImage | None = None
        self._fit = True
        self._cursor: CursorChanged | None = None
        self._cursor_pixmap: QPixmap | None = None
        self._cursor_serial = -1
        self.paint_count = 0
        self.last_paint_rect = QRect()
        self.setObjectName("remote-screen")
        self.setAccessibleName("The user's screen")
        # The viewport forwards its focus to this view (Qt's scroll areas do): keys
        # arrive here, not at the viewport. InputCapture follows that proxy.
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFrameShape(QAbstractScrollArea.Shape.NoFrame)
        self.setMinimumSize(160, 120)
        self._update_scroll_bars()

    # --- state ---

    @property
    def canvas(self) -> Canvas | None:
        return self._canvas

    @property
    def fit(self) -> bool:
        return self._fit

    def set_canvas(self, canvas: Canvas | None) -> None:
        """Show canvas (its pixels are wrapped, not copied)."""
        self._canvas = canvas
        if canvas is None:
            self._image = None
        else:
            pixels = canvas.pixels
            self._image = QImage(
                pixels.data,
                canvas.width,
                canvas.height,
                pixels.strides[0],
                QImage.Format.Format_RGB32,
            )
        self._update_scroll_bars()
        self.viewport().update()

    @Slot(bool)
    def set_fit(self, fit: bool) -> None:
        """Fit the picture to the window (True) or show it 1:1 with scroll bars."""
        if fit != self._fit:
            self._fit = fit
            self._update_scroll_bars()
            self.viewport().update()

    def set_cursor(self, cursor: CursorChanged) -> None:
        old = self.cursor_rect()
        self._cursor = cursor
        image = cursor.image
        if image is not None and image.serial != self._cursor_serial:
            self._cursor_serial = image.serial
            qimage = QImage(
                image.pixels.tobytes(),
                image.width,
                image.height,
                image.width * 4,
                QImage.Format.Format_ARGB32_Premultiplied,
            )
            self._cursor_pixmap = QPixmap.fromImage(qimage)
        new = self.cursor_rect()
        self.viewport().update(old.united(new))

    def canvas_changed(self, dirty: list[Rect]) -> None:
        """Repaint where the canvas changed (view coordinates)."""
        if self._canvas is None or not dirty:
            return
        region = QRect()
        for rect in dirty:
            region = region.united(self.view_to_widget(rect))
        # Paint now rather than on the next pass of the event loop: updates are
        # already coalesced (one pending batch at most), and this saves latency.
        self.viewport().repaint(region.adjusted(-1, -1, 1, 1))

    # --- geometry ---

    def scale(self) -> float:
        """Widget pixels per view pixel."""
        canvas = self._canvas
        if canvas is None or not self._fit:
            return 1.0
        size = self.viewport().size()
        return min(size.width() / canvas.width, size.height() / canvas.height)

    def origin(self) -> QPointF:
        """Where the view's (0, 0) is in the viewport."""
        canvas = self._canvas
        if canvas is None:
            return QPointF(0, 0)
        if self._fit:
            s = self.scale()
            size = self.viewport().size()
            return QPointF(
                (size.width() - canvas.width * s) / 2, (size.height() - canvas.height * s) / 2
            )
        size = self.viewport().size()
        x = -self.horizontalScrollBar().value() if canvas.width > size.width() else 0
        y = -self.verticalScrollBar().value() if canvas.height > size.height() else 0
        if canvas.width < size.width():
            x = (size.width() - canvas.width) // 2
        if canvas.height < size.height():
            y = (size.height() - canvas.height) // 2
        return QPointF(x, y)

    def view_to_widget(self, rect: Rect) -> QRect:
        """The viewport pixels that a view rectangle covers (rounded outwards)."""
        s, o = self.scale(), self.origin()
        x0, y0 = math.floor(o.x() + rect.x * s), math.floor(o.y() + rect.y * s)
        x1, y1 = math.ceil(o.x() + rect.right * s), math.ceil(o.y() + rect.bottom * s)
        return QRect(x0, y0, x1 - x0, y1 - y0)

    def widget_to_view(self, point: QPointF) -> tuple[int, int] | None:
        """The view pixel under a viewport point, or None outside the picture."""
        canvas = self._canvas
        if canvas is None:
            return None
        s, o = self.scale(), self.origin()
        x = math.floor((point.x() - o.x()) / s)
        y = math.floor((point.y() - o.y()) / s)
        if 0 <= x < canvas.width and 0 <= y < canvas.height:
            return x, y
        return None

    def cursor_rect(self) -> QRect:
        """Where the remote pointer is drawn in the viewport (empty: not drawn)."""
        c, pixmap = self._cursor, self._cursor_pixmap
        if c is None or pixmap is None or c.image is None or not c.visible:
            return QRect()
        s = max(self.scale(), 0.5)
        o = self.origin()
        x = o.x() + c.x * self.scale() - c.image.hot_x * s
        y = o.y() + c.y * self.scale() - c.image.hot_y * s
        return QRect(
            math.floor(x),
            math.floor(y),
            math.ceil(pixmap.width() * s) + 1,
            math.ceil(pixmap.height() * s) + 1,
        )

    def _update_scroll_bars(self) -> None:
        canvas = self._canvas
        size = self.viewport().size()
        policy = (
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            if self._fit or canvas is None
            else Qt.ScrollBarPolicy.ScrollBarAsNeeded
        )
        self.setHorizontalScrollBarPolicy(policy)
        self.setVerticalScrollBarPolicy(policy)
        for bar, total, page in (
            (self.horizontalScrollBar(), canvas.width if canvas else 0, size.width()),
            (self.verticalScrollBar(), canvas.height if canvas else 0, size.height()),
        ):
            if self._fit or canvas is None:
                bar.setRange(0, 0)
            else:
                bar.setRange(0, max(0, total - page))
                bar.setPageStep(page)
                bar.setSingleStep(32)

    # --- Qt overrides ---

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_scroll_bars()
        self.viewport().update()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        self.paint_count += 1
        area = event.rect()
        self.last_paint_rect = area
        painter = QPainter(self.viewport())
        try:
            painter.fillRect(area, QColor(40, 40, 40))
            canvas, image = self._canvas, self._image
            seq = -1
            if canvas is not None and image is not None:
                seq = self._paint_picture(painter, area, canvas, image)
            cursor_rect = self.cursor_rect()
            if self._cursor_pixmap is not None and cursor_rect.intersects(area):
                painter.drawPixmap(cursor_rect.adjusted(0, 0, -1, -1), self._cursor_pixmap)
        finally:
            painter.end()
        if seq >= 0:
            self.painted.emit(seq)

    def _paint_picture(self, painter: QPainter, area: QRect, canvas: Canvas, image: QImage) -> int:
        s, o = self.scale(), self.origin()
        # The part of the picture under the exposed area, in view pixels.
        x0 = max(0.0, math.floor((area.left() - o.x()) / s) - 1)
        y0 = max(0.0, math.floor((area.top() - o.y()) / s) - 1)
        x1 = min(float(canvas.width), math.ceil((area.right() + 1 - o.x()) / s) + 1)
        y1 = min(float(canvas.height), math.ceil((area.bottom() + 1 - o.y()) / s) + 1)
        if x1 <= x0 or y1 <= y0:
            return canvas.seq
        source = QRectF(x0, y0, x1 - x0, y1 - y0)
        target = QRectF(o.x() + x0 * s, o.y() + y0 * s, (x1 - x0) * s, (y1 - y0) * s)
        if s != 1.0:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.setClipRect(area)
        with canvas.lock:  # never show half of a frame's rectangle
            painter.drawImage(target, image, source)
            seq = canvas.seq
        painter.setClipping(False)
        return seq


class ScreenPanel(QWidget):
    """The screen view with its controls and live status.

    Signals:
        status_changed: the status strip's text changed (str).

    Attributes:
        view: the ScreenView.
        fit_button: checked: fit to window; unchecked: 1:1.
        monitor_box: which monitor to share ("All monitors" first).
        stats_label: fps, latency, bandwidth, encoding, size.
        message_label: the last message from the receiver (errors, sharing stopped).
    """

    status_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, stats_interval_ms: int = 250) -> None:
        super().__init__(parent)
        self._receiver: ReceiverPort | None = None
        self._relay = _Relay()
        self._relay.other.connect(self.on_receiver_event)
        self._relay.frames.connect(self.on_receiver_frames)
        self._updating_monitors = False

        self.view = ScreenView(self)
        self.fit_button = QToolButton(self)
        self.fit_button.setText("Fit to window")
        self.fit_button.setCheckable(True)
        self.fit_button.setChecked(True)
        self.fit_button.setToolTip("Fit the screen to the window, or show it 1:1")
        self.fit_button.toggled.connect(self.on_fit_toggled)
        self.monitor_box = QComboBox(self)
        self.monitor_box.setToolTip("Which of the user's monitors to show")
        self.monitor_box.addItem("All monitors")
        self.monitor_box.currentIndexChanged.connect(self.on_monitor_chosen)
        self.stats_label = QLabel(format_stats(ReceiverStats()), self)
        self.stats_label.setObjectName("screen-stats")
        self.message_label = QLabel("", self)
        # Over the last picture while the user's side is not sharing: a frozen
        # frame must not pass for the live screen.
        self.overlay = QLabel("", self.view)
        self.overlay.setObjectName("screen-overlay")
        self.overlay.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.overlay.setWordWrap(True)
        self.overlay.setAutoFillBackground(True)
        self.overlay.setBackgroundRole(QPalette.ColorRole.Window)
        font = self.overlay.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.overlay.setFont(font)
        self.overlay.hide()
        self.message_label.setObjectName("screen-message")

        controls = QHBoxLayout()
        controls.addWidget(self.fit_button)
        controls.addWidget(self.monitor_box)
        controls.addStretch(1)
        strip = QHBoxLayout()
        strip.addWidget(self.stats_label)
        strip.addStretch(1)
        strip.addWidget(self.message_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.view, 1)
        layout.addLayout(strip)

        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(stats_interval_ms)
        self._stats_timer.timeout.connect(self.refresh_stats)

    def attach(self, receiver: ReceiverPort) -> None:
        """Show what receiver receives (GUI thread)."""
        self._receiver = receiver
        receiver.add_listener(self._relay.on_receiver_event)
        self._stats_timer.start()
        self.refresh_stats()

    def detach(self) -> None:
        """Stop showing the receiver's statistics (the picture stays)."""
        self._stats_timer.stop()
        self._receiver = None

    # --- slots ---

    @Slot(bool)
    def on_fit_toggled(self, fit: bool) -> None:
        self.fit_button.setText("Fit to window" if fit else "1:1")
        self.view.set_fit(fit)

    @Slot(int)
    def on_monitor_chosen(self, index: int) -> None:
        if self._updating_monitors or index < 0 or self._receiver is None:
            return
        self._receiver.select_monitor(index)

    @Slot()
    def refresh_stats(self) -> None:
        if self._receiver is None:
            return
        text = format_stats(self._receiver.stats())
        if text != self.stats_label.text():
            self.stats_label.setText(text)
            self.status_changed.emit(text)

    def _show_overlay(self, text: str) -> None:
        self.overlay.setText(text)
        self.overlay.setGeometry(self.view.rect())
        self.overlay.show()
        self.overlay.raise_()

    def _hide_overlay(self) -> None:
        if self.overlay.isVisible():
            self.overlay.hide()
            self.message_label.setText("")  # the status it explained is over

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Qt override: the overlay covers the whole picture."""
        super().resizeEvent(event)
        if self.overlay.isVisible():
            self.overlay.setGeometry(self.view.rect())

    @Slot()
    def on_receiver_frames(self) -> None:
        self.view.canvas_changed(self._relay.take())

    @Slot(object)
    def on_receiver_event(self, event: ReceiverEvent) -> None:
        if isinstance(event, CanvasChanged):
            self._relay.take()
            self.view.set_canvas(event.canvas)
        elif isinstance(event, CursorChanged):
            self.view.set_cursor(event)
        elif isinstance(event, MonitorsChanged):
            # A sharer announces the monitors when it starts: sharing is back
            # (decoded frames may still be catching up after a stop, so not those).
            self._hide_overlay()
            self._show_monitors(event)
        elif isinstance(event, StatusChanged):
            self.message_label.setText(event.text)
            self.message_label.setStyleSheet("color: #b00020;" if event.error else "")
            if event.stopped:
                self._show_overlay(event.text)

    def _show_monitors(self, event: MonitorsChanged) -> None:
        self._updating_monitors = True
        try:
            self.monitor_box.clear()
            if event.monitors:
                right = max(x + w for x, _, w, _ in event.monitors)
                bottom = max(y + h for _, y, _, h in event.monitors)
                left = min(x for x, _, _, _ in event.monitors)
                top = min(y for _, y, _, _ in event.monitors)
                self.monitor_box.addItem(f"All monitors ({right - left}x{bottom - top})")
            else:
                self.monitor_box.addItem("All monitors")
            for i, (_, _, w, h) in enumerate(event.monitors, 1):
                self.monitor_box.addItem(f"Monitor {i} ({w}x{h})")
            self.monitor_box.setCurrentIndex(min(event.selected, self.monitor_box.count() - 1))
        finally:
            self._updating_monitors = False
