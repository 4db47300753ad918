"""The banner a session tab shows once its session is over, with the ways on."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from common.qt.widgets import enlarge_font, plain_label


__all__ = ["EndBanner"]


class EndBanner(QFrame):
    """Why the session ended, and: reconnect with a new code, back to the queue,
    file the report, close the tab (the tab shows the ones that apply)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = plain_label()
        self.label.setObjectName("banner-text")
        enlarge_font(self.label, 1.1, bold=True)
        self.reconnect_edit = QLineEdit()
        self.reconnect_edit.setObjectName("reconnect-code")
        self.reconnect_edit.setPlaceholderText("new code, like 123-456-789")
        self.reconnect_edit.setMaxLength(40)
        self.reconnect_button = QPushButton("Reconnect with the &new code")
        self.back_button = QPushButton("&Back to the queue")
        self.file_button = QPushButton("&File report and close")
        self.close_button = QPushButton("&Close tab")
        actions = QHBoxLayout()
        actions.addWidget(self.reconnect_edit, 1)
        actions.addWidget(self.reconnect_button)
        actions.addWidget(self.back_button)
        actions.addStretch(0)
        actions.addWidget(self.file_button)
        actions.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addLayout(actions)
