"""Remote control end to end on a real X display.

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

from client.core.authority import CapabilityAuthority, Refusal
from client.core.control.gate import GateConfig, GateEvent
from client.core.control.injector import XInjector
from client.core.control.service import ControlService
from client.core.session import UserClient
from client.core.session_controller import (
    ChatReceived,
    ClipboardMoved,
    ClipboardWrite,
    InboundRefused,
    Reconnecting,
    SessionClosed,
    SessionState,
    UserSessionController,
    UserSessionEvent,
)
from common.capability import Capability
from common.clipboard import ClipboardSync, ClipboardTransfer, Flow, Outcome
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.net.session_events import EndReason
from common.protocol import messages as m
from common.protocol.messages import ControlState, ControlStatus
from common.session import MessageReceived, SessionEnded
from relay.server import RelayServer
from technician.core.input import (
    SPECIAL_KEYS,
    Rect,
    RemoteInput,
    ViewTransform,
    region_for,
)
from technician.core.session import TechnicianClient
from tests.pki import Org, make_org
from tests.xvfb import Xvfb


pytestmark = pytest.mark.x11

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


# --- tests ---


async def test_pointer_wheel_keys_and_text_reach_a_window_in_another_process(
    relay_server: RelayServer, org: Org, desktop: Xvfb, probe: Probe
) -> None:
    async with open_pair(relay_server, org, desktop, ("view", "control")) as pair:
        await pair.status(ControlState.ACTIVE)

        # A click, a double click (a human's: 30 ms apart), a right click.
        pair.move(2200, 300)
        for button, x in ((1, 2200), (1, 2600), (1, 2600), (3, 2900)):
            pair.click(button, x, 300)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.5)  # nothing below may make a double click with that
        # A drag: 200 viewer moves 2 ms apart, coalesced to one per 8 ms.
        start, end = pair.viewer_point(2300, 500), pair.viewer_point(3300, 700)
        pair.button(1, True, 2300, 500)

        def drag(remote: RemoteInput, now: float) -> None:
            for i in range(1, 201):
                x = start[0] + (end[0] - start[0]) * i / 200
                y = start[1] + (end[1] - start[1]) * i / 200
                remote.pointer_move(x, y, now + i * 0.002)
                for msg in remote.take(now + i * 0.002):
                    pair.tech.send_nowait(msg)

        sent_moves = pair.act(drag) + pair.remote.queue.pushed - pair.remote.queue.coalesced
        pair.button(1, False, 3300, 700)
        assert pair.remote.queue.coalesced >= 140  # of 200 moves, at most ~50 went out
        assert sent_moves > 0
        # The wheel, both axes (wire: dy > 0 up, dx > 0 right).
        for dx, dy in ((0, 120), (0, -240), (120, 0), (-120, 0)):
            pair.wheel(dx, dy, 3000, 500)
        await probe.sync(pair)

        assert mouse_events(probe) == [
            ("press", 1, 2200, 300),
            ("release", 1, 2200, 300),
            ("press", 1, 2600, 300),
            ("release", 1, 2600, 300),
            ("press", 1, 2600, 300),  # a QWindow sees the press, then the double click
            ("dblclick", 1, 2600, 300),
            ("release", 1, 2600, 300),
            ("press", 2, 2900, 300),  # Qt's RightButton is 2
            ("release", 2, 2900, 300),
            ("press", 1, 2300, 500),
            ("release", 1, 3300, 700),
        ]
        drag_seen = [e for e in probe.seen() if e["event"] == "move" and e["buttons"] == 1]
        assert drag_seen and (drag_seen[-1]["x"], drag_seen[-1]["y"]) == (3300, 700)
        xs = [e["x"] for e in drag_seen]
        assert xs == sorted(xs)  # in order
        assert [(e["dx"], e["dy"]) for e in probe.seen() if e["event"] == "wheel"] == [
            (0, 120),
            (0, -120),
            (0, -120),
            (-120, 0),  # Qt reports "right" as x < 0
            (120, 0),
        ]

        # Typing: ASCII as keys (with Shift), then text that no key on this layout has.
        probe.events.clear()
        pair.type_ascii("Hello, World! 42")
        pair.text("é ß € É")
        await probe.sync(pair)
        typed = "".join(e["text"] for e in probe.seen() if e["event"] == "key")
        assert typed == "Hello, World! 42é ß € É"
        # "ll" arrives in one burst, yet the window sees two presses, not an auto-repeat.
        assert not [e for e in probe.seen() if e["event"] in ("key", "keyup") and e["repeat"]]

        # Special keys and shortcuts.
        probe.events.clear()
        for keysym in (ESCAPE, RETURN, TAB, BACKSPACE, F5):
            pair.special((keysym,))
        for name in ("Super", "Print Screen", "Alt+Tab", "Ctrl+Alt+Del"):
            pair.special(SPECIAL_KEYS[name])
        pair.special((CONTROL_L, ord("a")))
        await probe.sync(pair)
        k = QT_KEY
        assert key_events(probe) == [
            ("key", k["Escape"], "\x1b", 0),
            ("keyup", k["Escape"], "\x1b", 0),
            ("key", k["Return"], "\r", 0),
            ("keyup", k["Return"], "\r", 0),
            ("key", k["Tab"], "\t", 0),
            ("keyup", k["Tab"], "\t", 0),
            ("key", k["Backspace"], "\x08", 0),
            ("keyup", k["Backspace"], "\x08", 0),
            ("key", k["F5"], "", 0),
            ("keyup", k["F5"], "", 0),
            ("key", k["Meta"], "", QT_META),
            ("keyup", k["Meta"], "", 0),
            ("key", k["Print"], "", 0),
            ("keyup", k["Print"], "", 0),
            ("key", k["Alt"], "", QT_ALT),
            ("key", k["Tab"], "\t", QT_ALT),
            ("keyup", k["Tab"], "\t", QT_ALT),
            ("keyup", k["Alt"], "", 0),
            ("key", k["Control"], "", QT_CTRL),
            ("key", k["Alt"], "", QT_CTRL | QT_ALT),
            ("key", k["Delete"], "\x7f", QT_CTRL | QT_ALT),
            ("keyup", k["Delete"], "\x7f", QT_CTRL | QT_ALT),
            ("keyup", k["Alt"], "", QT_CTRL),
            ("keyup", k["Control"], "", 0),
            ("key", k["Control"], "", QT_CTRL),
            ("key", ord("A"), "\x01", QT_CTRL),
            ("keyup", ord("A"), "\x01", QT_CTRL),
            ("keyup", k["Control"], "", 0),
        ]
        assert keys_down(desktop) == ([], 0)


async def test_input_is_refused_until_the_user_grants_control(
    relay_server: RelayServer, org: Org, desktop: Xvfb, probe: Probe
) -> None:
    async with open_pair(relay_server, org, desktop, ("view",)) as pair:
        await pair.status(ControlState.OFF)
        pair.click(1, 2500, 400)
        pair.text("nope")
        pair.tech.send_nowait(m.ChatText(1, "marker", 0))
        # The session's inbound gate drops the input before it reaches the injector.
        async with asyncio.timeout(TIMEOUT):
            while not any(isinstance(e, ChatReceived) for e in pair.session_events):
                await asyncio.sleep(0.01)
        refused = [
            (e.message_type, e.refusal, e.needs)
            for e in pair.session_events
            if isinstance(e, InboundRefused)
        ]
        assert refused and set(refused) <= {
            (name, Refusal.NOT_GRANTED, Capability.CONTROL)
            for name in ("PointerMove", "PointerButton", "TextInput")
        }
        # The technician is told why, as the gate counts what the authority dropped.
        await pair.next_message(
            lambda msg: (
                isinstance(msg, m.ControlStatus)
                and msg.state is ControlState.OFF
                and msg.refused > 0
            )
        )
        # The user allows control: from now on input goes through.
        pair.session.set_capability(Capability.CONTROL, True)
        await pair.next_message(lambda msg: msg == m.CapabilityGrant(("view", "control")))
        await pair.status(ControlState.ACTIVE)  # the grant first, then the service follows
        pair.text("yes")
        await probe.sync(pair)
        assert mouse_events(probe) == []
        assert "".join(e["text"] for e in probe.seen() if e["event"] == "key") == "yes"


async def test_the_user_wins_remote_input_pauses_while_they_type(
    relay_server: RelayServer, org: Org, desktop: Xvfb, probe: Probe
) -> None:
    async with open_pair(relay_server, org, desktop, ("view", "control")) as pair:
        await pair.status(ControlState.ACTIVE)
        # The technician holds Shift...
        pair.key(SHIFT_L, True)
        await probe.wait_for(lambda e: e["event"] == "key" and e["key"] == QT_KEY["Shift"])
        # ...when the user presses a key on their own keyboard (played by xdotool).
        await xdotool(desktop, "key", "F5")
        await pair.status(ControlState.USER_ACTIVE)
        # Shift was released for the user, and the technician's click is refused.
        await probe.wait_for(lambda e: e["event"] == "keyup" and e["key"] == QT_KEY["Shift"])
        pair.click(1, 2500, 400)
        assert (await pair.status(ControlState.USER_ACTIVE, refused=True)).refused >= 1
        # After a moment of quiet, control comes back by itself.
        await pair.status(ControlState.ACTIVE)
        await probe.sync(pair)
        assert mouse_events(probe) == []
        assert ("key", QT_KEY["F5"], "", QT_SHIFT) in key_events(probe)  # the user's own key
        causes = [event.cause for event in pair.events if isinstance(event, GateEvent)]
        assert causes == ["user_input", "user_quiet"]


async def test_the_stop_hotkey_ends_the_whole_session_at_once(
    relay_server: RelayServer, org: Org, desktop: Xvfb, probe: Probe
) -> None:
    async with open_pair(relay_server, org, desktop, ("view", "control")) as pair:
        await pair.status(ControlState.ACTIVE)
        pair.button(1, True, 2500, 400)
        await probe.wait_for(lambda e: e["event"] == "press")
        await xdotool(desktop, "key", "ctrl+alt+shift+End")
        # Everything is revoked first, then the session ends with an authenticated CLOSE.
        await pair.next_message(lambda msg: msg == m.CapabilityGrant(()))
        ended = await pair.ended()
        assert ended.clean and ended.by_peer and ended.reason == EndReason.USER_STOPPED.value
        # The button the technician held is released for the user.
        await probe.wait_for(lambda e: e["event"] == "release" and e["button"] == 1)
        async with asyncio.timeout(TIMEOUT):
            await pair.service.finished.wait()
        assert pair.session.state is SessionState.ENDED
        assert pair.session.authority.granted == ()
        closed = [e for e in pair.session_events if isinstance(e, SessionClosed)]
        assert closed == [SessionClosed(EndReason.USER_STOPPED, by_peer=False)]
        assert pair.service.state is ControlState.ENDED
        assert keys_down(desktop) == ([], 0)


async def test_held_keys_and_buttons_are_released_when_the_connection_drops(
    relay_server: RelayServer, org: Org, desktop: Xvfb, probe: Probe
) -> None:
    async with open_pair(relay_server, org, desktop, ("view", "control")) as pair:
        await pair.status(ControlState.ACTIVE)
        pair.text("€")  # binds a spare keycode
        pair.key(SHIFT_L, True)
        pair.key(CONTROL_L, True, m.SHIFT_MASK)
        pair.button(1, True, 2400, 600)
        await probe.wait_for(lambda e: e["event"] == "press")
        held, buttons = keys_down(desktop)
        assert len(held) == 2 and buttons == 0x100  # Shift, Control and button 1 are down
        injector = pair.service.injector
        assert isinstance(injector, XInjector)
        bound = injector.keyboard.bound
        assert list(bound.values()) == [0x010020AC]

        # The relay goes away: no CLOSE record, the link just drops. The session
        # waits to resume, but nothing the technician held stays held meanwhile.
        await relay_server.close()
        await probe.wait_for(lambda e: e["event"] == "release" and e["button"] == 1)
        await probe.wait_for(lambda e: e["event"] == "keyup" and e["key"] == QT_KEY["Shift"])
        await probe.wait_for(lambda e: e["event"] == "keyup" and e["key"] == QT_KEY["Control"])
        assert pair.session.state is SessionState.RECONNECTING
        assert any(isinstance(e, Reconnecting) for e in pair.session_events)
        assert keys_down(desktop) == ([], 0)
        # The user stops while the link is down: control ends for good.
        await pair.session.stop()
        async with asyncio.timeout(TIMEOUT):
            await pair.service.finished.wait()
        assert keys_down(desktop) == ([], 0)
        assert pair.service.state is ControlState.ENDED
        # The spare keycode went back to having no symbol.
        conn = xdisplay.Display(desktop.display)
        try:
            for keycode in bound:
                assert not any(conn.get_keyboard_mapping(keycode, 1)[0])
        finally:
            conn.close()


async def test_clipboard_both_ways_with_a_size_limit_and_pause(
    relay_server: RelayServer, org: Org, desktop: Xvfb
) -> None:
    async with open_pair(
        relay_server, org, desktop, ("view", "clipboard"), watch_local_input=False
    ) as pair:
        tech_board: list[str] = []

        class TechBoard:
            def set_text(self, text: str) -> None:
                tech_board.append(text)

        # The technician's side: the shared clipboard sync, with a small limit.
        tech_clip = ClipboardSync(
            TechBoard(), may_send=lambda: True, may_receive=lambda: True, max_bytes=64
        )
        tech_events: list[ClipboardTransfer] = []

        def tech_pump() -> None:
            for msg in tech_clip.messages_to_send():
                pair.tech.send_nowait(msg)
            tech_events.extend(tech_clip.events_received())

        def tech_takes(msg: m.AppMessage, kind: type[m.AppMessage]) -> bool:
            if isinstance(msg, (m.ClipboardText, m.ClipboardPolicy)):
                tech_clip.receive(msg)
                tech_events.extend(tech_clip.events_received())
            return isinstance(msg, kind)

        def user_board() -> list[str]:
            return [e.text for e in pair.session_events if isinstance(e, ClipboardWrite)]

        async def user_board_has(count: int) -> None:
            async with asyncio.timeout(TIMEOUT):
                while len(user_board()) < count:
                    await asyncio.sleep(0.01)

        tech_clip.refresh()
        tech_pump()
        policy = await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardPolicy))
        assert isinstance(policy, m.ClipboardPolicy) and policy.send and policy.receive
        # Technician -> user.
        tech_clip.local_changed("from the technician: café")
        tech_pump()
        await user_board_has(1)
        assert user_board() == ["from the technician: café"]
        # User -> technician; too large for the technician's limit is refused at the source.
        pair.session.clipboard_changed("x" * 65)
        pair.session.clipboard_changed("from the user: 5 €")
        await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardText))
        assert tech_board == ["from the user: 5 €"]
        # The user closes the direction to the technician: nothing more goes out.
        pair.session.set_clipboard_directions(to_technician=False, from_technician=True)
        policy = await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardPolicy))
        assert isinstance(policy, m.ClipboardPolicy) and not policy.send and policy.receive
        pair.session.clipboard_changed("private")
        tech_clip.local_changed("y" * 60)
        tech_pump()
        await user_board_has(2)
        assert tech_board == ["from the user: 5 €"]

        # Pause blocks the clipboard both ways, whatever the technician sends.
        pair.session.set_clipboard_directions(to_technician=True, from_technician=True)
        pair.session.set_paused(True)
        await pair.next_message(
            lambda msg: (
                tech_takes(msg, m.ClipboardPolicy)
                and isinstance(msg, m.ClipboardPolicy)
                and not msg.send
                and not msg.receive
            )
        )
        pair.session.clipboard_changed("while paused")
        pair.tech.send_nowait(m.ClipboardText("forced while paused"))
        pair.tech.send_nowait(m.ChatText(1, "marker", 0))
        async with asyncio.timeout(TIMEOUT):
            while not any(
                isinstance(e, InboundRefused) and e.message_type == "ClipboardText"
                for e in pair.session_events
            ):
                await asyncio.sleep(0.01)
        refused = [e for e in pair.session_events if isinstance(e, InboundRefused)]
        assert refused == [InboundRefused("ClipboardText", Refusal.PAUSED, Capability.CLIPBOARD)]
        assert user_board() == ["from the technician: café", "y" * 60]
        pair.session.set_paused(False)
        policy = await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardPolicy))
        assert isinstance(policy, m.ClipboardPolicy) and policy.send and policy.receive
        assert tech_board == ["from the user: 5 €"]  # nothing from the pause leaks afterwards

        # Every transfer is an event for the record, on both sides (sizes, never text).
        outcomes = [
            (e.transfer.flow, e.transfer.size, e.transfer.outcome)
            for e in pair.session_events
            if isinstance(e, ClipboardMoved)
        ]
        assert outcomes == [
            (Flow.INBOUND, 26, Outcome.APPLIED),
            (Flow.OUTBOUND, 65, Outcome.TOO_LARGE),
            (Flow.OUTBOUND, 20, Outcome.SENT),
            (Flow.INBOUND, 60, Outcome.APPLIED),
        ]
        assert [(e.flow, e.size, e.outcome) for e in tech_events] == [
            (Flow.OUTBOUND, 26, Outcome.SENT),
            (Flow.INBOUND, 20, Outcome.APPLIED),
            (Flow.OUTBOUND, 60, Outcome.SENT),
        ]
