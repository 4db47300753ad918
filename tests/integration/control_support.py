"""What the remote-control tests (test_control_*.py) share: an X desktop, a probe
window, and a technician and a user core paired through a real relay.

A real technician core sends input through a real relay to a real user core
whose ControlService injects it with XTest into an Xvfb started here. A Qt
window in a separate process (tests/x11_probe.py) records what it receives;
each test reads that back and compares.

The Xvfb is 3840x1080 and the technician sees it as two 1920x1080 monitors
(the probe window sits on the second), so every pointer position crosses
the monitor mapping.

"Local" input (the user touching their own mouse or keyboard) is played by
xdotool, a separate XTest client: the user core cannot tell it from a
physical device by its source (both are XTest here), only by its absence
from the injector's ledger, which is how it tells physical input on a real
desktop too (see client/core/control/activity.py).

Fixtures: ``desktop`` (the Xvfb, one per test module), ``org``, ``probe`` (the
probe window, ready and with no events yet); a test module uses them by binding
them to module names (``desktop = control_support.desktop``). :func:`open_pair`
pairs the two cores, :class:`Pair` drives the technician's side in desktop
pixels; :func:`mouse_events`, :func:`key_events` and :func:`keys_down` read
what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from Xlib import display as xdisplay

from client.core.authority import CapabilityAuthority
from client.core.control.gate import GateConfig, GateEvent
from client.core.control.service import ControlService
from client.core.session import UserClient
from client.core.session_controller import UserSessionController, UserSessionEvent
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.protocol.messages import ControlState, ControlStatus
from common.session import MessageReceived, SessionEnded
from relay.server import RelayServer
from technician.core.input import Rect, RemoteInput, ViewTransform, region_for
from technician.core.session import TechnicianClient
from tests.pki import Org, make_org
from tests.xvfb import Xvfb


PROBE = Path(__file__).resolve().parent.parent / "x11_probe.py"
MONITORS = [(0, 0, 1920, 1080), (1920, 0, 1920, 1080)]
PROBE_GEOMETRY = (2000, 100, 1600, 800)
TIMEOUT = 15.0

# Keysyms.
SHIFT_L, CONTROL_L, ALT_L, SUPER_L = 0xFFE1, 0xFFE3, 0xFFE9, 0xFFEB
ESCAPE, RETURN, TAB, BACKSPACE, F5, PAUSE, END = (
    0xFF1B,
    0xFF0D,
    0xFF09,
    0xFF08,
    0xFFC2,
    0xFF13,
    0xFF57,
)
# Qt keys and modifiers as the probe reports them.
QT_SHIFT, QT_CTRL, QT_ALT, QT_META = 0x02000000, 0x04000000, 0x08000000, 0x10000000
QT_KEY = {
    "Escape": 0x01000000,
    "Tab": 0x01000001,
    "Backspace": 0x01000003,
    "Return": 0x01000004,
    "Delete": 0x01000007,
    "Pause": 0x01000008,
    "Print": 0x01000009,
    "Shift": 0x01000020,
    "Control": 0x01000021,
    "Alt": 0x01000023,
    "F5": 0x01000034,
    "Meta": 0x01000022,  # Qt's name for Super_L on X11
}
SHIFTED = set('ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?')


@pytest.fixture(scope="module")
def desktop() -> Iterator[Xvfb]:
    """A 3840x1080 Xvfb of our own: keymap changes stay out of other tests."""
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: apt-get install xdotool")
    with Xvfb(3840, 1080, 24) as server:
        yield server


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


class Probe:
    """The probe window process and what it has reported so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            event = json.loads(line)
            event.pop("t", None)
            self.events.append(event)
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """The first event so far (or to come) that matches."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                if self._reader.done():
                    raise AssertionError(f"the probe exited; it saw {self.events}")
                self._changed.clear()
                await self._changed.wait()

    async def sync(self, pair: Pair) -> None:
        """Send Pause as a marker and wait until the window saw it (and all before it)."""
        before = len([e for e in self.events if e.get("keysym") == PAUSE])
        pair.special((PAUSE,))
        async with asyncio.timeout(TIMEOUT):
            while len([e for e in self.events if e.get("keysym") == PAUSE]) < before + 2:
                self._changed.clear()
                await self._changed.wait()

    def seen(self) -> list[dict[str, Any]]:
        """Everything but the Pause markers."""
        return [e for e in self.events if e.get("keysym") != PAUSE]

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@pytest.fixture
async def probe(desktop: Xvfb) -> AsyncIterator[Probe]:
    env = desktop.env()
    env["QT_QPA_PLATFORM"] = "xcb"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        "--geometry",
        ",".join(map(str, PROBE_GEOMETRY)),
        "--lifetime",
        "60",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    probe = Probe(proc)
    try:
        ready = await probe.wait_for(lambda e: e["event"] in ("ready", "failed"), timeout=30)
        assert ready["event"] == "ready", ready
        probe.events.clear()
        yield probe
    finally:
        await probe.close()


class Pair:
    """A technician and a user core paired through the relay, with control wired.

    The user's side is a UserSessionController, as in the app: it owns the
    grants and routes the technician's input to the ControlService.

    The technician's side is driven in *desktop* pixels: each helper turns
    them into viewer points with the technician's ViewTransform (monitor 2
    fitted into a 1280x720 viewer) and feeds RemoteInput, as InputCapture
    would, then sends what RemoteInput lets out.
    """

    def __init__(
        self,
        user: SecureChannel,
        tech: SecureChannel,
        service: ControlService,
        events: list[GateEvent],
        session: UserSessionController,
        session_events: list[UserSessionEvent],
    ) -> None:
        self.user = user
        self.tech = tech
        self.service = service
        self.events = events
        self.session = session
        self.session_events = session_events
        self.remote = RemoteInput(min_move_interval=0.008)
        self.remote.transform = ViewTransform.fit(
            region_for(MONITORS, 2),
            1280,
            720,
            monitors=[Rect(*mon) for mon in MONITORS],
        )

    def viewer_point(self, x: int, y: int) -> tuple[float, float]:
        assert self.remote.transform is not None
        return self.remote.transform.to_viewer(x, y)

    def act(self, action: Callable[[RemoteInput, float], None]) -> int:
        """Run one technician action and send what it produced; returns the moves sent."""
        now = asyncio.get_running_loop().time()
        action(self.remote, now)
        moves = 0
        for msg in self.remote.take(now + 1):  # let a waiting move go too
            self.tech.send_nowait(msg)
            moves += isinstance(msg, m.PointerMove)
        return moves

    def move(self, x: int, y: int) -> None:
        self.act(lambda r, now: r.pointer_move(*self.viewer_point(x, y), now))

    def button(self, button: int, pressed: bool, x: int, y: int) -> None:
        self.act(lambda r, now: r.pointer_button(button, pressed, *self.viewer_point(x, y), now))

    def click(self, button: int, x: int, y: int) -> None:
        self.button(button, True, x, y)
        self.button(button, False, x, y)

    def wheel(self, dx: int, dy: int, x: int, y: int) -> None:
        self.act(lambda r, now: r.wheel(dx, dy, *self.viewer_point(x, y), now))

    def key(self, keysym: int, pressed: bool, mods: int = 0) -> None:
        self.act(lambda r, now: r.key(keysym, pressed, mods, now))

    def text(self, text: str) -> None:
        self.act(lambda r, now: r.text(text, now))

    def special(self, keysyms: tuple[int, ...]) -> None:
        self.act(lambda r, now: r.special(keysyms, now))

    def type_ascii(self, text: str) -> None:
        """Type as a technician on a US keyboard would: Shift held for shifted characters."""
        for char in text:
            shifted = char in SHIFTED
            mods = m.SHIFT_MASK if shifted else 0
            if shifted:
                self.key(SHIFT_L, True)
            self.key(ord(char), True, mods)
            self.key(ord(char), False, mods)
            if shifted:
                self.key(SHIFT_L, False, mods)

    async def status(self, state: ControlState, *, refused: bool = False) -> ControlStatus:
        """The next ControlStatus with this state (and refusals, if asked)."""

        def wanted(msg: m.AppMessage) -> bool:
            return (
                isinstance(msg, ControlStatus)
                and msg.state is state
                and (msg.refused > 0 or not refused)
            )

        msg = await self.next_message(wanted)
        assert isinstance(msg, ControlStatus)
        return msg

    async def next_message(self, predicate: Callable[[m.AppMessage], bool]) -> m.AppMessage:
        """The next message to the technician that matches (others are skipped)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = await self.tech.next_event()
                if isinstance(event, SessionEnded):
                    raise AssertionError(f"the session ended: {event}")
                if isinstance(event, MessageReceived) and predicate(event.message):
                    return event.message

    async def ended(self) -> SessionEnded:
        """Skip the technician's messages until the session ends."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = await self.tech.next_event()
                if isinstance(event, SessionEnded):
                    return event


@contextlib.asynccontextmanager
async def open_pair(
    relay: RelayServer,
    org: Org,
    desktop: Xvfb,
    granted: tuple[str, ...],
    **options: Any,
) -> AsyncIterator[Pair]:
    """Pair through the relay; on the user's side a session controller with control.

    The controller builds its ControlService with ``ControlService.for_x11``
    (``options`` go there) and routes the technician's input to it, as the
    app does (docs/control.md).
    """

    async def consent(request: ConsentRequest) -> tuple[str, ...]:
        return granted

    user = UserClient(relay.url, org.trust, consent)
    tech = TechnicianClient(relay.url, org.technician())
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        user_channel, tech_channel = await asyncio.gather(
            user.wait_for_technician(),
            tech.connect(code.display, requested=("view", "control", "clipboard")),
        )
    events: list[GateEvent] = []
    session_events: list[UserSessionEvent] = []
    services: list[ControlService] = []
    options.setdefault("config", GateConfig(user_pause=0.4, notice_interval=0.1))

    def control_factory(
        channel: SecureChannel,
        authority: CapabilityAuthority,
        *,
        on_event: Callable[[GateEvent], None] | None,
        on_stop_requested: Callable[[], None] | None,
    ) -> ControlService:
        def record(event: GateEvent) -> None:
            events.append(event)
            if on_event is not None:
                on_event(event)

        service = ControlService.for_x11(
            channel,
            authority,
            display=desktop.display,
            on_event=record,
            on_stop_requested=on_stop_requested,
            restore_delay=0.1,
            **options,
        )
        services.append(service)
        return service

    session = UserSessionController(
        user_channel, session_events.append, control_factory=control_factory
    )
    session.start()
    assert len(services) == 1, session_events
    service = services[0]
    try:
        yield Pair(user_channel, tech_channel, service, events, session, session_events)
    finally:
        await session.stop()
        async with asyncio.timeout(TIMEOUT):
            await service.finished.wait()


def mouse_events(probe: Probe) -> list[tuple[Any, ...]]:
    return [
        (e["event"], e["button"], e["x"], e["y"])
        for e in probe.seen()
        if e["event"] in ("press", "release", "dblclick")
    ]


def key_events(probe: Probe) -> list[tuple[str, int, str, int]]:
    return [
        (e["event"], e["key"], e["text"], e["mods"])
        for e in probe.seen()
        if e["event"] in ("key", "keyup")
    ]


def keys_down(desktop: Xvfb) -> tuple[list[int], int]:
    """Keycodes held down and the pointer's button mask, as the X server sees them."""
    conn = xdisplay.Display(desktop.display)
    try:
        keymap = conn.query_keymap()
        held = [i * 8 + b for i, byte in enumerate(keymap) for b in range(8) if byte >> b & 1]
        pointer = conn.screen().root.query_pointer()
        return held, int(pointer.mask) & 0x1F00
    finally:
        conn.close()


async def xdotool(desktop: Xvfb, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec("xdotool", *args, env=desktop.env())
    async with asyncio.timeout(TIMEOUT):
        assert await proc.wait() == 0
