"""The technician console, driven for real: the live queue, claiming a request,
a declined claim, and retrying a stale queue.

The set-up (relays, users, consoles) is in technician_console.py.

Set DESKHAND_SCREENSHOTS=DIR to save a PNG of each screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from technician.core.console import TabState
from tests.gui import technician_console
from tests.gui.technician_console import (
    LEFT,
    WAIT_MS,
    Console,
    FakeClock,
    queue_rows,
    sign_in,
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


# --- the queue ---


def test_a_long_description_scrolls_in_the_details(
    qtbot: QtBot,
    relay: RelayThread,
    consoles: Callable[..., Console],
    users: Callable[..., UserPeer],
) -> None:
    long_text = "\n".join(f"Step {i}: the printer beeps {i} times." for i in range(60))
    users(relay.url).post("Bob", long_text, "Printing")
    console = consoles(relay.url)
    signed_in(qtbot, console)
    qtbot.waitUntil(lambda: len(queue_rows(console)) == 1, timeout=WAIT_MS)
    page = console.page
    page.show()
    qtbot.waitUntil(lambda: page.details_text.text() == long_text, timeout=WAIT_MS)
    bar = page.details_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=WAIT_MS)  # all of it, by scrolling


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
