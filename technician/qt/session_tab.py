"""One session in its tab: the screen, control, chat, diagnostics, notes, and the report.

The tab follows :class:`~technician.core.console.TabState`; the window routes
the bridge's per-session signals here (``on_*`` slots) and the tab calls the
bridge's slots with its key. Input capture is installed on the viewer only
while the user grants "control" and the technician has it switched on
(docs/control.md); it is removed, releasing everything held, as soon as
either changes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from common.qt.countdown import Countdown
from common.qt.widgets import ChatPanel, enlarge_font, plain_label
from technician.core.console import (
    ChatLine,
    ReportBook,
    SessionFacts,
    SessionOrigin,
    TabState,
    describe_end,
)
from technician.core.input import Rect, ViewTransform, region_for
from technician.core.report import SessionReport
from technician.qt.bridge import OpenSession, SessionEnd, TechnicianBridge
from technician.qt.clipboard_strip import ClipboardStrip
from technician.qt.diagnostics_panel import DiagnosticsPanel
from technician.qt.end_banner import EndBanner
from technician.qt.end_session_dialog import EndSessionDialog
from technician.qt.input_capture import InputCapture, special_keys_menu
from technician.qt.viewer import ScreenPanel


__all__ = ["SessionTab"]

_ERROR_STYLE = "color: #b00020;"
_TITLE_MAX = 32
_BANNER_STYLE = "QFrame#banner { background: #fde7e9; border: 1px solid #b00020; }"
_ENDED_STYLE = "QFrame#banner { background: #eef1f5; border: 1px solid #8a94a6; }"


class SessionTab(QWidget):
    """A session with one user.

    Signals:
        title_changed: the tab's title (str).
        back_to_queue: the technician wants the queue tab.
        report_filed: the report is saved; where (str).
        finished: the report is filed (or the tab is abandoned): close the tab.

    Attributes:
        key: the bridge's session key.
        state: the current TabState.
        title_label, sas_label, state_label: who, the verification number, the state.
        granted_label, control_button, special_keys_button, refresh_button,
            end_button: the session's controls.
        control_label: the user side's control state, in words.
        screen_panel: the ScreenPanel; chat, diagnostics, notes: the side panels.
        diagnostic_rows: what the diagnostics panel shows, as (name, value) rows.
        banner, banner_label, reconnect_edit, reconnect_button,
            back_button, file_button: what a lost or failed connection offers.
        capture: the InputCapture while control is on, else None.
        end_dialog: the end-session form while it is open.
    """

    title_changed = Signal(str)
    back_to_queue = Signal()
    report_filed = Signal(str)
    finished = Signal()

    def __init__(
        self,
        bridge: TechnicianBridge,
        key: int,
        origin: SessionOrigin,
        *,
        book: ReportBook,
        technician: tuple[str, str],
        requested: tuple[str, ...] = ("view",),
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.key = key
        self.origin = origin
        self._book = book
        self._technician = technician
        self._requested = requested
        self._clock = clock
        self.state = TabState.CONNECTING
        self.session: OpenSession | None = None
        self.granted: tuple[str, ...] = ()
        self._granted_ever: list[str] = []
        self._chat: list[ChatLine] = []
        self._sas = ""
        self._device = ""
        self._started_at = 0.0
        self._ended_at = 0.0
        self._end_text = ""
        self._control_wanted = "control" in requested
        self.capture: InputCapture | None = None
        self.end_dialog: EndSessionDialog | None = None
        self._build()
        self._show_connecting()

    # --- building ---

    def _build(self) -> None:
        self.title_label = plain_label(wrap=False)
        self.title_label.setObjectName("session-title")
        enlarge_font(self.title_label, 1.25, bold=True)
        self.sas_label = plain_label(wrap=False)
        self.sas_label.setObjectName("sas")
        enlarge_font(self.sas_label, 1.5, bold=True)
        self.sas_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label = plain_label()
        self.state_label.setObjectName("session-state")
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.sas_label)

        self.banner = EndBanner()
        self.banner_label = self.banner.label
        self.reconnect_edit = self.banner.reconnect_edit
        self.reconnect_edit.returnPressed.connect(self.on_reconnect_clicked)
        self.reconnect_button = self.banner.reconnect_button
        self.reconnect_button.clicked.connect(self.on_reconnect_clicked)
        self.back_button = self.banner.back_button
        self.back_button.clicked.connect(self.back_to_queue)
        self.file_button = self.banner.file_button
        self.file_button.clicked.connect(self.on_end_clicked)
        self.close_button = self.banner.close_button
        self.close_button.clicked.connect(self.finished)

        self.granted_label = plain_label(wrap=False)
        self.granted_label.setObjectName("granted")
        self.control_button = QPushButton()
        self.control_button.setObjectName("control")
        self.control_button.setCheckable(True)
        self.control_button.setToolTip(
            "While control is on, the mouse and keys over the picture go to the user's"
            " computer. Move the pointer off the picture to use the console's shortcuts."
        )
        self.control_button.clicked.connect(self.on_control_clicked)
        self.special_keys_button = QToolButton()
        self.special_keys_button.setText("Special &keys")
        self.special_keys_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.special_keys_button.setToolTip("Ctrl+Alt+Del, Alt+Tab… (needs control)")
        self.refresh_button = QPushButton("Refresh (F5)")
        self.refresh_button.setToolTip("Ask for a full picture of the user's screen")
        self.refresh_button.clicked.connect(self.refresh_screen)
        self.end_button = QPushButton("&End session…")
        self.end_button.setObjectName("end")
        self.end_button.clicked.connect(self.on_end_clicked)
        self.cancel_button = QPushButton("C&ancel")
        self.cancel_button.clicked.connect(self.on_cancel_clicked)
        tools = QHBoxLayout()
        tools.addWidget(self.granted_label, 1)
        tools.addWidget(self.control_button)
        tools.addWidget(self.special_keys_button)
        tools.addWidget(self.refresh_button)
        tools.addWidget(self.end_button)
        tools.addWidget(self.cancel_button)
        self.control_label = plain_label()
        self.control_label.setObjectName("control-state")
        self.clipboard = ClipboardStrip(self._bridge, self.key, self.isVisible, self)
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.control_label, 1)
        clip_row.addWidget(self.clipboard)
        self._reconnect = Countdown(
            self,
            lambda left: self.state_label.setText(
                f"Connection lost. Reconnecting… (the session waits {left} s more)"
            ),
        )

        self.screen_panel = ScreenPanel()
        self.chat = ChatPanel("User")
        self.chat.message_entered.connect(self.on_chat_entered)
        self.diagnostics = DiagnosticsPanel()
        self.diagnostic_rows: list[tuple[str, str]] = []
        self.notes = QPlainTextEdit()
        self.notes.setObjectName("notes")
        self.notes.setPlaceholderText(
            "Your notes: they go into the end-session form and the report."
        )
        self.side = QTabWidget()
        self.side.addTab(self.chat, "C&hat")
        self.side.addTab(self.diagnostics, "&Diagnostics")
        self.side.addTab(self.notes, "No&tes")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.screen_panel)
        split.addWidget(self.side)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([900, 300])

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.state_label)
        layout.addWidget(self.banner)
        layout.addLayout(tools)
        layout.addLayout(clip_row)
        layout.addWidget(split, 1)
        self._fill_diagnostics()

    # --- rendering ---

    def title(self) -> str:
        """A short title for the tab (names come from the user: cut long ones)."""
        name = self.origin.title
        if self._device and self.origin.kind == "code":
            name = self._device
        name = " ".join(name.split())
        return name if len(name) <= _TITLE_MAX else name[: _TITLE_MAX - 1] + "…"

    def _set_title(self) -> None:
        who = self.title()
        if self._device and self.origin.kind == "queue":
            who = f"{who} — {self._device}"
        self.title_label.setText(who)
        self.title_changed.emit(self.title())

    def _fill_diagnostics(self) -> None:
        self.diagnostic_rows = self.diagnostics.fill(self.origin, self._device)

    def _show_banner(self, text: str, *, lost: bool) -> None:
        self.banner.setStyleSheet(_BANNER_STYLE if lost else _ENDED_STYLE)
        self.banner_label.setText(text)
        self.banner.show()
        self.state_label.setText("")  # the banner says it

    def _show_connecting(self) -> None:
        self.state = TabState.CONNECTING
        self.banner.hide()
        what = "the user's request" if self.origin.kind == "queue" else "the code"
        self.state_label.setText(f"Connecting with {what}… waiting for the user to allow it.")
        self.sas_label.setText("")
        self._set_title()
        self.cancel_button.show()
        self.end_button.hide()
        self._set_session_controls(False)

    def _set_session_controls(self, live: bool) -> None:
        self.control_button.setEnabled(live)
        self.refresh_button.setEnabled(live)
        self.end_button.setEnabled(live)
        self.chat.entry.setEnabled(live)
        self._render_control()

    def _render_control(self) -> None:
        granted = "control" in self.granted
        live = self.state is TabState.LIVE
        self.control_button.setChecked(self.capture is not None)
        if not live:
            self.control_button.setText("Control")
        elif self.capture is not None:
            self.control_button.setText("Control on — click to stop")
        elif granted:
            self.control_button.setText("Take control")
        elif self._control_wanted:
            self.control_button.setText("Asked for control… ask again")
        else:
            self.control_button.setText("Ask for control")
        self.special_keys_button.setEnabled(self.capture is not None)
        if live:
            allowed = ", ".join(self.granted) if self.granted else "nothing right now (paused?)"
            self.granted_label.setText(f"The user allows: {allowed}")

    # --- control ---

    def _update_capture(self) -> None:
        want = self.state is TabState.LIVE and "control" in self.granted and self._control_wanted
        if want and self.capture is None:
            self._attach_capture()
        elif not want and self.capture is not None:
            self._detach_capture()
        self._render_control()

    def _attach_capture(self) -> None:
        key, bridge = self.key, self._bridge
        capture = InputCapture(
            self.screen_panel.view.viewport(), lambda msg: bridge.send_input(key, msg)
        )
        capture.set_transform_source(self._transform)
        self.capture = capture
        self.special_keys_button.setMenu(special_keys_menu(capture, self))
        self.screen_panel.view.viewport().setFocus(Qt.FocusReason.OtherFocusReason)

    def _detach_capture(self) -> None:
        capture, self.capture = self.capture, None
        if capture is not None:
            capture.detach()
            capture.deleteLater()
        menu = self.special_keys_button.menu()
        self.special_keys_button.setMenu(None)  # type: ignore[arg-type]
        if menu is not None:
            menu.deleteLater()

    def _transform(self) -> ViewTransform | None:
        view, session = self.screen_panel.view, self.session
        if view.canvas is None or session is None:
            return None
        monitors = session.receiver.monitors
        if not monitors.monitors:
            return None
        origin = view.origin()
        return ViewTransform(
            region_for(monitors.monitors, monitors.selected),
            view.scale(),
            origin.x(),
            origin.y(),
            tuple(Rect(*mon) for mon in monitors.monitors),
        )

    # --- the technician's intents ---

    @Slot()
    def on_control_clicked(self) -> None:
        if self.state is not TabState.LIVE:
            return
        if "control" not in self.granted:
            self._control_wanted = True
            self._bridge.request_capabilities(self.key, ("control",))
            self.control_label.setText("Asked the user for control; they decide on their screen.")
        else:
            self._control_wanted = self.capture is None
        self._update_capture()

    @Slot(str)
    def on_chat_entered(self, text: str) -> None:
        self._bridge.send_chat(self.key, text)

    @Slot()
    def refresh_screen(self) -> None:
        if self.state is TabState.LIVE:
            self._bridge.request_keyframe(self.key)

    @Slot()
    def on_cancel_clicked(self) -> None:
        self.state_label.setText("Abandoning…")
        self._bridge.end_session(self.key)

    @Slot()
    def on_reconnect_clicked(self) -> None:
        code = self.reconnect_edit.text().strip()
        if not code:
            self.banner_label.setText(
                "The old code cannot be used again. Ask the user for a new code and type it here."
            )
            self.reconnect_edit.setFocus()
            return
        self.reconnect_edit.clear()
        self.connect_again(code)

    def connect_again(self, code: str) -> None:
        """Pair again in this tab with a new code (chat and notes are kept)."""
        self._show_connecting()
        self._bridge.connect_code(self.key, code, self._requested)

    @Slot()
    def on_end_clicked(self) -> None:
        """Open the end-session form (notes prefilled); filing it ends the session."""
        if self.end_dialog is not None:
            self.end_dialog.raise_()
            return
        dialog = EndSessionDialog(
            notes=self.notes.toPlainText(),
            problem=self.origin.description,
            session_over=self.state not in (TabState.LIVE, TabState.CONNECTING),
            note=(
                f"The report is saved on this computer, in {self._book.path}"
                " (the relay keeps no support records yet)."
            ),
            parent=self,
        )
        if self.origin.category:
            dialog.category.setCurrentText(self.origin.category)
        dialog.setWindowTitle(f"End session — {self.title()}")
        dialog.accepted.connect(self.on_end_dialog_accepted)
        dialog.finished.connect(self.on_end_dialog_finished)
        self.end_dialog = dialog
        dialog.open()

    @Slot()
    def on_end_dialog_accepted(self) -> None:
        dialog = self.end_dialog
        if dialog is None or dialog.report is None:
            return
        self.file_report(dialog.report)

    @Slot(int)
    def on_end_dialog_finished(self, _result: int) -> None:
        dialog, self.end_dialog = self.end_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def file_report(self, report: SessionReport) -> bool:
        """Save the report, end the session if open, and ask to close the tab."""
        facts = self.facts()
        if self.state in (TabState.LIVE, TabState.CONNECTING):
            # Filing ends the session: record it as ended now, by the technician.
            facts = dataclasses.replace(facts, ended_at=self._clock(), end="You ended the session.")
        try:
            self._book.append(report, facts)
        except (OSError, ValueError) as exc:
            self.state_label.setText(f"The report was not saved: {exc}")
            self.state_label.setStyleSheet(_ERROR_STYLE)
            return False
        if self.state in (TabState.LIVE, TabState.CONNECTING):
            self._bridge.end_session(self.key)
        self.report_filed.emit(str(self._book.path))
        self.finished.emit()
        return True

    def facts(self) -> SessionFacts:
        account, name = self._technician
        return SessionFacts(
            technician=account,
            technician_name=name,
            origin=self.origin,
            device=self._device,
            sas=self._sas,
            started_at=self._started_at,
            ended_at=self._ended_at,
            granted=tuple(self._granted_ever),
            end=self._end_text,
            chat=tuple(self._chat),
        )

    def needs_confirmation(self) -> bool:
        """Closing loses something: a live session or an unfiled report."""
        return self.state in (TabState.CONNECTING, TabState.LIVE) or (
            self.state in (TabState.ENDED, TabState.LOST) and self._started_at > 0
        )

    def abandon(self) -> None:
        """Close without a report: end whatever is under way."""
        if self.state in (TabState.CONNECTING, TabState.LIVE):
            self._bridge.end_session(self.key)
        self._detach_capture()
        self.screen_panel.detach()

    # --- from the bridge (routed by the window) ---

    @Slot(str)
    def on_sas(self, sas: str) -> None:
        self._sas = sas
        self.sas_label.setText(f"Verification number: {sas}")
        self.state_label.setText(
            f"Read the verification number {sas} to the user: it must match theirs. "
            "Waiting for the user to allow the session…"
        )

    @Slot(object)
    def on_opened(self, session: OpenSession) -> None:
        self.session = session
        self.state = TabState.LIVE
        self._sas = session.sas
        self._device = session.device
        if not self._started_at:
            self._started_at = self._clock()
        self._ended_at = 0.0
        self._end_text = ""
        self.state_label.setStyleSheet("")
        self.state_label.setText(
            "Connected. Compare the verification number with the user if you have not yet."
        )
        self.sas_label.setText(f"Verification number: {session.sas}")
        self.banner.hide()
        self.cancel_button.hide()
        self.end_button.show()
        self._set_title()
        self._fill_diagnostics()
        self.screen_panel.attach(session.receiver)
        self._bridge.start_screen(self.key)
        self.on_grants(session.granted)
        self._set_session_controls(True)
        self.chat.entry.setFocus()

    @Slot(str)
    def on_failed(self, reason: str) -> None:
        self.state = TabState.FAILED
        self.state_label.setText("Not connected.")
        self.cancel_button.hide()
        self.end_button.hide()
        self._set_session_controls(False)
        self._offer(reason, lost=True)

    @Slot(object)
    def on_grants(self, granted: tuple[str, ...]) -> None:
        self.granted = tuple(granted)
        for capability in self.granted:
            if capability not in self._granted_ever:
                self._granted_ever.append(capability)
        if "control" in self.granted and self._control_wanted:
            self.control_label.setText("The user allowed control.")
        self._update_capture()
        self._render_clipboard()

    @Slot(str)
    def on_control_status(self, text: str) -> None:
        self.control_label.setText(text)

    @Slot(str)
    def on_request_declined(self, text: str) -> None:
        self.control_label.setText(text)

    # --- clipboard ---

    def _render_clipboard(self) -> None:
        self.clipboard.set_state(
            live=self.state is TabState.LIVE, allowed="clipboard" in self.granted
        )

    @Slot(str)
    def on_clipboard_write(self, text: str) -> None:
        self.clipboard.on_write(text)

    @Slot(str)
    def on_clipboard_moved(self, text: str) -> None:
        self.clipboard.on_moved(text)

    # --- resume ---

    @Slot(float)
    def on_reconnecting(self, deadline: float) -> None:
        self._reconnect.start(deadline)

    @Slot()
    def on_reconnected(self) -> None:
        self._reconnect.stop()
        self.state_label.setText("Reconnected. The session goes on with the same permissions.")

    @Slot(str)
    def on_chat_received(self, text: str) -> None:
        self._chat.append(ChatLine("user", text, self._clock()))
        self.chat.on_bridge_chat_received(text)

    @Slot(str)
    def on_chat_sent(self, text: str) -> None:
        self._chat.append(ChatLine("technician", text, self._clock()))
        self.chat.on_bridge_chat_sent(text)

    @Slot(object)
    def on_ended(self, end: SessionEnd) -> None:
        view = describe_end(end.reason, clean=end.clean, by_peer=end.by_peer)
        self.state = view.state
        self._ended_at = self._clock()
        self._end_text = view.text
        self.granted = ()
        self._detach_capture()
        self.screen_panel.detach()
        self.end_button.hide()
        self.cancel_button.hide()
        self._set_session_controls(False)
        self.granted_label.setText("")
        self.control_label.setText("")
        self._offer(view.text, lost=view.state is TabState.LOST)

    def _offer(self, text: str, *, lost: bool) -> None:
        """What the technician can do next, by origin and state."""
        code = self.origin.kind == "code"
        had_session = self._started_at > 0
        if lost and code:
            text += (
                "\nTo reconnect, the user needs a new code: ask them to request help again"
                " and read you the new code."
            )
        elif lost:
            text += "\nWhen the user asks for help again, their request appears in the queue."
        self._show_banner(text, lost=lost)
        self.reconnect_edit.setVisible(code and lost)
        self.reconnect_button.setVisible(code and lost)
        self.back_button.setVisible(not code)
        self.file_button.setVisible(had_session)
        self.close_button.setVisible(not had_session)
        if code and lost:
            self.reconnect_edit.setFocus()
