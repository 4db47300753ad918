"""The user's view of the session: sentences and tray menus from snapshots."""

from __future__ import annotations

from client.core.presence import Presence, PresenceState
from client.qt.tray_menu import MenuItem, describe, tray_menu, tray_tooltip


def actions(presence: Presence) -> list[str]:
    return [item.action for item in tray_menu(presence) if item.action]


def test_idle() -> None:
    idle = Presence()
    assert describe(idle) == "No one is connected."
    assert actions(idle) == ["request", "code", "quit"]
    assert tray_menu(idle)[0] == MenuItem("", "No one is connected.", enabled=False)


def test_waiting_shows_the_queue_position() -> None:
    waiting = Presence(PresenceState.WAITING, queue_position=3)
    assert "number 3 in the queue" in describe(waiting)
    assert actions(waiting) == ["show", "cancel", "quit"]


def test_connected_states_and_stop_first() -> None:
    viewed = Presence.connected("Jane Doe (ACME IT)", ("view",))
    controlled = Presence.connected("Jane Doe (ACME IT)", ("view", "control"))
    assert viewed.state is PresenceState.VIEWED
    assert controlled.state is PresenceState.CONTROLLED
    assert describe(viewed) == "Jane Doe (ACME IT) is connected. They can: view."
    for presence in (viewed, controlled):
        assert actions(presence)[0] == "stop"
        assert "pause" in actions(presence)


def test_paused_and_chat_only() -> None:
    paused = Presence.connected("Jane Doe (ACME IT)", (), paused=True)
    assert describe(paused) == "Jane Doe (ACME IT) is connected (paused). They can: chat only."
    assert any(item.text == "Resume" for item in tray_menu(paused))
    assert tray_tooltip(paused).startswith("Deskhand — Jane Doe")
