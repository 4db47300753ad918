"""While a session runs: the session bar, mid-session requests, screen sharing, remote input,
the clipboard and notifications, with the real cores (ControlService with a recording
injector, ScreenSharer on a fake screen) against a relay on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.core.authority import CapabilityAuthority
from client.core.control.gate import GateEvent
from client.core.control.service import ControlService
from client.core.features import ScreenPort, SharerPort
from client.core.screen.sharer import ScreenSharer, SharerConfig
from client.core.session_controller import ControlPort
from common.net.channel import SecureChannel
from common.net.session_events import EndReason
from common.protocol.messages import (
    CapabilityGrant,
    ClipboardPolicy,
    ClipboardText,
    ControlState,
    ControlStatus,
    MonitorList,
    PointerButton,
    PointerMove,
    ScreenFrame,
    ScreenStopped,
    ScreenStopReason,
)
from tests.gui.client_support import (
    LEFT,
    WAIT_MS,
    ClientApp,
    FakeInjector,
    RelayThread,
    TechPeer,
    request_code,
    save_shot,
    tick,
    wait_status,
)
from tests.pki import Org, make_org
from tests.screen_fakes import FakeCapture, text_like


pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]


CAPTURES: list[FakeCapture] = []


def fake_screen(port: ScreenPort) -> SharerPort:
    """The real ScreenSharer, on a 320x200 fake screen (no X)."""
    capture = FakeCapture(320, 200)
    capture.screen[...] = text_like(200, 320)
    CAPTURES.append(capture)
    return ScreenSharer(
        port,
        SharerConfig(use_damage=False, cursor=False, poll_active=0.02, poll_idle=0.05),
        capture_factory=lambda: capture,
        events_factory=lambda *_: None,
    )


class RecordingControl:
    """The real ControlService with a recording injector instead of XTest."""

    def __init__(self, restore_delay: float = 0) -> None:
        self.injector = FakeInjector()
        self.restore_delay = restore_delay

    def __call__(
        self,
        channel: SecureChannel,
        authority: CapabilityAuthority,
        *,
        on_event: Callable[[GateEvent], None] | None,
        on_stop_requested: Callable[[], None] | None,
    ) -> ControlPort:
        return ControlService(
            channel,
            self.injector,
            authority,
            restore_delay=self.restore_delay,
            on_event=on_event,
            on_stop_requested=on_stop_requested,
        )


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


@pytest.fixture
def relay() -> Iterator[RelayThread]:
    server = RelayThread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tech(relay: RelayThread, org: Org) -> Iterator[TechPeer]:
    peer = TechPeer(relay.url, org.technician("Jane Doe", org="ACME IT"))
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()


@pytest.fixture
def app(
    qtbot: QtBot, relay: RelayThread, org: Org, control: RecordingControl
) -> Iterator[ClientApp]:
    client = ClientApp(
        qtbot,
        relay.url,
        org.key.public_bytes,
        sharer_factory=fake_screen,
        control_factory=control,
        use_clipboard=True,
    )
    try:
        yield client
    finally:
        client.close()


def connect(
    qtbot: QtBot,
    app: ClientApp,
    tech: TechPeer,
    requested: tuple[str, ...] = ("view",),
    allow: tuple[str, ...] = ("view",),
) -> SecureChannel:
    """Code flow to an open session, ticking exactly ``allow`` in the consent dialog."""
    connecting = tech.connect(request_code(qtbot, app.window), requested)
    qtbot.waitUntil(lambda: app.window.consent_dialog is not None, timeout=WAIT_MS)
    dialog = app.window.consent_dialog
    assert dialog is not None
    for capability, box in dialog.checkboxes.items():
        if box.isChecked() != (capability in allow):
            tick(qtbot, box)
    qtbot.waitUntil(dialog.allow_button.isEnabled, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.allow_button, LEFT)
    qtbot.waitUntil(connecting.done, timeout=WAIT_MS)
    channel = connecting.result()
    qtbot.waitUntil(app.shell.bar.isVisible, timeout=WAIT_MS)
    return channel


def last_status(tech: TechPeer) -> ControlStatus | None:
    statuses = tech.messages(ControlStatus)
    return statuses[-1] if statuses else None


def grants(tech: TechPeer) -> list[tuple[str, ...]]:
    return [m.capabilities for m in tech.messages(CapabilityGrant)]


def test_a_mid_session_request_pauses_remote_input_until_answered(
    qtbot: QtBot, app: ClientApp, tech: TechPeer, control: RecordingControl
) -> None:
    connect(qtbot, app, tech, ("view", "control"), allow=("view", "control"))
    qtbot.waitUntil(
        lambda: (s := last_status(tech)) is not None and s.state is ControlState.ACTIVE,
        timeout=WAIT_MS,
    )
    tech.send(PointerMove(10, 10))
    qtbot.waitUntil(lambda: ("move", 10, 10) in control.injector.log(), timeout=WAIT_MS)

    # The technician asks for the clipboard: a dialog, a notification, and input waits.
    tech.ask(("clipboard",))
    qtbot.waitUntil(lambda: app.shell.more_rights_dialog is not None, timeout=WAIT_MS)
    dialog = app.shell.more_rights_dialog
    assert dialog is not None
    assert app.dialogs_open() == {"more-rights"}
    assert ("The technician asks for more") in [t for t, _ in app.shell.notifications]
    qtbot.waitUntil(
        lambda: (s := last_status(tech)) is not None and s.state is ControlState.PAUSED,
        timeout=WAIT_MS,
    )
    # A click aimed at Allow is refused, and the technician is told so.
    tech.send(PointerButton(1, True))
    tech.send(PointerButton(1, False))
    qtbot.waitUntil(
        lambda: any(s.refused > 0 for s in tech.messages(ControlStatus)), timeout=WAIT_MS
    )
    assert not [e for e in control.injector.log() if e[0] == "button"]

    # Nothing is ticked for the user; Allow needs a tick.
    assert {c: b.isChecked() for c, b in dialog.checkboxes.items()} == {"clipboard": False}
    assert not dialog.allow_button.isEnabled()
    save_shot(dialog, "client-more-rights")
    tick(qtbot, dialog.checkboxes["clipboard"])
    qtbot.waitUntil(dialog.allow_button.isEnabled, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.allow_button, LEFT)
    qtbot.waitUntil(lambda: ("view", "control", "clipboard") in grants(tech), timeout=WAIT_MS)
    assert app.dialogs_open() == frozenset()
    qtbot.waitUntil(
        lambda: (s := last_status(tech)) is not None and s.state is ControlState.ACTIVE,
        timeout=WAIT_MS,
    )
    tech.send(PointerMove(20, 20))
    qtbot.waitUntil(lambda: ("move", 20, 20) in control.injector.log(), timeout=WAIT_MS)
    assert app.shell.bar.toggles["clipboard"].isChecked()


def test_pause_and_revoke_stop_screen_sharing(qtbot: QtBot, app: ClientApp, tech: TechPeer) -> None:
    connect(qtbot, app, tech)
    # "view" is allowed: the fake screen is shared.
    qtbot.waitUntil(lambda: len(tech.messages(ScreenFrame)) >= 1, timeout=WAIT_MS)
    assert tech.messages(MonitorList)[0].geometry == (0, 0, 320, 200)
    bar = app.shell.bar
    save_shot(bar, "client-session-bar")

    bar.pause_button.click()
    qtbot.waitUntil(lambda: len(tech.messages(ScreenStopped)) == 1, timeout=WAIT_MS)
    assert tech.messages(ScreenStopped)[0].reason == ScreenStopReason.PAUSED
    qtbot.waitUntil(lambda: () in grants(tech), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "(paused)" in bar.label.text(), timeout=WAIT_MS)
    assert bar.pause_button.text() == "&Resume"
    assert "Paused" in app.window.rights_label.text()
    assert "(paused)" in app.window.status_label.text()  # not the old "They can: view"

    frames = len(tech.messages(ScreenFrame))
    bar.pause_button.click()
    qtbot.waitUntil(lambda: len(tech.messages(ScreenFrame)) > frames, timeout=WAIT_MS)
    assert grants(tech)[-1] == ("view",)

    # Unticking "view" revokes it at once.
    bar.toggles["view"].click()
    qtbot.waitUntil(lambda: len(tech.messages(ScreenStopped)) == 2, timeout=WAIT_MS)
    assert tech.messages(ScreenStopped)[1].reason == ScreenStopReason.VIEW_REVOKED
    qtbot.waitUntil(lambda: grants(tech)[-1] == (), timeout=WAIT_MS)
    assert not bar.toggles["view"].isChecked()


def test_ticking_in_the_bar_asks_first(qtbot: QtBot, app: ClientApp, tech: TechPeer) -> None:
    connect(qtbot, app, tech)
    # The grant announced at the start (it may still be on its way).
    qtbot.waitUntil(lambda: grants(tech) == [("view",)], timeout=WAIT_MS)
    bar = app.shell.bar
    bar.toggles["files"].click()
    # Only a request: the box shows the real grant until the user confirms.
    assert not bar.toggles["files"].isChecked()
    dialog = app.shell.more_rights_dialog
    assert dialog is not None
    assert dialog.granted() == ("files",)  # the user asked: it starts ticked
    assert app.dialogs_open() == {"more-rights"}
    qtbot.mouseClick(dialog.decline_button, LEFT)
    qtbot.waitUntil(lambda: app.dialogs_open() == frozenset(), timeout=WAIT_MS)
    assert not bar.toggles["files"].isChecked()
    assert grants(tech) == [("view",)]  # still only the one from the start

    bar.toggles["files"].click()
    dialog = app.shell.more_rights_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.allow_button.isEnabled, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.allow_button, LEFT)
    qtbot.waitUntil(lambda: grants(tech) == [("view",), ("view", "files")], timeout=WAIT_MS)
    qtbot.waitUntil(bar.toggles["files"].isChecked, timeout=WAIT_MS)


def test_stop_in_the_bar_ends_everything(qtbot: QtBot, app: ClientApp, tech: TechPeer) -> None:
    connect(qtbot, app, tech)
    qtbot.waitUntil(lambda: len(tech.messages(ScreenFrame)) >= 1, timeout=WAIT_MS)
    app.shell.bar.stop_button.click()
    qtbot.waitUntil(lambda: tech.ended is not None, timeout=WAIT_MS)
    assert tech.ended is not None and tech.ended.reason == EndReason.USER_STOPPED
    # The screen sharer let go of the screen.
    qtbot.waitUntil(lambda: CAPTURES[-1].closed, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not app.shell.bar.isVisible(), timeout=WAIT_MS)
    assert app.window.page == "home"
    assert app.shell.notifications[-1] == (
        "The session has ended",
        "You ended the session. Nobody can see or use your computer now.",
    )


def test_the_technician_leaving_is_notified(qtbot: QtBot, app: ClientApp, tech: TechPeer) -> None:
    connect(qtbot, app, tech)
    tech.end()
    wait_status(qtbot, app.window, "^The session ended: the technician ended the session.")
    assert app.shell.notifications[-1][0] == "The session has ended"
    assert not app.shell.bar.isVisible()
    assert app.window.page == "home"


def test_the_clipboard_goes_both_ways_once_granted(
    qtbot: QtBot, app: ClientApp, tech: TechPeer
) -> None:
    clipboard = QApplication.clipboard()
    clipboard.setText("before the session")
    connect(qtbot, app, tech, ("view", "clipboard"), allow=("view", "clipboard"))
    tech.send(ClipboardPolicy(send=True, receive=True, max_bytes=1 << 20))
    tech.send(ClipboardText("from Jane"))
    qtbot.waitUntil(lambda: clipboard.text() == "from Jane", timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: any("put text" in text for _, text in app.shell.notifications), timeout=WAIT_MS
    )
    clipboard.setText("from Bob")
    qtbot.waitUntil(
        lambda: "from Bob" in [m.text for m in tech.messages(ClipboardText)], timeout=WAIT_MS
    )
    # The text that came from the technician did not bounce back.
    assert "from Jane" not in [m.text for m in tech.messages(ClipboardText)]


@pytest.mark.parametrize("control", [RecordingControl(restore_delay=0.5)])
def test_asking_again_right_after_stop_keeps_the_new_request(
    qtbot: QtBot, app: ClientApp, tech: TechPeer, control: RecordingControl
) -> None:
    # Stop returns to the start at once, while control still restores the keymap
    # in the background: a new request made meanwhile must survive that.
    connect(qtbot, app, tech)
    stopping = app.loop.submit(app.flow.stop())  # what the Stop button does
    qtbot.waitUntil(lambda: app.window.page == "home", timeout=WAIT_MS)
    code = request_code(qtbot, app.window)
    qtbot.waitUntil(stopping.done, timeout=WAIT_MS)
    stopping.result()
    connecting = tech.connect(code)
    qtbot.waitUntil(lambda: app.window.consent_dialog is not None, timeout=WAIT_MS)
    assert app.window.page == "code"
    dialog = app.window.consent_dialog
    assert dialog is not None
    qtbot.mouseClick(dialog.decline_button, LEFT)
    qtbot.waitUntil(connecting.done, timeout=WAIT_MS)
