"""The technician console, driven for real: a session's tab (control and input
capture, chat in the right tab, a tab whose link is lost).

The set-up (relays, users, consoles) is in technician_console.py.

Set DESKHAND_SCREENSHOTS=DIR to save a PNG of each screen.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from common.capability import Capability
from common.protocol.messages import ChatText, ControlState, ControlStatus, KeyEvent, PointerButton
from common.session import SessionLimits
from technician.core.console import TabState
from tests.gui import technician_console
from tests.gui.technician_console import (
    LEFT,
    WAIT_MS,
    Console,
    chat_lines,
    claim_first,
    queue_rows,
    signed_in,
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
relay = technician_console.relay
users = technician_console.users
consoles = technician_console.consoles


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
