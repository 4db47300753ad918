"""Widgets both desktop apps use."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


__all__ = ["MAX_CHAT", "ChatPanel", "enlarge_font", "plain_label"]

# ChatText carries at most 8192 UTF-8 bytes; 2000 characters fit even at 4 bytes each.
MAX_CHAT = 2000


class ChatPanel(QWidget):
    """A chat transcript, a line edit and Send (Enter sends).

    Signals:
        message_entered: the user wants to send this line (str).

    Attributes:
        transcript, entry, send_button: the parts, for tests and focus.
    """

    message_entered = Signal(str)

    def __init__(self, peer: str = "Technician", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.peer = peer
        self.transcript = QListWidget(self)
        self.transcript.setObjectName("chat-transcript")
        self.transcript.setAccessibleName("Chat messages")
        self.transcript.setWordWrap(True)
        self.entry = QLineEdit(self)
        self.entry.setObjectName("chat-entry")
        self.entry.setAccessibleName("Chat message")
        self.entry.setPlaceholderText("Type a message and press Enter")
        self.entry.setMaxLength(MAX_CHAT)
        self.send_button = QPushButton("Se&nd", self)
        self.send_button.setEnabled(False)
        self.entry.textChanged.connect(self.on_entry_text_changed)
        self.entry.returnPressed.connect(self.on_send_clicked)
        self.send_button.clicked.connect(self.on_send_clicked)

        row = QHBoxLayout()
        row.addWidget(self.entry, 1)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(row)

    def add_line(self, who: str, text: str) -> None:
        self.transcript.addItem(f"{who}: {text}")
        self.transcript.scrollToBottom()

    def clear(self) -> None:
        self.transcript.clear()
        self.entry.clear()

    @Slot(str)
    def on_entry_text_changed(self, text: str) -> None:
        self.send_button.setEnabled(bool(text.strip()))

    @Slot()
    def on_send_clicked(self) -> None:
        text = self.entry.text().strip()
        if text:
            self.entry.clear()
            self.message_entered.emit(text)

    @Slot(str)
    def on_bridge_chat_sent(self, text: str) -> None:
        self.add_line("You", text)

    @Slot(str)
    def on_bridge_chat_received(self, text: str) -> None:
        self.add_line(self.peer, text)


def plain_label(text: str = "", *, wrap: bool = True) -> QLabel:
    """A label that never interprets its text as rich text (names come from the network)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    return label


def enlarge_font(widget: QWidget, factor: float, *, bold: bool = False) -> None:
    font = QFont(widget.font())
    if font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * factor)
    else:
        font.setPixelSize(max(1, round(font.pixelSize() * factor)))
    font.setBold(bold)
    widget.setFont(font)
