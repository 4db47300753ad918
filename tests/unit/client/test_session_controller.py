"""UserSessionController with recording fakes: authority, routing, pause, consent, stop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from client.core.authority import Refusal
from client.core.features import ScreenPort
from client.core.session_controller import (
    CapabilitiesAsked,
    ClipboardWrite,
    InboundRefused,
    PresenceChanged,
    Reconnected,
    Reconnecting,
    SessionClosed,
    SessionState,
    UserSessionController,
    UserSessionEvent,
)
from common.capability import Capability
from common.errors import InvalidState
from common.net.session_events import EndReason
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.session import (
    EndCause,
    LinkLost,
    LinkRestored,
    MessageReceived,
    SessionEnded,
    SessionEvent,
)


@dataclasses.dataclass
class Tech:
    name: str = "Jane Doe"
    org: str = "ACME IT"


class FakeSession:
    def __init__(self) -> None:
        self.is_open = True
        self.discarded: list[Channel] = []

    def discard_unsent(self, channel: Channel) -> None:
        self.discarded.append(channel)


class FakeChannel:
    """The parts of SecureChannel the controller uses; records what is sent."""

    def __init__(self, granted: tuple[str, ...]) -> None:
        self.granted = granted
        self.technician = Tech()
        self.session = FakeSession()
        self.sent: list[m.AppMessage] = []
        self.listeners: list[Callable[[SessionEvent], None]] = []
        self.ended: SessionEnded | None = None
        self.closed_with: str | None = None

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)

    def send_nowait(self, msg: m.AppMessage) -> None:
        if self.ended is not None:
            raise InvalidState("the session is closed")
        self.sent.append(msg)

    async def wait_writable(self, channel: Channel) -> None:
        await asyncio.sleep(0)

    def deliver(self, event: Any) -> None:
        if isinstance(event, m.AppMessage):
            event = MessageReceived(event.CHANNEL, event)
        for listener in list(self.listeners):
            listener(event)

    async def close(self, reason: str = "", *, timeout: float = 5.0) -> None:
        self.closed_with = reason
        self.session.is_open = False
        self.ended = SessionEnded(reason, clean=True, by_peer=False)
        self.deliver(self.ended)

    def of(self, kind: type[Any]) -> list[Any]:
        return [msg for msg in self.sent if isinstance(msg, kind)]


class FakeSharer:
    def __init__(self, port: ScreenPort, log: list[str]) -> None:
        self.port = port
        self.log = log

    async def start(self) -> None:
        await asyncio.sleep(0)
        self.log.append("start")

    async def stop(self, reason: str = "") -> None:
        await asyncio.sleep(0)
        self.log.append("stop")

    def receive(self, msg: Any) -> None:
        self.log.append(type(msg).__name__)

    def session_ended(self) -> None:
        self.log.append("halted")

    def request_keyframe(self) -> None:
        self.log.append("keyframe")


class FakeControl:
    def __init__(self) -> None:
        self.received: list[Any] = []
        self.hooks: dict[str, Any] = {}
        self.closed = False
        self.finished = asyncio.Event()
        self.finished.set()
        self.fail_on_receive = False

    def __call__(self, channel: Any, authority: Any, **hooks: Any) -> FakeControl:
        self.authority = authority
        self.hooks = hooks
        return self

    def start(self) -> None:
        pass

    def receive(self, msg: Any) -> None:
        if self.fail_on_receive:
            raise RuntimeError("injector broke")
        self.received.append(msg)

    def sync(self) -> None:
        pass

    def set_dialog_open(self, is_open: bool) -> None:
        pass

    def mark_stopped(self) -> None:
        pass

    def set_link_down(self, down: bool) -> None:
        self.received.append(("link down", down))

    def refused(self) -> None:
        self.received.append("refused")

    def close(self) -> None:
        self.closed = True


class Harness:
    def __init__(self, granted: tuple[str, ...] = ("view",)) -> None:
        self.channel = FakeChannel(granted)
        self.events: list[UserSessionEvent] = []
        self.log: list[str] = []
        self.sharers: list[FakeSharer] = []
        self.control = FakeControl()
        self.now = 100.0

        def make_sharer(port: ScreenPort) -> FakeSharer:
            sharer = FakeSharer(port, self.log)
            self.sharers.append(sharer)
            return sharer

        self.controller = UserSessionController(
            self.channel,  # type: ignore[arg-type]
            self.events.append,
            sharer_factory=make_sharer,
            control_factory=self.control,
            clock=lambda: self.now,
        )

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def test_pause_stops_screen_input_and_clipboard_both_ways_at_once() -> None:
    h = Harness(("view", "control", "clipboard"))
    h.controller.start()
    await h.settle()
    assert h.log == ["start"]
    h.channel.deliver(m.ClipboardPolicy(send=True, receive=True, max_bytes=1000))
    h.controller.set_paused(True)
    assert h.controller.state is SessionState.PAUSED
    # The screen: queued frames purged, ScreenStopped on the control channel, the sharer halted.
    assert h.channel.session.discarded == [Channel.SCREEN]
    assert h.channel.of(m.ScreenStopped) == [m.ScreenStopped("paused")]
    assert m.ScreenStopped.CHANNEL is Channel.CONTROL
    assert "halted" in h.log
    # A frame the sharer was still sending after the pause goes nowhere.
    h.sharers[0].port.send_nowait(m.CursorPosition(1, 1, 0, True))
    assert not h.channel.of(m.CursorPosition)
    # The technician is told: nothing is allowed, and the clipboard policy is closed.
    assert h.channel.of(m.CapabilityGrant)[-1] == m.CapabilityGrant(())
    assert h.channel.of(m.ClipboardPolicy)[-1] == m.ClipboardPolicy(False, False, 1 << 20)
    # Clipboard both ways and input are refused while paused.
    h.controller.clipboard_changed("my password")
    assert not h.channel.of(m.ClipboardText)
    h.channel.deliver(m.ClipboardText("pushed"))
    h.channel.deliver(m.KeyEvent(0x61, True))
    assert not h.of(ClipboardWrite) and h.control.received == ["refused"]
    refused = h.of(InboundRefused)
    assert [(r.message_type, r.refusal) for r in refused] == [
        ("ClipboardText", Refusal.PAUSED),
        ("KeyEvent", Refusal.PAUSED),
    ]
    # Resume: everything comes back, and a new sharer starts.
    h.controller.set_paused(False)
    await h.settle()
    assert h.log[-1] == "start" and len(h.sharers) == 2
    h.controller.clipboard_changed("now it may go")
    assert h.channel.of(m.ClipboardText) == [m.ClipboardText("now it may go")]


async def test_messages_are_routed_to_one_feature_and_a_failing_one_ends_the_session() -> None:
    h = Harness(("view", "control"))
    h.controller.start()
    await h.settle()
    h.channel.deliver(m.FrameAck(1, 0))
    h.channel.deliver(m.PointerMove(3, 4))
    assert h.log[-1] == "FrameAck" and h.control.received == [m.PointerMove(3, 4)]
    h.control.fail_on_receive = True
    h.channel.deliver(m.PointerMove(5, 6))
    await h.settle()
    closed = h.of(SessionClosed)
    assert closed == [SessionClosed(EndReason.INTERNAL_ERROR, by_peer=False)]
    assert h.controller.state is SessionState.ENDED
    assert h.channel.closed_with == EndReason.INTERNAL_ERROR.value
    assert h.control.closed


async def test_fifty_requests_make_one_prompt_and_a_decline_holds_for_a_while() -> None:
    h = Harness(("view",))
    h.controller.start()
    for _ in range(50):
        h.channel.deliver(m.CapabilityRequest(("control",)))
    asked = h.of(CapabilitiesAsked)
    assert asked == [CapabilitiesAsked((Capability.CONTROL,), opened=True, notify=True)]
    h.controller.answer_request(None)
    assert h.channel.of(m.CapabilityDeclined) == [m.CapabilityDeclined(("control",), 30)]
    h.now += 10
    h.channel.deliver(m.CapabilityRequest(("control",)))
    assert len(h.of(CapabilitiesAsked)) == 1  # no new prompt
    assert h.channel.of(m.CapabilityDeclined)[-1] == m.CapabilityDeclined(("control",), 20)
    h.now += 25
    h.channel.deliver(m.CapabilityRequest(("control",)))
    assert len(h.of(CapabilitiesAsked)) == 2
    h.controller.answer_request((Capability.CONTROL,))
    assert h.channel.of(m.CapabilityGrant)[-1] == m.CapabilityGrant(("view", "control"))


async def test_stop_ends_everything_locally_before_the_close() -> None:
    h = Harness(("view", "control"))
    h.controller.start()
    await h.settle()
    await h.controller.stop()
    assert h.controller.state is SessionState.ENDED
    assert h.channel.of(m.CapabilityGrant)[-1] == m.CapabilityGrant(())
    assert h.channel.closed_with == EndReason.USER_STOPPED.value
    assert h.control.closed and "halted" in h.log and h.log[-1] == "stop"
    assert h.of(SessionClosed) == [SessionClosed(EndReason.USER_STOPPED, by_peer=False)]
    assert h.of(PresenceChanged)[-1].presence.state.value == "idle"


async def test_the_stop_hotkey_ends_the_whole_session() -> None:
    h = Harness(("view", "control"))
    h.controller.start()
    await h.settle()
    h.control.hooks["on_stop_requested"]()
    await h.settle()
    assert h.controller.state is SessionState.ENDED
    assert h.of(SessionClosed)[0].reason is EndReason.USER_STOPPED


async def test_a_dropped_link_reconnects_with_the_same_grants() -> None:
    h = Harness(("view", "control"))
    h.controller.start()
    await h.settle()
    h.channel.deliver(LinkLost(resume_deadline=220.0))
    assert h.controller.state is SessionState.RECONNECTING
    assert h.of(Reconnecting) == [Reconnecting(220.0)]
    assert h.of(PresenceChanged)[-1].presence.reconnecting
    assert h.control.received == [("link down", True)]  # held input is released meanwhile
    h.channel.deliver(LinkRestored())
    assert h.control.received[-1] == ("link down", False)
    assert h.controller.state is SessionState.ACTIVE
    assert h.of(Reconnected) == [Reconnected()]
    assert h.log[-1] == "keyframe"  # screen data in flight was dropped
    assert h.controller.authority.granted == (Capability.VIEW, Capability.CONTROL)


async def test_the_technicians_close_reason_is_an_enum() -> None:
    h = Harness(("view",))
    h.controller.start()
    h.channel.deliver(
        SessionEnded(EndReason.TECHNICIAN_ENDED.value, True, True, EndCause.PEER_CLOSED)
    )
    assert h.of(SessionClosed)[0].reason is EndReason.TECHNICIAN_ENDED
    assert h.of(SessionClosed)[0].by_peer
