"""LiveSession: everything that runs on the user's side while a session is open.

One object per open session, in the channel's loop thread. It owns:

- the grants (:class:`~client.core.user_session.UserSession`, the authority);
- screen sharing (:class:`~client.core.screen.sharer.ScreenSharer`), which runs
  only while "view" is allowed and the session is not paused: it is started
  when that becomes true and stopped (telling the viewer why) when it stops
  being true, including at the end of the session;
- remote input and clipboard (:class:`~client.core.control.service.ControlService`),
  started right after pairing whatever the grants (it refuses input until
  "control" is granted) and kept in step with every grant, pause and open
  Deskhand dialog;
- chat.

Everything the UI needs to know comes out as events (:data:`LiveEvent`) to
one callback, in the loop thread. Screen sharing and control are optional
(``None`` factories): the UI tests run without them, and a machine without
an X display gets a :class:`Notice` instead of a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Protocol

from client.core.control.clipboard import ClipboardPort, ClipboardTransfer, Direction, Outcome
from client.core.control.gate import GateEvent
from client.core.control.injector import InjectorUnavailable
from client.core.control.service import ControlEvent
from client.core.presence import Presence
from client.core.user_session import (
    CapabilitiesAsked,
    ChatReceived,
    PresenceChanged,
    SessionOver,
    UserSession,
    UserSessionEvent,
)
from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.protocol.messages import ScreenStopped


__all__ = [
    "ChatSent",
    "ClipboardWrite",
    "ControlFactory",
    "ControlPort",
    "LiveEvent",
    "LiveSession",
    "Notice",
    "SessionFinished",
    "SharerFactory",
    "SharerPort",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ChatSent:
    """A chat line of the user's is on its way."""

    text: str


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something the user should read (a status line, or a notification)."""

    text: str


@dataclasses.dataclass(frozen=True)
class ClipboardWrite:
    """Put this text on the user's clipboard (the technician sent it, and it is allowed)."""

    text: str


@dataclasses.dataclass(frozen=True)
class SessionFinished:
    """The session is over; nothing is shared any more.

    Attributes:
        message: what to tell the user.
        by_peer: the technician (or the network) ended it, not the user.
    """

    message: str
    by_peer: bool


LiveEvent = (
    PresenceChanged
    | CapabilitiesAsked
    | ChatReceived
    | ChatSent
    | Notice
    | ClipboardWrite
    | SessionFinished
)


class SharerPort(Protocol):
    """What the live session needs from a screen sharer (ScreenSharer, or a fake)."""

    async def start(self) -> None: ...
    async def stop(self, reason: str = ...) -> None: ...


class ControlPort(Protocol):
    """What the live session needs from the control service (ControlService, or a fake).

    Attributes:
        finished: set once the session is over and the X resources are freed
            (the keymap restored).
    """

    finished: asyncio.Event

    def start(self) -> None: ...
    def apply_presence(self, presence: Presence) -> None: ...
    def set_dialog_open(self, is_open: bool) -> None: ...
    def clipboard_changed(self, text: str) -> None: ...
    def set_clipboard_directions(self, *, to_technician: bool, from_technician: bool) -> None: ...


SharerFactory = Callable[[SecureChannel], SharerPort]


class ControlFactory(Protocol):
    """Builds the control service for a channel (``ControlService.for_x11`` fits).

    Raises:
        InjectorUnavailable: input cannot be injected on this machine.
    """

    def __call__(
        self,
        channel: SecureChannel,
        *,
        granted: tuple[str, ...],
        clipboard_port: ClipboardPort | None,
        on_event: Callable[[ControlEvent], None] | None,
        on_control_stopped: Callable[[], None] | None,
    ) -> ControlPort: ...


_STOPPED = "The user stopped the session."
_PAUSED = "The user paused the session."
_VIEW_REVOKED = "The user stopped sharing the screen."
_ENDED = "The session ended."


