"""The technician console, driven for real: its bridge and loop thread, a relay on
127.0.0.1, real users (UserClient, UserSessionController, ScreenSharer on a fake screen)
and a real organisation and certificate.

Set DESKHAND_SCREENSHOTS=DIR to save a PNG of each screen.
"""

from __future__ import annotations

import functools
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from common.capability import Capability
from common.keyfiles import save_technician_credential
from common.net.runner import LoopThread
from common.net.session_events import EndReason
from common.protocol.messages import (
    ChatText,
    ControlState,
    ControlStatus,
    KeyEvent,
    PointerButton,
)
from common.session import SessionLimits
from relay import provision
from technician.__main__ import main as technician_main, options_from
from technician.core.console import TabState
from technician.core.session import TechnicianClient
from technician.qt import app as technician_app
from technician.qt.app import TechnicianOptions, build
from technician.qt.bridge import TechnicianBridge
from technician.qt.queue_page import QueuePage
from technician.qt.session_tab import SessionTab
from technician.qt.window import TechnicianWindow
from tests.gui.technician_support import PASSWORD, RelayThread, UserPeer, screenshot
from tests.pki import Org, make_org


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform cannot resize or raise windows, and says so.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]

WAIT_MS = 10_000
LEFT = Qt.MouseButton.LeftButton


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Console:
    """The console under test, with what it needs."""

    def __init__(self, window: TechnicianWindow, bridge: TechnicianBridge, data_dir: Path) -> None:
        self.window = window
        self.bridge = bridge
        self.data_dir = data_dir

    @property
    def page(self) -> QueuePage:
        return self.window.queue_page

    def tabs(self) -> list[SessionTab]:
        return list(self.window.sessions.values())

    def only_tab(self) -> SessionTab:
        (tab,) = self.tabs()
        return tab


@pytest.fixture
def org() -> Org:
    return make_org()


@pytest.fixture
def relay() -> Iterator[RelayThread]:
    """A relay with the account jane (so code claims need a sign-in too)."""
    server = RelayThread(account="jane").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_relay() -> Iterator[RelayThread]:
    """A relay without accounts where anyone may claim a code (the default asks for a login)."""
    server = RelayThread(code_claims="anyone").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def users(org: Org) -> Iterator[Callable[..., UserPeer]]:
    made: list[UserPeer] = []

    def make(url: str, **kwargs: object) -> UserPeer:
        user = UserPeer(url, org, name=f"user-{len(made)}", **kwargs)  # type: ignore[arg-type]
        made.append(user)
        return user

    try:
        yield make
    finally:
        for user in made:
            user.close()


@pytest.fixture
def consoles(
    qtbot: QtBot, org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Console]]:
    made: list[tuple[TechnicianBridge, LoopThread]] = []

    def make(
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        resume_grace: float | None = None,
    ) -> Console:
        """A console; resume_grace: how long its sessions wait for a dropped link."""
        loop = LoopThread("test-technician-loop")
        loop.start()
        options = TechnicianOptions(
            relay_url=url,
            credential=org.technician("Jane Doe", org="ACME IT"),
            data_dir=tmp_path / "technician",
            account="jane",
        )
        with monkeypatch.context() as patch:
            if resume_grace is not None:
                limits = SessionLimits(resume_grace=resume_grace)
                patch.setattr(
                    technician_app,
                    "TechnicianClient",
                    functools.partial(TechnicianClient, limits=limits),
                )
            bridge, window = build(options, loop, **({"clock": clock} if clock else {}))
        made.append((bridge, loop))
        qtbot.addWidget(window)
        window.resize(1100, 700)
        window.show()
        return Console(window, bridge, options.data_dir)

    try:
        yield make
    finally:
        for bridge, loop in made:
            bridge.shutdown()
            loop.stop()


def wait_text(qtbot: QtBot, label: object, pattern: str) -> None:
    def check() -> None:
        text = label.text()  # type: ignore[attr-defined]
        assert re.search(pattern, text), text

    qtbot.waitUntil(check, timeout=WAIT_MS)


