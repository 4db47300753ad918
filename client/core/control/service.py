"""ControlService: the gate, the injector, local activity and the clipboard on one channel.

The thin asyncio adapter around the pure parts. It lives in the loop thread
of the user's :class:`~common.net.channel.SecureChannel`::

    service = ControlService.for_x11(channel, granted=channel.granted, clipboard_port=port)
    service.start()                       # listens to the channel and the X display
    service.apply_presence(presence)      # UserSession's grants and pause (PresenceChanged)
    service.set_dialog_open(True)         # a Deskhand dialog is open: pause remote input
    service.stop_control()                # take control back (the hotkey does this itself)
    service.clipboard_changed(text)       # the user's clipboard changed

When the session ends (cleanly or because the link dropped) the service
releases every key and button the technician held, then, ``restore_delay``
seconds later, restores the keymap and closes its X connections. See
docs/control.md for the whole wiring.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from client.core.control.activity import InjectionLedger, LocalInput, XActivityMonitor
from client.core.control.clipboard import ClipboardPort, ClipboardSync, ClipboardTransfer
from client.core.control.gate import (
    DEFAULT_STOP_HOTKEY,
    ControlGate,
    GateConfig,
    GateEvent,
    Hotkey,
    HotkeyDetector,
    InputMessage,
)
from client.core.control.injector import InjectorPort, WheelAccumulator, XInjector
from client.core.presence import Presence
from common.errors import DeskhandError
from common.protocol.messages import (
    AppMessage,
    CapabilityGrant,
    ClipboardPolicy,
    ClipboardText,
    ControlState,
    ControlStatus,
    KeyEvent,
    PointerButton,
    PointerMove,
    ReleaseAll,
    TextInput,
    Wheel,
)
from common.session import MessageReceived, SessionEnded, SessionEvent


__all__ = ["ActivityPort", "ChannelPort", "ControlEvent", "ControlService"]

logger = logging.getLogger(__name__)

ControlEvent = GateEvent | ClipboardTransfer
_INPUT = (PointerMove, PointerButton, Wheel, KeyEvent, TextInput, ReleaseAll)


class ChannelPort(Protocol):
    """The parts of SecureChannel the service uses."""

    def send_nowait(self, msg: AppMessage) -> None: ...
    def add_listener(self, listener: Callable[[SessionEvent], None]) -> None: ...


class ActivityPort(Protocol):
    """A source of the user's own input (XActivityMonitor, or a test fake)."""

    def fileno(self) -> int: ...
    def read(self) -> list[LocalInput]: ...
    def close(self) -> None: ...


def _is_release(msg: InputMessage) -> bool:
    return isinstance(msg, (PointerButton, KeyEvent)) and not msg.pressed


