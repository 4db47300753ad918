"""The technician console, driven for real: ending a session (the report form,
and Ctrl+W and quitting asking first).

The set-up (relays, users, consoles) is in technician_console.py.

Set DESKHAND_SCREENSHOTS=DIR to save a PNG of each screen.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from common.net.session_events import EndReason
from technician.core.console import TabState
from tests.gui import technician_console
from tests.gui.technician_console import LEFT, WAIT_MS, Console, chat_lines, claim_first, signed_in
from tests.gui.technician_support import RelayThread, UserPeer, screenshot


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform cannot resize or raise windows, and says so.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]

# The fixtures these tests share with the other test_technician_* modules.
org = technician_console.org
relay = technician_console.relay
users = technician_console.users
consoles = technician_console.consoles


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
