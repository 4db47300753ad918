"""The console's first tab: sign in, the live queue of help requests, connect by code.

::

    signed out --Sign in--> signing in --ok--> queue (live) --watch ends--> queue (stale, Retry)
        ^                        |                  |
        +------- failure --------+---- Sign out ----+

Connecting by code works in every state (a relay may let anyone claim codes).
The page renders what the window hands it and emits the technician's intents;
it never talks to the core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from common.protocol.messages import CAPABILITIES
from common.qt.widgets import enlarge_font, plain_label
from technician.core.console import format_wait, summary_rows
from technician.core.queue import QueueItem


__all__ = ["QueuePage"]

COLUMNS = ("#", "Who", "What", "Category", "Waiting", "Status")
_WAIT_COLUMN = COLUMNS.index("Waiting")
_ID_ROLE = Qt.ItemDataRole.UserRole
_ERROR_STYLE = "color: #b00020;"


def _status(item: QueueItem) -> str:
    if item.claimed:
        if item.claimed_by_me:
            return "Claimed by you"
        return f"Claimed by {item.claimed_by}" if item.claimed_by else "Being helped"
    if not item.user_connected:
        return "User away"
    return "Waiting"


def _one_line(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class QueuePage(QWidget):
    """Sign-in form, queue and connect-by-code box.

    Signals:
        sign_in_requested: account and password (str, str).
        sign_out_requested: the technician signs out.
        retry_requested: watch the queue again.
        claim_requested: claim this request (a QueueItem).
        code_entered: connect with this code (str).

    Attributes:
        account_edit, password_edit, sign_in_button, sign_in_status: the sign-in form.
        account_label, sign_out_button, queue_status, queue_list, retry_button:
            the queue.
        details_title, details_text, summary_list, claim_button: the selected request.
        code_edit, connect_button, capability_boxes: connect by code (the boxes
            also say what a claim asks for).
    """

    sign_in_requested = Signal(str, str)
    sign_out_requested = Signal()
    retry_requested = Signal()
    claim_requested = Signal(object)
    code_entered = Signal(str)

    def __init__(
        self,
        relay_name: str,
        *,
        account: str = "",
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._items: dict[str, QueueItem] = {}
        self._signed_in = False

        self._stack = QStackedWidget(self)
        self._stack.addWidget(self._build_sign_in(relay_name, account))
        self._stack.addWidget(self._build_queue())
        layout = QVBoxLayout(self)
        layout.addWidget(self._stack, 1)
        layout.addWidget(self._build_code_box())
        layout.addLayout(self._build_ask_row())

        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self.on_ticker_timeout)
        self.show_signed_out("")

    # --- building ---

    def _build_sign_in(self, relay_name: str, account: str) -> QWidget:
        box = QGroupBox(f"Sign in to {relay_name}")
        intro = plain_label(
            "Sign in with your help-desk account to see the queue of help requests. "
            "Without signing in you can still connect with a code, if your relay allows it."
        )
        self.account_edit = QLineEdit(account)
        self.account_edit.setObjectName("account")
        self.account_edit.setPlaceholderText("account name")
        self.account_edit.setMaxLength(128)
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("password")
        self.password_edit.setPlaceholderText("password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setMaxLength(1024)
        self.password_edit.returnPressed.connect(self.on_sign_in_clicked)
        self.account_edit.returnPressed.connect(self.password_edit.setFocus)
        self.sign_in_button = QPushButton("&Sign in")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.clicked.connect(self.on_sign_in_clicked)
        self.sign_in_status = plain_label()
        self.sign_in_status.setObjectName("sign-in-status")
        account_label = plain_label("&Account:", wrap=False)
        account_label.setBuddy(self.account_edit)
        password_label = plain_label("&Password:", wrap=False)
        password_label.setBuddy(self.password_edit)
        row = QHBoxLayout()
        row.addWidget(account_label)
        row.addWidget(self.account_edit, 1)
        row.addWidget(password_label)
        row.addWidget(self.password_edit, 1)
        row.addWidget(self.sign_in_button)
        layout = QVBoxLayout(box)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.sign_in_status)
        layout.addStretch(1)
        return box

    def _build_queue(self) -> QWidget:
        page = QWidget()
        self.account_label = plain_label(wrap=False)
        self.account_label.setObjectName("account-label")
        self.sign_out_button = QPushButton("Sign &out")
        self.sign_out_button.clicked.connect(self.sign_out_requested)
        self.queue_status = plain_label()
        self.queue_status.setObjectName("queue-status")
        self.retry_button = QPushButton("&Retry (F5)")
        self.retry_button.clicked.connect(self.retry_requested)
        top = QHBoxLayout()
        top.addWidget(self.account_label, 1)
        top.addWidget(self.sign_out_button)
        status_row = QHBoxLayout()
        status_row.addWidget(self.queue_status, 1)
        status_row.addWidget(self.retry_button)

        self.queue_list = QTreeWidget()
        self.queue_list.setObjectName("queue")
        self.queue_list.setHeaderLabels(list(COLUMNS))
        self.queue_list.setRootIsDecorated(False)
        self.queue_list.setUniformRowHeights(True)
        self.queue_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.queue_list.setAllColumnsShowFocus(True)
        header = self.queue_list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("What"), QHeaderView.ResizeMode.Stretch)
        self.queue_list.currentItemChanged.connect(self.on_queue_current_changed)
        self.queue_list.itemActivated.connect(self.on_queue_item_activated)

        details = QWidget()
        self.details_title = plain_label()
        self.details_title.setObjectName("details-title")
        enlarge_font(self.details_title, 1.15, bold=True)
        self.details_text = plain_label()
        self.details_text.setObjectName("details-text")
        self.details_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_list = QTreeWidget()
        self.summary_list.setObjectName("summary")
        self.summary_list.setHeaderLabels(["System", ""])
        self.summary_list.setRootIsDecorated(False)
        self.summary_list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.claim_button = QPushButton("&Claim (Ctrl+Enter)")
        self.claim_button.setObjectName("claim")
        self.claim_button.clicked.connect(self.on_claim_clicked)
        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(0, 0, 0, 0)
        details_layout.addWidget(self.details_title)
        # A long description scrolls instead of being cut off.
        self.details_scroll = QScrollArea()
        self.details_scroll.setObjectName("details-scroll")
        self.details_scroll.setWidgetResizable(True)
        self.details_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.details_scroll.setWidget(self.details_text)
        self.details_scroll.setMaximumHeight(180)
        details_layout.addWidget(self.details_scroll)
        details_layout.addWidget(self.summary_list, 1)
        details_layout.addWidget(self.claim_button)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.queue_list)
        split.addWidget(details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        box = QGroupBox("Help requests")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(status_row)
        box_layout.addWidget(split, 1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(box, 1)
        return page

    def _build_code_box(self) -> QWidget:
        box = QGroupBox("Connect by code")
        hint = plain_label(
            "For phone support: the user clicks “Show a code for phone support” in Deskhand"
            " and reads you the 9 digits.",
            wrap=True,
        )
        self.code_edit = QLineEdit()
        self.code_edit.setObjectName("code")
        self.code_edit.setPlaceholderText("123-456-789")
        self.code_edit.setMaxLength(40)
        enlarge_font(self.code_edit, 1.3)
        self.code_edit.returnPressed.connect(self.on_connect_clicked)
        code_label = plain_label("C&ode:", wrap=False)
        code_label.setBuddy(self.code_edit)
        self.connect_button = QPushButton("Co&nnect")
        self.connect_button.clicked.connect(self.on_connect_clicked)
        row = QHBoxLayout()
        row.addWidget(code_label)
        row.addWidget(self.code_edit, 1)
        row.addWidget(self.connect_button)
        self.code_status = plain_label()
        self.code_status.setObjectName("code-status")
        layout = QVBoxLayout(box)
        layout.addWidget(hint)
        layout.addLayout(row)
        layout.addWidget(self.code_status)
        return box

    def _build_ask_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(
            plain_label("When you claim a request or connect by code, ask for:", wrap=False)
        )
        self.capability_boxes: dict[str, QCheckBox] = {}
        for capability in CAPABILITIES:
            check = QCheckBox(capability)
            check.setObjectName(f"capability-{capability}")
            check.setChecked(capability == "view")
            check.setToolTip("The user grants each one separately; you can ask for more later.")
            self.capability_boxes[capability] = check
            row.addWidget(check)
        row.addStretch(1)
        return row

    # --- what the window tells the page ---

    @property
    def signed_in(self) -> bool:
        return self._signed_in

    def requested(self) -> tuple[str, ...]:
        """The capabilities ticked, in protocol order."""
        return tuple(c for c, box in self.capability_boxes.items() if box.isChecked())

    def show_signed_out(self, message: str, *, error: bool = False) -> None:
        self._signed_in = False
        self._ticker.stop()
        self._set_items(())
        self._stack.setCurrentIndex(0)
        self.account_edit.setEnabled(True)
        self.password_edit.setEnabled(True)
        self.sign_in_button.setEnabled(True)
        self.password_edit.clear()
        self.sign_in_status.setText(message)
        self.sign_in_status.setStyleSheet(_ERROR_STYLE if error else "")

    def show_signing_in(self) -> None:
        self.account_edit.setEnabled(False)
        self.password_edit.setEnabled(False)
        self.sign_in_button.setEnabled(False)
        self.sign_in_status.setStyleSheet("")
        self.sign_in_status.setText("Signing in…")

    def show_signed_in(self, who: str) -> None:
        self._signed_in = True
        self.password_edit.clear()
        self.account_label.setText(f"Signed in as {who}")
        self._stack.setCurrentIndex(1)
        self.show_queue_status("Loading the queue…")
        self._ticker.start()
        self.queue_list.setFocus()

    def show_queue_status(self, text: str, *, stale: bool = False) -> None:
        self.queue_status.setText(text)
        self.queue_status.setStyleSheet(_ERROR_STYLE if stale else "")
        self.retry_button.setVisible(stale)

    def show_queue(self, items: tuple[QueueItem, ...]) -> None:
        self._set_items(items)
        waiting = sum(1 for i in items if not i.claimed)
        noun = "request waits" if waiting == 1 else "requests wait"
        self.show_queue_status(
            f"Live: {waiting} {noun}."
            if items
            else "Live: nobody is waiting. New requests appear here."
        )

    def show_queue_closed(self, reason: str) -> None:
        self.show_queue_status(
            f"The queue is not up to date: {reason} Press Retry (F5).", stale=True
        )

    def set_code_status(self, text: str, *, error: bool = False) -> None:
        self.code_status.setText(text)
        self.code_status.setStyleSheet(_ERROR_STYLE if error else "")

    def selected_item(self) -> QueueItem | None:
        current = self.queue_list.currentItem()
        if current is None:
            return None
        return self._items.get(str(current.data(0, _ID_ROLE)))

    # --- the list ---

    def _set_items(self, items: tuple[QueueItem, ...]) -> None:
        selected = self.selected_item()
        keep = selected.request_id if selected is not None else None
        self._items = {item.request_id: item for item in items}
        self.queue_list.clear()
        now = self._clock()
        current: QTreeWidgetItem | None = None
        for item in items:
            row = QTreeWidgetItem(
                [
                    str(item.position) if item.position else "",
                    _one_line(item.name, 40),
                    _one_line(item.description),
                    item.category,
                    format_wait(now - item.waiting_since),
                    _status(item),
                ]
            )
            row.setData(0, _ID_ROLE, item.request_id)
            row.setToolTip(2, item.description)
            self.queue_list.addTopLevelItem(row)
            if item.request_id == keep or (keep is None and current is None and not item.claimed):
                current = row
        if current is not None:
            self.queue_list.setCurrentItem(current)
        self._show_details(self.selected_item())

    def _show_details(self, item: QueueItem | None) -> None:
        self.summary_list.clear()
        if item is None:
            self.details_title.setText("No request selected")
            self.details_text.setText("")
            self.claim_button.setEnabled(False)
            return
        title = item.name or "Someone"
        if item.category:
            title += f" — {item.category}"
        self.details_title.setText(title)
        self.details_text.setText(item.description)
        rows = summary_rows(item.system_summary)
        if not rows:
            rows = [("", "The user did not share a system summary.")]
        for name, value in rows:
            self.summary_list.addTopLevelItem(QTreeWidgetItem([name, value]))
        self.claim_button.setEnabled(self.can_claim(item))
        if item.claimed or not item.user_connected:
            self.claim_button.setToolTip(_status(item))
        else:
            self.claim_button.setToolTip("Take this request and connect to its user")

    @staticmethod
    def can_claim(item: QueueItem) -> bool:
        return not item.claimed and item.user_connected

    # --- slots ---

    @Slot()
    def on_ticker_timeout(self) -> None:
        now = self._clock()
        for i in range(self.queue_list.topLevelItemCount()):
            row = self.queue_list.topLevelItem(i)
            item = self._items.get(str(row.data(0, _ID_ROLE))) if row is not None else None
            if row is not None and item is not None:
                row.setText(_WAIT_COLUMN, format_wait(now - item.waiting_since))

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def on_queue_current_changed(
        self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None
    ) -> None:
        self._show_details(self.selected_item())

    @Slot(QTreeWidgetItem, int)
    def on_queue_item_activated(self, _row: QTreeWidgetItem, _column: int) -> None:
        self.on_claim_clicked()

    @Slot()
    def on_sign_in_clicked(self) -> None:
        account = self.account_edit.text().strip()
        password = self.password_edit.text()
        if not account:
            self.sign_in_status.setText("Type your account name.")
            self.account_edit.setFocus()
            return
        if not password:
            self.sign_in_status.setText("Type your password.")
            self.password_edit.setFocus()
            return
        self.show_signing_in()
        self.sign_in_requested.emit(account, password)

    @Slot()
    def on_claim_clicked(self) -> None:
        item = self.selected_item()
        if item is None:
            self.show_queue_status("Select a request first.")
            return
        if not self.can_claim(item):
            self.show_queue_status(f"This request cannot be claimed now: {_status(item).lower()}.")
            return
        if not self.requested():
            self.set_code_status("Tick at least one thing to ask for.", error=True)
            return
        self.claim_requested.emit(item)

    @Slot()
    def on_connect_clicked(self) -> None:
        code = self.code_edit.text().strip()
        if not code:
            self.set_code_status("Type the code the user reads to you, like 123-456-789.")
            self.code_edit.setFocus()
            return
        if not self.requested():
            self.set_code_status("Tick at least one thing to ask for.", error=True)
            return
        self.set_code_status("")
        self.code_edit.clear()
        self.code_entered.emit(code)