class ControlService:
    """Remote control and clipboard for one session, on the user's side.

    Args:
        channel: the session's channel (only send_nowait and add_listener).
        injector: where accepted input goes.
        monitor: the user's own input, to pause remote input and catch the
            stop hotkey; None disables both.
        clipboard: clipboard sync; None leaves the clipboard channel alone.
        granted: the capabilities granted at consent.
        on_event: called with every GateEvent and ClipboardTransfer (for the
            session record and the UI).
        on_control_stopped: called when the user takes control back (the
            stop hotkey or :meth:`stop_control`), after input has stopped and
            everything held was released. The app revokes "control" where it
            keeps the grants (``UserSession.set_capability("control", False)``
            announces it). Without it, the service sends the CapabilityGrant.

    Attributes:
        finished: set once the session is over and the X resources are freed.
    """

    def __init__(
        self,
        channel: ChannelPort,
        injector: InjectorPort,
        *,
        monitor: ActivityPort | None = None,
        clipboard: ClipboardSync | None = None,
        granted: Iterable[str] = (),
        config: GateConfig | None = None,
        hotkey: Hotkey = DEFAULT_STOP_HOTKEY,
        clock: Callable[[], float] = time.monotonic,
        restore_delay: float = 0.5,
        on_event: Callable[[ControlEvent], None] | None = None,
        on_control_stopped: Callable[[], None] | None = None,
    ) -> None:
        self._channel = channel
        self._injector = injector
        self._monitor = monitor
        self._clipboard = clipboard
        self._granted = tuple(granted)
        self._clock = clock
        self._gate = ControlGate(config, granted=self._granted, now=clock())
        self._hotkey = HotkeyDetector(hotkey)
        self._wheel = WheelAccumulator()
        self._restore_delay = restore_delay
        self._on_event = on_event
        self._on_control_stopped = on_control_stopped
        self._pending: collections.deque[InputMessage] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._retry_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.finished = asyncio.Event()

    @classmethod
    def for_x11(
        cls,
        channel: ChannelPort,
        *,
        display: str | None = None,
        granted: Iterable[str] = (),
        clipboard_port: ClipboardPort | None = None,
        watch_local_input: bool = True,
        config: GateConfig | None = None,
        hotkey: Hotkey = DEFAULT_STOP_HOTKEY,
        restore_delay: float = 0.5,
        on_event: Callable[[ControlEvent], None] | None = None,
        on_control_stopped: Callable[[], None] | None = None,
    ) -> ControlService:
        """A service that injects into X display (default: $DISPLAY) with XTest.

        Raises:
            InjectorUnavailable: no X display or no XTest.
        """
        ledger = InjectionLedger()
        injector = XInjector(display, ledger=ledger)
        monitor: ActivityPort | None = None
        if watch_local_input:
            try:
                monitor = XActivityMonitor(display, ledger=ledger)
            except Exception:
                injector.close()
                raise
        granted = tuple(granted)
        clipboard = None
        if clipboard_port is not None:
            clipboard = ClipboardSync(clipboard_port, granted=granted)
        return cls(
            channel,
            injector,
            monitor=monitor,
            clipboard=clipboard,
            granted=granted,
            config=config,
            hotkey=hotkey,
            restore_delay=restore_delay,
            on_event=on_event,
            on_control_stopped=on_control_stopped,
        )

    # --- public, loop thread ---

    @property
    def state(self) -> ControlState:
        return self._gate.state

    @property
    def granted(self) -> tuple[str, ...]:
        return self._granted

    @property
    def gate(self) -> ControlGate:
        return self._gate

    @property
    def injector(self) -> InjectorPort:
        return self._injector

    def start(self) -> None:
        """Start listening (call in the channel's loop thread)."""
        self._loop = asyncio.get_running_loop()
        self._channel.add_listener(self._on_session_event)
        if self._monitor is not None:
            self._loop.add_reader(self._monitor.fileno(), self._on_local_input)
        if self._clipboard is not None:
            self._clipboard.start()
        # Tell the technician where control stands from the start.
        self._send(ControlStatus(self._gate.state, 0))
        self._pump()

    def set_granted(self, capabilities: Iterable[str], *, announce: bool = False) -> None:
        """The user's capabilities now; with announce, also tell the technician."""
        if self._closing:
            return
        self._granted = tuple(capabilities)
        self._gate.set_granted(self._granted, self._clock())
        if self._clipboard is not None:
            self._clipboard.set_granted(self._granted)
        self._pump()
        if announce:
            self._send(CapabilityGrant(self._granted))

    def set_paused(self, paused: bool) -> None:
        """The user paused the session (or resumed it)."""
        if not self._closing:
            self._gate.set_paused(paused, self._clock())
            self._pump()

    def apply_presence(self, presence: Presence) -> None:
        """Follow UserSession: its grants and its pause (call on every PresenceChanged)."""
        if self._closing:
            return
        self.set_granted(presence.granted)
        self.set_paused(presence.paused)

    def set_dialog_open(self, is_open: bool) -> None:
        """A Deskhand dialog or menu is open: no remote input may reach it."""
        if not self._closing:
            self._gate.set_dialog_open(is_open, self._clock())
            self._pump()

    def stop_control(self) -> None:
        """The user takes control back: stop input, release everything, revoke control."""
        if self._closing or self._gate.state is ControlState.STOPPED:
            return
        self._gate.stop(self._clock())
        self._granted = tuple(c for c in self._granted if c != "control")
        self._pump()
        if self._on_control_stopped is not None:
            self._on_control_stopped()
        else:
            self._send(CapabilityGrant(self._granted))

    def set_clipboard_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        if self._clipboard is not None and not self._closing:
            self._clipboard.set_directions(
                to_technician=to_technician, from_technician=from_technician
            )
            self._pump()

    def clipboard_changed(self, text: str) -> None:
        """The user's clipboard holds new text."""
        if self._clipboard is not None and not self._closing:
            self._clipboard.local_changed(text)
            self._pump()

    def close(self) -> None:
        """End control for good: release everything now, free X resources shortly."""
        if self._closing:
            return
        self._closing = True
        self._gate.close(self._clock())
        self._pump()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._monitor is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._monitor.fileno())
            self._monitor.close()
        if self._loop is not None and self._restore_delay > 0:
            # Let clients read the keymap for the last keys typed before undoing it.
            self._loop.call_later(self._restore_delay, self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        try:
            self._injector.close()
        except Exception:
            logger.exception("closing the injector failed")
        self.finished.set()

    # --- events ---

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self.close()
            return
        if not isinstance(event, MessageReceived) or self._closing:
            return
        msg = event.message
        if isinstance(msg, _INPUT):
            self._gate.receive_input(msg, self._clock())
        elif isinstance(msg, (ClipboardText, ClipboardPolicy)) and self._clipboard is not None:
            self._clipboard.receive(msg)
        else:
            return
        self._pump()

    def _on_local_input(self) -> None:
        assert self._monitor is not None
        try:
            found = self._monitor.read()
        except Exception:
            logger.exception("reading local input failed; no longer watching it")
            if self._loop is not None:
                self._loop.remove_reader(self._monitor.fileno())
            return
        if not found or self._closing:
            return
        now = self._clock()
        stop = False
        for event in found:
            self._gate.receive_local_input(now)
            if event.kind == "key" and self._hotkey.feed(event.keysym, event.pressed):
                stop = True
        self._pump()
        if stop:
            self.stop_control()

    # --- the pump ---

    def _send(self, msg: AppMessage) -> None:
        try:
            self._channel.send_nowait(msg)
        except DeskhandError:  # the session is closing: nobody to tell
            logger.debug("dropped %s: the session is closed", type(msg).__name__)

    def _pump(self) -> None:
        gate = self._gate
        self._pending.extend(gate.actions_to_inject())
        if gate.state is not ControlState.ACTIVE:
            # Nothing typed or clicked after control stopped, but every release goes.
            kept = [msg for msg in self._pending if _is_release(msg)]
            self._pending = collections.deque(kept)
        self._inject_pending()
        for msg in gate.messages_to_send():
            self._send(msg)
        events: list[ControlEvent] = list(gate.events_received())
        if self._clipboard is not None:
            for clip in self._clipboard.messages_to_send():
                self._send(clip)
            events.extend(self._clipboard.events_received())
        if self._on_event is not None:
            for event in events:
                self._on_event(event)
        self._schedule()

    def _inject_pending(self) -> None:
        injector = self._injector
        while self._pending:
            msg = self._pending[0]
            try:
                if isinstance(msg, PointerMove):
                    injector.move(msg.x, msg.y)
                elif isinstance(msg, PointerButton):
                    injector.button(msg.button, msg.pressed)
                elif isinstance(msg, Wheel):
                    clicks_x, clicks_y = self._wheel.add(msg.dx, msg.dy)
                    if clicks_x or clicks_y:
                        injector.scroll(clicks_x, clicks_y)
                elif isinstance(msg, KeyEvent):
                    ready = injector.key_ready_at(msg.keysym) if msg.pressed else 0.0
                    if ready > self._clock():
                        self._retry_at = ready  # the same key again: not an auto-repeat
                        return
                    if not injector.key(msg.keysym, msg.pressed):
                        logger.debug("keysym %#x cannot be typed here", msg.keysym)
                elif isinstance(msg, TextInput):
                    done = injector.type_text(msg.text)
                    if done < len(msg.text):
                        # A key must wait (see XInjector.type_text): the rest keeps its place.
                        self._pending[0] = TextInput(msg.text[done:])
                        self._retry_at = injector.retry_at()
                        return
            except Exception:
                logger.exception("injecting input failed")
            self._pending.popleft()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is None or self._closing:
            return
        deadlines = []
        gate_deadline = self._gate.next_deadline()
        if gate_deadline is not None:
            deadlines.append(gate_deadline)
        if self._pending:
            deadlines.append(self._retry_at)
        if deadlines:
            delay = max(0.0, min(deadlines) - self._clock())
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closing:
            return
        self._gate.tick(self._clock())
        self._pump()
