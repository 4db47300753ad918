"""The user's window, driven for real: its bridge and loop thread, a relay on
127.0.0.1, and a real technician core (in its own loop thread) on the other end.
"""

from __future__ import annotations

import concurrent.futures
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from client.__main__ import main as client_main
from client.core.session import UserClient
from client.qt.bridge import ClientBridge
from client.qt.window import ANTI_SCAM, ClientWindow
from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, PairingTimeouts
from common.net.runner import LoopThread
from common.protocol.messages import ChatText
from common.session import MessageReceived, SessionEnded, SessionEvent
from relay.config import RelayConfig
from relay.server import serve
from technician.core.session import TechnicianClient
from tests.pki import Org, make_org


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform cannot resize or raise windows, and says so.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]

WAIT_MS = 10_000
LEFT = Qt.MouseButton.LeftButton
T = TypeVar("T")

ClientFactory = Callable[..., ClientWindow]


@pytest.fixture
def relay_url() -> Iterator[str]:
    """A real relay, in process, on 127.0.0.1 and a free port, in its own loop thread."""
    loop = LoopThread("test-relay")
    loop.start()
    server = loop.submit(serve(RelayConfig(port=0, close_timeout=2.0))).result(10)
    try:
        yield server.url
    finally:
        loop.submit(server.close()).result(10)
        loop.stop()


@pytest.fixture
def org() -> Org:
    return make_org()


@pytest.fixture
def make_window(qtbot: QtBot, relay_url: str, org: Org) -> Iterator[ClientFactory]:
    """Client windows with real bridges; every one is shut down at teardown."""
    started: list[tuple[ClientBridge, LoopThread]] = []

    def make(url: str = relay_url, timeouts: PairingTimeouts | None = None) -> ClientWindow:
        loop = LoopThread("test-client-loop")
        loop.start()

        def make_client(consent: ConsentCallback) -> UserClient:
            return UserClient(url, org.trust, consent, device="Test computer", timeouts=timeouts)

        bridge = ClientBridge(loop, make_client)
        started.append((bridge, loop))
        window = ClientWindow(bridge)
        qtbot.addWidget(window)
        window.show()
        return window

    try:
        yield make
    finally:
        for bridge, loop in started:
            bridge.shutdown()
            loop.stop()


@pytest.fixture
def technician_loop() -> Iterator[LoopThread]:
    """The loop a technician core runs in (no window: this file tests the user's)."""
    loop = LoopThread("test-technician-core")
    loop.start()
    try:
        yield loop
    finally:
        loop.stop()


def wait_result(qtbot: QtBot, future: concurrent.futures.Future[T]) -> T:
    qtbot.waitUntil(future.done, timeout=WAIT_MS)
    return future.result()


def wait_status(qtbot: QtBot, window: ClientWindow, pattern: str) -> None:
    def check() -> None:
        assert re.search(pattern, window.status_label.text()), window.status_label.text()

    qtbot.waitUntil(check, timeout=WAIT_MS)


def request_code(qtbot: QtBot, window: ClientWindow) -> str:
    qtbot.mouseClick(window.request_button, LEFT)
    qtbot.waitUntil(lambda: window.code_label.isVisible(), timeout=WAIT_MS)
    return window.code_label.text()


def test_request_help_shows_the_code_under_the_warning(
    qtbot: QtBot, make_window: ClientFactory
) -> None:
    window = make_window()
    assert window.request_button.isVisible()
    code = request_code(qtbot, window)
    assert re.fullmatch(r"\d{3}-\d{3}-\d{3}", code)
    assert window.code_label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert window.code_label.font().pointSizeF() > window.font().pointSizeF() * 2

    warning = window.findChild(QLabel, "anti-scam")
    assert isinstance(warning, QLabel)
    assert warning.isVisible()
    assert warning.text() == ANTI_SCAM
    below = window.code_label.mapTo(window, QPoint(0, 0)).y()
    assert warning.mapTo(window, QPoint(0, 0)).y() < below
    assert window.cancel_button.isVisible()


def test_cancel_withdraws_the_code(
    qtbot: QtBot, make_window: ClientFactory, relay_url: str, org: Org, technician_loop: LoopThread
) -> None:
    window = make_window()
    code = request_code(qtbot, window)
    qtbot.mouseClick(window.cancel_button, LEFT)
    wait_status(qtbot, window, "^You cancelled the request.$")
    assert window.request_button.isVisible() and window.request_button.isEnabled()

    technician = TechnicianClient(relay_url, org.technician())
    with pytest.raises(DeskhandError, match="relay closed the connection"):
        wait_result(qtbot, technician_loop.submit(technician.connect(code)))


