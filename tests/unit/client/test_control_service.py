"""ControlService with fakes: the pump between the controller, gate, injector and monitor."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest

from client.core.authority import CapabilityAuthority
from client.core.control.activity import LocalInput
from client.core.control.gate import GateConfig, GateEvent
from client.core.control.service import INPUT_MESSAGES, ControlService
from common.capability import Capability, parse_capabilities
from common.errors import InvalidState
from common.protocol import messages as m
from common.protocol.messages import ControlState, ControlStatus


class FakeChannel:
    """Sends are recorded; delivery routes input to the service as the controller does."""

    def __init__(self) -> None:
        self.sent: list[m.AppMessage] = []
        self.service: ControlService | None = None
        self.closed = False

    def send_nowait(self, msg: m.AppMessage) -> None:
        if self.closed:
            raise InvalidState("the session is closed")
        self.sent.append(msg)

    def deliver(self, msg: m.AppMessage) -> None:
        assert self.service is not None
        if isinstance(msg, INPUT_MESSAGES):
            self.service.receive(msg)

    def end(self) -> None:
        self.closed = True
        assert self.service is not None
        self.service.close()


class FakeInjector:
    def __init__(self, chars_per_call: int = 1000) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.chars_per_call = chars_per_call
        self.closed = False

    def move(self, x: int, y: int) -> None:
        self.calls.append(("move", x, y))

    def button(self, button: int, pressed: bool) -> None:
        self.calls.append(("button", button, pressed))

    def scroll(self, clicks_x: int, clicks_y: int) -> None:
        self.calls.append(("scroll", clicks_x, clicks_y))

    def key(self, keysym: int, pressed: bool) -> bool:
        self.calls.append(("key", keysym, pressed))
        return True

    def key_ready_at(self, keysym: int) -> float:
        return 0.0

    def type_text(self, text: str) -> int:
        done = text[: self.chars_per_call]
        self.calls.append(("text", done))
        return len(done)

    def retry_at(self) -> float:
        return 0.0

    def restore_keymap(self) -> None:
        self.calls.append(("restore",))

    def close(self) -> None:
        self.closed = True


class FakeMonitor:
    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self.queued: list[LocalInput] = []

    def fileno(self) -> int:
        return self._read_fd

    def push(self, *events: LocalInput) -> None:
        self.queued.extend(events)
        os.write(self._write_fd, b"x")

    def read(self) -> list[LocalInput]:
        os.read(self._read_fd, 4096)
        found, self.queued = self.queued, []
        return found

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def monitor() -> Iterator[FakeMonitor]:
    fake = FakeMonitor()
    yield fake
    fake.close()


def make(
    monitor: FakeMonitor | None = None,
    granted: tuple[str, ...] = ("view", "control"),
    **kwargs: object,
) -> tuple[ControlService, FakeChannel, FakeInjector, list[GateEvent]]:
    channel, injector = FakeChannel(), FakeInjector()
    events: list[GateEvent] = []
    authority = CapabilityAuthority(parse_capabilities(granted))
    service = ControlService(
        channel,
        injector,
        authority,
        monitor=monitor,
        on_event=events.append,
        restore_delay=0,
        **kwargs,  # type: ignore[arg-type]
    )
    channel.service = service
    service.start()
    return service, channel, injector, events


def authority_of(service: ControlService) -> CapabilityAuthority:
    grants = service.gate._grants
    assert isinstance(grants, CapabilityAuthority)
    return grants


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_accepted_input_is_injected_and_status_announced() -> None:
    _service, channel, injector, _ = make()
    assert channel.sent == [ControlStatus(ControlState.ACTIVE, 0)]
    for msg in (
        m.PointerMove(5, 6),
        m.PointerButton(1, True),
        m.PointerButton(1, False),
        m.Wheel(0, 240),
        m.Wheel(-60, 0),
        m.Wheel(-60, 0),
        m.KeyEvent(0x61, True),
        m.KeyEvent(0x61, False),
        m.TextInput("é€"),
    ):
        channel.deliver(msg)
    assert injector.calls == [
        ("move", 5, 6),
        ("button", 1, True),
        ("button", 1, False),
        ("scroll", 0, 2),
        ("scroll", -1, 0),
        ("key", 0x61, True),
        ("key", 0x61, False),
        ("text", "é€"),
    ]
    channel.deliver(m.ChatText(1, "not for us", 0))  # other channels are ignored
    assert len(injector.calls) == 8


async def test_refused_without_control() -> None:
    service, channel, injector, _ = make(granted=("view",))
    channel.deliver(m.PointerMove(1, 1))
    assert injector.calls == []
    assert channel.sent == [ControlStatus(ControlState.OFF, 0), ControlStatus(ControlState.OFF, 1)]
    authority_of(service).grant((Capability.CONTROL,))
    service.sync()
    assert channel.sent[-1] == ControlStatus(ControlState.ACTIVE, 0)
    channel.deliver(m.PointerMove(1, 1))
    assert injector.calls == [("move", 1, 1)]


async def test_local_input_pauses_and_the_hotkey_asks_to_stop(monitor: FakeMonitor) -> None:
    stops: list[bool] = []
    service, channel, injector, events = make(
        monitor, config=GateConfig(user_pause=30), on_stop_requested=lambda: stops.append(True)
    )
    channel.deliver(m.KeyEvent(0xFFE1, True))
    monitor.push(LocalInput("motion", 0, True))
    await wait_for(lambda: service.state is ControlState.USER_ACTIVE)
    assert injector.calls == [("key", 0xFFE1, True), ("key", 0xFFE1, False)]
    assert channel.sent[-1] == ControlStatus(ControlState.USER_ACTIVE, 0)
    # Ctrl+Alt+Shift+End, typed by the user.
    monitor.push(
        *(LocalInput("key", 0, True, ks) for ks in (0xFFE3, 0xFFE9, 0xFFE1, 0xFF57)),
    )
    await wait_for(lambda: bool(stops))
    assert stops == [True]  # the controller ends the whole session
    assert [e.state for e in events] == [ControlState.USER_ACTIVE]


async def test_the_pause_ends_by_itself(monitor: FakeMonitor) -> None:
    service, channel, _, _ = make(monitor, config=GateConfig(user_pause=0.05))
    monitor.push(LocalInput("button", 1, True))
    await wait_for(lambda: service.state is ControlState.USER_ACTIVE)
    await wait_for(lambda: channel.sent[-1] == ControlStatus(ControlState.ACTIVE, 0))


async def test_text_waits_for_a_spare_keycode_and_keeps_its_place() -> None:
    _service, channel, injector, _ = make()
    injector.chars_per_call = 1
    channel.deliver(m.TextInput("abc"))
    channel.deliver(m.KeyEvent(0xFF0D, True))
    await wait_for(lambda: ("key", 0xFF0D, True) in injector.calls)
    assert injector.calls == [("text", "a"), ("text", "b"), ("text", "c"), ("key", 0xFF0D, True)]


async def test_pending_text_is_dropped_when_control_stops() -> None:
    service, channel, injector, _ = make()
    injector.chars_per_call = 0
    channel.deliver(m.KeyEvent(0xFFE3, True))
    channel.deliver(m.TextInput("never typed"))
    authority_of(service).revoke((Capability.CONTROL,))
    service.mark_stopped()
    await asyncio.sleep(0.01)
    assert ("key", 0xFFE3, False) in injector.calls
    assert all(call[0] != "text" or call[1] == "" for call in injector.calls)


async def test_session_end_releases_and_frees(monitor: FakeMonitor) -> None:
    service, channel, injector, _ = make(monitor)
    channel.deliver(m.PointerButton(1, True))
    channel.deliver(m.KeyEvent(0xFFE1, True))
    channel.end()
    assert injector.calls[-2:] == [("key", 0xFFE1, False), ("button", 1, False)]
    await asyncio.wait_for(service.finished.wait(), 5)
    assert injector.closed
    assert service.state is ControlState.ENDED
    service.sync()  # after the end: ignored
    service.close()  # idempotent


async def test_the_service_follows_the_authority() -> None:
    service, channel, injector, _ = make(granted=("view",))
    authority = authority_of(service)
    authority.grant((Capability.CONTROL,))
    service.sync()
    assert service.state is ControlState.ACTIVE
    authority.set_paused(True)
    service.sync()
    assert service.state is ControlState.PAUSED
    channel.deliver(m.PointerMove(1, 1))
    assert injector.calls == []
    authority.set_paused(False)
    authority.revoke((Capability.CONTROL,))
    service.sync()
    assert service.state is ControlState.OFF
    service.set_dialog_open(True)
    assert service.state is ControlState.OFF
    assert not any(isinstance(msg, m.CapabilityGrant) for msg in channel.sent)  # not its job
