"""TechnicianSession: the technician's side of an open session.

The technician sees what the user granted (the user's side enforces it),
asks for more, chats and ends the session. Runs in the loop thread.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from common.errors import InvalidState
from common.net.channel import SecureChannel
from common.net.session_events import ChatReceived, SessionOver
from common.protocol.messages import CAPABILITIES, CapabilityGrant, CapabilityRequest, ChatText
from common.session import MessageReceived, SessionEnded, SessionEvent


__all__ = [
    "ChatReceived",
    "GrantChanged",
    "SessionOver",
    "TechnicianSession",
    "TechnicianSessionEvent",
]


@dataclasses.dataclass(frozen=True)
class GrantChanged:
    """What the user allows now (empty while the user has paused)."""

    granted: tuple[str, ...]


TechnicianSessionEvent = GrantChanged | ChatReceived | SessionOver
Listener = Callable[[TechnicianSessionEvent], None]


class TechnicianSession:
    def __init__(
        self, channel: SecureChannel, *, wall_clock_ms: Callable[[], int] | None = None
    ) -> None:
        self._channel = channel
        self._clock_ms = wall_clock_ms or (lambda: int(time.time() * 1000))
        self._granted = tuple(channel.granted)
        self._chat_id = 0
        self._listeners: list[Listener] = []
        self._over: SessionOver | None = None
        self.sas = channel.sas
        self.device = channel.device
        channel.add_listener(self._on_channel_event)

    @property
    def granted(self) -> tuple[str, ...]:
        return self._granted

    @property
    def is_over(self) -> bool:
        return self._over is not None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: TechnicianSessionEvent) -> None:
        for listener in self._listeners:
            listener(event)

    def request(self, capabilities: tuple[str, ...]) -> None:
        """Ask the user for capabilities; the user decides."""
        unknown = set(capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capability {sorted(unknown)[0]!r}")
        self._channel.send_nowait(CapabilityRequest(capabilities))

    def send_chat(self, text: str) -> ChatText:
        if self._over is not None:
            raise InvalidState("the session has ended")
        self._chat_id += 1
        message = ChatText(self._chat_id, text, self._clock_ms())
        self._channel.send_nowait(message)
        return message

    async def end(self, reason: str = "The technician ended the session.") -> None:
        await self._channel.close(reason)

    def _on_channel_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self._granted = ()
            self._over = SessionOver(event.reason, event.clean)
            self._emit(self._over)
            return
        assert isinstance(event, MessageReceived)
        message = event.message
        if isinstance(message, CapabilityGrant):
            self._granted = message.capabilities
            self._emit(GrantChanged(message.capabilities))
        elif isinstance(message, ChatText):
            self._emit(ChatReceived(message.text, message.sent_at_ms))
