"""The words of the tray menu, its tooltip and the session bar's status line.

Pure: rendered from a :class:`~client.core.presence.Presence` snapshot.
"""

from __future__ import annotations

import dataclasses

from client.core.presence import Presence, PresenceState


__all__ = ["MenuItem", "describe", "tray_menu", "tray_tooltip"]


def describe(presence: Presence) -> str:
    """One sentence: who is connected and what they may do."""
    if presence.state is PresenceState.IDLE:
        return "No one is connected."
    if presence.state is PresenceState.WAITING:
        where = (
            f" You are number {presence.queue_position} in the queue."
            if presence.queue_position
            else ""
        )
        return f"Waiting for a technician.{where}"
    rights = ", ".join(presence.granted) if presence.granted else "chat only"
    paused = " (paused)" if presence.paused else ""
    if presence.reconnecting:
        paused = " (reconnecting…)"
    return f"{presence.technician} is connected{paused}. They can: {rights}."


@dataclasses.dataclass(frozen=True)
class MenuItem:
    """One entry of the tray menu.

    Attributes:
        action: what choosing it asks for ("request", "cancel", "stop", ...), or "" for a label.
        text: the visible text.
        enabled: whether it can be chosen.
        checked: None for plain items, else the check state of a toggle.
    """

    action: str
    text: str
    enabled: bool = True
    checked: bool | None = None


def tray_menu(presence: Presence) -> list[MenuItem]:
    """The tray menu for a snapshot; Stop is always first while anything is shared."""
    items = [MenuItem("", describe(presence), enabled=False)]
    if presence.state is PresenceState.IDLE:
        items.append(MenuItem("request", "Request help…"))
        items.append(MenuItem("code", "Show a code for phone support…"))
    elif presence.state is PresenceState.WAITING:
        items.append(MenuItem("show", "Show my request"))
        items.append(MenuItem("cancel", "Cancel my request"))
    else:
        items.insert(0, MenuItem("stop", "Stop — end the session now"))
        items.append(MenuItem("pause", "Resume" if presence.paused else "Pause", checked=None))
        items.append(MenuItem("chat", "Open chat"))
    items.append(MenuItem("quit", "Quit Deskhand"))
    return items


def tray_tooltip(presence: Presence) -> str:
    return f"Deskhand — {describe(presence)}"
