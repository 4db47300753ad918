"""The consent gate for remote control: what may reach the user's desktop (pure).

Every input message from the technician passes through :class:`ControlGate`
before anything is injected. The technician's app is never trusted to
limit itself (security.md 4.1): the checks live here, on the user's side.

::

                     grant "control"                    the user's own input
     OFF ───────────────────────────────> ACTIVE ───────────────────────────> USER_ACTIVE
      ^ <──── grant without "control" ────  │ ^ <──── quiet for user_pause ──────┘
      │                                     │ │
      │             paused / dialog open v │ resumed / dialog closed
      │                                   PAUSED
      │
     STOPPED <── stop() (the stop hotkey or Stop) from any state; a new grant -> ACTIVE
     ENDED   <── close() (session over, connection dropped) from any state; final

The state is derived from these facts (control granted, read from the
capability authority; stopped by the user; the session paused by the user,
a Deskhand dialog open or the link down; the user active until t) in that
order of precedence, so overlapping causes resolve
without extra states.

Rules:

- Input is injected only in ACTIVE. In any other state a press, move, wheel
  or text is refused and counted, and the technician is told why with a
  :class:`~common.protocol.messages.ControlStatus` (on every state change,
  and at most every ``notice_interval`` while refusals continue).
- The gate tracks every key and button the technician holds. Leaving ACTIVE
  (for any reason) releases all of them, last pressed first: nothing is left
  stuck down when the user takes over, revokes control or the link drops.
- A release of something held is always passed on; a release of something
  not held is dropped silently (it was released already).
- A key press carries the technician's modifier mask; a held modifier that
  the mask no longer includes is released first (its release was lost).
- At most ``max_held`` keys and buttons may be held at once.

After every call, the caller must drain :meth:`actions_to_inject` (in
order, into the injector), :meth:`messages_to_send` (to the technician) and
:meth:`events_received` (for the session record), and call :meth:`tick` by
:meth:`next_deadline`.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from common.capability import Capability
from common.errors import InvalidState
from common.protocol.messages import (
    ALT_MASK,
    ALTGR_MASK,
    CONTROL_MASK,
    SHIFT_MASK,
    SUPER_MASK,
    AppMessage,
    ControlState,
    ControlStatus,
    KeyEvent,
    PointerButton,
    PointerMove,
    ReleaseAll,
    TextInput,
    Wheel,
)


__all__ = [
    "DEFAULT_STOP_HOTKEY",
    "MODIFIER_KEYSYMS",
    "ControlGate",
    "GateConfig",
    "GateEvent",
    "GrantReader",
    "Hotkey",
    "HotkeyDetector",
    "InputMessage",
]

InputMessage = PointerMove | PointerButton | Wheel | KeyEvent | TextInput | ReleaseAll

XK_END = 0xFF57

# Modifier keysyms and the X mask bit each one sets.
MODIFIER_KEYSYMS: dict[int, int] = {
    0xFFE1: SHIFT_MASK,  # Shift_L
    0xFFE2: SHIFT_MASK,  # Shift_R
    0xFFE3: CONTROL_MASK,  # Control_L
    0xFFE4: CONTROL_MASK,  # Control_R
    0xFFE7: ALT_MASK,  # Meta_L
    0xFFE8: ALT_MASK,  # Meta_R
    0xFFE9: ALT_MASK,  # Alt_L
    0xFFEA: ALT_MASK,  # Alt_R
    0xFFEB: SUPER_MASK,  # Super_L
    0xFFEC: SUPER_MASK,  # Super_R
    0xFE03: ALTGR_MASK,  # ISO_Level3_Shift
    0xFF7E: ALTGR_MASK,  # Mode_switch
}


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Tuning of the gate.

    Attributes:
        user_pause: seconds of quiet after the user's last input before
            remote input resumes.
        notice_interval: the least time between two ControlStatus notices
            that only report refused input.
        max_held: the most keys plus buttons the technician may hold.
    """

    user_pause: float = 1.0
    notice_interval: float = 1.0
    max_held: int = 32

    def __post_init__(self) -> None:
        if self.user_pause < 0 or self.notice_interval <= 0 or self.max_held < 1:
            raise ValueError("invalid gate configuration")


@dataclasses.dataclass(frozen=True)
class GateEvent:
    """A change of the control state, for the session record.

    Attributes:
        state: the new state.
        previous: the state before.
        cause: "granted", "revoked", "user_input", "user_quiet", "paused",
            "resumed", "dialog_opened", "dialog_closed", "stopped" or "ended".
        released: how many keys and buttons were released on the way.
    """

    state: ControlState
    previous: ControlState
    cause: str
    released: int = 0


