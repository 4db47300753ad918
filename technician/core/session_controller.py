"""TechnicianSessionController: the technician's side of one open session, and its owner.

One object per open session, in the loop thread. The user's side enforces
every grant; this side follows what the user announced, so that the console
shows the truth and does not send what would be refused. It owns:

- the lifecycle, as an explicit :class:`SessionState`
  (ACTIVE, RECONNECTING, ENDED);
- the grants as the user last announced them (:class:`~common.protocol.messages.CapabilityGrant`)
  and the user's control status;
- the features: the screen receiver, input, clipboard (the shared
  :class:`~common.clipboard.ClipboardSync`) and chat.

Messages are routed by type to the one feature that handles them; a
feature that raises is logged and the session ends cleanly. Typed events
(:data:`TechnicianSessionEvent`) go to one callback; the words are the UI's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from common.capability import Capability, ordered
from common.clipboard import CallbackClipboard, ClipboardSync
from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.net.session_events import (
    ChatReceived,
    ClipboardMoved,
    ClipboardWrite,
    EndReason,
    Reconnected,
    Reconnecting,
    SessionClosed,
    end_reason_of,
)
from common.protocol.messages import (
    AppMessage,
    AuditEvent,
    CapabilityDeclined,
    CapabilityGrant,
    CapabilityRequest,
    ChatText,
    ClipboardPolicy,
    ClipboardText,
    ControlStatus,
)
from common.session import LinkLost, LinkRestored, MessageReceived, SessionEnded, SessionEvent
from technician.core.screen.receiver import SCREEN_MESSAGES, ScreenReceiver


__all__ = [
    "ChatReceived",
    "ClipboardMoved",
    "ClipboardWrite",
    "ControlStatusChanged",
    "GrantsChanged",
    "Reconnected",
    "Reconnecting",
    "RequestDeclined",
    "SessionClosed",
    "SessionState",
    "TechnicianSessionController",
    "TechnicianSessionEvent",
]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0


class SessionState(enum.Enum):
    ACTIVE = "active"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


@dataclasses.dataclass(frozen=True)
class GrantsChanged:
    """What the user allows now (empty while the user has paused)."""

    granted: tuple[Capability, ...]


@dataclasses.dataclass(frozen=True)
class ControlStatusChanged:
    status: ControlStatus


@dataclasses.dataclass(frozen=True)
class RequestDeclined:
    """The user declined these; asking again is refused for ``retry_after`` seconds."""

    capabilities: tuple[Capability, ...]
    retry_after: int


TechnicianSessionEvent = (
    GrantsChanged
    | ControlStatusChanged
    | RequestDeclined
    | ChatReceived
    | ClipboardWrite
    | ClipboardMoved
    | Reconnecting
    | Reconnected
    | SessionClosed
)


class TechnicianSessionController:
    """One open session on the technician's side (see the module docstring).

    Args:
        channel: the open secure channel.
        on_event: gets every :data:`TechnicianSessionEvent`, in the loop thread.
        receiver: the screen receiver (its decoder starts with :meth:`start_screen`).
        clipboard_enabled: the technician's clipboard switch at the start.
    """

    def __init__(
        self,
        channel: SecureChannel,
        on_event: Callable[[TechnicianSessionEvent], None],
        *,
        receiver: ScreenReceiver | None = None,
        clipboard_enabled: bool = True,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.channel = channel
        self._on_event = on_event
        self._wall_clock_ms = wall_clock_ms
        self._state = SessionState.ACTIVE
        self._own_reason: EndReason | None = None
        self._granted = ordered(channel.granted)
        self._control: ControlStatus | None = None
        self._chat_id = 0
        self.receiver = receiver or ScreenReceiver()
        self._screen_started = False
        self._clipboard_enabled = clipboard_enabled
        self._clipboard = ClipboardSync(
            CallbackClipboard(lambda text: self._emit(ClipboardWrite(text))),
            may_send=self._clipboard_allowed,
            may_receive=self._clipboard_allowed,
        )
        self.sas = channel.sas
        self.device = channel.device
        self._close_task: asyncio.Task[None] | None = None
        self._routes: dict[type[AppMessage], Callable[[Any], None]] = {
            CapabilityGrant: self._on_grant,
            CapabilityDeclined: self._on_declined,
            ControlStatus: self._on_control_status,
            ChatText: self._on_chat,
            ClipboardText: self._on_clipboard,
            ClipboardPolicy: self._on_clipboard,
            AuditEvent: lambda _msg: None,  # the session record comes with its own issue
        }
        for screen_type in SCREEN_MESSAGES:
            self._routes[screen_type] = self.receiver.receive
        channel.add_listener(self._on_channel_event)
        self._flush_clipboard()
        if channel.ended is not None:
            self._on_channel_event(channel.ended)

    # --- state ---

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def granted(self) -> tuple[Capability, ...]:
        return self._granted

    @property
    def control_status(self) -> ControlStatus | None:
        return self._control

    @property
    def clipboard_enabled(self) -> bool:
        return self._clipboard_enabled

    def _clipboard_allowed(self) -> bool:
        return self._clipboard_enabled and Capability.CLIPBOARD in self._granted

    # --- the technician's intents ---

    def start_screen(self) -> None:
        """Start decoding the screen (after the viewer listens to the receiver)."""
        if not self._screen_started and self._state is not SessionState.ENDED:
            self._screen_started = True
            self.receiver.bind(self.channel)

    def request(self, capabilities: tuple[Capability, ...]) -> None:
        """Ask the user for capabilities; the user decides."""
        self._send(CapabilityRequest(tuple(ordered(capabilities))))

    def send_chat(self, text: str) -> bool:
        if self._state is SessionState.ENDED:
            return False
        self._chat_id += 1
        return self._send(ChatText(self._chat_id, text, self._wall_clock_ms()))

    def send_input(self, msg: AppMessage) -> None:
        """One input message; the user's side decides whether it applies."""
        if Capability.CONTROL in self._granted:
            self._send(msg)

    def request_keyframe(self) -> None:
        if self._screen_started:
            self.receiver.request_keyframe("The technician asked for a refresh.")

    def set_clipboard_enabled(self, enabled: bool) -> None:
        self._clipboard_enabled = enabled
        self._clipboard.refresh()
        self._flush_clipboard()

    def clipboard_changed(self, text: str) -> None:
        """The technician's clipboard holds new text."""
        if self._state is not SessionState.ENDED:
            self._clipboard.local_changed(text)
            self._flush_clipboard()

    async def end(self, reason: EndReason = EndReason.TECHNICIAN_ENDED) -> None:
        """End the session with an authenticated CLOSE."""
        if self._state is SessionState.ENDED:
            return
        self._own_reason = reason
        await self.channel.close(reason.value, timeout=_CLOSE_TIMEOUT)
        if self.state is not SessionState.ENDED:
            self._finish(SessionClosed(reason, by_peer=False))

    # --- from the user ---

    def _on_channel_event(self, event: SessionEvent) -> None:
        try:
            if isinstance(event, MessageReceived):
                if self._state is not SessionState.ENDED:
                    handler = self._routes.get(type(event.message))
                    if handler is not None:
                        handler(event.message)
            elif isinstance(event, SessionEnded):
                reason = end_reason_of(event, self._own_reason)
                self._finish(SessionClosed(reason, event.by_peer, event.reason))
            elif isinstance(event, LinkLost | LinkRestored):
                self._on_link_event(event)
        except Exception:
            logger.exception("a session feature failed; ending the session")
            self._own_reason = EndReason.INTERNAL_ERROR
            self._finish(SessionClosed(EndReason.INTERNAL_ERROR, by_peer=False))
            if self.channel.ended is None:
                self._close_task = asyncio.get_running_loop().create_task(
                    self.channel.close(EndReason.INTERNAL_ERROR.value, timeout=_CLOSE_TIMEOUT)
                )

    def _on_link_event(self, event: LinkLost | LinkRestored) -> None:
        if isinstance(event, LinkLost):
            if self._state is SessionState.ACTIVE:
                self._state = SessionState.RECONNECTING
                self._emit(Reconnecting(event.resume_deadline))
        elif self._state is SessionState.RECONNECTING:
            self._state = SessionState.ACTIVE
            self._emit(Reconnected())

    def _finish(self, closed: SessionClosed) -> None:
        if self._state is SessionState.ENDED:
            return
        self._state = SessionState.ENDED
        self._granted = ()
        self.receiver.session_ended()
        self._emit(closed)

    def _on_grant(self, msg: CapabilityGrant) -> None:
        try:
            self._granted = ordered(msg.capabilities)
        except ValueError:
            return
        self._clipboard.refresh()
        self._flush_clipboard()
        self._emit(GrantsChanged(self._granted))

    def _on_declined(self, msg: CapabilityDeclined) -> None:
        with contextlib.suppress(ValueError):
            self._emit(RequestDeclined(ordered(msg.capabilities), msg.retry_after))

    def _on_control_status(self, msg: ControlStatus) -> None:
        self._control = msg
        self._emit(ControlStatusChanged(msg))

    def _on_chat(self, msg: ChatText) -> None:
        self._emit(ChatReceived(msg.text, msg.sent_at_ms))

    def _on_clipboard(self, msg: ClipboardText | ClipboardPolicy) -> None:
        self._clipboard.receive(msg)
        self._flush_clipboard()

    def _flush_clipboard(self) -> None:
        self._clipboard.refresh()
        for msg in self._clipboard.messages_to_send():
            self._send(msg)
        for transfer in self._clipboard.events_received():
            self._emit(ClipboardMoved(transfer))

    def _send(self, msg: AppMessage) -> bool:
        if not self.channel.session.is_open:
            return False
        try:
            self.channel.send_nowait(msg)
        except DeskhandError:
            return False
        return True

    def _emit(self, event: TechnicianSessionEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            logger.exception("a session-event listener failed")
