"""Remote control on a real X display, as it ends: the stop hotkey ends the session at
once, and nothing the technician held stays held when the link drops.

The set-up (Xvfb, probe window, paired cores) is in control_support.py.
"""

from __future__ import annotations

import asyncio

import pytest
from Xlib import display as xdisplay

from client.core.control.injector import XInjector
from client.core.session_controller import Reconnecting, SessionClosed, SessionState
from common.net.session_events import EndReason
from common.protocol import messages as m
from common.protocol.messages import ControlState
from relay.server import RelayServer
from tests.integration import control_support
from tests.integration.control_support import (
    CONTROL_L,
    QT_KEY,
    SHIFT_L,
    TIMEOUT,
    Probe,
    keys_down,
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
