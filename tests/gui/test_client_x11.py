"""The app's real wiring on an X display (Xvfb): after consent the screen is shared with mss
and remote input goes through XTest, and Stop ends both (the widgets draw off-screen).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot
from Xlib import display as xdisplay

from client.core.control.service import ControlService
from client.core.screen.sharer import ScreenSharer
from common.net.session_events import EndReason
from common.protocol.messages import (
    ControlState,
    ControlStatus,
    MonitorList,
    PointerMove,
    ScreenFrame,
)
from tests.gui.client_support import (
    LEFT,
    WAIT_MS,
    ClientApp,
    RelayThread,
    TechPeer,
    request_code,
    tick,
)
from tests.pki import make_org


pytestmark = [
    pytest.mark.gui,
    pytest.mark.x11,
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]


@pytest.fixture
def relay() -> Iterator[RelayThread]:
    server = RelayThread()
    try:
        yield server
    finally:
        server.stop()


def pointer(display_name: str) -> tuple[int, int]:
    conn = xdisplay.Display(display_name)
    try:
        reply = conn.screen().root.query_pointer()
        return reply.root_x, reply.root_y
    finally:
        conn.close()


def test_view_and_control_for_real_then_stop(
    qtbot: QtBot, x_display: str, relay: RelayThread
) -> None:
    org = make_org()
    tech = TechPeer(relay.url, org.technician("Jane Doe", org="ACME IT"))
    app = ClientApp(
        qtbot,
        relay.url,
        org.key.public_bytes,
        sharer_factory=ScreenSharer,
        control_factory=ControlService.for_x11,
    )
    try:
        connecting = tech.connect(request_code(qtbot, app.window), ("view", "control"))
        qtbot.waitUntil(lambda: app.window.consent_dialog is not None, timeout=WAIT_MS)
        dialog = app.window.consent_dialog
        assert dialog is not None
        tick(qtbot, dialog.checkboxes["control"])
        qtbot.waitUntil(dialog.allow_button.isEnabled, timeout=WAIT_MS)
        qtbot.mouseClick(dialog.allow_button, LEFT)
        qtbot.waitUntil(connecting.done, timeout=WAIT_MS)

        # The whole Xvfb screen is shared.
        qtbot.waitUntil(lambda: len(tech.messages(ScreenFrame)) >= 1, timeout=WAIT_MS)
        assert tech.messages(MonitorList)[0].geometry == (0, 0, 1920, 1080)
        frame = tech.messages(ScreenFrame)[0]
        assert frame.keyframe and (frame.width, frame.height) == (1920, 1080)

        # Remote input reaches the X server.
        qtbot.waitUntil(
            lambda: any(s.state is ControlState.ACTIVE for s in tech.messages(ControlStatus)),
            timeout=WAIT_MS,
        )
        tech.send(PointerMove(321, 234))
        qtbot.waitUntil(lambda: pointer(x_display) == (321, 234), timeout=WAIT_MS)

        app.shell.bar.stop_button.click()
        qtbot.waitUntil(lambda: tech.ended is not None, timeout=WAIT_MS)
        assert tech.ended is not None and tech.ended.reason == EndReason.USER_STOPPED
        qtbot.waitUntil(lambda: app.window.page == "home", timeout=WAIT_MS)
    finally:
        app.close()
        tech.stop()
