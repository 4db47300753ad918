"""UserSession: the user's side of an open session, and where consent is enforced.

The user's grants live here, on the user's machine; the technician's app is
never trusted to limit itself (security.md 4.1). Screen sharing, input,
clipboard and files ask :meth:`UserSession.allows` before acting, and
listen for :class:`PresenceChanged` to start or stop.

Runs in the loop thread: call its methods there (the Qt bridge submits).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from client.core.presence import Presence
from common.errors import InvalidState, ProtocolError
from common.net.channel import SecureChannel
from common.net.session_events import ChatReceived, SessionOver
from common.protocol.messages import (
    CAPABILITIES,
    CapabilityGrant,
    CapabilityRequest,
    ChatText,
)
from common.session import SessionEnded, SessionEvent


__all__ = [
    "CapabilitiesAsked",
    "ChatReceived",
    "PresenceChanged",
    "SessionOver",
    "UserSession",
    "UserSessionEvent",
]


@dataclasses.dataclass(frozen=True)
class PresenceChanged:
    presence: Presence


@dataclasses.dataclass(frozen=True)
class CapabilitiesAsked:
    """The technician asks for capabilities the user has not granted."""

    requested: tuple[str, ...]


UserSessionEvent = PresenceChanged | CapabilitiesAsked | ChatReceived | SessionOver
Listener = Callable[[UserSessionEvent], None]


def _ordered(caps: set[str]) -> tuple[str, ...]:
    return tuple(c for c in CAPABILITIES if c in caps)


class UserSession:
    """Grants, pause, chat and stop for one open session on the user's side."""

    def __init__(
        self, channel: SecureChannel, *, wall_clock_ms: Callable[[], int] | None = None
    ) -> None:
        self._channel = channel
        self._clock_ms = wall_clock_ms or (lambda: int(time.time() * 1000))
        self._granted = set(channel.granted)
        self._paused = False
        self._chat_id = 0
        self._listeners: list[Listener] = []
        self._over: SessionOver | None = None
        tech = channel.technician
        self.technician = f"{tech.name} ({tech.org})" if tech is not None else "Technician"
        channel.add_listener(self._on_channel_event)

    # --- state ---

    @property
    def granted(self) -> tuple[str, ...]:
        """What the user has granted (whether or not paused)."""
        return _ordered(self._granted)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def is_over(self) -> bool:
        return self._over is not None

    def allows(self, capability: str) -> bool:
        """The enforcement point: may the technician use this capability right now?"""
        return self._over is None and not self._paused and capability in self._granted

    @property
    def presence(self) -> Presence:
        if self._over is not None:
            return Presence()
        return Presence.connected(self.technician, self.granted, paused=self._paused)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: UserSessionEvent) -> None:
        for listener in self._listeners:
            listener(event)

    # --- the user's intents ---

    def set_capability(self, capability: str, on: bool) -> None:
        """Grant or revoke one capability; revocation takes effect at once."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        if on:
            self._granted.add(capability)
        else:
            self._granted.discard(capability)
        self._announce()

    def grant(self, capabilities: tuple[str, ...]) -> None:
        """Add capabilities (the user's answer to a request)."""
        for capability in capabilities:
            if capability not in CAPABILITIES:
                raise ValueError(f"unknown capability {capability!r}")
        self._granted.update(capabilities)
        self._announce()

    def set_paused(self, paused: bool) -> None:
        """Pause: nothing is shared and no input is taken until resumed."""
        self._paused = paused
        self._announce()

    def send_chat(self, text: str) -> ChatText:
        if self._over is not None:
            raise InvalidState("the session has ended")
        self._chat_id += 1
        message = ChatText(self._chat_id, text, self._clock_ms())
        self._channel.send_nowait(message)
        return message

    async def stop(self) -> None:
        """End everything at once: grants go first, then the session closes."""
        self._granted.clear()
        if self._over is None:
            # Tell the technician first: everything is revoked (this goes out
            # ahead of the CLOSE), then end the session.
            self._announce()
        await self._channel.close("The user stopped the session.")

    def _announce(self) -> None:
        effective = () if self._paused else self.granted
        if self._over is None:
            try:
                self._channel.send_nowait(CapabilityGrant(effective))
            except (InvalidState, ProtocolError):
                pass  # the session is closing; the grant dies with it
        self._emit(PresenceChanged(self.presence))

    # --- from the technician ---

    def _on_channel_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self._granted.clear()
            self._over = SessionOver(event.reason, event.clean)
            self._emit(PresenceChanged(Presence()))
            self._emit(self._over)
            return
        message = event.message
        if isinstance(message, CapabilityRequest):
            missing = tuple(c for c in message.capabilities if c not in self._granted)
            if missing:
                self._emit(CapabilitiesAsked(missing))
        elif isinstance(message, ChatText):
            self._emit(ChatReceived(message.text, message.sent_at_ms))
