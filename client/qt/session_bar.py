"""The always-on-top bar shown while a session runs.

It says who is connected and what they may do, and offers Pause, Stop and a
toggle per capability. Stop ends everything at once. The bar is a separate
top-level window so that it stays visible over whatever the technician is
looking at, and is part of the shared screen; it raises itself again every
few seconds in case another window covered it (security.md 4.2).

The bar can be clicked by remote input like any window, so nothing on it
may add rights: unticking a capability, Pause and Stop act at once, but
ticking one only *asks* (:attr:`SessionBar.capability_toggled` with True);
the app then opens a confirmation dialog, during which remote input is
paused, and the box shows the real grants until the answer arrives.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QHideEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QWidget,
)

from client.core.presence import Presence
from client.qt.icons import icon_for
from client.qt.tray_menu import describe
from common.protocol.messages import CAPABILITIES
from common.qt.countdown import Countdown
from common.qt.widgets import plain_label


__all__ = ["SessionBar"]


class SessionBar(QWidget):
    """Frameless, always on top, never takes focus from the user's work.

    Args:
        reassert_ms: how often to raise the bar again while it is shown (0: never).

    Signals:
        stop_requested: end the session now.
        pause_toggled: pause (True) or resume (False) sharing.
        capability_toggled: the user revoked (False) one capability, or asks
            to grant it (True: confirm first; the box stays as it was).
        chat_requested: open the chat.
    """

    stop_requested = Signal()
    pause_toggled = Signal(bool)
    capability_toggled = Signal(str, bool)
    chat_requested = Signal()
    clipboard_directions_changed = Signal(bool, bool)

    def __init__(self, parent: QWidget | None = None, *, reassert_ms: int = 3000) -> None:
        super().__init__(
            parent,
            Qt.WindowType.Tool
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.WindowDoesNotAcceptFocus,
        )
        self.setObjectName("deskhand-session-bar")
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        # A strip that cannot be mistaken for the user's own windows.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet(
            "#deskhand-session-bar { background: #fff3cd; border: 2px solid #b00020; }"
        )
        self._presence = Presence()
        self.state_icon = QLabel(self)
        self.state_icon.setPixmap(icon_for(self._presence.state).pixmap(20, 20))
        self.label = plain_label(wrap=False)
        self.toggles: dict[str, QCheckBox] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.state_icon)
        layout.addWidget(self.label, 1)
        for capability in CAPABILITIES:
            box = QCheckBox(capability.capitalize(), self)
            box.setToolTip(f"Allow or revoke: {capability}")
            box.toggled.connect(lambda on, capability=capability: self._on_toggle(capability, on))
            self.toggles[capability] = box
            layout.addWidget(box)
        # Which way the clipboard may go, once it is allowed at all.
        self.clipboard_button = QToolButton(self)
        self.clipboard_button.setObjectName("clipboard-directions")
        self.clipboard_button.setText("Clipboard ▾")
        self.clipboard_button.setAccessibleName("Clipboard directions")
        self.clipboard_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.clipboard_button)
        self.send_copies = QAction("Send what I copy to the technician", menu)
        self.accept_text = QAction("Let the technician put text on my clipboard", menu)
        for action in (self.send_copies, self.accept_text):
            action.setCheckable(True)
            action.setChecked(True)
            action.toggled.connect(self._on_directions)
            menu.addAction(action)
        self.clipboard_button.setMenu(menu)
        self.clipboard_button.setVisible(False)
        layout.addWidget(self.clipboard_button)
        self.pause_button = QPushButton("&Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.on_pause_toggled)
        self.pause_button.setToolTip("Pause: the technician sees and does nothing until you resume")
        self.chat_button = QPushButton("&Chat", self)
        self.chat_button.setToolTip("Open the chat with the technician")
        self.chat_button.clicked.connect(self.chat_requested)
        self.stop_button = QPushButton("&Stop", self)
        self.stop_button.setToolTip(
            "End the session now. Ctrl+Alt+Shift+End does the same from any window."
        )
        self.stop_button.setStyleSheet("QPushButton { font-weight: bold; color: #b00020; }")
        self.stop_button.clicked.connect(self.stop_requested)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.chat_button)
        layout.addWidget(self.stop_button)
        shortcut = QShortcut(QKeySequence("Ctrl+Alt+Shift+End"), self, self.stop_requested.emit)
        shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        self._updating = False
        self._countdown = Countdown(self, lambda _left: self._render_label())
        self._reassert = QTimer(self)
        self._reassert.setInterval(reassert_ms)
        self._reassert.timeout.connect(self.raise_)
        self._reassert_ms = reassert_ms

    @property
    def presence(self) -> Presence:
        return self._presence

    def set_presence(self, presence: Presence) -> None:
        if presence.state is not self._presence.state:
            self.state_icon.setPixmap(icon_for(presence.state).pixmap(20, 20))
        self._presence = presence
        self._updating = True
        try:
            if not presence.reconnecting:
                self._countdown.stop()
            self._render_label()
            for capability, box in self.toggles.items():
                box.setChecked(capability in presence.granted)
            self.clipboard_button.setVisible("clipboard" in presence.granted)
            self.pause_button.setChecked(presence.paused)
            self.pause_button.setText("&Resume" if presence.paused else "&Pause")
        finally:
            self._updating = False

    def set_reconnecting(self, deadline: float) -> None:
        """The link dropped: count down to ``deadline`` (monotonic seconds) in the label."""
        self._countdown.start(deadline)

    def _render_label(self) -> None:
        text = describe(self._presence)
        if self._presence.reconnecting and self._countdown.active:
            left = self._countdown.seconds_left()
            text = f"Reconnecting to {self._presence.technician}… (up to {left} s more)"
        self.label.setText(text)

    def place_at_top(self) -> None:
        screen = self.screen().availableGeometry()
        self.adjustSize()
        self.move(screen.x() + (screen.width() - self.width()) // 2, screen.y())

    @Slot()
    def _on_directions(self) -> None:
        self.clipboard_directions_changed.emit(
            self.send_copies.isChecked(), self.accept_text.isChecked()
        )

    def _on_toggle(self, capability: str, on: bool) -> None:
        if self._updating:
            return
        if on:
            # Only a request: show the real grants until the user confirmed.
            self.set_presence(self._presence)
        self.capability_toggled.emit(capability, on)

    def showEvent(self, event: QShowEvent) -> None:
        """Qt override: keep re-asserting the bar on top while it is shown."""
        super().showEvent(event)
        if self._reassert_ms > 0:
            self._reassert.start()

    def hideEvent(self, event: QHideEvent) -> None:
        """Qt override."""
        self._reassert.stop()
        super().hideEvent(event)

    @Slot(bool)
    def on_pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("&Resume" if paused else "&Pause")
        if not self._updating:
            self.pause_toggled.emit(paused)
