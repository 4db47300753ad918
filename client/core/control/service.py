"""ControlService: the gate, the injector and local activity for one session.

The thin asyncio adapter around the pure parts, in the loop thread of the
user's session controller, which owns it::

    service = ControlService.for_x11(channel, authority)
    service.start()                       # watches the X display
    service.receive(msg)                  # an input message the authority admitted
    service.sync()                        # the authority's grants or pause changed
    service.set_dialog_open(True)         # a Deskhand dialog is open: pause remote input
    service.close()                       # the session is over

The service never decides what is granted: the gate reads the capability
authority. The stop hotkey (Ctrl+Alt+Shift+End) is reported to
``on_stop_requested``; the controller ends the whole session. When the
service closes it releases every key and button the technician held, then,
``restore_delay`` seconds later, restores the keymap and closes its X
connections. See docs/control.md for the whole wiring.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Protocol

from client.core.control.activity import InjectionLedger, LocalInput, XActivityMonitor
from client.core.control.gate import (
    DEFAULT_STOP_HOTKEY,
    ControlGate,
    GateConfig,
    GateEvent,
    GrantReader,
    Hotkey,
    HotkeyDetector,
    InputMessage,
)
from client.core.control.hotkey import GlobalHotkey, HotkeyUnavailable
from client.core.control.injector import InjectorPort, WheelAccumulator, XInjector
from common.errors import DeskhandError
from common.protocol.messages import (
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


__all__ = ["INPUT_MESSAGES", "ActivityPort", "ChannelPort", "ControlService"]

logger = logging.getLogger(__name__)

INPUT_MESSAGES = (PointerMove, PointerButton, Wheel, KeyEvent, TextInput, ReleaseAll)


class ChannelPort(Protocol):
    """The parts of SecureChannel the service uses."""

    def send_nowait(self, msg: AppMessage) -> None: ...


class HotkeyPort(Protocol):
    """The global stop-hotkey grab (GlobalHotkey, or a test fake)."""

    def fileno(self) -> int: ...
    def read(self) -> int: ...
    @property
    def grabbed(self) -> bool: ...
    def close(self) -> None: ...


class ActivityPort(Protocol):
    """A source of the user's own input (XActivityMonitor, or a test fake)."""

    def fileno(self) -> int: ...
    def read(self) -> list[LocalInput]: ...
    def close(self) -> None: ...


def _is_release(msg: InputMessage) -> bool:
    return isinstance(msg, (PointerButton, KeyEvent)) and not msg.pressed


