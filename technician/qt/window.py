"""The technician's window: enter the user's code, compare the number, chat.

The first, minimal console (the full one comes later). It renders what the
bridge reports and forwards intents to it.

::

    ready --Connect--> connecting (number shown) --user allows--> connected
      ^                      |                                       |
      +------------ ended (declined, failed, ended by either side) --+
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from common.protocol.messages import CAPABILITIES
from common.qt.widgets import ChatPanel, enlarge_font, plain_label
from technician.qt.bridge import OpenSession, TechnicianBridge


__all__ = ["TechnicianWindow"]


class TechnicianWindow(QMainWindow):
    """The technician's main window.

    Attributes:
        code_edit, connect_button, cancel_button: start (or abandon) a session.
        capability_boxes: what to ask the user for, by capability name.
        session_label, sas_label, end_button: the open session.
        status_label: the state or the last error, in words.
        chat: the chat panel.
    """

    def __init__(
        self, bridge: TechnicianBridge, who: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.setWindowTitle(f"Deskhand technician — {who}" if who else "Deskhand technician")

        self._pages = QStackedWidget(self)
        self._connect_page = self._build_connect_page()
        self._session_page = self._build_session_page()
        self._pages.addWidget(self._connect_page)
        self._pages.addWidget(self._session_page)

        self.status_label = plain_label()
        self.status_label.setObjectName("status")
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(self._pages, 1)
        layout.addWidget(self.status_label)
        self.setCentralWidget(central)

        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)

        bridge.sas_known.connect(self.on_bridge_sas_known)
        bridge.connected.connect(self.on_bridge_connected)
        bridge.ended.connect(self.on_bridge_ended)
        bridge.failed.connect(self.on_bridge_failed)
        bridge.chat_sent.connect(self.chat.on_bridge_chat_sent)
        bridge.chat_received.connect(self.chat.on_bridge_chat_received)
        self.chat.message_entered.connect(bridge.send_chat)
        self._show_ready()
        self.status_label.setText("Ask the user for the code shown in their Deskhand window.")

    # --- pages ---

    def _build_connect_page(self) -> QWidget:
        page = QWidget()
        prompt = plain_label("The user's code:")
        self.code_edit = QLineEdit()
        self.code_edit.setObjectName("code")
        self.code_edit.setPlaceholderText("123-456-789")
        self.code_edit.setMaxLength(40)
        enlarge_font(self.code_edit, 1.6)
        prompt.setBuddy(self.code_edit)
        self.code_edit.returnPressed.connect(self.on_connect_clicked)
        self.connect_button = QPushButton("&Connect")
        self.connect_button.clicked.connect(self.on_connect_clicked)
        self.cancel_button = QPushButton("C&ancel")
        self.cancel_button.clicked.connect(self.on_cancel_clicked)
        row = QHBoxLayout()
        row.addWidget(self.code_edit, 1)
        row.addWidget(self.connect_button)
        row.addWidget(self.cancel_button)

        ask = QHBoxLayout()
        ask.addWidget(plain_label("Ask for:", wrap=False))
        self.capability_boxes: dict[str, QCheckBox] = {}
        for capability in CAPABILITIES:
            box = QCheckBox(capability)
            box.setObjectName(f"capability-{capability}")
            box.setChecked(capability == "view")
            self.capability_boxes[capability] = box
            ask.addWidget(box)
        ask.addStretch(1)

        layout = QVBoxLayout(page)
        layout.addWidget(prompt)
        layout.addLayout(row)
        layout.addLayout(ask)
        layout.addStretch(1)
        return page

    def _build_session_page(self) -> QWidget:
        page = QWidget()
        self.session_label = plain_label()
        self.session_label.setObjectName("session")
        enlarge_font(self.session_label, 1.1, bold=True)
        self.sas_label = plain_label()
        self.sas_label.setObjectName("sas")
        self.end_button = QPushButton("&End session")
        self.end_button.clicked.connect(self.on_end_clicked)
        self.chat = ChatPanel("User")
        layout = QVBoxLayout(page)
        layout.addWidget(self.session_label)
        layout.addWidget(self.sas_label)
        layout.addWidget(self.end_button)
        layout.addWidget(self.chat, 1)
        return page

    def _set_connecting(self, connecting: bool) -> None:
        self.code_edit.setEnabled(not connecting)
        self.connect_button.setEnabled(not connecting)
        self.cancel_button.setVisible(connecting)
        for box in self.capability_boxes.values():
            box.setEnabled(not connecting)

    def _show_ready(self) -> None:
        self._set_connecting(False)
        self._pages.setCurrentWidget(self._connect_page)
        self.code_edit.setFocus()
        self.code_edit.selectAll()

    def requested(self) -> tuple[str, ...]:
        """The capabilities ticked, in protocol order."""
        return tuple(cap for cap, box in self.capability_boxes.items() if box.isChecked())

    # --- user intents ---

    @Slot()
    def on_connect_clicked(self) -> None:
        code = self.code_edit.text().strip()
        if not code:
            self.status_label.setText("Type the code the user reads to you, like 123-456-789.")
            return
        requested = self.requested()
        if not requested:
            self.status_label.setText("Tick at least one thing to ask for.")
            return
        self._set_connecting(True)
        self.status_label.setText("Connecting…")
        self._bridge.connect_to(code, requested)

    @Slot()
    def on_cancel_clicked(self) -> None:
        self.status_label.setText("Abandoning…")
        self._bridge.end_session()

    @Slot()
    def on_end_clicked(self) -> None:
        self.end_button.setEnabled(False)
        self.status_label.setText("Ending the session…")
        self._bridge.end_session()

    # --- bridge events ---

    @Slot(str)
    def on_bridge_sas_known(self, sas: str) -> None:
        self.status_label.setText(f"Verification number: {sas} — ask the user to confirm it")

    @Slot(object)
    def on_bridge_connected(self, session: object) -> None:
        if not isinstance(session, OpenSession):
            return
        granted = ", ".join(session.granted) or "nothing"
        self.session_label.setText(f"Connected — the user granted: {granted}")
        self.sas_label.setText(f"Verification number: {session.sas}")
        self.chat.clear()
        self.code_edit.clear()
        self.end_button.setEnabled(True)
        self._pages.setCurrentWidget(self._session_page)
        self.status_label.setText("Connected.")
        self.chat.entry.setFocus()

    @Slot(str)
    def on_bridge_ended(self, reason: str) -> None:
        self.status_label.setText(reason)
        self._show_ready()

    @Slot(str)
    def on_bridge_failed(self, reason: str) -> None:
        self.status_label.setText(reason)
