"""Remote control end to end on a real X display: pointer, wheel, keys and text reach
a window in another process, only once control is granted, and the user's own input wins.

The set-up (Xvfb, probe window, paired cores) is in control_support.py.
"""

from __future__ import annotations

import asyncio

import pytest

from client.core.authority import Refusal
from client.core.control.gate import GateEvent
from client.core.session_controller import ChatReceived, InboundRefused
from common.capability import Capability
from common.protocol import messages as m
from common.protocol.messages import ControlState
from relay.server import RelayServer
from technician.core.input import SPECIAL_KEYS, RemoteInput
from tests.integration import control_support
from tests.integration.control_support import (
    BACKSPACE,
    CONTROL_L,
    ESCAPE,
    F5,
    QT_ALT,
    QT_CTRL,
    QT_KEY,
    QT_META,
    QT_SHIFT,
    RETURN,
    SHIFT_L,
    TAB,
    TIMEOUT,
    Probe,
    key_events,
    keys_down,
    mouse_events,
    open_pair,
    xdotool,
)
from tests.pki import Org
from tests.xvfb import Xvfb


pytestmark = pytest.mark.x11

# The fixtures these tests share with the other test_control_* modules.
desktop = control_support.desktop
org = control_support.org
probe = control_support.probe


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
