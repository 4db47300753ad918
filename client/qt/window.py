"""The user's window: request help, read out a code, consent, chat, stop.

A small normal window until the tray app arrives. It renders what the
bridge reports and forwards clicks to it; it makes no protocol decisions.

::

    idle --Request help--> waiting (code shown) --consent--> connected
      ^                        |                                 |
      +--------- ended (cancelled, declined, failed, stopped) ---+
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from client.qt.bridge import ClientBridge, ConnectedSession
from client.qt.consent_dialog import ConsentDialog
from common.net.pairing import ConsentRequest
from common.qt.widgets import ChatPanel, enlarge_font, plain_label


__all__ = ["ClientWindow"]

ANTI_SCAM = "Only continue if you contacted your IT support yourself."


class ClientWindow(QMainWindow):
    """The user's main window.

    Attributes:
        request_button, cancel_button, stop_button: the user's intents.
        code_label: the code to read out (selectable).
        connected_label, sas_label: who is connected, with what, and the number.
        status_label: the last state change or error, in words.
        chat: the chat panel.
        consent_dialog: the open consent dialog, if any.
    """

    def __init__(self, bridge: ClientBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._consent_request: ConsentRequest | None = None
        self.consent_dialog: ConsentDialog | None = None
        self.setWindowTitle("Deskhand — remote help")

        self._pages = QStackedWidget(self)
        self._idle_page = self._build_idle_page()
        self._waiting_page = self._build_waiting_page()
        self._connected_page = self._build_connected_page()
        for page in (self._idle_page, self._waiting_page, self._connected_page):
            self._pages.addWidget(page)

        self.status_label = plain_label()
        self.status_label.setObjectName("status")
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(self._pages, 1)
        layout.addWidget(self.status_label)
        self.setCentralWidget(central)

        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)

        bridge.code_ready.connect(self.on_bridge_code_ready)
        bridge.consent_requested.connect(self.on_bridge_consent_requested)
        bridge.consent_withdrawn.connect(self.on_bridge_consent_withdrawn)
        bridge.connected.connect(self.on_bridge_connected)
        bridge.ended.connect(self.on_bridge_ended)
        bridge.failed.connect(self.on_bridge_failed)
        bridge.chat_sent.connect(self.chat.on_bridge_chat_sent)
        bridge.chat_received.connect(self.chat.on_bridge_chat_received)
        self.chat.message_entered.connect(bridge.send_chat)
        self._show_idle()

    # --- pages ---

    def _build_idle_page(self) -> QWidget:
        page = QWidget()
        intro = plain_label(
            "Need help from your IT support? Click “Request help” and read the code "
            "that appears to your technician."
        )
        self.request_button = QPushButton("&Request help")
        enlarge_font(self.request_button, 1.3)
        self.request_button.clicked.connect(self.on_request_clicked)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addStretch(1)
        layout.addWidget(self.request_button)
        layout.addStretch(1)
        return page

    def _build_waiting_page(self) -> QWidget:
        page = QWidget()
        warning = plain_label(ANTI_SCAM)
        warning.setObjectName("anti-scam")
        enlarge_font(warning, 1.0, bold=True)
        prompt = plain_label("Read this code to your technician:")
        self.code_label = plain_label(wrap=False)
        self.code_label.setObjectName("code")
        self.code_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.code_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        enlarge_font(self.code_label, 3.0, bold=True)
        waiting = plain_label("Waiting for your technician to enter it…")
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.clicked.connect(self.on_cancel_clicked)
        layout = QVBoxLayout(page)
        layout.addWidget(warning)
        layout.addWidget(prompt)
        layout.addWidget(self.code_label)
        layout.addWidget(waiting)
        layout.addStretch(1)
        layout.addWidget(self.cancel_button)
        return page

    def _build_connected_page(self) -> QWidget:
        page = QWidget()
        self.connected_label = plain_label()
        self.connected_label.setObjectName("connected")
        enlarge_font(self.connected_label, 1.1, bold=True)
        self.sas_label = plain_label()
        self.sas_label.setObjectName("sas")
        self.stop_button = QPushButton("&Stop — end the session now")
        self.stop_button.clicked.connect(self.on_stop_clicked)
        self.chat = ChatPanel("Technician")
        layout = QVBoxLayout(page)
        layout.addWidget(self.connected_label)
        layout.addWidget(self.sas_label)
        layout.addWidget(self.stop_button)
        layout.addWidget(self.chat, 1)
        return page

    def _show_idle(self) -> None:
        self.request_button.setEnabled(True)
        self._pages.setCurrentWidget(self._idle_page)
        self.request_button.setFocus()

    def _close_consent_dialog(self) -> None:
        dialog, self.consent_dialog = self.consent_dialog, None
        self._consent_request = None
        if dialog is not None:
            dialog.answered.disconnect(self.on_consent_answered)
            dialog.reject()
            dialog.deleteLater()

    # --- user intents ---

    @Slot()
    def on_request_clicked(self) -> None:
        self.request_button.setEnabled(False)
        self.status_label.setText("Asking the relay for a code…")
        self._bridge.request_help()

    @Slot()
    def on_cancel_clicked(self) -> None:
        self.status_label.setText("Cancelling…")
        self._bridge.stop()

    @Slot()
    def on_stop_clicked(self) -> None:
        self.stop_button.setEnabled(False)
        self.status_label.setText("Ending the session…")
        self._bridge.stop()

    @Slot(object)
    def on_consent_answered(self, granted: tuple[str, ...] | None) -> None:
        self.consent_dialog = None
        self._consent_request = None
        self.status_label.setText("Connecting…" if granted else "Declining…")
        self._bridge.answer_consent(granted)

    # --- bridge events ---

    @Slot(str)
    def on_bridge_code_ready(self, code: str) -> None:
        self.code_label.setText(code)
        self.status_label.setText("Waiting for your technician.")
        self._pages.setCurrentWidget(self._waiting_page)
        self.cancel_button.setFocus()

    @Slot(object)
    def on_bridge_consent_requested(self, request: object) -> None:
        if not isinstance(request, ConsentRequest):
            return
        self._close_consent_dialog()
        tech = request.technician
        self._consent_request = request
        self.status_label.setText(f"{tech.name} ({tech.org}) asks to connect.")
        dialog = ConsentDialog(
            name=tech.name,
            org=tech.org,
            fingerprint=tech.fingerprint,
            sas=request.sas,
            requested=request.requested,
            parent=self,
        )
        dialog.answered.connect(self.on_consent_answered)
        self.consent_dialog = dialog
        dialog.open()
        dialog.raise_()

    @Slot()
    def on_bridge_consent_withdrawn(self) -> None:
        self._close_consent_dialog()

    @Slot(object)
    def on_bridge_connected(self, session: object) -> None:
        if not isinstance(session, ConnectedSession):
            return
        can = ", ".join(session.granted) or "nothing"
        self.connected_label.setText(f"{session.name} ({session.org}) is connected — can: {can}")
        self.sas_label.setText(f"Verification number: {session.sas}")
        self.chat.clear()
        self.stop_button.setEnabled(True)
        self._pages.setCurrentWidget(self._connected_page)
        self.status_label.setText("Connected. Click Stop at any time to end the session.")
        self.chat.entry.setFocus()

    @Slot(str)
    def on_bridge_ended(self, reason: str) -> None:
        self._close_consent_dialog()
        self.status_label.setText(reason)
        self._show_idle()

    @Slot(str)
    def on_bridge_failed(self, reason: str) -> None:
        self.status_label.setText(reason)

    # --- Qt overrides ---

    def closeEvent(self, event: QCloseEvent) -> None:
        # Quitting ends the session; app.py closes the channel on aboutToQuit.
        self._close_consent_dialog()
        super().closeEvent(event)
