"""What the user must always be able to see: who is connected and what they may do.

Pure: the tray icon, its menu and the session bar render a
:class:`Presence` snapshot; the menu is rebuilt from the current snapshot
each time it opens (aesthetics.md P14).
"""

from __future__ import annotations

import dataclasses
import enum


__all__ = ["MenuItem", "Presence", "PresenceState", "tray_menu", "tray_tooltip"]


class PresenceState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"
    VIEWED = "viewed"
    CONTROLLED = "controlled"


@dataclasses.dataclass(frozen=True)
class Presence:
    """A frozen snapshot of the session as the user should see it.

    Attributes:
        state: idle, waiting for a technician, connected (viewed) or controlled.
        technician: "Jane Doe (ACME IT)" once verified, else "".
        granted: capabilities granted right now.
        paused: the user paused the session (nothing is shared meanwhile).
        queue_position: place in the queue while waiting, 0 when unknown.
    """

    state: PresenceState = PresenceState.IDLE
    technician: str = ""
    granted: tuple[str, ...] = ()
    paused: bool = False
    queue_position: int = 0

    @classmethod
    def connected(
        cls, technician: str, granted: tuple[str, ...], *, paused: bool = False
    ) -> Presence:
        state = PresenceState.CONTROLLED if "control" in granted else PresenceState.VIEWED
        return cls(state, technician, granted, paused)

    def describe(self) -> str:
        """One sentence: who is connected and what they may do."""
        if self.state is PresenceState.IDLE:
            return "No one is connected."
        if self.state is PresenceState.WAITING:
            where = (
                f" You are number {self.queue_position} in the queue."
                if self.queue_position
                else ""
            )
            return f"Waiting for a technician.{where}"
        rights = ", ".join(self.granted) if self.granted else "chat only"
        paused = " (paused)" if self.paused else ""
        return f"{self.technician} is connected{paused}. They can: {rights}."


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
    items = [MenuItem("", presence.describe(), enabled=False)]
    if presence.state is PresenceState.IDLE:
        items.append(MenuItem("request", "Request help…"))
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
    return f"Deskhand — {presence.describe()}"
