"""The technician console's main window: the queue tab, then one tab per session.

It renders what the bridge reports and forwards intents to it. Per-session
signals carry a key; the window hands each to the tab that owns the key.

Shortcuts: Ctrl+Enter claims the selected request, Ctrl+L goes to the code
field, Ctrl+W closes the current session tab (after confirming when that
ends a session or drops an unfiled report), Ctrl+1 shows the queue,
Ctrl+Page Up/Down move between tabs, F5 refreshes (the queue, or the
screen), F11 toggles full screen, Ctrl+Q quits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabBar, QTabWidget, QWidget

from common.qt.widgets import plain_label
from technician.core.console import ReportBook, SessionOrigin
from technician.core.queue import QueueItem
from technician.core.session import SignedInAccount
from technician.qt.bridge import OpenSession, QueueClosed, SessionEnd, TechnicianBridge
from technician.qt.queue_page import QueuePage
from technician.qt.session_tab import SessionTab


__all__ = ["TechnicianWindow"]


class TechnicianWindow(QMainWindow):
    """The console.

    Attributes:
        tabs: the queue page first, then the session tabs.
        queue_page: the QueuePage.
        sessions: the open session tabs by key.
        status_label: the last message, in words.
        account_status: who is signed in.
        confirm_box: the "close this tab?" question while it is open.
    """

    def __init__(
        self,
        bridge: TechnicianBridge,
        book: ReportBook,
        *,
        technician_name: str = "",
        certificate_id: str = "",
        relay_name: str = "the relay",
        account: str = "",
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._book = book
        self._technician_name = technician_name
        self._certificate_id = certificate_id
        self._account: SignedInAccount | None = None
        self._clock = clock
        self.sessions: dict[int, SessionTab] = {}
        self.confirm_box: QMessageBox | None = None
        self._quitting = False
        title = "Deskhand technician"
        self.setWindowTitle(f"{title} — {technician_name}" if technician_name else title)

        self.queue_page = QueuePage(relay_name, account=account, clock=clock)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.addTab(self.queue_page, "&Queue")
        for side in (QTabBar.ButtonPosition.LeftSide, QTabBar.ButtonPosition.RightSide):
            self.tabs.tabBar().setTabButton(0, side, None)
        self.tabs.tabCloseRequested.connect(self.on_tab_close_requested)
        self.tabs.currentChanged.connect(self.on_tab_current_changed)
        self.setCentralWidget(self.tabs)

        self.status_label = plain_label()
        self.status_label.setObjectName("status")
        self.account_status = QLabel("Not signed in")
        self.account_status.setTextFormat(Qt.TextFormat.PlainText)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.account_status)
        self.status_label.setText(
            f"Records are saved on this computer in {book.path}"
            " (the relay keeps no support records yet)."
        )
        self._build_actions()

        page = self.queue_page
        page.sign_in_requested.connect(self.on_page_sign_in_requested)
        page.sign_out_requested.connect(bridge.sign_out)
        page.retry_requested.connect(self.refresh)
        page.claim_requested.connect(self.on_page_claim_requested)
        page.code_entered.connect(self.on_page_code_entered)

        bridge.signed_in.connect(self.on_bridge_signed_in)
        bridge.sign_in_failed.connect(self.on_bridge_sign_in_failed)
        bridge.signed_out.connect(self.on_bridge_signed_out)
        bridge.queue_changed.connect(self.on_bridge_queue_changed)
        bridge.queue_closed.connect(self.on_bridge_queue_closed)
        bridge.session_sas.connect(self.on_bridge_session_sas)
        bridge.session_opened.connect(self.on_bridge_session_opened)
        bridge.session_failed.connect(self.on_bridge_session_failed)
        bridge.grants_changed.connect(self.on_bridge_grants_changed)
        bridge.control_status.connect(self.on_bridge_control_status)
        bridge.chat_received.connect(self.on_bridge_chat_received)
        bridge.chat_sent.connect(self.on_bridge_chat_sent)
        bridge.session_ended.connect(self.on_bridge_session_ended)
        bridge.clipboard_write.connect(self.on_bridge_clipboard_write)
        bridge.clipboard_moved.connect(self.on_bridge_clipboard_moved)
        bridge.request_declined.connect(self.on_bridge_request_declined)
        bridge.reconnecting.connect(self.on_bridge_reconnecting)
        bridge.reconnected.connect(self.on_bridge_reconnected)
        bridge.failed.connect(self.on_bridge_failed)

        if account:
            page.password_edit.setFocus()
        else:
            page.account_edit.setFocus()

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&Console")

        def action(text: str, slot: Callable[[], object], *keys: QKeySequence) -> QAction:
            act = QAction(text, self)
            act.setShortcuts(list(keys))
            act.triggered.connect(slot)
            self.addAction(act)
            menu.addAction(act)
            return act

        key = QKeySequence
        self.claim_action = action(
            "&Claim the selected request",
            self.queue_page.on_claim_clicked,
            key("Ctrl+Return"),
            key("Ctrl+Enter"),
        )
        self.code_action = action("Connect by &code", self.focus_code, key("Ctrl+L"))
        self.queue_action = action("Show the &queue", self.show_queue, key("Ctrl+1"))
        self.close_action = action("Close this &tab…", self.close_current_tab, key("Ctrl+W"))
        self.refresh_action = action("&Refresh", self.refresh, key("F5"))
        self.fullscreen_action = action("&Full screen", self.toggle_full_screen, key("F11"))
        self.next_action = action("&Next tab", lambda: self._step_tab(1), key("Ctrl+PgDown"))
        self.previous_action = action("&Previous tab", lambda: self._step_tab(-1), key("Ctrl+PgUp"))
        menu.addSeparator()
        self.sign_out_action = action("Sign &out", self.queue_page.sign_out_requested.emit)
        self.quit_action = action("&Quit", self.request_quit, key(key.StandardKey.Quit))

    # --- helpers ---

    def session_tab(self, key: int) -> SessionTab | None:
        return self.sessions.get(key)

    def current_session(self) -> SessionTab | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, SessionTab) else None

    def sign_in(self, account: str, password: str) -> None:
        """Sign in as if typed (the command line's --password-stdin)."""
        self.queue_page.account_edit.setText(account)
        self.queue_page.password_edit.setText(password)
        self.queue_page.on_sign_in_clicked()

    def _open_tab(self, origin: SessionOrigin, requested: tuple[str, ...]) -> SessionTab:
        key = self._bridge.new_key()
        account = self._account.name if self._account is not None else ""
        tab = SessionTab(
            self._bridge,
            key,
            origin,
            book=self._book,
            technician=(account, self._technician_name),
            requested=requested,
            clock=self._clock,
        )
        self.sessions[key] = tab
        index = self.tabs.addTab(tab, tab.title().replace("&", "&&"))
        self.tabs.setCurrentIndex(index)
        tab.title_changed.connect(lambda title, t=tab: self._retitle(t, title))
        tab.back_to_queue.connect(self.show_queue)
        tab.report_filed.connect(
            lambda path, t=tab: self.status_label.setText(
                f"The report on {t.title()} is saved in {path}."
            )
        )
        tab.finished.connect(lambda t=tab: self._remove_tab(t))
        return tab

    def _retitle(self, tab: SessionTab, title: str) -> None:
        index = self.tabs.indexOf(tab)
        if index >= 0:
            self.tabs.setTabText(index, title.replace("&", "&&"))

    def _remove_tab(self, tab: SessionTab) -> None:
        if self.confirm_box is not None:
            self.confirm_box.close()
        self.sessions.pop(tab.key, None)
        index = self.tabs.indexOf(tab)
        if index >= 0:
            self.tabs.removeTab(index)
        tab.deleteLater()

    def _step_tab(self, step: int) -> None:
        count = self.tabs.count()
        if count:
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % count)

    # --- intents ---

    @Slot()
    def show_queue(self) -> None:
        self.tabs.setCurrentWidget(self.queue_page)

    @Slot()
    def focus_code(self) -> None:
        self.show_queue()
        self.queue_page.code_edit.setFocus()
        self.queue_page.code_edit.selectAll()

    @Slot()
    def refresh(self) -> None:
        tab = self.current_session()
        if tab is not None:
            tab.refresh_screen()
        elif self.queue_page.signed_in:
            self.queue_page.show_queue_status("Reconnecting to the queue…")
            self._bridge.watch_queue()

    @Slot()
    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    @Slot()
    def close_current_tab(self) -> None:
        tab = self.current_session()
        if tab is not None:
            self.request_close(tab)

    @Slot(int)
    def on_tab_current_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if isinstance(widget, SessionTab):
            self._retitle(widget, widget.title())  # drops the unread-message mark

    @Slot(int)
    def on_tab_close_requested(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if isinstance(widget, SessionTab):
            self.request_close(widget)

    def request_close(self, tab: SessionTab) -> None:
        """Close a session tab, asking first when that loses something."""
        if not tab.needs_confirmation():
            tab.abandon()
            self._remove_tab(tab)
            return
        if self.confirm_box is not None:
            self.confirm_box.close()
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Close this tab?")
        live = tab.state.value in ("connecting", "live")
        if live:
            box.setText(f"The session with {tab.title()} is still open.")
            box.setInformativeText("File a report to end it, or end it now without a report?")
        else:
            box.setText(f"The report for {tab.title()} is not filed.")
            box.setInformativeText("File it now, or close the tab without a report?")
        file_button = box.addButton("File report…", QMessageBox.ButtonRole.AcceptRole)
        drop_button = box.addButton(
            "End without report" if live else "Close without report",
            QMessageBox.ButtonRole.DestructiveRole,
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        if tab.state.value == "connecting":
            file_button.hide()

        def answered() -> None:
            clicked = box.clickedButton()
            self.confirm_box = None
            if clicked is file_button:
                tab.on_end_clicked()
            elif clicked is drop_button and tab.key in self.sessions:
                tab.abandon()
                self._remove_tab(tab)

        box.finished.connect(answered)
        self.confirm_box = box
        box.open()

    @Slot(str, str)
    def on_page_sign_in_requested(self, account: str, password: str) -> None:
        self.status_label.setText(f"Signing in as {account}…")
        self._bridge.sign_in(account, password)

    @Slot(object)
    def on_page_claim_requested(self, item: QueueItem) -> None:
        origin = SessionOrigin(
            "queue",
            request_id=item.request_id,
            name=item.name,
            description=item.description,
            category=item.category,
            system_summary=item.system_summary,
            waiting_since=item.waiting_since,
        )
        requested = self.queue_page.requested()
        tab = self._open_tab(origin, requested)
        self.status_label.setText(f"Claiming the request of {item.name or 'someone'}…")
        self._bridge.claim(tab.key, item.request_id, requested)

    @Slot(str)
    def on_page_code_entered(self, code: str) -> None:
        requested = self.queue_page.requested()
        tab = self._open_tab(SessionOrigin("code"), requested)
        self.status_label.setText("Connecting with the code…")
        self._bridge.connect_code(tab.key, code, requested)

    # --- bridge events: the account and the queue ---

    @Slot(object)
    def on_bridge_signed_in(self, account: SignedInAccount) -> None:
        self._account = account
        who = f"{account.display_name} ({account.role})"
        self.queue_page.show_signed_in(who)
        self.account_status.setText(f"Signed in as {account.display_name}")
        if self._certificate_id and self._certificate_id != account.name:
            self.status_label.setText(
                f"Signed in as {account.name}, but your certificate was issued to"
                f" {self._certificate_id!r}: disabling {account.name!r} would not revoke it."
                " Ask for a certificate issued to your account."
            )
        else:
            self.status_label.setText(f"Signed in as {account.name}.")

    @Slot(str)
    def on_bridge_sign_in_failed(self, reason: str) -> None:
        self.queue_page.show_signed_out(f"Not signed in: {reason}", error=True)
        self.queue_page.password_edit.setFocus()
        self.status_label.setText("Signing in failed.")

    @Slot(str)
    def on_bridge_signed_out(self, reason: str) -> None:
        self._account = None
        self.queue_page.show_signed_out(reason)
        self.account_status.setText("Not signed in")
        self.status_label.setText(reason)

    @Slot(object)
    def on_bridge_queue_changed(self, items: tuple[QueueItem, ...]) -> None:
        self.queue_page.show_queue(items)

    @Slot(object)
    def on_bridge_queue_closed(self, closed: QueueClosed) -> None:
        if closed.sign_in_again:
            self._account = None
            self.account_status.setText("Not signed in")
            self.queue_page.show_signed_out(f"Signed out: {closed.reason}", error=True)
            self.status_label.setText("Sign in again to see the queue.")
        else:
            self.queue_page.show_queue_closed(closed.reason)

    # --- bridge events: sessions ---

    @Slot(int, str)
    def on_bridge_session_sas(self, key: int, sas: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_sas(sas)

    @Slot(int, object)
    def on_bridge_session_opened(self, key: int, session: OpenSession) -> None:
        tab = self.sessions.get(key)
        if tab is None:  # closed while connecting
            self._bridge.end_session(key)
            return
        tab.on_opened(session)
        self.status_label.setText(f"Connected to {tab.title()}.")

    @Slot(int, str)
    def on_bridge_session_failed(self, key: int, reason: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_failed(reason)
            self.status_label.setText(reason)

    @Slot(int, object)
    def on_bridge_grants_changed(self, key: int, granted: tuple[str, ...]) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_grants(granted)

    @Slot(int, str)
    def on_bridge_control_status(self, key: int, text: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_control_status(text)

    @Slot(int, str)
    def on_bridge_chat_received(self, key: int, text: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_chat_received(text)
            index = self.tabs.indexOf(tab)
            if index != self.tabs.currentIndex():
                self.tabs.setTabText(index, f"● {tab.title()}".replace("&", "&&"))

    @Slot(int, str)
    def on_bridge_chat_sent(self, key: int, text: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_chat_sent(text)

    @Slot(int, object)
    def on_bridge_session_ended(self, key: int, end: SessionEnd) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_ended(end)
            self.status_label.setText(f"{tab.title()}: {tab.state_label.text()}")

    @Slot(int, str)
    def on_bridge_clipboard_write(self, key: int, text: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_clipboard_write(text)

    @Slot(int, str)
    def on_bridge_clipboard_moved(self, key: int, text: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_clipboard_moved(text)

    @Slot(int, str)
    def on_bridge_request_declined(self, key: int, text: str) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_request_declined(text)

    @Slot(int, float)
    def on_bridge_reconnecting(self, key: int, deadline: float) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_reconnecting(deadline)

    @Slot(int)
    def on_bridge_reconnected(self, key: int) -> None:
        tab = self.sessions.get(key)
        if tab is not None:
            tab.on_reconnected()

    @Slot(str)
    def on_bridge_failed(self, reason: str) -> None:
        self.status_label.setText(reason)

    def live_sessions(self) -> list[SessionTab]:
        return [t for t in self.sessions.values() if t.state.value in ("connecting", "live")]

    @Slot()
    def request_quit(self) -> None:
        """Quit, asking first while sessions are open."""
        live = self.live_sessions()
        if not live:
            self.close()
            return
        if self.confirm_box is not None:
            self.confirm_box.close()
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Quit?")
        noun = "session is" if len(live) == 1 else "sessions are"
        box.setText(f"{len(live)} {noun} still open. Quitting ends them without reports.")
        quit_button = box.addButton("End and quit", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered() -> None:
            self.confirm_box = None
            if box.clickedButton() is quit_button:
                self._quitting = True
                self.close()

        box.finished.connect(answered)
        self.confirm_box = box
        box.open()

    # --- Qt overrides ---

    def closeEvent(self, event: QCloseEvent) -> None:
        # The window manager's close button asks like Quit does; a quit from
        # the application (SIGTERM, SIGINT) does not wait for an answer.
        if event.spontaneous() and self.live_sessions() and not self._quitting:
            event.ignore()
            self.request_quit()
            return
        for tab in list(self.sessions.values()):
            tab.abandon()
        super().closeEvent(event)