class ControlService:
    """Remote control for one session, on the user's side.

    Args:
        channel: where ControlStatus goes (only send_nowait).
        injector: where accepted input goes.
        authority: the capability authority (the gate reads it).
        monitor: the user's own input, to pause remote input and catch the
            stop hotkey; None disables both.
        on_event: called with every GateEvent (for the session record and the UI).
        on_stop_requested: the user pressed the stop hotkey: end the session.

    Attributes:
        finished: set once the service has closed and the X resources are freed.
    """

    def __init__(
        self,
        channel: ChannelPort,
        injector: InjectorPort,
        authority: GrantReader,
        *,
        monitor: ActivityPort | None = None,
        config: GateConfig | None = None,
        hotkey: Hotkey = DEFAULT_STOP_HOTKEY,
        clock: Callable[[], float] = time.monotonic,
        restore_delay: float = 0.5,
        on_event: Callable[[GateEvent], None] | None = None,
        on_stop_requested: Callable[[], None] | None = None,
        global_hotkey: HotkeyPort | None = None,
    ) -> None:
        self._channel = channel
        self._global_hotkey = global_hotkey
        self._injector = injector
        self._monitor = monitor
        self._clock = clock
        self._gate = ControlGate(config, grants=authority, now=clock())
        self._hotkey = HotkeyDetector(hotkey)
        self._wheel = WheelAccumulator()
        self._restore_delay = restore_delay
        self._on_event = on_event
        self._on_stop_requested = on_stop_requested
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
        authority: GrantReader,
        *,
        display: str | None = None,
        watch_local_input: bool = True,
        config: GateConfig | None = None,
        hotkey: Hotkey = DEFAULT_STOP_HOTKEY,
        restore_delay: float = 0.5,
        on_event: Callable[[GateEvent], None] | None = None,
        on_stop_requested: Callable[[], None] | None = None,
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
        global_hotkey: HotkeyPort | None = None
        try:
            global_hotkey = GlobalHotkey(display, keysym=hotkey.keysym, modifiers=hotkey.modifiers)
        except HotkeyUnavailable as exc:  # taken by another program: the detector stays
            logger.warning("%s", exc)
        return cls(
            channel,
            injector,
            authority,
            monitor=monitor,
            config=config,
            hotkey=hotkey,
            restore_delay=restore_delay,
            on_event=on_event,
            on_stop_requested=on_stop_requested,
            global_hotkey=global_hotkey,
        )

    # --- public, loop thread ---

    @property
    def state(self) -> ControlState:
        return self._gate.state

    @property
    def gate(self) -> ControlGate:
        return self._gate

    @property
    def injector(self) -> InjectorPort:
        return self._injector

    def start(self) -> None:
        """Start watching local input (call in the controller's loop thread)."""
        self._loop = asyncio.get_running_loop()
        if self._monitor is not None:
            self._loop.add_reader(self._monitor.fileno(), self._on_local_input)
        if self._global_hotkey is not None:
            self._loop.add_reader(self._global_hotkey.fileno(), self._on_global_hotkey)
        # Tell the technician where control stands from the start.
        self._send(ControlStatus(self._gate.state, 0))
        self._pump()

    def receive(self, msg: InputMessage) -> None:
        """An input message from the technician (the gate still decides)."""
        if self._closing:
            return
        self._gate.receive_input(msg, self._clock())
        self._pump()

    def sync(self) -> None:
        """The authority's grants or pause changed."""
        if not self._closing:
            self._gate.sync(self._clock())
            self._pump()

    def set_dialog_open(self, is_open: bool) -> None:
        """A Deskhand dialog or menu is open: no remote input may reach it."""
        if not self._closing:
            self._gate.set_dialog_open(is_open, self._clock())
            self._pump()

    def set_link_down(self, down: bool) -> None:
        """The link dropped (the session waits to resume) or is back: no input meanwhile."""
        if not self._closing:
            self._gate.set_link_down(down, self._clock())
            self._pump()

    def refused(self) -> None:
        """The authority dropped an input message: the technician is told why (batched)."""
        if not self._closing:
            self._gate.refuse(self._clock())
            self._pump()

    def mark_stopped(self) -> None:
        """The user took control back (the caller revoked "control" in the authority)."""
        if self._closing or self._gate.state is ControlState.STOPPED:
            return
        self._gate.stop(self._clock())
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
        if self._global_hotkey is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._global_hotkey.fileno())
            self._global_hotkey.close()
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

    def _on_global_hotkey(self) -> None:
        hotkey = self._global_hotkey
        assert hotkey is not None
        try:
            presses = hotkey.read()
        except Exception:
            logger.exception("the stop hotkey's connection failed; detecting it from raw events")
            if self._loop is not None:
                self._loop.remove_reader(hotkey.fileno())
            self._global_hotkey = None
            return
        if presses and not self._closing and self._on_stop_requested is not None:
            self._on_stop_requested()

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
        grabbed = self._global_hotkey is not None and self._global_hotkey.grabbed
        for event in found:
            if not event.technician_console:  # the technician's own hands on a shared desktop
                self._gate.receive_local_input(now)
            # The detector always follows the keys; it acts only without a working grab.
            if event.kind == "key" and self._hotkey.feed(event.keysym, event.pressed):
                stop = stop or not grabbed
        self._pump()
        if stop and self._on_stop_requested is not None:
            self._on_stop_requested()

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
        events = gate.events_received()
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