def sign_in(qtbot: QtBot, console: Console, password: str = PASSWORD) -> None:
    page = console.page
    page.password_edit.clear()
    qtbot.keyClicks(page.password_edit, password)
    qtbot.keyClick(page.password_edit, Qt.Key.Key_Return)


def signed_in(qtbot: QtBot, console: Console) -> None:
    sign_in(qtbot, console)
    wait_text(qtbot, console.page.queue_status, "^Live: ")


def queue_rows(console: Console) -> list[list[str]]:
    tree = console.page.queue_list
    rows = []
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        assert item is not None
        rows.append([item.text(c) for c in range(tree.columnCount())])
    return rows


def claim_first(qtbot: QtBot, console: Console, user: UserPeer) -> SessionTab:
    qtbot.waitUntil(lambda: console.page.claim_button.isEnabled(), timeout=WAIT_MS)
    qtbot.mouseClick(console.page.claim_button, LEFT)
    qtbot.waitUntil(lambda: bool(console.window.sessions), timeout=WAIT_MS)
    tab = console.tabs()[-1]
    user.wait_connected()
    qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)
    return tab


def connect_by_code(qtbot: QtBot, console: Console, code: str) -> SessionTab:
    qtbot.keyClicks(console.page.code_edit, code)
    qtbot.keyClick(console.page.code_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(console.window.sessions), timeout=WAIT_MS)
    return console.tabs()[-1]


def chat_lines(tab: SessionTab) -> list[str]:
    transcript = tab.chat.transcript
    return [transcript.item(i).text() for i in range(transcript.count())]


def wait_picture(qtbot: QtBot, tab: SessionTab) -> None:
    qtbot.waitUntil(lambda: tab.screen_panel.view.canvas is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tab.screen_panel.view.paint_count > 0, timeout=WAIT_MS)


# --- signing in ---


def test_sign_in_fails_with_a_clear_reason_then_succeeds(
    qtbot: QtBot, relay: RelayThread, consoles: Callable[..., Console]
) -> None:
    console = consoles(relay.url)
    page = console.page
    assert page.account_edit.text() == "jane"  # from the settings
    assert console.window.account_status.text() == "Not signed in"
    screenshot(console.window, "technician-sign-in")

    sign_in(qtbot, console, "not the password")
    wait_text(
        qtbot,
        page.sign_in_status,
        r"^Not signed in: The relay closed the connection: wrong account name or password\.$",
    )
    assert page.sign_in_button.isEnabled() and page.password_edit.text() == ""
    screenshot(console.window, "technician-sign-in-failed")

    sign_in(qtbot, console)
    wait_text(qtbot, page.queue_status, r"^Live: nobody is waiting")
    assert page.account_label.text() == "Signed in as Jane Doe (technician)"
    assert console.window.account_status.text() == "Signed in as Jane Doe"
    # The test certificate names another tech_id than the account: the console says so.
    assert re.match(
        r"^Signed in as jane, but your certificate was issued to 'tech-\d+'",
        console.window.status_label.text(),
    )

    qtbot.mouseClick(page.sign_out_button, LEFT)
    wait_text(qtbot, page.sign_in_status, "^You signed out.$")
    assert console.window.account_status.text() == "Not signed in"


def test_empty_fields_are_not_sent(
    qtbot: QtBot, relay: RelayThread, consoles: Callable[..., Console]
) -> None:
    page = consoles(relay.url).page
    qtbot.mouseClick(page.sign_in_button, LEFT)
    assert page.sign_in_status.text() == "Type your password."
    page.account_edit.clear()
    qtbot.mouseClick(page.sign_in_button, LEFT)
    assert page.sign_in_status.text() == "Type your account name."
    qtbot.mouseClick(page.connect_button, LEFT)
    assert page.code_status.text().startswith("Type the code")


# --- the queue ---


