"""The user's window: ask for help, wait, consent, chat, stop.

It renders what the bridge reports and forwards the user's intents to it;
it makes no protocol decisions. Its pages::

    home --Request help--> gate --yes--> form --Send--> queue --+
      |                     |                                  +--consent--> connected
      +--Phone support----> gate --yes--> code ----------------+
                            +--no--> report (how to report; nothing is sent)
      ^---------- ended (cancelled, declined, failed, stopped) ----------+

With a system tray the window can be closed (hidden) at any time and
opened again from the tray; without one it is the app, and closing it quits.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from client.core.help_flow import Connected
from client.core.presence import Presence, PresenceState
from client.core.request_form import RequestDraft, default_user_name
from client.core.session import QueueStatus
from client.qt.bridge import ClientBridge
from client.qt.consent_dialog import ALLOW_DELAY, ConsentDialog, VerificationFailedDialog
from client.qt.icons import icon_for
from client.qt.request_pages import (
    AntiScamPage,
    ReportPage,
    RequestFormPage,
    ScreenshotDialog,
)
from client.qt.wording import ANTI_SCAM, capability_list
from common.net.pairing import ConsentRequest
from common.qt.countdown import Countdown
from common.qt.widgets import ChatPanel, enlarge_font, plain_label


__all__ = ["ANTI_SCAM", "ClientWindow"]

_CODE = re.compile(r"^\d{3,4}(-\d{3}){2,3}$")


class ClientWindow(QMainWindow):
    """The user's main window.

    Args:
        bridge: the only way to the core.
        allow_delay: seconds before Allow can be clicked in the consent dialog.
        screenshot_delay_ms: how long the window stays hidden before a
            screenshot is taken (so that it does not show itself).
        hide_on_close: closing hides the window (the tray keeps the app);
            otherwise closing emits :attr:`closed` (the app quits).
        in_tray: the app has a tray icon (changes a few hints).

    Signals:
        closed: the window was closed for good (not merely hidden): quit.

    Attributes:
        request_button, code_button: the two ways to ask (home page).
        gate, report, form: the anti-scam gate, the report page, the request form.
        queue_label, request_id_label, cancel_request_button: the queue page.
        code_label, cancel_button: the code page.
        connected_label, sas_label, rights_label, stop_button, show_screenshot_button,
        chat: the connected page.
        status_label: the last state change or error, in words.
        consent_dialog, failure_dialog, screenshot_dialog: the open dialogs, if any.
        sent_screenshot: the screenshot attached to the request under way.
    """

    closed = Signal()

    def __init__(
        self,
        bridge: ClientBridge,
        *,
        allow_delay: float = ALLOW_DELAY,
        screenshot_delay_ms: int = 400,
        hide_on_close: bool = False,
        in_tray: bool = False,
        default_name: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._allow_delay = allow_delay
        self._screenshot_delay_ms = screenshot_delay_ms
        self._hide_on_close = hide_on_close
        self._in_tray = in_tray
        self._gate_next = "form"
        self._connected: Connected | None = None
        self._code_warning = ""
        self._code_deadline = 0.0
        self._code_warning_shown = ""
        self._code_countdown = Countdown(self, self._render_code_wait)
        self._presence = Presence()
        self.sent_screenshot: QPixmap | None = None
        self.consent_dialog: ConsentDialog | None = None
        self.failure_dialog: VerificationFailedDialog | None = None
        self.screenshot_dialog: ScreenshotDialog | None = None
        self.setWindowTitle("Deskhand — remote help")
        self.setWindowIcon(icon_for(PresenceState.IDLE))

        self._pages = QStackedWidget(self)
        self._home_page = self._build_home_page()
        self.gate = AntiScamPage()
        self.report = ReportPage()
        self.form = RequestFormPage(default_user_name() if default_name is None else default_name)
        self._queue_page = self._build_queue_page()
        self._code_page = self._build_code_page()
        self._connected_page = self._build_connected_page()
        for page in (
            self._home_page,
            self.gate,
            self.report,
            self.form,
            self._queue_page,
            self._code_page,
            self._connected_page,
        ):
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
        back_action = QAction("Back", self)
        back_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        back_action.triggered.connect(self.on_escape)
        self.addAction(back_action)

        self.gate.confirmed.connect(self.on_gate_confirmed)
        self.gate.refused.connect(self.on_gate_refused)
        self.gate.back_requested.connect(self.show_home)
        self.report.done.connect(self.show_home)
        self.form.back_requested.connect(self.show_home)
        self.form.submitted.connect(self.on_form_submitted)
        self.form.summary_wanted.connect(bridge.collect_summary)
        self.form.screenshot_wanted.connect(self.on_screenshot_wanted)
        self.form.preview_wanted.connect(self.on_preview_wanted)

        bridge.code_ready.connect(self.on_bridge_code_ready)
        bridge.code_warning.connect(self.on_bridge_code_warning)
        bridge.code_expires.connect(self.on_bridge_code_expires)
        bridge.queue_changed.connect(self.on_bridge_queue_changed)
        bridge.consent_requested.connect(self.on_bridge_consent_requested)
        bridge.consent_withdrawn.connect(self.on_bridge_consent_withdrawn)
        bridge.verification_failed.connect(self.on_bridge_verification_failed)
        bridge.connected.connect(self.on_bridge_connected)
        bridge.presence_changed.connect(self.on_bridge_presence_changed)
        bridge.ended.connect(self.on_bridge_ended)
        bridge.failed.connect(self.on_bridge_failed)
        bridge.notice.connect(self.on_bridge_notice)
        bridge.summary_ready.connect(self.form.set_summary)
        bridge.chat_sent.connect(self.chat.on_bridge_chat_sent)
        bridge.chat_received.connect(self.chat.on_bridge_chat_received)
        self.chat.message_entered.connect(bridge.send_chat)
        self.show_home()
        self.resize(560, 580)

    # --- pages ---

    def _build_home_page(self) -> QWidget:
        page = QWidget()
        title = plain_label("Need help from your IT support?")
        enlarge_font(title, 1.3, bold=True)
        intro = plain_label(
            "Describe your problem and a technician from your IT support will contact "
            "you here. You will see who it is, and nothing is shared unless you allow it."
        )
        self.request_button = QPushButton("&Request help…")
        self.request_button.setObjectName("request")
        enlarge_font(self.request_button, 1.3)
        self.request_button.clicked.connect(self.on_request_clicked)
        phone = plain_label("On the phone with your IT support, and they asked you for a code?")
        self.code_button = QPushButton("Show a &code for phone support")
        self.code_button.setObjectName("phone-code")
        self.code_button.clicked.connect(self.on_code_clicked)
        layout = QVBoxLayout(page)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addStretch(1)
        layout.addWidget(self.request_button)
        layout.addStretch(1)
        layout.addWidget(phone)
        layout.addWidget(self.code_button)
        return page

    def _build_queue_page(self) -> QWidget:
        page = QWidget()
        title = plain_label("Your request is in the queue")
        enlarge_font(title, 1.3, bold=True)
        self.queue_label = plain_label()
        self.queue_label.setObjectName("queue-position")
        enlarge_font(self.queue_label, 1.6, bold=True)
        self.queue_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.request_id_label = plain_label()
        self.request_id_label.setObjectName("request-id")
        self.request_id_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.queue_hint = plain_label()
        self.cancel_request_button = QPushButton("&Cancel my request")
        self.cancel_request_button.clicked.connect(self.on_cancel_clicked)
        layout = QVBoxLayout(page)
        layout.addWidget(title)
        layout.addStretch(1)
        layout.addWidget(self.queue_label)
        layout.addWidget(self.request_id_label)
        layout.addStretch(1)
        layout.addWidget(self.queue_hint)
        layout.addWidget(self.cancel_request_button)
        return page

    def _build_code_page(self) -> QWidget:
        page = QWidget()
        warning = plain_label(ANTI_SCAM)
        warning.setObjectName("anti-scam")
        warning.setStyleSheet("color: #b00020;")
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
        self.code_waiting_label = plain_label()
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.clicked.connect(self.on_cancel_clicked)
        layout = QVBoxLayout(page)
        layout.addWidget(warning)
        layout.addWidget(prompt)
        layout.addWidget(self.code_label)
        layout.addWidget(self.code_waiting_label)
        layout.addStretch(1)
        layout.addWidget(self.cancel_button)
        return page

    def _build_connected_page(self) -> QWidget:
        page = QWidget()
        self.connected_label = plain_label()
        self.connected_label.setObjectName("connected")
        enlarge_font(self.connected_label, 1.1, bold=True)
        self.rights_label = plain_label()
        self.rights_label.setObjectName("rights")
        self.sas_label = plain_label()
        self.sas_label.setObjectName("sas")
        self.stop_button = QPushButton("&Stop — end the session now")
        self.stop_button.setStyleSheet("QPushButton { font-weight: bold; color: #b00020; }")
        self.stop_button.clicked.connect(self.on_stop_clicked)
        self.show_screenshot_button = QPushButton("Show my screens&hot")
        self.show_screenshot_button.setToolTip(
            "Open the screenshot you took when asking for help, so the technician can see it"
        )
        self.show_screenshot_button.clicked.connect(self.on_show_screenshot_clicked)
        self.chat = ChatPanel("Technician")
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_screenshot_button)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.connected_label)
        layout.addWidget(self.rights_label)
        layout.addWidget(self.sas_label)
        layout.addLayout(buttons)
        layout.addWidget(self.chat, 1)
        return page

    @property
    def page(self) -> str:
        """The page shown: home, gate, report, form, queue, code or connected."""
        current = self._pages.currentWidget()
        pages: dict[QWidget | None, str] = {
            self._home_page: "home",
            self.gate: "gate",
            self.report: "report",
            self.form: "form",
            self._queue_page: "queue",
            self._code_page: "code",
            self._connected_page: "connected",
        }
        return pages.get(current, "")

    @Slot()
    def show_home(self) -> None:
        """The start page (when nothing is under way)."""
        self.request_button.setEnabled(True)
        self.code_button.setEnabled(True)
        self._pages.setCurrentWidget(self._home_page)
        self.request_button.setFocus()

    def show_and_raise(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    @Slot()
    def show_chat(self) -> None:
        self.show_and_raise()
        if self._connected is not None:
            self._pages.setCurrentWidget(self._connected_page)
            self.chat.entry.setFocus()

    def _close_consent_dialog(self) -> None:
        dialog, self.consent_dialog = self.consent_dialog, None
        if dialog is not None:
            dialog.answered.disconnect(self.on_consent_answered)
            dialog.reject()
            dialog.deleteLater()
            self._bridge.set_dialog_open("consent", False)

    # --- user intents ---

    @Slot()
    def on_request_clicked(self) -> None:
        self._open_gate("form")

    @Slot()
    def on_code_clicked(self) -> None:
        self._open_gate("code")

    def _open_gate(self, then: str) -> None:
        self._gate_next = then
        self.status_label.clear()
        self._pages.setCurrentWidget(self.gate)
        self.gate.reset()

    @Slot()
    def on_gate_confirmed(self) -> None:
        if self._gate_next == "code":
            self.code_label.clear()
            self.code_waiting_label.setText("Getting a code…")
            self.cancel_button.setEnabled(True)
            self._pages.setCurrentWidget(self._code_page)
            self.status_label.setText("Asking the relay for a code…")
            self._bridge.request_code()
        else:
            self._pages.setCurrentWidget(self.form)
            self.form.start()

    @Slot()
    def on_gate_refused(self) -> None:
        self.status_label.setText("Nothing was sent.")
        self._pages.setCurrentWidget(self.report)
        self.report.done_button.setFocus()

    @Slot(object)
    def on_form_submitted(self, draft: object) -> None:
        if not isinstance(draft, RequestDraft):
            return
        request = draft.to_help_request()
        self.sent_screenshot = self.form.screenshot
        self.queue_label.setText("Sending your request…")
        self.request_id_label.clear()
        if self._in_tray:
            self.queue_hint.setText(
                "A technician will ask to connect: you will see who it is and can say yes "
                "or no. You can close this window; Deskhand stays in the tray."
            )
        else:
            self.queue_hint.setText(
                "A technician will ask to connect: you will see who it is and can say yes "
                "or no. Keep this window open."
            )
        self.cancel_request_button.setEnabled(True)
        self._pages.setCurrentWidget(self._queue_page)
        self.status_label.setText("Sending your request…")
        self._bridge.post_request(request, draft.screenshot)

    @Slot()
    def on_screenshot_wanted(self) -> None:
        # Step aside so that the screenshot shows the problem, not this window.
        self.hide()
        QTimer.singleShot(self._screenshot_delay_ms, self._take_screenshot)

    def _take_screenshot(self) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        pixmap = screen.grabWindow(0) if screen is not None else QPixmap()
        self.show_and_raise()
        if pixmap.isNull():
            self.status_label.setText("A screenshot could not be taken on this display.")
            return
        self.form.set_screenshot(pixmap)
        self.status_label.setText("Screenshot taken. Click Preview to see it.")

    @Slot()
    def on_preview_wanted(self) -> None:
        if self.form.screenshot is not None:
            self._show_screenshot(self.form.screenshot)

    @Slot()
    def on_show_screenshot_clicked(self) -> None:
        if self.sent_screenshot is not None:
            self._show_screenshot(self.sent_screenshot)

    def _show_screenshot(self, pixmap: QPixmap) -> None:
        if self.screenshot_dialog is not None:
            self.screenshot_dialog.close()
        dialog = ScreenshotDialog(pixmap, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._on_screenshot_dialog_finished)
        self.screenshot_dialog = dialog
        dialog.show()

    def _on_screenshot_dialog_finished(self, _result: int) -> None:
        self.screenshot_dialog = None

    @Slot()
    def on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_request_button.setEnabled(False)
        self.status_label.setText("Cancelling…")
        self._bridge.stop()

    @Slot()
    def on_stop_clicked(self) -> None:
        self.stop_button.setEnabled(False)
        self.status_label.setText("Ending the session…")
        self._bridge.stop()

    @Slot()
    def on_escape(self) -> None:
        if self._pages.currentWidget() in (self.gate, self.report, self.form):
            self.show_home()

    @Slot(object)
    def on_consent_answered(self, granted: tuple[str, ...] | None) -> None:
        self.consent_dialog = None
        self._bridge.set_dialog_open("consent", False)
        self.status_label.setText("Connecting…" if granted else "Declining…")
        self._bridge.answer_consent(granted)

    # --- bridge events ---

    @Slot(float)
    def on_bridge_code_expires(self, deadline: float) -> None:
        self._code_deadline = deadline

    def _render_code_wait(self, left: int) -> None:
        if self._pages.currentWidget() is not self._code_page:
            self._code_countdown.stop()
            return
        minutes, seconds = divmod(left, 60)
        waiting = "Waiting for your technician to enter it… It works once"
        waiting += f", for {minutes}:{seconds:02d} more." if self._code_deadline else "."
        warning = self._code_warning_shown
        self.code_waiting_label.setText(f"{warning}\n\n{waiting}" if warning else waiting)

    @Slot(str)
    def on_bridge_code_warning(self, text: str) -> None:
        self._code_warning = text

    @Slot(str)
    def on_bridge_code_ready(self, code: str) -> None:
        if not _CODE.match(code):
            return
        self.code_label.setText(code)
        self._code_warning_shown, self._code_warning = self._code_warning, ""
        self.status_label.setText("Waiting for your technician.")
        self._pages.setCurrentWidget(self._code_page)
        if self._code_deadline:
            self._code_countdown.start(self._code_deadline)
        else:
            self._render_code_wait(0)
        self.cancel_button.setFocus()

    @Slot(object)
    def on_bridge_queue_changed(self, status: object) -> None:
        if not isinstance(status, QueueStatus):
            return
        if status.reconnecting or status.position is None:
            self.queue_label.setText("Reconnecting to the relay…")
            self.status_label.setText("The connection dropped. Your request is kept.")
        else:
            self.queue_label.setText(
                "You are next in the queue."
                if status.position == 1
                else f"You are number {status.position} in the queue."
            )
            self.status_label.setText("Waiting for a technician.")
        self.request_id_label.setText(f"Request number: {status.request_id[:8]}")

    @Slot(object)
    def on_bridge_consent_requested(self, request: object) -> None:
        if not isinstance(request, ConsentRequest):
            return
        self._close_consent_dialog()
        tech = request.technician
        self.status_label.setText(f"{tech.name} ({tech.org}) asks to connect.")
        dialog = ConsentDialog(
            name=tech.name,
            org=tech.org,
            fingerprint=tech.fingerprint,
            sas=request.sas,
            requested=request.requested,
            allow_delay=self._allow_delay,
            parent=self,
        )
        dialog.answered.connect(self.on_consent_answered)
        self.consent_dialog = dialog
        self._bridge.set_dialog_open("consent", True)
        if not self.isVisible():
            self.show_and_raise()
        dialog.open()
        dialog.raise_()

    @Slot()
    def on_bridge_consent_withdrawn(self) -> None:
        self._close_consent_dialog()

    @Slot(str)
    def on_bridge_verification_failed(self, reason: str) -> None:
        self._close_consent_dialog()
        if self.failure_dialog is not None:
            self.failure_dialog.close()
        dialog = VerificationFailedDialog(reason, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._on_failure_dialog_finished)
        self.failure_dialog = dialog
        self._bridge.set_dialog_open("verification", True)
        if not self.isVisible():
            self.show_and_raise()
        dialog.open()

    def _on_failure_dialog_finished(self, _result: int) -> None:
        self.failure_dialog = None
        self._bridge.set_dialog_open("verification", False)

    @Slot(object)
    def on_bridge_connected(self, session: object) -> None:
        if not isinstance(session, Connected):
            return
        self._connected = session
        self.connected_label.setText(f"{session.technician} is connected.")
        self.rights_label.setText(f"They can: {capability_list(session.granted)}.")
        self.sas_label.setText(f"Verification number: {session.sas}")
        self.chat.clear()
        self.chat.entry.setEnabled(True)
        self.stop_button.setEnabled(True)
        self.show_screenshot_button.setVisible(self.sent_screenshot is not None)
        if self.sent_screenshot is not None:
            self.chat.add_line(
                "Deskhand",
                "The technician was told that you have a screenshot to show. Click "
                "“Show my screenshot” when they ask for it.",
            )
        self._pages.setCurrentWidget(self._connected_page)
        self.status_label.setText("Connected. Click Stop at any time to end the session.")
        self.chat.entry.setFocus()

    @Slot(object)
    def on_bridge_presence_changed(self, presence: object) -> None:
        if not isinstance(presence, Presence):
            return
        self._presence = presence
        self.setWindowIcon(icon_for(presence.state))
        if self._connected is not None and presence.state in (
            PresenceState.VIEWED,
            PresenceState.CONTROLLED,
        ):
            paused = " Paused: nothing is shared until you resume." if presence.paused else ""
            self.rights_label.setText(f"They can: {capability_list(presence.granted)}.{paused}")

    @Slot(str, bool)
    def on_bridge_ended(self, reason: str, had_session: bool) -> None:
        self._close_consent_dialog()
        self._connected = None
        if had_session:
            self.sent_screenshot = None  # it belonged to that request
        self.status_label.setText(reason)
        self.show_home()

    @Slot(str)
    def on_bridge_failed(self, reason: str) -> None:
        self.status_label.setText(reason)

    @Slot(str)
    def on_bridge_notice(self, text: str) -> None:
        self.status_label.setText(text)

    # --- Qt overrides ---

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._hide_on_close and event.spontaneous():
            # The user closed the window: the tray keeps the app (and any
            # session) going; Stop is in its menu. Closes that are not
            # spontaneous (Quit, Ctrl+Q, the app quitting on SIGTERM) go
            # through: Qt cancels quitting if a window refuses to close.
            event.ignore()
            self.hide()
            return
        self._close_consent_dialog()
        super().closeEvent(event)
        self.closed.emit()
