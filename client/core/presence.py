"""What the user must always be able to see: who is connected and what they may do.

Pure data: the tray icon, its menu and the session bar render a
:class:`Presence` snapshot (the words are in :mod:`client.qt.tray_menu`);
the menu is rebuilt from the current snapshot each time it opens
(aesthetics.md P14).
"""

from __future__ import annotations

import dataclasses
import enum


__all__ = ["Presence", "PresenceState"]


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
        reconnecting: the link dropped and the session waits for it.
    """

    state: PresenceState = PresenceState.IDLE
    technician: str = ""
    granted: tuple[str, ...] = ()
    paused: bool = False
    queue_position: int = 0
    reconnecting: bool = False

    @classmethod
    def connected(
        cls,
        technician: str,
        granted: tuple[str, ...],
        *,
        paused: bool = False,
        reconnecting: bool = False,
    ) -> Presence:
        state = PresenceState.CONTROLLED if "control" in granted else PresenceState.VIEWED
        return cls(state, technician, granted, paused, reconnecting=reconnecting)