class GrantReader(Protocol):
    """What the gate reads from the capability authority (it keeps no copy)."""

    @property
    def granted(self) -> tuple[Capability, ...]: ...

    @property
    def paused(self) -> bool: ...


class ControlGate:
    """Consent and enforcement for remote input (see the module docstring)."""

    def __init__(
        self,
        config: GateConfig | None = None,
        *,
        grants: GrantReader,
        now: float = 0.0,
    ) -> None:
        self._config = config or GateConfig()
        self._grants = grants
        self._stopped = False
        self._dialog = False
        self._link_down = False
        # What sync() saw last: only to name the cause of a change.
        self._seen = (self._control_granted(), grants.paused)
        self._ended = False
        self._user_until = float("-inf")
        self._state = self._derive(now)
        self._keys: dict[int, None] = {}  # held keysyms, in press order
        self._buttons: dict[int, None] = {}
        self._refused = 0
        self._last_notice = float("-inf")
        self._actions: list[InputMessage] = []
        self._outgoing: list[AppMessage] = []
        self._events: list[GateEvent] = []

    # --- state ---

    @property
    def state(self) -> ControlState:
        return self._state

    @property
    def held_keys(self) -> tuple[int, ...]:
        """Keysyms the technician holds, in press order."""
        return tuple(self._keys)

    @property
    def held_buttons(self) -> tuple[int, ...]:
        return tuple(self._buttons)

    def _derive(self, now: float) -> ControlState:
        if self._ended:
            return ControlState.ENDED
        if not self._control_granted():
            return ControlState.STOPPED if self._stopped else ControlState.OFF
        if self._dialog or self._link_down or self._grants.paused:
            return ControlState.PAUSED
        if now < self._user_until:
            return ControlState.USER_ACTIVE
        return ControlState.ACTIVE

    def _update(self, now: float, cause: str) -> None:
        new = self._derive(now)
        if new is self._state:
            return
        previous, self._state = self._state, new
        released = self._release_all() if previous is ControlState.ACTIVE else 0
        self._events.append(GateEvent(new, previous, cause, released))
        self._outgoing.append(ControlStatus(new, self._refused))
        self._refused = 0
        self._last_notice = now

    def _release_all(self) -> int:
        count = len(self._keys) + len(self._buttons)
        for keysym in reversed(list(self._keys)):
            self._actions.append(KeyEvent(keysym, False, 0))
        for button in reversed(list(self._buttons)):
            self._actions.append(PointerButton(button, False))
        self._keys.clear()
        self._buttons.clear()
        return count

    # --- inputs ---

    def _control_granted(self) -> bool:
        return Capability.CONTROL in self._grants.granted

    def sync(self, now: float) -> None:
        """The authority's grants or pause may have changed: follow them."""
        self._check_open()
        seen = (self._control_granted(), self._grants.paused)
        if seen == self._seen:
            return
        (was_granted, _), self._seen = self._seen, seen
        granted, paused = seen
        if granted and not was_granted:
            self._stopped = False
        if granted != was_granted:
            cause = "granted" if granted else "revoked"
        else:
            cause = "paused" if paused else "resumed"
        self._update(now, cause)

    def stop(self, now: float) -> None:
        """The user took control back (hotkey or Stop).

        The caller revokes "control" in the authority; this remembers that it
        was the user's stop (STOPPED, not OFF) until control is granted again.
        """
        self._check_open()
        self._stopped = True
        self._seen = (self._control_granted(), self._grants.paused)
        self._update(now, "stopped")

    def set_dialog_open(self, is_open: bool, now: float) -> None:
        """A Deskhand consent dialog or menu is open (remote input must not reach it)."""
        self._check_open()
        if is_open == self._dialog:
            return
        self._dialog = is_open
        self._update(now, "dialog_opened" if is_open else "dialog_closed")

    def set_link_down(self, down: bool, now: float) -> None:
        """The link to the technician dropped (the session waits to resume) or is back.

        Nothing the technician holds may stay pressed while nobody can release it.
        """
        self._check_open()
        if down == self._link_down:
            return
        self._link_down = down
        self._update(now, "link_lost" if down else "link_restored")

    def refuse(self, now: float) -> None:
        """Input was dropped before it got here (the authority's gate): count it, tell why."""
        if not self._ended:
            self._refuse(now)

    def receive_local_input(self, now: float) -> None:
        """The user moved, clicked or typed (not us): pause remote input."""
        if self._ended:
            return
        self._user_until = max(self._user_until, now + self._config.user_pause)
        self._update(now, "user_input")

    def close(self, now: float) -> None:
        """The session ended or the connection dropped: release everything, for good."""
        if self._ended:
            return
        if self._state is not ControlState.ACTIVE:
            self._release_all()  # nothing should be held, but be sure
        self._ended = True
        self._update(now, "ended")

    def _check_open(self) -> None:
        if self._ended:
            raise InvalidState("the control session has ended")

    def tick(self, now: float) -> None:
        """Let time pass: the user-activity pause ends, pending notices go out."""
        self._update(now, "user_quiet")
        if self._refused and now >= self._last_notice + self._config.notice_interval:
            self._notice(now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must be called next (None: not until something happens)."""
        deadlines = []
        if self._state is ControlState.USER_ACTIVE:
            deadlines.append(self._user_until)
        if self._refused:
            deadlines.append(self._last_notice + self._config.notice_interval)
        return min(deadlines) if deadlines else None

    def _notice(self, now: float) -> None:
        self._outgoing.append(ControlStatus(self._state, self._refused))
        self._refused = 0
        self._last_notice = now

    def _refuse(self, now: float) -> bool:
        self._refused += 1
        if now >= self._last_notice + self._config.notice_interval:
            self._notice(now)
        return False

    def receive_input(self, msg: InputMessage, now: float) -> bool:
        """One input message from the technician. True if it was accepted."""
        self._update(now, "user_quiet")
        if isinstance(msg, ReleaseAll):
            self._release_all()
            return True
        if isinstance(msg, PointerButton) and not msg.pressed:
            if msg.button in self._buttons:
                del self._buttons[msg.button]
                self._actions.append(msg)
            return True
        if isinstance(msg, KeyEvent) and not msg.pressed:
            if msg.keysym in self._keys:
                del self._keys[msg.keysym]
                self._actions.append(msg)
            return True
        if self._state is not ControlState.ACTIVE:
            return self._refuse(now)
        held = len(self._keys) + len(self._buttons)
        if isinstance(msg, PointerButton):
            if msg.button in self._buttons:
                return True  # already down
            if held >= self._config.max_held:
                return self._refuse(now)
            self._buttons[msg.button] = None
        elif isinstance(msg, KeyEvent):
            if msg.keysym not in MODIFIER_KEYSYMS:
                self._release_stale_modifiers(msg.modifiers)
            if msg.keysym not in self._keys:
                if held >= self._config.max_held:
                    return self._refuse(now)
                self._keys[msg.keysym] = None
        self._actions.append(msg)
        return True

    def _release_stale_modifiers(self, mask: int) -> None:
        for keysym in list(self._keys):
            bit = MODIFIER_KEYSYMS.get(keysym)
            if bit is not None and not mask & bit:
                del self._keys[keysym]
                self._actions.append(KeyEvent(keysym, False, 0))

    # --- outputs ---

    def actions_to_inject(self) -> list[InputMessage]:
        """Input to inject now, in order (including synthetic releases)."""
        actions, self._actions = self._actions, []
        return actions

    def messages_to_send(self) -> list[AppMessage]:
        """ControlStatus notices for the technician."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def events_received(self) -> list[GateEvent]:
        """State changes, for the session record."""
        events, self._events = self._events, []
        return events


@dataclasses.dataclass(frozen=True)
class Hotkey:
    """A key plus the modifiers that must be held with it (X mask bits)."""

    keysym: int
    modifiers: int


# security.md 4.2: a global hotkey ends control at once.
DEFAULT_STOP_HOTKEY = Hotkey(XK_END, CONTROL_MASK | ALT_MASK | SHIFT_MASK)


class HotkeyDetector:
    """Spots the stop hotkey in the user's own key events (pure).

    Feed it only local input (see :mod:`client.core.control.activity`), so
    the technician cannot trigger or mask it.
    """

    def __init__(self, hotkey: Hotkey = DEFAULT_STOP_HOTKEY) -> None:
        self._hotkey = hotkey
        self._held: dict[int, int] = {}

    def feed(self, keysym: int, pressed: bool) -> bool:
        """One local key event; True when it completes the hotkey."""
        bit = MODIFIER_KEYSYMS.get(keysym)
        if bit is not None:
            if pressed:
                self._held[keysym] = bit
            else:
                self._held.pop(keysym, None)
            return False
        if not pressed or keysym != self._hotkey.keysym:
            return False
        mask = 0
        for held_bit in self._held.values():
            mask |= held_bit
        return mask == self._hotkey.modifiers
