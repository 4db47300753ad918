"""Tray menu and session bar render presence snapshots and report the user's intents."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from client.core.presence import Presence, PresenceState
from client.qt.session_bar import SessionBar
from client.qt.tray import Tray


pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def menu_texts(tray: Tray) -> list[str]:
    return [a.text() for a in tray.menu.actions() if not a.isSeparator()]


def test_tray_menu_follows_the_state(qtbot: QtBot) -> None:
    tray = Tray()
    assert menu_texts(tray) == [
        "No one is connected.",
        "Request help…",
        "Show a code for phone support…",
        "Quit Deskhand",
    ]
    tray.set_presence(Presence.connected("Jane Doe (ACME IT)", ("view", "control")))
    tray.menu.aboutToShow.emit()
    texts = menu_texts(tray)
    assert texts[0] == "Stop — end the session now"
    assert "Jane Doe (ACME IT) is connected. They can: view, control." in texts
    assert tray.icon.toolTip().startswith("Deskhand — Jane Doe")


def test_tray_actions_are_signalled(qtbot: QtBot) -> None:
    tray = Tray()
    tray.set_presence(Presence(PresenceState.WAITING, queue_position=2))
    tray.rebuild_menu()
    cancel = next(a for a in tray.menu.actions() if a.text() == "Cancel my request")
    with qtbot.waitSignal(tray.action_chosen) as chosen:
        cancel.trigger()
    assert chosen.args == ["cancel"]


def test_icon_changes_with_the_state(qtbot: QtBot) -> None:
    tray = Tray()
    idle_key = tray.icon.icon().cacheKey()
    tray.set_presence(Presence.connected("Jane Doe (ACME IT)", ("view",)))
    assert tray.icon.icon().cacheKey() != idle_key


def test_session_bar_shows_and_reports(qtbot: QtBot) -> None:
    bar = SessionBar()
    qtbot.addWidget(bar)
    bar.set_presence(Presence.connected("Jane Doe (ACME IT)", ("view",)))
    assert bar.label.text() == "Jane Doe (ACME IT) is connected. They can: view."
    assert bar.toggles["view"].isChecked() and not bar.toggles["control"].isChecked()
    assert bar.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    with qtbot.waitSignal(bar.capability_toggled) as toggled:
        bar.toggles["control"].click()
    assert toggled.args == ["control", True]
    with qtbot.waitSignal(bar.pause_toggled) as paused:
        bar.pause_button.click()
    assert paused.args == [True] and bar.pause_button.text() == "&Resume"
    with qtbot.waitSignal(bar.stop_requested):
        bar.stop_button.click()


def test_setting_presence_does_not_echo_toggles(qtbot: QtBot) -> None:
    bar = SessionBar()
    qtbot.addWidget(bar)
    with qtbot.assertNotEmitted(bar.capability_toggled), qtbot.assertNotEmitted(bar.pause_toggled):
        bar.set_presence(Presence.connected("X (Y)", ("view", "files"), paused=True))
    assert bar.toggles["files"].isChecked() and bar.pause_button.isChecked()


def test_ticking_in_the_bar_only_asks(qtbot: QtBot) -> None:
    # Remote input can click the bar: a tick must not grant anything by itself.
    bar = SessionBar(reassert_ms=0)
    qtbot.addWidget(bar)
    bar.set_presence(Presence.connected("Jane Doe (ACME IT)", ("view",)))
    with qtbot.waitSignal(bar.capability_toggled) as asked:
        bar.toggles["files"].click()
    assert asked.args == ["files", True]
    assert not bar.toggles["files"].isChecked()
    # Unticking acts at once.
    with qtbot.waitSignal(bar.capability_toggled) as revoked:
        bar.toggles["view"].click()
    assert revoked.args == ["view", False]
    assert not bar.toggles["view"].isChecked()


def test_the_bar_offers_chat(qtbot: QtBot) -> None:
    bar = SessionBar(reassert_ms=0)
    qtbot.addWidget(bar)
    with qtbot.waitSignal(bar.chat_requested):
        bar.chat_button.click()


def test_tray_menu_reports_when_it_is_open(qtbot: QtBot) -> None:
    # While it is open, remote input is paused (the shell tells the core).
    tray = Tray()
    with qtbot.waitSignal(tray.menu_open_changed) as opened:
        tray.menu.aboutToShow.emit()
    assert opened.args == [True]
    with qtbot.waitSignal(tray.menu_open_changed) as closed:
        tray.menu.aboutToHide.emit()
    assert closed.args == [False]


def test_pause_entry_follows_the_state(qtbot: QtBot) -> None:
    tray = Tray()
    tray.set_presence(Presence.connected("Jane Doe (ACME IT)", ("view",), paused=True))
    tray.rebuild_menu()
    assert "Resume" in menu_texts(tray)
    chosen: list[str] = []
    tray.action_chosen.connect(chosen.append)
    next(a for a in tray.menu.actions() if a.text() == "Resume").trigger()
    assert chosen == ["pause"]
