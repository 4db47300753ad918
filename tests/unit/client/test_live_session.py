"""LiveSession with fakes: sharing follows the grants, control follows presence and dialogs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from client.core.control.injector import InjectorUnavailable
from client.core.live_session import (
    ChatSent,
    ClipboardWrite,
    LiveEvent,
    LiveSession,
    Notice,
    SessionFinished,
)
from client.core.presence import Presence
from client.core.user_session import CapabilitiesAsked, ChatReceived, PresenceChanged
from common.errors import InvalidState
from common.protocol import messages as m
from common.session import MessageReceived, SessionEnded, SessionEvent


@dataclasses.dataclass
class Tech:
    name: str = "Jane Doe"
    org: str = "ACME IT"


class FakeChannel:
    """The parts of SecureChannel that LiveSession and UserSession use."""

    def __init__(self, granted: tuple[str, ...] = ("view",)) -> None:
        self.granted = granted
        self.technician = Tech()
        self.sent: list[m.AppMessage] = []
        self.listeners: list[Callable[[SessionEvent], None]] = []
        self.ended: SessionEnded | None = None

    def add_listener(self, listener: Callable[[SessionEvent], None]) -> None:
        self.listeners.append(listener)

    def send_nowait(self, msg: m.AppMessage) -> None:
        if self.ended is not None:
            raise InvalidState("the session is closed")
        self.sent.append(msg)

    def deliver(self, msg: m.AppMessage) -> None:
        for listener in list(self.listeners):
            listener(MessageReceived(msg.CHANNEL, msg))

    def end(self, reason: str = "The technician ended the session.", by_peer: bool = True) -> None:
        if self.ended is not None:
            return
        self.ended = SessionEnded(reason, clean=True, by_peer=by_peer)
        for listener in list(self.listeners):
            listener(self.ended)

    async def close(self, reason: str = "Session ended.") -> None:
        self.end(reason, by_peer=False)


class FakeSharer:
    def __init__(self, log: list[str], fail: Exception | None = None) -> None:
        self.log = log
        self.fail = fail

    async def start(self) -> None:
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        self.log.append("start")

    async def stop(self, reason: str = "Screen sharing stopped.") -> None:
        await asyncio.sleep(0)
        self.log.append(f"stop: {reason}")


class FakeControl:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.hooks: dict[str, Any] = {}
        self.finished = asyncio.Event()
        self.finished.set()

    def __call__(self, channel: Any, **hooks: Any) -> FakeControl:
        self.hooks = hooks
        self.calls.append(("created", hooks["granted"]))
        return self

    def start(self) -> None:
        self.calls.append(("start", None))

    def apply_presence(self, presence: Presence) -> None:
        self.calls.append(("presence", (presence.granted, presence.paused)))

    def set_dialog_open(self, is_open: bool) -> None:
        self.calls.append(("dialog", is_open))

    def clipboard_changed(self, text: str) -> None:
        self.calls.append(("clipboard", text))

    def set_clipboard_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        self.calls.append(("directions", (to_technician, from_technician)))


class Harness:
    def __init__(
        self,
        granted: tuple[str, ...] = ("view",),
        *,
        sharer_fail: Exception | None = None,
        control: Any = None,
        dialog_open: bool = False,
    ) -> None:
        self.channel = FakeChannel(granted)
        self.events: list[LiveEvent] = []
        self.log: list[str] = []
        self.control = FakeControl() if control is None else control
        self.live = LiveSession(
            self.channel,  # type: ignore[arg-type]
            self.events.append,
            sharer_factory=lambda _channel: FakeSharer(self.log, sharer_fail),
            control_factory=self.control,
            dialog_open=dialog_open,
        )

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def test_sharing_follows_view_pause_and_revoke() -> None:
    h = Harness(("view",))
    h.live.start()
    await h.settle()
    assert h.log == ["start"]
    h.live.set_paused(True)
    await h.settle()
    assert h.log[-1] == "stop: The user paused the session."
    h.live.set_paused(False)
    await h.settle()
    assert h.log[-1] == "start"
    h.live.set_capability("view", False)
    await h.settle()
    assert h.log == [
        "start",
        "stop: The user paused the session.",
        "start",
        "stop: The user stopped sharing the screen.",
    ]
    # Every change was announced to the technician.
    grants = [msg.capabilities for msg in h.channel.sent if isinstance(msg, m.CapabilityGrant)]
    assert grants == [(), ("view",), ()]


async def test_no_sharing_without_view_until_granted() -> None:
    h = Harness(("control",))
    h.live.start()
    await h.settle()
    assert h.log == []
    h.live.grant(("view",))
    await h.settle()
    assert h.log == ["start"]


async def test_quick_changes_end_in_the_right_state() -> None:
    h = Harness(("view",))
    h.live.start()
    h.live.set_paused(True)
    h.live.set_paused(False)
    h.live.set_paused(True)
    await h.settle()
    # The sync ran once, after the changes: nothing was shared at all.
    assert h.log == []
    assert not h.live.sharing
    h.live.set_paused(False)
    h.live.set_paused(True)
    h.live.set_paused(False)
    await h.settle()
    assert h.log == ["start"]


async def test_a_sharing_failure_is_a_notice_and_is_not_retried_in_a_loop() -> None:
    h = Harness(("view",), sharer_fail=RuntimeError("no display"))
    h.live.start()
    await h.settle()
    assert [n.text for n in h.of(Notice)] == [
        "Your screen cannot be shared on this computer: no display"
    ]
    assert isinstance(h.channel.sent[-1], m.ScreenStopped)
    h.live.set_capability("clipboard", True)  # a presence change, "view" unchanged
    await h.settle()
    assert len(h.of(Notice)) == 1


async def test_control_follows_presence_and_dialogs() -> None:
    h = Harness(("view", "control"), dialog_open=True)
    h.live.start()
    assert h.control.calls[:3] == [
        ("created", ("view", "control")),
        ("dialog", True),
        ("start", None),
    ]
    h.live.set_paused(True)
    assert h.control.calls[-1] == ("presence", (("view", "control"), True))
    h.live.set_dialog_open(False)
    assert h.control.calls[-1] == ("dialog", False)
    h.live.clipboard_changed("hello")
    assert h.control.calls[-1] == ("clipboard", "hello")
    # The stop hotkey revokes control through UserSession.
    h.control.hooks["on_control_stopped"]()
    assert h.live.session.granted == ("view",)
    assert h.control.calls[-1] == ("presence", (("view",), True))
    # Text from the technician goes to the UI.
    h.control.hooks["clipboard_port"].set_text("from Jane")
    assert h.of(ClipboardWrite) == [ClipboardWrite("from Jane")]


async def test_no_x_display_is_a_notice_not_a_failure() -> None:
    def unavailable(channel: Any, **hooks: Any) -> Any:
        raise InjectorUnavailable("no X display")

    h = Harness(("view",), control=unavailable)
    h.live.start()
    await h.settle()
    assert not h.live.control_available
    assert [n.text for n in h.of(Notice)] == [
        "Remote control is not available on this computer: no X display"
    ]
    assert h.log == ["start"]


async def test_technician_events_and_chat() -> None:
    h = Harness(("view",))
    h.live.start()
    h.channel.deliver(m.CapabilityRequest(("view", "control")))
    h.channel.deliver(m.ChatText(1, "hello", 5))
    h.live.send_chat("hi")
    assert h.of(CapabilitiesAsked) == [CapabilitiesAsked(("control",))]
    assert h.of(ChatReceived) == [ChatReceived("hello", 5)]
    assert h.of(ChatSent) == [ChatSent("hi")]
    assert [msg.text for msg in h.channel.sent if isinstance(msg, m.ChatText)] == ["hi"]


async def test_the_technician_leaving_finishes_and_releases_the_screen() -> None:
    h = Harness(("view",))
    h.live.start()
    await h.settle()
    h.channel.end()
    await asyncio.wait_for(h.live.wait_finished(), 5)
    assert h.log[-1] == "stop: The session ended."
    assert h.of(SessionFinished) == [
        SessionFinished("The session ended: The technician ended the session.", by_peer=True)
    ]
    assert h.of(PresenceChanged)[-1] == PresenceChanged(Presence())
    h.live.send_chat("too late")
    assert h.of(Notice)[-1].text.startswith("The message was not sent")


async def test_stop_revokes_everything_and_closes() -> None:
    h = Harness(("view", "control"))
    h.live.start()
    await h.settle()
    await asyncio.wait_for(h.live.stop(), 5)
    assert h.log[-1] == "stop: The user stopped the session."
    assert h.control.calls[-1] == ("presence", ((), False))
    assert h.of(SessionFinished) == [SessionFinished("You ended the session.", by_peer=False)]


@pytest.mark.parametrize("size", [10, 2_000_000])
async def test_clipboard_transfers_become_notices(size: int) -> None:
    from client.core.control.clipboard import ClipboardTransfer, Direction, Outcome

    h = Harness(("view", "clipboard"))
    h.live.start()
    outcome = Outcome.SENT if size == 10 else Outcome.TOO_LARGE
    h.control.hooks["on_event"](ClipboardTransfer(Direction.TO_TECHNICIAN, size, outcome))
    text = h.of(Notice)[-1].text
    assert f"{size:,} bytes" in text
    assert ("was sent" in text) == (size == 10)
