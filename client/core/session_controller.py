"""UserSessionController: the user's side of one open session, and its only owner.

One object per open session, in the channel's loop thread. It owns:

- the lifecycle, as an explicit :class:`SessionState`::

      ACTIVE <──set_paused──> PAUSED
        │  ^                    │
        │  └──LinkRestored──┐   │ (the link drops in either state)
        v                   │   v
      RECONNECTING ─────────┴──────> ENDED  (Stop, the technician's CLOSE,
                                            a security failure, no resume in time)

- the grants: one :class:`~client.core.authority.CapabilityAuthority`;
  every inbound message passes its gate before it is routed;
- the features: screen (:class:`~client.core.features.ScreenFeature`),
  control (:class:`~client.core.control.service.ControlService`),
  clipboard (:class:`~client.core.features.ClipboardFeature`) and chat;
- mid-session consent prompts, rate-limited (:class:`~client.core.consent_limiter.ConsentLimiter`).

Messages are routed by type to the one feature that handles them. A
feature that raises is logged and the session ends cleanly
(:attr:`EndReason.INTERNAL_ERROR`); it never silently breaks the others.
Only this class sends :class:`~common.protocol.messages.CapabilityGrant`.

Everything the UI needs comes out as typed events (:data:`UserSessionEvent`)
to one callback; the words are the UI's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from client.core.authority import CapabilityAuthority, Refusal
from client.core.consent_limiter import ConsentLimiter
from client.core.control.gate import GateEvent
from client.core.control.injector import InjectorUnavailable
from client.core.control.service import INPUT_MESSAGES
from client.core.features import ClipboardFeature, ScreenFeature, SharerFactory
from client.core.presence import Presence
from common.capability import Capability, ordered
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
    ControlState,
    FrameAck,
    KeyframeRequest,
    ScreenStopReason,
    SelectMonitor,
)
from common.session import LinkLost, LinkRestored, MessageReceived, SessionEnded, SessionEvent


__all__ = [
    "CapabilitiesAsked",
    "ChatReceived",
    "ChatSent",
    "ClipboardMoved",
    "ClipboardWrite",
    "ControlFactory",
    "ControlPort",
    "ControlTakenBack",
    "Feature",
    "FeatureUnavailable",
    "InboundRefused",
    "PresenceChanged",
    "Reconnected",
    "Reconnecting",
    "SessionClosed",
    "SessionState",
    "UserSessionController",
    "UserSessionEvent",
]

logger = logging.getLogger(__name__)


class SessionState(enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


class Feature(enum.Enum):
    SCREEN = "screen"
    CONTROL = "control"


@dataclasses.dataclass(frozen=True)
class PresenceChanged:
    presence: Presence


@dataclasses.dataclass(frozen=True)
class CapabilitiesAsked:
    """The technician asks for more; show (or grow) the one prompt.

    Attributes:
        capabilities: everything the open prompt asks for now.
        opened: the prompt is new (else it was open and grew).
        notify: also show a notification (these are capped).
    """

    capabilities: tuple[Capability, ...]
    opened: bool
    notify: bool


@dataclasses.dataclass(frozen=True)
class ChatSent:
    text: str


@dataclasses.dataclass(frozen=True)
class ControlTakenBack:
    """Remote control stopped because the user took it back."""


@dataclasses.dataclass(frozen=True)
class FeatureUnavailable:
    """A feature cannot run on this computer; ``detail`` is the technical cause."""

    feature: Feature
    detail: str


@dataclasses.dataclass(frozen=True)
class InboundRefused:
    """A message from the technician was dropped by the gate (for the record)."""

    message_type: str
    refusal: Refusal
    needs: Capability | None


UserSessionEvent = (
    PresenceChanged
    | CapabilitiesAsked
    | ChatReceived
    | ChatSent
    | ClipboardWrite
    | ClipboardMoved
    | ControlTakenBack
    | FeatureUnavailable
    | InboundRefused
    | Reconnecting
    | Reconnected
    | SessionClosed
)


class ControlPort(Protocol):
    """What the controller needs from the control service (ControlService, or a fake)."""

    finished: asyncio.Event

    def start(self) -> None: ...
    def receive(self, msg: Any) -> None: ...
    def sync(self) -> None: ...
    def set_dialog_open(self, is_open: bool) -> None: ...
    def set_link_down(self, down: bool) -> None: ...
    def refused(self) -> None: ...
    def mark_stopped(self) -> None: ...
    def close(self) -> None: ...


class ControlFactory(Protocol):
    """Builds the control service (``ControlService.for_x11`` fits).

    Raises:
        InjectorUnavailable: input cannot be injected on this machine.
    """

    def __call__(
        self,
        channel: SecureChannel,
        authority: CapabilityAuthority,
        *,
        on_event: Callable[[GateEvent], None] | None,
        on_stop_requested: Callable[[], None] | None,
    ) -> ControlPort: ...


_CLOSE_TIMEOUT = 1.0  # a stalled link must not hold up the end of the session


class UserSessionController:
    """One open session on the user's side (see the module docstring).

    Args:
        channel: the open secure channel.
        on_event: gets every :data:`UserSessionEvent`, in the loop thread.
        sharer_factory: makes a screen sharer per period of sharing; None: never shared.
        control_factory: makes the control service; None: no remote input.
        dialog_open: a Deskhand dialog or menu is open right now.
        clock: monotonic seconds; wall_clock_ms: for chat time stamps.
    """

    def __init__(
        self,
        channel: SecureChannel,
        on_event: Callable[[UserSessionEvent], None],
        *,
        sharer_factory: SharerFactory | None = None,
        control_factory: ControlFactory | None = None,
        dialog_open: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        consent_limiter: ConsentLimiter | None = None,
    ) -> None:
        self.channel = channel
        self._on_event = on_event
        self._clock = clock
        self._wall_clock_ms = wall_clock_ms
        self._control_factory = control_factory
        self._dialog_open = dialog_open
        self._state = SessionState.ACTIVE
        self._own_reason: EndReason | None = None
        self._chat_id = 0
        self._finished = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self.authority = CapabilityAuthority(tuple(channel.granted))
        self._announced: tuple[Capability, ...] | None = None
        self._limiter = consent_limiter or ConsentLimiter()
        self._control: ControlPort | None = None
        self._screen = (
            ScreenFeature(channel, self.authority, sharer_factory, on_failed=self._screen_failed)
            if sharer_factory is not None
            else None
        )
        self._clipboard = ClipboardFeature(
            channel,
            self.authority,
            write=lambda text: self._emit(ClipboardWrite(text)),
            on_transfer=lambda transfer: self._emit(ClipboardMoved(transfer)),
        )
        tech = channel.technician
        self.technician = f"{tech.name} ({tech.org})" if tech is not None else ""
        self._routes: dict[type[AppMessage], Callable[[Any], None]] = {
            CapabilityRequest: self._on_request,
            ChatText: self._on_chat,
            AuditEvent: lambda _msg: None,  # the session record comes with its own issue
            ClipboardText: self._clipboard.receive,
            ClipboardPolicy: self._clipboard.receive,
            FrameAck: self._to_screen,
            KeyframeRequest: self._to_screen,
            SelectMonitor: self._to_screen,
        }
        for input_type in INPUT_MESSAGES:
            self._routes[input_type] = self._to_control
        channel.add_listener(self._on_channel_event)

    # --- state ---

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def presence(self) -> Presence:
        if self._state is SessionState.ENDED:
            return Presence()
        return Presence.connected(
            self.technician,
            self.authority.granted,
            paused=self.authority.paused,
            reconnecting=self._state is SessionState.RECONNECTING,
        )

    @property
    def sharing(self) -> bool:
        return self._screen is not None and self._screen.sharing

    @property
    def control_available(self) -> bool:
        return self._control is not None

    @property
    def clipboard_directions(self) -> tuple[bool, bool]:
        """(to the technician, from the technician)."""
        return self._clipboard.to_technician, self._clipboard.from_technician

    # --- lifecycle ---

    def start(self) -> None:
        """Start control (if any), announce the grants, share the screen if "view" was granted."""
        self._start_control()
        self._sync(ScreenStopReason.VIEW_REVOKED)
        if self.channel.ended is not None:  # it ended before we listened
            self._on_channel_event(self.channel.ended)

    def _start_control(self) -> None:
        if self._control_factory is None:
            return
        try:
            control = self._control_factory(
                self.channel,
                self.authority,
                on_event=self._on_gate_event,
                on_stop_requested=self._on_stop_hotkey,
            )
        except InjectorUnavailable as exc:
            self._emit(FeatureUnavailable(Feature.CONTROL, str(exc)))
            return
        except Exception as exc:
            logger.exception("starting remote control failed")
            self._emit(FeatureUnavailable(Feature.CONTROL, str(exc)))
            return
        self._control = control
        control.set_dialog_open(self._dialog_open)
        control.start()

    async def stop(self, reason: EndReason = EndReason.USER_STOPPED) -> None:
        """End everything at once: locally first, then the technician is told.

        Sharing, input and clipboard stop before this returns its first
        await, whatever the network does; the CLOSE (after an empty grant)
        gets at most a second to go out.
        """
        if self._state is SessionState.ENDED:
            await self.wait_finished()
            return
        self._own_reason = reason
        self.authority.close()
        self._send(CapabilityGrant(()))
        self._finish(SessionClosed(reason, by_peer=False))
        await self.wait_finished()

    async def wait_finished(self, control_timeout: float = 2.0) -> None:
        """Wait until the session is over and sharing and control have let go of the display."""
        await self._finished.wait()
        if self._screen is not None:
            await self._screen.close()
        if self._close_task is not None:
            await asyncio.wait([self._close_task])
        if self._control is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(control_timeout):
                    await self._control.finished.wait()

    def _finish(self, closed: SessionClosed) -> None:
        """Everything stops here, once, whoever ended the session."""
        if self._state is SessionState.ENDED:
            return
        self._state = SessionState.ENDED
        self.authority.close()
        self._limiter.withdraw()
        if self._screen is not None:
            self._screen.sync(ScreenStopReason.SESSION_ENDED)
        if self._control is not None:
            self._control.close()
        self._finished.set()
        if self.channel.ended is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._close_channel(closed.reason), name="deskhand-session-close"
            )
        self._emit(PresenceChanged(Presence()))
        self._emit(closed)

    async def _close_channel(self, reason: EndReason) -> None:
        await self.channel.close(reason.value, timeout=_CLOSE_TIMEOUT)

    # --- the user's intents ---

    def set_capability(self, capability: Capability, on: bool) -> None:
        """Grant or revoke one capability; revocation takes effect at once."""
        changed = (
            self.authority.grant((capability,)) if on else self.authority.revoke((capability,))
        )
        if changed:
            self._sync(ScreenStopReason.VIEW_REVOKED)

    def answer_request(self, granted: tuple[Capability, ...] | None) -> None:
        """The user's answer to the open prompt: what they allowed (None: declined all)."""
        allowed = ordered(granted or ())
        declined = self._limiter.answer(allowed, self._clock())
        if allowed and self.authority.grant(allowed):
            self._sync(ScreenStopReason.VIEW_REVOKED)
        if declined:
            self._send(CapabilityDeclined(tuple(declined), round(self._limiter.cooldown)))

    def set_paused(self, paused: bool) -> None:
        """Pause: nothing is shared, no input and no clipboard either way, until resumed."""
        if self._state is SessionState.ENDED or not self.authority.set_paused(paused):
            return
        if self._state is not SessionState.RECONNECTING:
            self._state = SessionState.PAUSED if paused else SessionState.ACTIVE
        self._sync(ScreenStopReason.PAUSED)

    def send_chat(self, text: str, *, echo: bool = True) -> bool:
        """Send a chat line; with echo, report it as :class:`ChatSent`. False: not sent."""
        if self._state is SessionState.ENDED:
            return False
        self._chat_id += 1
        if not self._send(ChatText(self._chat_id, text, self._wall_clock_ms())):
            return False
        if echo:
            self._emit(ChatSent(text))
        return True

    def set_dialog_open(self, is_open: bool) -> None:
        """A Deskhand dialog or menu opened or closed: remote input waits meanwhile."""
        self._dialog_open = is_open
        if self._control is not None:
            self._control.set_dialog_open(is_open)

    def clipboard_changed(self, text: str) -> None:
        if self._state is not SessionState.ENDED:
            self._clipboard.local_changed(text)

    def set_clipboard_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        self._clipboard.set_directions(to_technician=to_technician, from_technician=from_technician)

    # --- keeping the features in step with the authority ---

    def _sync(self, reason: ScreenStopReason) -> None:
        if self._state is SessionState.ENDED:
            return
        # The grant goes first, so the technician reads each feature's news after it.
        effective = self.authority.effective
        if effective != self._announced:
            self._announced = effective
            self._send(CapabilityGrant(tuple(effective)))
        if self._screen is not None:
            self._screen.sync(reason)
        if self._control is not None:
            self._control.sync()
        self._clipboard.sync()
        self._emit(PresenceChanged(self.presence))

    def _send(self, msg: AppMessage) -> bool:
        if not self.channel.session.is_open:
            return False
        try:
            self.channel.send_nowait(msg)
        except DeskhandError:
            return False  # the session is closing; the message dies with it
        return True

    # --- from the technician ---

    def _on_channel_event(self, event: SessionEvent) -> None:
        try:
            if isinstance(event, MessageReceived):
                self._route(event.message)
            elif isinstance(event, SessionEnded):
                reason = end_reason_of(event, self._own_reason)
                self._finish(SessionClosed(reason, event.by_peer, event.reason))
            elif isinstance(event, LinkLost | LinkRestored):
                self._on_link_event(event)
        except Exception:
            logger.exception("a session feature failed; ending the session")
            self._own_reason = EndReason.INTERNAL_ERROR
            self._finish(SessionClosed(EndReason.INTERNAL_ERROR, by_peer=False))

    def _route(self, msg: AppMessage) -> None:
        if self._state is SessionState.ENDED:
            return
        admission = self.authority.admit(msg)
        if not admission.admitted:
            assert admission.refusal is not None
            self._emit(InboundRefused(type(msg).__name__, admission.refusal, admission.needs))
            if admission.needs is Capability.CONTROL and self._control is not None:
                self._control.refused()  # the technician hears why, as before the gate
            return
        handler = self._routes.get(type(msg))
        if handler is not None:
            handler(msg)

    def _on_link_event(self, event: LinkLost | LinkRestored) -> None:
        # Resume after a dropped link: the grants stay, the screen restarts with a keyframe.
        if isinstance(event, LinkLost):
            if self._state is not SessionState.ENDED:
                self._state = SessionState.RECONNECTING
                if self._control is not None:
                    # No remote input while the link is down: what the technician holds is released.
                    self._control.set_link_down(True)
                self._emit(PresenceChanged(self.presence))  # the state first, then the news
                self._emit(Reconnecting(event.resume_deadline))
        elif self._state is SessionState.RECONNECTING:
            self._state = SessionState.PAUSED if self.authority.paused else SessionState.ACTIVE
            if self._screen is not None:
                self._screen.link_restored()
            if self._control is not None:
                self._control.set_link_down(False)
            self._emit(PresenceChanged(self.presence))
            self._emit(Reconnected())

    def _to_screen(self, msg: FrameAck | KeyframeRequest | SelectMonitor) -> None:
        if self._screen is not None:
            self._screen.receive(msg)

    def _to_control(self, msg: Any) -> None:
        if self._control is not None:
            self._control.receive(msg)

    def _on_chat(self, msg: ChatText) -> None:
        self._emit(ChatReceived(msg.text, msg.sent_at_ms))

    def _on_request(self, msg: CapabilityRequest) -> None:
        try:
            wanted = ordered(msg.capabilities)
        except ValueError:
            return  # the codec checked them; an unknown one is not worth a prompt
        missing = tuple(c for c in wanted if c not in self.authority.granted)
        if not missing:
            self._announced = None  # they may have missed the last grant: say it again
            self._sync(ScreenStopReason.VIEW_REVOKED)
            return
        asked = self._limiter.ask(missing, self._clock())
        if asked.refused:
            self._send(CapabilityDeclined(tuple(asked.refused), asked.retry_after))
        if asked.prompt:
            self._emit(CapabilitiesAsked(asked.prompt, asked.opened, asked.notify))

    # --- from the features ---

    def _on_gate_event(self, event: GateEvent) -> None:
        if event.state is ControlState.STOPPED and event.cause == "stopped":
            self._emit(ControlTakenBack())

    def _on_stop_hotkey(self) -> None:
        # The stop hotkey ends the whole session, not just control.
        asyncio.get_running_loop().create_task(self.stop(), name="deskhand-stop-hotkey")

    def _screen_failed(self, detail: str) -> None:
        self._emit(FeatureUnavailable(Feature.SCREEN, detail))

    def _emit(self, event: UserSessionEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a listener must never break the session
            logger.exception("a session-event listener failed")
