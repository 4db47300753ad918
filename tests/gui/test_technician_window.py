"""The technician window, driven for real: both apps' bridges and loop threads,
a relay on 127.0.0.1, a real organisation and certificate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from client.core.session import UserClient
from client.qt.bridge import ClientBridge
from client.qt.window import ClientWindow
from common.net.pairing import ConsentCallback
from common.net.runner import LoopThread
from relay.config import RelayConfig
from relay.server import serve
from technician.__main__ import main as technician_main
from technician.core.session import TechnicianClient
from technician.qt.bridge import TechnicianBridge
from technician.qt.window import TechnicianWindow
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
def client_window(qtbot: QtBot, relay_url: str, org: Org) -> Iterator[ClientWindow]:
    loop = LoopThread("test-client-loop")
    loop.start()

    def make_client(consent: ConsentCallback) -> UserClient:
        return UserClient(relay_url, org.trust, consent, device="Test computer")

    bridge = ClientBridge(loop, make_client)
    window = ClientWindow(bridge)
    qtbot.addWidget(window)
    window.show()
    try:
        yield window
    finally:
        bridge.shutdown()
        loop.stop()


@pytest.fixture
def tech_window(qtbot: QtBot, relay_url: str, org: Org) -> Iterator[TechnicianWindow]:
    loop = LoopThread("test-technician-loop")
    loop.start()
    bridge = TechnicianBridge(loop, TechnicianClient(relay_url, org.technician()))
    window = TechnicianWindow(bridge, who="Jane Doe (ACME IT)")
    qtbot.addWidget(window)
    window.show()
    try:
        yield window
    finally:
        bridge.shutdown()
        loop.stop()


def request_code(qtbot: QtBot, client: ClientWindow) -> str:
    qtbot.mouseClick(client.request_button, LEFT)
    qtbot.waitUntil(lambda: bool(client.code_label.text()), timeout=WAIT_MS)
    code = client.code_label.text()
    assert re.fullmatch(r"\d{3}-\d{3}-\d{3}", code)
    return code


def type_code_and_press_enter(qtbot: QtBot, tech: TechnicianWindow, code: str) -> None:
    qtbot.keyClicks(tech.code_edit, code)
    qtbot.keyClick(tech.code_edit, Qt.Key.Key_Return)


def wait_status(qtbot: QtBot, window: ClientWindow | TechnicianWindow, pattern: str) -> None:
    def check() -> None:
        assert re.search(pattern, window.status_label.text()), window.status_label.text()

    qtbot.waitUntil(check, timeout=WAIT_MS)


def wait_for_line(qtbot: QtBot, window: ClientWindow | TechnicianWindow, line: str) -> None:
    transcript = window.chat.transcript

    def check() -> None:
        lines = [transcript.item(i).text() for i in range(transcript.count())]
        assert line in lines, lines

    qtbot.waitUntil(check, timeout=WAIT_MS)


def test_pair_consent_chat_and_stop(
    qtbot: QtBot, client_window: ClientWindow, tech_window: TechnicianWindow
) -> None:
    client, tech = client_window, tech_window
    code = request_code(qtbot, client)
    type_code_and_press_enter(qtbot, tech, code)
    assert not tech.connect_button.isEnabled()

    # The user sees who asks, and the same number the technician reads out.
    qtbot.waitUntil(lambda: client.consent_dialog is not None, timeout=WAIT_MS)
    dialog = client.consent_dialog
    assert dialog is not None
    sas = dialog.sas_label.text()
    assert re.fullmatch(r"\d{4}", sas)
    wait_status(qtbot, tech, f"^Verification number: {sas} — ask the user to confirm it$")

    qtbot.mouseClick(dialog.allow_button, LEFT)
    qtbot.waitUntil(lambda: tech.session_label.text() != "", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: client.connected_label.text() != "", timeout=WAIT_MS)
    assert client.connected_label.text() == "Jane Doe (ACME IT) is connected — can: view"
    assert tech.session_label.text() == "Connected — the user granted: view"
    assert client.sas_label.text() == tech.sas_label.text() == f"Verification number: {sas}"
    assert client.consent_dialog is None

    # Chat both ways: Enter sends on the user's side, the Send button on the technician's.
    qtbot.keyClicks(client.chat.entry, "My printer is on fire")
    qtbot.keyClick(client.chat.entry, Qt.Key.Key_Return)
    wait_for_line(qtbot, tech, "User: My printer is on fire")
    wait_for_line(qtbot, client, "You: My printer is on fire")
    # QTest types ASCII only; insert() stands in for an input method.
    tech.chat.entry.insert("Stay calm — looking now")
    qtbot.mouseClick(tech.chat.send_button, LEFT)
    wait_for_line(qtbot, client, "Technician: Stay calm — looking now")
    wait_for_line(qtbot, tech, "You: Stay calm — looking now")

    # Stop ends everything at once, on both sides.
    qtbot.mouseClick(client.stop_button, LEFT)
    wait_status(qtbot, client, "^You ended the session.$")
    wait_status(qtbot, tech, "^Session ended: The user stopped the session.$")
    assert client.request_button.isVisible() and client.request_button.isEnabled()
    assert tech.connect_button.isVisible() and tech.connect_button.isEnabled()


def test_declined_consent_is_reported_to_the_technician(
    qtbot: QtBot, client_window: ClientWindow, tech_window: TechnicianWindow
) -> None:
    client, tech = client_window, tech_window
    type_code_and_press_enter(qtbot, tech, request_code(qtbot, client))
    qtbot.waitUntil(lambda: client.consent_dialog is not None, timeout=WAIT_MS)
    dialog = client.consent_dialog
    assert dialog is not None
    qtbot.mouseClick(dialog.decline_button, LEFT)

    wait_status(qtbot, tech, "^Could not connect: .*declined")
    wait_status(qtbot, client, "^You declined the request.$")
    assert tech.connect_button.isEnabled()
    assert client.request_button.isEnabled()


def test_technician_ends_the_session(
    qtbot: QtBot, client_window: ClientWindow, tech_window: TechnicianWindow
) -> None:
    client, tech = client_window, tech_window
    type_code_and_press_enter(qtbot, tech, request_code(qtbot, client))
    qtbot.waitUntil(lambda: client.consent_dialog is not None, timeout=WAIT_MS)
    dialog = client.consent_dialog
    assert dialog is not None
    qtbot.mouseClick(dialog.allow_button, LEFT)
    qtbot.waitUntil(lambda: tech.end_button.isVisible(), timeout=WAIT_MS)

    qtbot.mouseClick(tech.end_button, LEFT)
    wait_status(qtbot, tech, "^You ended the session.$")
    wait_status(qtbot, client, "^The session ended: The technician ended the session.$")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("12-34", r"^Could not connect: A code has 9 digits, like 123-456-789\.$"),
        ("12a-456-789", r"^Could not connect: A code has digits only"),
    ],
)
def test_malformed_code_shows_a_clear_error(
    qtbot: QtBot, tech_window: TechnicianWindow, code: str, expected: str
) -> None:
    type_code_and_press_enter(qtbot, tech_window, code)
    wait_status(qtbot, tech_window, expected)
    assert tech_window.connect_button.isEnabled()


def test_unknown_code_shows_the_relays_answer(qtbot: QtBot, tech_window: TechnicianWindow) -> None:
    type_code_and_press_enter(qtbot, tech_window, "999-123-456")
    wait_status(qtbot, tech_window, "^Could not connect: The relay closed the connection: .+")
    assert tech_window.connect_button.isEnabled()


def test_wrong_secret_fails_on_both_sides(
    qtbot: QtBot, client_window: ClientWindow, tech_window: TechnicianWindow
) -> None:
    client, tech = client_window, tech_window
    code = request_code(qtbot, client)
    wrong = code[:4] + ("000-000" if code[4:] != "000-000" else "111-111")
    type_code_and_press_enter(qtbot, tech, wrong)

    # The user's side finds out first and hangs up; the technician hears that.
    wait_status(qtbot, client, "^The codes did not match")
    wait_status(qtbot, tech, "^Could not connect: The user's side closed before accepting")
    assert client.consent_dialog is None
    assert client.request_button.isEnabled()


def test_empty_code_is_not_sent(qtbot: QtBot, tech_window: TechnicianWindow) -> None:
    qtbot.mouseClick(tech_window.connect_button, LEFT)
    assert tech_window.status_label.text().startswith("Type the code")
    assert tech_window.connect_button.isEnabled()


def test_command_line_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert (
        technician_main(["--relay", "ws://127.0.0.1:1/v1/peer", "--credential", str(tmp_path)]) == 2
    )
    err = capsys.readouterr().err
    assert err == (
        f"deskhand-technician: error: cannot read the credential {tmp_path / 'technician.key'}:"
        " No such file or directory\n"
    )
