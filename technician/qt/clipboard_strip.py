"""The session tab's clipboard switch and status: what crossed, in sizes, never the text."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QWidget

from common.qt.widgets import plain_label
from technician.qt.bridge import TechnicianBridge


__all__ = ["ClipboardStrip"]


class ClipboardStrip(QWidget):
    """ "Share the clipboard" and the last transfer, for one session.

    Only the tab in front (``is_front()``) takes the technician's clipboard,
    and only while the user allows clipboard.
    """

    def __init__(
        self, bridge: TechnicianBridge, key: int, is_front: Callable[[], bool], parent: QWidget
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._key = key
        self._is_front = is_front
        self._live = False
        self._allowed = False
        self.box = QCheckBox("Share the clip&board")
        self.box.setObjectName("clipboard-share")
        self.box.setChecked(True)
        self.box.setToolTip(
            "While the user allows clipboard, text you copy here goes to the user's "
            "clipboard and text they copy comes to yours. Untick to keep yours private."
        )
        self.box.toggled.connect(self.on_toggled)
        self.label = plain_label(wrap=False)
        self.label.setObjectName("clipboard-state")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.box)
        layout.addWidget(self.label)
        QGuiApplication.clipboard().dataChanged.connect(self.on_clipboard_data_changed)

    def set_state(self, *, live: bool, allowed: bool) -> None:
        """The session is live or not; the user allows clipboard or not."""
        self._live, self._allowed = live, allowed
        self.box.setEnabled(live)
        if not live:
            self.label.setText("")
        elif not allowed:
            self.label.setText("Clipboard: not allowed by the user")
        elif self.box.isChecked():
            self.label.setText("Clipboard: on")
        else:
            self.label.setText("Clipboard: off here")

    @Slot(bool)
    def on_toggled(self, on: bool) -> None:
        self._bridge.set_clipboard_enabled(self._key, on)
        self.set_state(live=self._live, allowed=self._allowed)

    @Slot()
    def on_clipboard_data_changed(self) -> None:
        if self._live and self._allowed and self._is_front():
            self._bridge.clipboard_changed(self._key, QGuiApplication.clipboard().text())

    @Slot(str)
    def on_write(self, text: str) -> None:
        """The user's text: put it on this clipboard."""
        QGuiApplication.clipboard().setText(text)

    @Slot(str)
    def on_moved(self, text: str) -> None:
        self.label.setText(text)