def test_consent_connected_chat_and_stop(
    qtbot: QtBot, make_window: ClientFactory, relay_url: str, org: Org, technician_loop: LoopThread
) -> None:
    window = make_window()
    code = request_code(qtbot, window)
    sas_seen: list[str] = []
    technician = TechnicianClient(relay_url, org.technician("Jane Doe", org="ACME IT"))
    connecting = technician_loop.submit(
        technician.connect(code, requested=("view", "clipboard"), on_sas=sas_seen.append)
    )

    # The dialog names the verified technician and asks about each capability.
    qtbot.waitUntil(lambda: window.consent_dialog is not None, timeout=WAIT_MS)
    dialog = window.consent_dialog
    assert dialog is not None
    assert list(dialog.checkboxes) == ["view", "clipboard"]
    assert sas_seen == [dialog.sas_label.text()]
    tick = dialog.checkboxes["clipboard"]
    qtbot.mouseClick(tick, LEFT, pos=QPoint(6, tick.height() // 2))
    qtbot.mouseClick(dialog.allow_button, LEFT)

    channel: SecureChannel = wait_result(qtbot, connecting)
    assert channel.granted == ("view", "clipboard")
    qtbot.waitUntil(lambda: window.stop_button.isVisible(), timeout=WAIT_MS)
    assert window.connected_label.text() == (
        "Jane Doe (ACME IT) is connected — can: view, clipboard"
    )
    assert window.sas_label.text() == f"Verification number: {channel.sas}"

    # Chat: what the technician sends appears; Enter sends the user's reply.
    events: list[SessionEvent] = []
    technician_loop.call_soon(lambda: channel.add_listener(events.append))
    technician_loop.call_soon(lambda: channel.send_nowait(ChatText(1, "Hello, I am Jane", 0)))
    transcript = window.chat.transcript
    qtbot.waitUntil(lambda: transcript.count() == 1, timeout=WAIT_MS)
    assert transcript.item(0).text() == "Technician: Hello, I am Jane"
    qtbot.keyClicks(window.chat.entry, "Hi Jane")
    qtbot.keyClick(window.chat.entry, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: transcript.count() == 2, timeout=WAIT_MS)
    assert transcript.item(1).text() == "You: Hi Jane"
    qtbot.waitUntil(lambda: len(events) == 1, timeout=WAIT_MS)
    received = events[0]
    assert isinstance(received, MessageReceived) and isinstance(received.message, ChatText)
    assert received.message.text == "Hi Jane"

    # Stop ends the session for the technician at once.
    qtbot.mouseClick(window.stop_button, LEFT)
    wait_status(qtbot, window, "^You ended the session.$")
    ended = wait_result(qtbot, technician_loop.submit(channel.wait_closed()))
    assert ended == SessionEnded("The user stopped the session.", clean=True, by_peer=True)
    assert window.request_button.isVisible()


def test_quitting_ends_the_session_for_the_technician(
    qtbot: QtBot, relay_url: str, org: Org, technician_loop: LoopThread
) -> None:
    # What app.py does on aboutToQuit: shut the bridge down, then stop the loop.
    loop = LoopThread("test-client-loop")
    loop.start()
    bridge = ClientBridge(loop, lambda consent: UserClient(relay_url, org.trust, consent))
    window = ClientWindow(bridge)
    qtbot.addWidget(window)
    window.show()
    try:
        code = request_code(qtbot, window)
        technician = TechnicianClient(relay_url, org.technician())
        connecting = technician_loop.submit(technician.connect(code))
        qtbot.waitUntil(lambda: window.consent_dialog is not None, timeout=WAIT_MS)
        assert window.consent_dialog is not None
        qtbot.mouseClick(window.consent_dialog.allow_button, LEFT)
        channel = wait_result(qtbot, connecting)
        window.close()
        bridge.shutdown(timeout=5)
    finally:
        loop.stop()
    ended = wait_result(qtbot, technician_loop.submit(channel.wait_closed()))
    assert ended == SessionEnded("The user stopped the session.", clean=True, by_peer=True)


def test_unanswered_consent_closes_the_dialog(
    qtbot: QtBot, make_window: ClientFactory, relay_url: str, org: Org, technician_loop: LoopThread
) -> None:
    window = make_window(timeouts=PairingTimeouts(consent=0.3))
    code = request_code(qtbot, window)
    technician = TechnicianClient(relay_url, org.technician())
    connecting = technician_loop.submit(technician.connect(code))
    qtbot.waitUntil(lambda: window.consent_dialog is not None, timeout=WAIT_MS)

    # Nobody answers: the question lapses, as a refusal, and the dialog goes away.
    qtbot.waitUntil(lambda: window.consent_dialog is None, timeout=WAIT_MS)
    wait_status(qtbot, window, "^Nobody answered in time")
    with pytest.raises(DeskhandError, match="did not answer in time"):
        wait_result(qtbot, connecting)


def test_unreachable_relay_shows_why(qtbot: QtBot, make_window: ClientFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    window = make_window(url=f"ws://127.0.0.1:{closed_port}/v1/peer")
    qtbot.mouseClick(window.request_button, LEFT)
    wait_status(qtbot, window, "^Cannot reach the relay at ws://127.0.0.1:")
    assert window.request_button.isVisible() and window.request_button.isEnabled()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--relay", "ws://127.0.0.1:1/v1/peer", "--org-key", "{missing}"], "cannot read the"),
        (["--relay", "http://example.org", "--org-key", "{missing}"], "must be a ws://"),
        (["--relay", "ws://127.0.0.1:1/v1/peer"], "required: --org-key"),
    ],
)
def test_command_line_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    argv = [arg.format(missing=tmp_path / "org.pub") for arg in args]
    assert client_main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("deskhand-client: error: ")
    assert message in err
