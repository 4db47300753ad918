"""The technician console, driven for real: sessions by code (without signing in,
a bad code, a lost code session reconnecting, cancelling a pairing).

The set-up (relays, users, consoles) is in technician_console.py.

Set DESKHAND_SCREENSHOTS=DIR to save a PNG of each screen.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from common.net.session_events import EndReason
from common.session import SessionLimits
from technician.core.console import TabState
from tests.gui import technician_console
from tests.gui.technician_console import (
    LEFT,
    WAIT_MS,
    Console,
    chat_lines,
    connect_by_code,
    wait_picture,
    wait_text,
)
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
open_relay = technician_console.open_relay
users = technician_console.users
consoles = technician_console.consoles


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