class _Clipboard:
    """The clipboard port: text from the technician goes to the UI as an event."""

    def __init__(self, emit: Callable[[LiveEvent], None]) -> None:
        self._emit = emit

    def set_text(self, text: str) -> None:
        self._emit(ClipboardWrite(text))


def _clipboard_notice(transfer: ClipboardTransfer) -> str | None:
    size = f"{transfer.size:,} bytes"
    if transfer.outcome is Outcome.SENT:
        return f"Your clipboard text ({size}) was sent to the technician."
    if transfer.outcome is Outcome.APPLIED:
        return f"The technician put text ({size}) on your clipboard."
    if transfer.outcome is Outcome.TOO_LARGE:
        if transfer.direction is Direction.TO_TECHNICIAN:
            return f"Your clipboard text ({size}) is too large to share; it was not sent."
        return f"The technician's clipboard text ({size}) was too large; it was refused."
    return None


class LiveSession:
    """One open session on the user's side (see the module docstring).

    Args:
        channel: the open session.
        on_event: gets every :data:`LiveEvent`, in the loop thread.
        sharer_factory: makes a screen sharer (one per period of sharing);
            None: the screen is never shared.
        control_factory: makes the control service; None: no remote input
            and no clipboard.
        dialog_open: a Deskhand dialog or menu is open right now.

    Call every method in the channel's loop thread.
    """

    def __init__(
        self,
        channel: SecureChannel,
        on_event: Callable[[LiveEvent], None],
        *,
        sharer_factory: SharerFactory | None = None,
        control_factory: ControlFactory | None = None,
        dialog_open: bool = False,
    ) -> None:
        self.channel = channel
        self._on_event = on_event
        self._sharer_factory = sharer_factory
        self._control_factory = control_factory
        self._dialog_open = dialog_open
        self._control: ControlPort | None = None
        self._sharer: SharerPort | None = None
        self._sharing_failed = False
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_again = False
        self._stopping = False
        self._finished = asyncio.Event()
        self.session = UserSession(channel)
        tech = channel.technician
        self.technician = f"{tech.name} ({tech.org})" if tech is not None else "The technician"
        self.session.add_listener(self._on_session_event)

    # --- state ---

    @property
    def presence(self) -> Presence:
        return self.session.presence

    @property
    def sharing(self) -> bool:
        """The screen sharer is running (or starting)."""
        return self._sharer is not None

    @property
    def control_available(self) -> bool:
        return self._control is not None

    # --- lifecycle ---

    def start(self) -> None:
        """Start control (if any) and, if "view" was granted, screen sharing."""
        self._start_control()
        self._sync_sharing()

    def _start_control(self) -> None:
        if self._control_factory is None:
            return
        try:
            control = self._control_factory(
                self.channel,
                granted=self.session.granted,
                clipboard_port=_Clipboard(self._emit),
                on_event=self._on_control_event,
                on_control_stopped=self._on_control_stopped,
            )
        except InjectorUnavailable as exc:
            self._emit(Notice(f"Remote control is not available on this computer: {exc}"))
            return
        except Exception as exc:
            logger.exception("starting remote control failed")
            self._emit(Notice(f"Remote control could not be started: {exc}"))
            return
        self._control = control
        control.set_dialog_open(self._dialog_open)
        control.start()

    async def stop(self) -> None:
        """The user's Stop: every grant goes at once, then the session closes."""
        self._stopping = True
        await self.session.stop()
        await self.wait_finished()

    async def wait_finished(self, control_timeout: float = 2.0) -> None:
        """Wait until the session is over and sharing and control have let go of the display.

        Control restores the keyboard map shortly after the end; that wait is
        bounded by ``control_timeout`` seconds.
        """
        await self._finished.wait()
        task = self._sync_task
        if task is not None:
            await asyncio.wait([task])
        if self._control is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(control_timeout):
                    await self._control.finished.wait()

    # --- the user's intents ---

    def set_capability(self, capability: str, on: bool) -> None:
        self.session.set_capability(capability, on)

    def grant(self, capabilities: tuple[str, ...]) -> None:
        self.session.grant(capabilities)

    def set_paused(self, paused: bool) -> None:
        self.session.set_paused(paused)

    def send_chat(self, text: str, *, echo: bool = True) -> None:
        """Send a chat line; with echo, report it as :class:`ChatSent` (the transcript)."""
        try:
            self.session.send_chat(text)
        except DeskhandError as exc:
            self._emit(Notice(f"The message was not sent: {exc}"))
            return
        if echo:
            self._emit(ChatSent(text))

    def set_dialog_open(self, is_open: bool) -> None:
        """A Deskhand dialog or menu opened or closed: remote input waits meanwhile."""
        self._dialog_open = is_open
        if self._control is not None:
            self._control.set_dialog_open(is_open)

    def clipboard_changed(self, text: str) -> None:
        if self._control is not None:
            self._control.clipboard_changed(text)

    def set_clipboard_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        if self._control is not None:
            self._control.set_clipboard_directions(
                to_technician=to_technician, from_technician=from_technician
            )

    # --- events ---

    def _emit(self, event: LiveEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a listener must never break the channel's dispatch
            logger.exception("a live-session listener failed")

    def _on_session_event(self, event: UserSessionEvent) -> None:
        if isinstance(event, PresenceChanged):
            if self._control is not None:
                self._control.apply_presence(event.presence)
            self._sync_sharing()
            self._emit(event)
        elif isinstance(event, SessionOver):
            self._sync_sharing()
            ended = self.channel.ended
            by_peer = ended.by_peer if ended is not None else True
            message = f"The session ended: {event.reason}" if by_peer else "You ended the session."
            self._finished.set()
            self._emit(SessionFinished(message, by_peer))
        else:
            self._emit(event)

    def _on_control_event(self, event: ControlEvent) -> None:
        if isinstance(event, GateEvent):
            if event.cause == "stopped":
                self._emit(
                    Notice(
                        "You took control back: the technician can no longer use your "
                        "mouse and keyboard."
                    )
                )
            return
        text = _clipboard_notice(event)
        if text is not None:
            self._emit(Notice(text))

    def _on_control_stopped(self) -> None:
        # The stop hotkey: revoke through UserSession, which tells the technician.
        self.session.set_capability("control", False)

    # --- screen sharing ---

    def _sync_sharing(self) -> None:
        """Bring the sharer in line with the grants (one sync task at a time)."""
        if self._sharer_factory is None:
            return
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_again = True
            return
        self._sync_task = asyncio.get_running_loop().create_task(
            self._sync(), name="deskhand-sharing-sync"
        )

    def _stop_reason(self) -> str:
        if self._stopping:
            return _STOPPED
        if self.session.is_over:
            return _ENDED
        if self.session.paused:
            return _PAUSED
        return _VIEW_REVOKED

    async def _sync(self) -> None:
        assert self._sharer_factory is not None
        while True:
            self._sync_again = False
            want = self.session.allows("view")
            if not want:
                self._sharing_failed = False  # a new grant may try again
            if want and self._sharer is None and not self._sharing_failed:
                await self._start_sharing()
            elif not want and self._sharer is not None:
                sharer, self._sharer = self._sharer, None
                try:
                    await sharer.stop(self._stop_reason())
                except Exception:
                    logger.exception("stopping screen sharing failed")
            if not self._sync_again:
                return

    async def _start_sharing(self) -> None:
        assert self._sharer_factory is not None
        try:
            sharer = self._sharer_factory(self.channel)
            self._sharer = sharer
            await sharer.start()
        except Exception as exc:
            self._sharer = None
            self._sharing_failed = True
            logger.warning("screen sharing could not start: %s", exc)
            self._emit(Notice(f"Your screen cannot be shared on this computer: {exc}"))
            if not self.session.is_over:
                with contextlib.suppress(DeskhandError):
                    # Tell the viewer too, so it does not wait for a picture.
                    self.channel.send_nowait(ScreenStopped(f"Screen sharing failed: {exc}"[:200]))
