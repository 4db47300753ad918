"""The always-on-top bar shown while a session runs.

It says who is connected and what they may do, and offers Pause, Stop and a
toggle per capability. Stop ends everything at once. The bar is a separate
top-level window so that it stays visible over whatever the technician is
looking at, and is part of the shared screen.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QWidget

from client.core.presence import Presence
from common.protocol.messages import CAPABILITIES
from common.qt.widgets import plain_label


__all__ = ["SessionBar"]


class SessionBar(QWidget):
    """Frameless, always on top, never takes focus from the user's work.

    Signals:
        stop_requested: end the session now.
        pause_toggled: pause (True) or resume (False) sharing.
        capability_toggled: the user granted (True) or revoked (False) one capability.
    """

    stop_requested = Signal()
    pause_toggled = Signal(bool)
    capability_toggled = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            parent,
            Qt.WindowType.Tool
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.WindowDoesNotAcceptFocus,
        )
        self.setObjectName("deskhand-session-bar")
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self._presence = Presence()
        self.label = plain_label(wrap=False)
        self.toggles: dict[str, QCheckBox] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        for capability in CAPABILITIES:
            box = QCheckBox(capability.capitalize(), self)
            box.setToolTip(f"Allow or revoke: {capability}")
            box.toggled.connect(lambda on, capability=capability: self._on_toggle(capability, on))
            self.toggles[capability] = box
            layout.addWidget(box)
        self.pause_button = QPushButton("&Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.on_pause_toggled)
        self.stop_button = QPushButton("&Stop", self)
        self.stop_button.setToolTip("End the session now (Ctrl+Alt+Shift+End)")
        self.stop_button.setStyleSheet("QPushButton { font-weight: bold; color: #b00020; }")
        self.stop_button.clicked.connect(self.stop_requested)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.stop_button)
        QShortcut(QKeySequence("Ctrl+Alt+Shift+End"), self, self.stop_requested.emit)
        self._updating = False

    @property
    def presence(self) -> Presence:
        return self._presence

    def set_presence(self, presence: Presence) -> None:
        self._presence = presence
        self._updating = True
        try:
            self.label.setText(presence.describe())
            for capability, box in self.toggles.items():
                box.setChecked(capability in presence.granted)
            self.pause_button.setChecked(presence.paused)
            self.pause_button.setText("&Resume" if presence.paused else "&Pause")
        finally:
            self._updating = False

    def place_at_top(self) -> None:
        screen = self.screen().availableGeometry()
        self.adjustSize()
        self.move(screen.x() + (screen.width() - self.width()) // 2, screen.y())

    def _on_toggle(self, capability: str, on: bool) -> None:
        if not self._updating:
            self.capability_toggled.emit(capability, on)

    @Slot(bool)
    def on_pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("&Resume" if paused else "&Pause")
        if not self._updating:
            self.pause_toggled.emit(paused)