def test_the_queue_updates_live_and_the_wait_ticks(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    first = users(relay.url)
    first.post("Bob", "My printer prints blank pages", "Printing")
    # The relay's clock stamped the request; start the console's a bit later.
    clock = FakeClock(0.0)
    console = consoles(relay.url, clock=clock)
    signed_in(qtbot, console)
    qtbot.waitUntil(lambda: len(queue_rows(console)) == 1, timeout=WAIT_MS)
    item = console.page.selected_item()
    assert item is not None
    clock.now = item.waiting_since + 5
    console.page.on_ticker_timeout()
    assert queue_rows(console) == [
        ["1", "Bob", "My printer prints blank pages", "Printing", "5 s", "Waiting"]
    ]
    # The selected request's details and system summary, as plain text.
    assert console.page.details_title.text() == "Bob — Printing"
    assert console.page.details_text.text() == "My printer prints blank pages"
    summary = console.page.summary_list
    rows = [summary.topLevelItem(i) for i in range(summary.topLevelItemCount())]
    assert [row.text(0) for row in rows if row is not None] == [
        "Operating system",
        "Memory",
    ]

    second = users(relay.url)
    second.post("<b>Alice</b>", "VPN drops", "Network or internet", summary="")
    qtbot.waitUntil(lambda: len(queue_rows(console)) == 2, timeout=WAIT_MS)
    wait_text(qtbot, console.page.queue_status, "^Live: 2 requests wait.$")
    clock.now += 60
    console.page.on_ticker_timeout()
    rows = queue_rows(console)
    assert rows[0][4] == "1 min 05 s"
    assert rows[1][:4] == ["2", "<b>Alice</b>", "VPN drops", "Network or internet"]
    screenshot(console.window, "technician-queue")

    # Withdrawn requests leave the list at once.
    second.call(lambda: None)
    second.loop.submit(second.client.cancel()).result(10)
    qtbot.waitUntil(lambda: len(queue_rows(console)) == 1, timeout=WAIT_MS)
    wait_text(qtbot, console.page.queue_status, "^Live: 1 request waits.$")


def test_claim_opens_a_tab_with_the_number_the_screen_and_the_diagnostics(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    user = users(relay.url, device="Bob's laptop")
    user.post()
    console = consoles(relay.url)
    signed_in(qtbot, console)
    qtbot.waitUntil(lambda: console.page.claim_button.isEnabled(), timeout=WAIT_MS)

    # Ctrl+Enter claims the selected request.
    console.window.activateWindow()
    qtbot.waitActive(console.window)
    # (sent to a label: the window's shortcut does it, not the list's own activation)
    qtbot.keyClick(
        console.page.details_title, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )
    qtbot.waitUntil(lambda: bool(console.window.sessions), timeout=WAIT_MS)
    tab = console.only_tab()
    assert console.window.tabs.currentWidget() is tab
    user.wait_connected()
    qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)

    assert user.consent is not None
    assert tab.sas_label.text() == f"Verification number: {user.consent.sas}"
    assert tab.title_label.text() == "Bob — Bob's laptop"
    assert console.window.tabs.tabText(1) == "Bob"
    assert tab.granted_label.text() == "The user allows: view"
    assert tab.diagnostic_rows == [
        ("Problem", "My printer prints blank pages"),
        ("Device", "Bob's laptop"),
        ("Asked by", "Bob"),
        ("Category", "Printing"),
        ("Operating system", "Debian 13"),
        ("Memory", "16.0 GiB, 9.1 GiB available"),
    ]
    wait_picture(qtbot, tab)
    assert tab.screen_panel.view.canvas is not None
    assert tab.screen_panel.view.canvas.size == (320, 200)
    # The request left the queue when the session started.
    qtbot.waitUntil(lambda: queue_rows(console) == [], timeout=WAIT_MS)
    tab.side.setCurrentWidget(tab.diagnostics)
    screenshot(console.window, "technician-session")


def test_a_declined_claim_says_so(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    user = users(relay.url, grant=lambda asked: None)
    user.post()
    console = consoles(relay.url)
    signed_in(qtbot, console)
    qtbot.waitUntil(lambda: console.page.claim_button.isEnabled(), timeout=WAIT_MS)
    qtbot.mouseClick(console.page.claim_button, LEFT)
    qtbot.waitUntil(lambda: bool(console.window.sessions), timeout=WAIT_MS)
    tab = console.only_tab()
    qtbot.waitUntil(lambda: tab.state is TabState.FAILED, timeout=WAIT_MS)
    assert re.search("^Could not connect: .*declined", tab.banner_label.text())
    assert tab.back_button.isVisible() and tab.close_button.isVisible()
    assert not tab.needs_confirmation()
    qtbot.mouseClick(tab.close_button, LEFT)
    qtbot.waitUntil(lambda: not console.window.sessions, timeout=WAIT_MS)


# --- in a session ---


def test_control_is_asked_for_shown_live_and_drives_input_capture(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    user = users(relay.url)
    user.post()
    console = consoles(relay.url)
    signed_in(qtbot, console)
    tab = claim_first(qtbot, console, user)
    wait_picture(qtbot, tab)
    viewport = tab.screen_panel.view.viewport()
    assert tab.capture is None
    assert tab.control_button.text() == "Ask for control"
    assert not tab.special_keys_button.isEnabled()

    # Input before control is granted goes nowhere.
    qtbot.mouseClick(viewport, LEFT, pos=viewport.rect().center())
    qtbot.mouseClick(tab.control_button, LEFT)
    qtbot.waitUntil(lambda: tab.capture is not None, timeout=WAIT_MS)
    assert user.asked[0].capabilities == (Capability.CONTROL,)
    assert tab.granted_label.text() == "The user allows: view, control"
    assert tab.control_button.isChecked()
    assert tab.control_button.text() == "Control on — click to stop"
    assert tab.special_keys_button.isEnabled()
    assert user.messages(PointerButton) == []

    user.send(ControlStatus(ControlState.ACTIVE))
    wait_text(qtbot, tab.control_label, "^You have control.$")
    screenshot(console.window, "technician-control")

    qtbot.mouseClick(viewport, LEFT, pos=viewport.rect().center())
    qtbot.waitUntil(lambda: len(user.messages(PointerButton)) == 2, timeout=WAIT_MS)
    assert [b.pressed for b in user.messages(PointerButton)] == [True, False]

    menu = tab.special_keys_button.menu()
    assert menu is not None
    ctrl_alt_del = next(a for a in menu.actions() if a.text() == "Ctrl+Alt+Del")
    ctrl_alt_del.trigger()
    qtbot.waitUntil(lambda: len(user.messages(KeyEvent)) == 6, timeout=WAIT_MS)
    assert [k.pressed for k in user.messages(KeyEvent)] == [True] * 3 + [False] * 3

    # The technician switches control off: the viewer gets its events back.
    qtbot.mouseClick(tab.control_button, LEFT)
    assert tab.capture is None and tab.control_button.text() == "Take control"
    qtbot.mouseClick(tab.control_button, LEFT)
    assert tab.capture is not None

    # The user takes control back: capture is removed at once.
    user.set_capability("control", False)
    qtbot.waitUntil(lambda: tab.capture is None, timeout=WAIT_MS)
    assert tab.granted_label.text() == "The user allows: view"
    assert not tab.special_keys_button.isEnabled()
    before = len(user.messages(PointerButton))
    qtbot.mouseClick(viewport, LEFT, pos=viewport.rect().center())
    user.chat("sync")  # everything sent before this line has arrived
    qtbot.waitUntil(lambda: "User: sync" in chat_lines(tab), timeout=WAIT_MS)
    assert len(user.messages(PointerButton)) == before


def test_chat_goes_to_the_right_tab(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    bob, alice = users(relay.url), users(relay.url, device="Alice's PC")
    bob.post("Bob")
    console = consoles(relay.url)
    signed_in(qtbot, console)
    bob_tab = claim_first(qtbot, console, bob)
    alice.post("Alice", "Outlook will not start", "Email")
    console.window.show_queue()
    qtbot.waitUntil(lambda: len(queue_rows(console)) == 1, timeout=WAIT_MS)
    alice_tab = claim_first(qtbot, console, alice)
    assert [console.window.tabs.tabText(i) for i in range(3)] == ["&Queue", "Bob", "Alice"]
    assert bob_tab.sas_label.text() != "" and alice_tab.sas_label.text() != ""

    bob.chat("Hello from Bob")
    qtbot.waitUntil(lambda: chat_lines(bob_tab) == ["User: Hello from Bob"], timeout=WAIT_MS)
    # A message in a tab that is not shown marks the tab, until it is shown.
    assert console.window.tabs.tabText(1) == "● Bob"
    assert chat_lines(alice_tab) == []
    console.window.tabs.setCurrentWidget(bob_tab)
    assert console.window.tabs.tabText(1) == "Bob"
    console.window.tabs.setCurrentWidget(alice_tab)

    qtbot.keyClicks(alice_tab.chat.entry, "Looking at Outlook now")
    qtbot.keyClick(alice_tab.chat.entry, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: chat_lines(alice_tab) == ["You: Looking at Outlook now"], timeout=WAIT_MS
    )
    qtbot.waitUntil(
        lambda: [m.text for m in alice.messages(ChatText)] == ["Looking at Outlook now"],
        timeout=WAIT_MS,
    )
    assert bob.messages(ChatText) == []
    alice_tab.side.setCurrentWidget(alice_tab.chat)
    screenshot(console.window, "technician-chat")


def test_end_session_form_writes_the_report_and_closes_the_tab(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    user = users(relay.url)
    user.post("Bob", "My printer prints blank pages", "Printing")
    console = consoles(relay.url)
    signed_in(qtbot, console)
    tab = claim_first(qtbot, console, user)
    user.chat("It is the HP one")
    qtbot.waitUntil(lambda: chat_lines(tab) == ["User: It is the HP one"], timeout=WAIT_MS)
    qtbot.keyClicks(tab.notes, "Toner low; driver 3.1 installed.")

    qtbot.mouseClick(tab.end_button, LEFT)
    dialog = tab.end_dialog
    assert dialog is not None
    assert dialog.problem.text() == "My printer prints blank pages"
    assert dialog.notes.toPlainText() == "Toner low; driver 3.1 installed."
    assert dialog.category.currentText() == "Printing"
    screenshot(dialog, "technician-end-session-form")

    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    qtbot.mouseClick(ok, LEFT)
    assert dialog.error.text() == "Say what was done. Pick an outcome."
    assert tab.state is TabState.LIVE  # nothing happened

    qtbot.keyClicks(dialog.cause, "Empty toner")
    dialog.resolution.setPlainText("Replaced the toner; printed a test page.")
    dialog.outcome.setCurrentText("Resolved")
    qtbot.mouseClick(ok, LEFT)
    qtbot.waitUntil(lambda: not console.window.sessions, timeout=WAIT_MS)
    assert user.wait_ended().reason == EndReason.TECHNICIAN_ENDED

    (line,) = (console.data_dir / "reports.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["report"] == {
        "problem": "My printer prints blank pages",
        "cause": "Empty toner",
        "resolution": "Replaced the toner; printed a test page.",
        "category": "Printing",
        "outcome": "Resolved",
        "notes": "Toner low; driver 3.1 installed.",
    }
    assert record["technician"] == "jane"
    assert record["technician_name"] == "Jane Doe (ACME IT)"
    assert record["origin"]["kind"] == "queue" and record["origin"]["name"] == "Bob"
    assert record["device"] == "Bob's laptop"
    assert user.consent is not None and record["verification_number"] == user.consent.sas
    assert record["granted"] == ["view"]
    assert record["end"] == "You ended the session." and record["ended_at"] is not None
    assert [(c["who"], c["text"]) for c in record["chat"]] == [("user", "It is the HP one")]
    assert (console.data_dir / "reports.jsonl").stat().st_mode & 0o777 == 0o600


def test_ctrl_w_asks_before_ending_a_live_session(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    user = users(relay.url)
    user.post()
    console = consoles(relay.url)
    signed_in(qtbot, console)
    tab = claim_first(qtbot, console, user)
    console.window.activateWindow()
    qtbot.waitActive(console.window)
    tab.notes.setFocus()
    qtbot.keyClick(tab.notes, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    box = console.window.confirm_box
    assert box is not None and box.isVisible()
    assert box.text() == "The session with Bob is still open."
    screenshot(box, "technician-close-tab-question")

    # Cancel keeps everything.
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert console.window.confirm_box is None and tab.state is TabState.LIVE

    # Quitting asks too while a session is open.
    console.window.request_quit()
    box = console.window.confirm_box
    assert box is not None
    assert box.text() == "1 session is still open. Quitting ends them without reports."
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert console.window.isVisible()

    console.window.close_current_tab()
    box = console.window.confirm_box
    assert box is not None
    drop = next(
        b for b in box.buttons() if isinstance(b, QPushButton) and b.text() == "End without report"
    )
    drop.click()
    qtbot.waitUntil(lambda: not console.window.sessions, timeout=WAIT_MS)
    assert user.wait_ended().reason == EndReason.TECHNICIAN_ENDED


# --- connecting by code, and losing the connection ---


def test_connect_by_code_without_signing_in(
    qtbot: QtBot,
    open_relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    answer = threading.Event()
    user = users(open_relay.url, device="Front desk PC", hold_consent=answer)
    console = consoles(open_relay.url)
    code = user.request_code()
    tab = connect_by_code(qtbot, console, code)
    assert tab.state is TabState.CONNECTING
    # The number shows while the user is still deciding.
    wait_text(qtbot, tab.sas_label, r"^Verification number: \d{4}$")
    assert re.match(r"^Read the verification number \d{4} to the user", tab.state_label.text())
    assert tab.cancel_button.isVisible() and not tab.end_button.isVisible()
    screenshot(console.window, "technician-connecting")
    answer.set()
    user.wait_connected()
    qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)
    assert user.consent is not None
    assert tab.sas_label.text() == f"Verification number: {user.consent.sas}"
    assert tab.title_label.text() == "Front desk PC"
    assert console.window.tabs.tabText(1) == "Front desk PC"
    assert tab.diagnostic_rows == [("Device", "Front desk PC")]
    wait_picture(qtbot, tab)


def test_a_bad_code_fails_in_its_tab(
    qtbot: QtBot, open_relay: RelayThread, consoles: Callable[..., Console]
) -> None:
    console = consoles(open_relay.url)
    tab = connect_by_code(qtbot, console, "999-123-456")
    qtbot.waitUntil(lambda: tab.state is TabState.FAILED, timeout=WAIT_MS)
    assert tab.banner_label.text().startswith(
        "Could not connect: The relay closed the connection: no one is waiting for this code."
    )
    assert tab.reconnect_edit.isVisible()


def test_a_lost_code_session_reconnects_with_a_new_code(
    qtbot: QtBot,
    open_relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    # Short grace periods, so that a link lost for good ends the session soon.
    user = users(open_relay.url, limits=SessionLimits(resume_grace=3.0))
    console = consoles(open_relay.url, resume_grace=3.0)
    tab = connect_by_code(qtbot, console, user.request_code())
    user.wait_connected()
    qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)
    user.chat("before")
    qtbot.waitUntil(lambda: chat_lines(tab) == ["User: before"], timeout=WAIT_MS)
    qtbot.keyClicks(tab.notes, "kept")

    # A relay restart is survived: both sides resume the same session.
    open_relay.restart()
    wait_text(qtbot, tab.state_label, "^Reconnected. ")
    assert tab.state is TabState.LIVE
    user.chat("resumed")
    qtbot.waitUntil(lambda: chat_lines(tab) == ["User: before", "User: resumed"], timeout=WAIT_MS)

    # The relay goes away for good: no CLOSE record, and no resume within the grace.
    open_relay.close()
    qtbot.waitUntil(lambda: tab.state is TabState.LOST, timeout=WAIT_MS)
    assert tab.banner_label.text().startswith("Connection lost: ")
    assert "the user needs a new code" in tab.banner_label.text()
    assert tab.reconnect_edit.isVisible() and tab.reconnect_button.isVisible()
    assert tab.file_button.isVisible()
    assert not tab.end_button.isVisible() and not tab.chat.entry.isEnabled()
    screenshot(console.window, "technician-connection-lost")

    qtbot.mouseClick(tab.reconnect_button, LEFT)
    assert "new code" in tab.banner_label.text()  # nothing typed: it says what to do

    assert user.wait_ended().reason == EndReason.CONNECTION_LOST
    open_relay.start(open_relay.port)
    again = users(open_relay.url)
    qtbot.keyClicks(tab.reconnect_edit, again.request_code())
    qtbot.keyClick(tab.reconnect_edit, Qt.Key.Key_Return)
    again.wait_connected()
    qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)
    assert not tab.banner.isVisible()
    assert chat_lines(tab) == ["User: before", "User: resumed"]
    assert tab.notes.toPlainText() == "kept"
    assert again.consent is not None
    assert tab.sas_label.text() == f"Verification number: {again.consent.sas}"
    wait_picture(qtbot, tab)


def test_a_lost_queue_session_points_back_to_the_queue(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    user = users(relay.url, limits=SessionLimits(resume_grace=2.0))
    user.post()
    console = consoles(relay.url, resume_grace=2.0)
    signed_in(qtbot, console)
    tab = claim_first(qtbot, console, user)

    relay.close()  # for good: no resume within the grace
    qtbot.waitUntil(lambda: tab.state is TabState.LOST, timeout=WAIT_MS)
    assert tab.banner_label.text().startswith("Connection lost: ")
    assert "appears in the queue" in tab.banner_label.text()
    assert tab.back_button.isVisible() and not tab.reconnect_edit.isVisible()
    # The queue says it is stale, and offers to retry.
    wait_text(qtbot, console.page.queue_status, "^The queue is not up to date: ")

    qtbot.mouseClick(tab.back_button, LEFT)
    assert console.window.tabs.currentWidget() is console.page
    assert console.page.retry_button.isVisible()
    screenshot(console.window, "technician-queue-stale")

    # The report can still be filed from the lost tab.
    console.window.tabs.setCurrentWidget(tab)
    qtbot.mouseClick(tab.file_button, LEFT)
    assert tab.end_dialog is not None
    tab.end_dialog.reject()
    assert tab.end_dialog is None


# --- the account: TLS pinning, cut-offs, the command line ---


def technician_settings(
    tmp_path: Path, org: Org, url: str, pin: str, name: str = "technician.toml"
) -> Path:
    credential = tmp_path / "jane"
    if not credential.exists():
        credential.mkdir()
        save_technician_credential(credential, org.technician("Jane Doe", org="ACME IT"))
    path = tmp_path / name
    path.write_text(
        f'relay_url = "{url}"\nrelay_pin = "{pin}"\ncredential = "jane"\n'
        'account = "jane"\ndata_dir = "reports"\n'
    )
    return path


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[RelayThread, str]]:
    """A relay set up by ``deskhand-relay init`` (TLS 1.3, pinned key) with the account jane."""
    directory = tmp_path / "relay"
    assert provision.main([str(directory), "--host", "127.0.0.1", "--hostname", "127.0.0.1"]) == 0
    server = RelayThread(account="jane", config_file=directory / "relay.toml").start()
    try:
        yield server, (directory / "relay.pin").read_text().strip()
    finally:
        server.stop()


def console_from_settings(
    qtbot: QtBot, settings: Path, made: list[tuple[TechnicianBridge, LoopThread]]
) -> tuple[TechnicianOptions, Console]:
    options = options_from(
        ["--config", str(settings), "--password-stdin"], io.StringIO(PASSWORD + "\n")
    )
    loop = LoopThread("test-technician-loop")
    loop.start()
    bridge, window = build(options, loop)
    made.append((bridge, loop))
    qtbot.addWidget(window)
    window.show()
    return options, Console(window, bridge, options.data_dir)


def test_sign_in_over_tls_with_the_pin_from_the_settings(
    qtbot: QtBot, tmp_path: Path, org: Org, tls_relay: tuple[RelayThread, str]
) -> None:
    relay, pin = tls_relay
    assert relay.url.startswith("wss://127.0.0.1:")
    made: list[tuple[TechnicianBridge, LoopThread]] = []
    try:
        good = technician_settings(tmp_path, org, relay.url, pin)
        options, console = console_from_settings(qtbot, good, made)
        assert options.pin is not None and options.account == "jane"
        assert options.data_dir == tmp_path / "reports"
        assert options.password is not None
        console.window.sign_in(options.account, options.password)
        wait_text(qtbot, console.page.queue_status, r"^Live: nobody is waiting")

        # Another key behind the same address: refused before any password is sent.
        wrong = "sha256:" + "00" * 32
        bad = technician_settings(tmp_path, org, relay.url, wrong, name="wrong.toml")
        options, console = console_from_settings(qtbot, bad, made)
        console.window.sign_in(options.account, PASSWORD)
        wait_text(qtbot, console.page.sign_in_status, "^Not signed in: .*does not match the pinned")
    finally:
        for bridge, loop in made:
            bridge.shutdown()
            loop.stop()


def test_a_disabled_account_is_signed_out(qtbot: QtBot, consoles: Callable[..., Console]) -> None:
    relay = RelayThread(account="jane", check_interval=0.2).start()
    try:
        console = consoles(relay.url)
        signed_in(qtbot, console)
        relay.disable("jane")
        wait_text(qtbot, console.page.sign_in_status, "^Signed out: .*disabled")
        assert console.window.account_status.text() == "Not signed in"
    finally:
        relay.stop()


def test_f5_retries_a_stale_queue(
    qtbot: QtBot, relay: RelayThread, consoles: Callable[..., Console]
) -> None:
    console = consoles(relay.url)
    signed_in(qtbot, console)
    relay.restart()  # a fresh relay: the queue watch drops, and the old token means nothing
    wait_text(qtbot, console.page.queue_status, "^The queue is not up to date: .*shutting down")
    screenshot(console.window, "technician-queue-stale")
    console.window.activateWindow()
    qtbot.waitActive(console.window)
    qtbot.keyClick(console.page.queue_list, Qt.Key.Key_F5)
    wait_text(qtbot, console.page.sign_in_status, "^Signed out: .*sign in again")
    sign_in(qtbot, console)
    wait_text(qtbot, console.page.queue_status, "^Live: ")


def test_command_line_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def run(*argv: str) -> str:
        assert technician_main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        return err

    prefix = "deskhand-technician: error: "
    assert run() == f"{prefix}give --config FILE, or both --relay URL and --credential DIR\n"
    assert run("--relay", "ws://127.0.0.1:1/v1/peer", "--credential", str(tmp_path)) == (
        f"{prefix}cannot read the credential {tmp_path / 'technician.key'}:"
        " No such file or directory\n"
    )
    assert run("--relay", "http://x", "--credential", str(tmp_path)).startswith(
        f"{prefix}--relay must be a ws:// or wss:// URL"
    )
    assert run("--config", str(tmp_path / "nope.toml")) == (
        f"{prefix}{tmp_path / 'nope.toml'}: no such file\n"
    )
    typo = tmp_path / "typo.toml"
    typo.write_text('relay_url = "wss://h:1/v1/peer"\ncredential = "c"\nrelay_pim = "x"\n')
    assert run("--config", str(typo)) == f"{prefix}{typo}: unknown setting 'relay_pim'\n"
    assert run(
        "--relay", "ws://127.0.0.1:1/v1/peer", "--pin", "md5:00", "--credential", "x"
    ).startswith(f"{prefix}--pin: a relay pin starts with 'sha256:'")


def test_cancel_abandons_a_pairing_in_progress(
    qtbot: QtBot,
    open_relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    answer = threading.Event()
    user = users(open_relay.url, hold_consent=answer)
    console = consoles(open_relay.url)
    tab = connect_by_code(qtbot, console, user.request_code())
    wait_text(qtbot, tab.sas_label, r"^Verification number: \d{4}$")
    qtbot.mouseClick(tab.cancel_button, LEFT)
    qtbot.waitUntil(lambda: tab.state is TabState.FAILED, timeout=WAIT_MS)
    assert tab.banner_label.text().startswith("You abandoned the connection attempt.")
    answer.set()
    assert user.wait_not_connected() is not None  # the user's side hears it too
