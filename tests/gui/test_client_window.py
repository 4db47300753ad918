"""The user's window, driven for real: the anti-scam gate, the form, the queue, the code,
consent and its failures, against a relay on 127.0.0.1 and a real technician core.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from client.core.session import HelpRequest, UserClient
from client.qt.consent_dialog import VerificationFailedDialog
from client.qt.wording import ANTI_SCAM, LONGER_CODES, REPORT_STEPS, SCREENSHOT_NOTE
from common.errors import DeskhandError
from common.net.pairing import PairingTimeouts
from common.net.session_events import EndReason
from common.protocol.messages import ChatText
from common.session import SessionEnded
from tests.gui.client_support import (
    LEFT,
    SUMMARY,
    WAIT,
    WAIT_MS,
    ClientApp,
    RelayThread,
    TechPeer,
    pass_gate,
    request_code,
    save_shot,
    submit_request,
    tick,
    wait_status,
)
from tests.integration.relay_helpers import allow
from tests.pki import Org, make_org


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform cannot resize or raise windows, and says so.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]

AppFactory = Callable[..., ClientApp]


@pytest.fixture
def relay() -> Iterator[RelayThread]:
    server = RelayThread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def org() -> Org:
    return make_org()


@pytest.fixture
def make_app(qtbot: QtBot, relay: RelayThread, org: Org) -> Iterator[AppFactory]:
    apps: list[ClientApp] = []

    def make(url: str | None = None, **kwargs: Any) -> ClientApp:
        app = ClientApp(qtbot, url or relay.url, org.key.public_bytes, **kwargs)
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            app.close()


@pytest.fixture
def tech(relay: RelayThread, org: Org) -> Iterator[TechPeer]:
    peer = TechPeer(relay.url, org.technician("Jane Doe", org="ACME IT"))
    try:
        yield peer
    finally:
        peer.stop()


def wait_result(qtbot: QtBot, future: Any) -> Any:
    qtbot.waitUntil(future.done, timeout=WAIT_MS)
    return future.result()


# --- before anything is sent ----------------------------------------------------------


def test_the_gate_comes_first_and_needs_the_tick(qtbot: QtBot, make_app: AppFactory) -> None:
    window = make_app().window
    assert window.page == "home"
    save_shot(window, "client-home")
    qtbot.mouseClick(window.request_button, LEFT)
    assert window.page == "gate"
    warning = window.gate.findChild(QLabel, "anti-scam")
    assert isinstance(warning, QLabel) and warning.text() == ANTI_SCAM
    # Continue does nothing until the user confirms they asked for help themselves.
    assert not window.gate.continue_button.isEnabled()
    qtbot.mouseClick(window.gate.continue_button, LEFT)
    assert window.page == "gate"
    tick(qtbot, window.gate.confirm_box)
    assert window.gate.continue_button.isEnabled()
    save_shot(window, "client-anti-scam")
    qtbot.mouseClick(window.gate.continue_button, LEFT)
    assert window.page == "form"
    # Escape goes back; the question is asked again next time.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    qtbot.keyClick(window.form.description_edit, Qt.Key.Key_Escape)
    assert window.page == "home"
    qtbot.mouseClick(window.code_button, LEFT)
    assert window.page == "gate" and not window.gate.confirm_box.isChecked()


def test_answering_no_shows_how_to_report_and_sends_nothing(
    qtbot: QtBot, make_app: AppFactory, relay: RelayThread
) -> None:
    window = make_app().window
    qtbot.mouseClick(window.code_button, LEFT)
    qtbot.mouseClick(window.gate.refuse_button, LEFT)
    assert window.page == "report"
    for step in REPORT_STEPS:
        assert step in window.report.steps_label.text()
    assert window.status_label.text() == "Nothing was sent."
    save_shot(window, "client-report")
    assert relay.queue_counts() == (0, 0)
    assert window.code_label.text() == ""
    qtbot.mouseClick(window.report.done_button, LEFT)
    assert window.page == "home"


def test_the_form_checks_what_is_missing_and_shows_the_summary_in_full(
    qtbot: QtBot, make_app: AppFactory, relay: RelayThread
) -> None:
    window = make_app().window
    qtbot.mouseClick(window.request_button, LEFT)
    pass_gate(qtbot, window)
    form = window.form
    assert form.name_edit.text() == "Bob Example"
    qtbot.mouseClick(form.send_button, LEFT)
    assert window.page == "form"
    assert "describe what is wrong" in form.problems_label.text()

    # The summary is read on request and shown exactly as it would be sent.
    assert not form.summary_view.isVisible()
    form.summary_box.click()
    qtbot.waitUntil(lambda: form.summary_view.text() == SUMMARY.as_text(), timeout=WAIT_MS)
    assert form.summary_view.isVisible()
    form.description_edit.setPlainText("Printer says PC LOAD LETTER")
    form.category_box.setCurrentIndex(form.category_box.findText("Printing"))
    draft = form.draft()
    assert draft.to_help_request() == HelpRequest(
        "Bob Example", "Printer says PC LOAD LETTER", "Printing", SUMMARY.as_text()
    )
    save_shot(window, "client-request-form")
    # Unticked, nothing of it goes.
    form.summary_box.click()
    assert form.draft().to_help_request().system_summary == ""
    assert relay.queue_counts() == (0, 0)


def test_the_description_shows_its_limit_as_the_user_types(
    qtbot: QtBot, make_app: AppFactory
) -> None:
    window = make_app().window
    qtbot.mouseClick(window.request_button, LEFT)
    pass_gate(qtbot, window)
    form = window.form
    assert form.description_count.text() == "0 / 3,000"
    form.description_edit.setPlainText("é" * 1000)  # two bytes each on the wire
    assert form.description_count.text() == "2,000 / 3,000"
    form.description_edit.setPlainText("x" * 3001)
    assert form.description_count.text() == "3,001 / 3,000"
    assert "too long" in form.description_count.accessibleName()
    qtbot.mouseClick(form.send_button, LEFT)
    assert window.page == "form"
    assert "too long" in form.problems_label.text()


def test_a_screenshot_can_be_taken_previewed_and_removed(
    qtbot: QtBot, make_app: AppFactory
) -> None:
    window = make_app().window
    qtbot.mouseClick(window.request_button, LEFT)
    pass_gate(qtbot, window)
    form = window.form
    assert not form.preview_button.isEnabled()
    qtbot.mouseClick(form.screenshot_button, LEFT)
    # The window steps aside for the picture, then comes back.
    qtbot.waitUntil(lambda: form.screenshot is not None and window.isVisible(), timeout=WAIT_MS)
    assert form.preview_button.isEnabled() and form.draft().screenshot
    qtbot.mouseClick(form.preview_button, LEFT)
    dialog = window.screenshot_dialog
    assert dialog is not None and dialog.isVisible()
    pixmap = dialog.image.pixmap()
    assert not pixmap.isNull() and pixmap.width() > 0
    save_shot(dialog, "client-screenshot-preview")
    dialog.close()
    qtbot.mouseClick(form.remove_button, LEFT)
    assert form.screenshot is None and not form.draft().screenshot


# --- the code flow ----------------------------------------------------------------------


def test_phone_support_shows_the_code_under_the_warning(qtbot: QtBot, make_app: AppFactory) -> None:
    window = make_app().window
    request_code(qtbot, window)
    assert window.page == "code"
    assert window.code_label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert window.code_label.font().pointSizeF() > window.font().pointSizeF() * 2
    warning = window.findChild(QLabel, "anti-scam")
    pages_warning = [
        w for w in window.findChildren(QLabel, "anti-scam") if w.isVisible() and w is not None
    ]
    assert warning is not None and len(pages_warning) == 1
    assert pages_warning[0].text() == ANTI_SCAM
    below = window.code_label.mapTo(window, QPoint(0, 0)).y()
    assert pages_warning[0].mapTo(window, QPoint(0, 0)).y() < below
    assert window.cancel_button.isVisible()
    # The code's lifetime counts down (the relay's default is 10 minutes).
    assert re.search(r"It works once, for (9:5\d|10:00) more\.", window.code_waiting_label.text())
    save_shot(window, "client-code")


def test_after_repeated_failures_the_code_is_longer_and_the_user_is_warned(
    qtbot: QtBot, make_app: AppFactory
) -> None:
    app = make_app()
    policy = app.flow.client.code_policy
    for _ in range(3):  # three failed pairings in a row (tests/unit/client/test_code_policy.py)
        policy.pairing_failed(time.monotonic())
    qtbot.mouseClick(app.window.code_button, LEFT)
    pass_gate(qtbot, app.window)
    qtbot.waitUntil(lambda: bool(app.window.code_label.text()), timeout=WAIT_MS)
    assert re.fullmatch(r"\d{3,4}-\d{3}-\d{3}-\d{3}", app.window.code_label.text())
    assert LONGER_CODES in app.window.code_waiting_label.text()


def test_the_tray_menu_also_offers_a_phone_code(qtbot: QtBot, make_app: AppFactory) -> None:
    app = make_app()
    app.shell.on_tray_action_chosen("code")  # what the tray's "Show a code…" entry sends
    pass_gate(qtbot, app.window)
    qtbot.waitUntil(lambda: bool(app.window.code_label.text()), timeout=WAIT_MS)
    assert app.window.page == "code"


def test_cancel_withdraws_the_code(qtbot: QtBot, make_app: AppFactory, tech: TechPeer) -> None:
    window = make_app().window
    code = request_code(qtbot, window)
    qtbot.mouseClick(window.cancel_button, LEFT)
    wait_status(qtbot, window, "^You cancelled the request.$")
    assert window.page == "home" and window.request_button.isEnabled()
    with pytest.raises(DeskhandError, match="relay closed the connection"):
        wait_result(qtbot, tech.connect(code))


def test_an_unverified_technician_gets_a_red_warning_and_no_way_forward(
    qtbot: QtBot, make_app: AppFactory, relay: RelayThread
) -> None:
    app = make_app()
    window = app.window
    code = request_code(qtbot, window)
    # A technician certified by another organisation: the user's pin refuses it.
    impostor = TechPeer(relay.url, make_org().technician("Jane Doe", org="ACME IT"))
    try:
        connecting = impostor.connect(code)
        qtbot.waitUntil(lambda: window.failure_dialog is not None, timeout=WAIT_MS)
        dialog = window.failure_dialog
        assert isinstance(dialog, VerificationFailedDialog)
        assert window.consent_dialog is None
        assert "could not be verified" in dialog.warning_label.text()
        assert "#b00020" in dialog.warning_label.styleSheet()
        buttons = [b.text() for b in dialog.findChildren(QPushButton)]
        assert buttons == ["&Close"]
        assert app.dialogs_open() == {"verification"}
        save_shot(dialog, "client-verification-failed")
        wait_status(qtbot, window, "^The technician could not be verified. Nothing was shared.$")
        with pytest.raises(DeskhandError):
            wait_result(qtbot, connecting)
        assert [title for title, _ in app.shell.notifications] == ["Technician NOT verified"]
        qtbot.mouseClick(dialog.close_button, LEFT)
        qtbot.waitUntil(lambda: window.failure_dialog is None, timeout=WAIT_MS)
        assert app.dialogs_open() == frozenset()
        assert window.page == "home"
    finally:
        impostor.stop()


def test_unanswered_consent_closes_the_dialog(
    qtbot: QtBot, make_app: AppFactory, tech: TechPeer
) -> None:
    window = make_app(timeouts=PairingTimeouts(consent=0.3)).window
    connecting = tech.connect(request_code(qtbot, window))
    qtbot.waitUntil(lambda: window.consent_dialog is not None, timeout=WAIT_MS)
    # Nobody answers: the question lapses, as a refusal, and the dialog goes away.
    qtbot.waitUntil(lambda: window.consent_dialog is None, timeout=WAIT_MS)
    wait_status(qtbot, window, "^Nobody answered in time")
    with pytest.raises(DeskhandError, match="did not answer in time"):
        wait_result(qtbot, connecting)


def test_declining_turns_the_technician_away(
    qtbot: QtBot, make_app: AppFactory, tech: TechPeer
) -> None:
    app = make_app()
    window = app.window
    connecting = tech.connect(request_code(qtbot, window))
    qtbot.waitUntil(lambda: window.consent_dialog is not None, timeout=WAIT_MS)
    assert app.dialogs_open() == {"consent"}
    assert window.consent_dialog is not None
    qtbot.keyClick(window.consent_dialog, Qt.Key.Key_Return)  # Enter declines
    wait_status(qtbot, window, "^You declined the request.$")
    assert app.dialogs_open() == frozenset()
    with pytest.raises(DeskhandError):
        wait_result(qtbot, connecting)


def test_unreachable_relay_shows_why(qtbot: QtBot, make_app: AppFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    window = make_app(url=f"ws://127.0.0.1:{closed_port}/v1/peer").window
    qtbot.mouseClick(window.code_button, LEFT)
    pass_gate(qtbot, window)
    wait_status(qtbot, window, "^Cannot reach the relay at ws://127.0.0.1:")
    assert window.page == "home" and window.code_button.isEnabled()


# --- the queue --------------------------------------------------------------------------


def test_queue_position_moves_and_cancel_withdraws(
    qtbot: QtBot, make_app: AppFactory, relay: RelayThread, org: Org
) -> None:
    # Someone else asked first.
    from common.net.runner import LoopThread

    other_loop = LoopThread("test-other-user")
    other_loop.start()
    other = UserClient(relay.url, org.trust, allow)
    try:
        other_loop.submit(other.post_request(HelpRequest("Alice", "mail is down"))).result(WAIT)
        window = make_app().window
        submit_request(qtbot, window)
        qtbot.waitUntil(
            lambda: window.queue_label.text() == "You are number 2 in the queue.",
            timeout=WAIT_MS,
        )
        assert re.fullmatch(r"Request number: [0-9a-f]{8}", window.request_id_label.text())
        assert relay.queue_counts()[0] == 2
        save_shot(window, "client-queue")
        # Alice gives up: Bob moves up.
        other_loop.submit(other.cancel()).result(WAIT)
        qtbot.waitUntil(
            lambda: window.queue_label.text() == "You are next in the queue.", timeout=WAIT_MS
        )
        qtbot.mouseClick(window.cancel_request_button, LEFT)
        wait_status(qtbot, window, "^You cancelled the request.$")
        assert window.page == "home"
        qtbot.waitUntil(lambda: relay.queue_counts()[0] == 0, timeout=WAIT_MS)
    finally:
        other_loop.stop()


def test_queue_claim_consent_chat_and_stop(
    qtbot: QtBot, make_app: AppFactory, tech: TechPeer
) -> None:
    app = make_app()
    window = app.window
    qtbot.mouseClick(window.request_button, LEFT)
    pass_gate(qtbot, window)
    form = window.form
    form.description_edit.setPlainText("Excel crashes when I print")
    form.category_box.setCurrentIndex(form.category_box.findText("Software"))
    form.summary_box.click()
    qtbot.waitUntil(lambda: form.draft().summary != "", timeout=WAIT_MS)
    qtbot.mouseClick(form.screenshot_button, LEFT)
    qtbot.waitUntil(lambda: form.screenshot is not None and window.isVisible(), timeout=WAIT_MS)
    qtbot.mouseClick(form.send_button, LEFT)
    qtbot.waitUntil(lambda: window.queue_label.text().startswith("You are"), timeout=WAIT_MS)

    # The technician sees what the user typed, and the summary they agreed to send.
    queue = tech.watch()
    [item] = queue.items
    assert (item.name, item.description, item.category) == (
        "Bob Example",
        "Excel crashes when I print",
        "Software",
    )
    assert item.system_summary == SUMMARY.as_text()
    tech.run(queue.close())
    connecting = tech.claim(item.request_id, requested=("view", "control"))

    qtbot.waitUntil(lambda: window.consent_dialog is not None, timeout=WAIT_MS)
    dialog = window.consent_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: len(tech.sas) == 1, timeout=WAIT_MS)
    assert dialog.sas_label.text() == tech.sas[0]
    assert {c: b.isChecked() for c, b in dialog.checkboxes.items()} == {
        "view": True,
        "control": False,
    }
    qtbot.waitUntil(lambda: dialog.allow_button.isEnabled(), timeout=WAIT_MS)
    save_shot(dialog, "client-consent")
    qtbot.mouseClick(dialog.allow_button, LEFT)
    channel = wait_result(qtbot, connecting)
    assert channel.granted == ("view",)

    qtbot.waitUntil(lambda: window.page == "connected", timeout=WAIT_MS)
    assert window.connected_label.text() == "Jane Doe (ACME IT) is connected."
    assert window.rights_label.text() == "They can: see your screen."
    assert window.sas_label.text() == f"Verification number: {channel.sas}"
    qtbot.waitUntil(lambda: app.shell.bar.isVisible(), timeout=WAIT_MS)
    assert app.shell.bar.label.text() == "Jane Doe (ACME IT) is connected. They can: view."
    assert app.shell.notifications[0] == (
        "A technician is connected",
        "Jane Doe (ACME IT) is connected. They can: see your screen.",
    )
    # The screenshot stays here; the technician is told it can be shown.
    qtbot.waitUntil(lambda: len(tech.messages(ChatText)) == 1, timeout=WAIT_MS)
    assert tech.messages(ChatText)[0].text == SCREENSHOT_NOTE
    assert window.show_screenshot_button.isVisible()

    # Chat both ways.
    transcript = window.chat.transcript
    tech.send(ChatText(1, "Hello, I am Jane", 0))
    qtbot.waitUntil(
        lambda: (
            "Technician: Hello, I am Jane"
            in [transcript.item(i).text() for i in range(transcript.count())]
        ),
        timeout=WAIT_MS,
    )
    qtbot.keyClicks(window.chat.entry, "Hi Jane")
    qtbot.keyClick(window.chat.entry, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(tech.messages(ChatText)) == 2, timeout=WAIT_MS)
    assert tech.messages(ChatText)[1].text == "Hi Jane"
    qtbot.waitUntil(
        lambda: transcript.item(transcript.count() - 1).text() == "You: Hi Jane", timeout=WAIT_MS
    )
    save_shot(window, "client-connected")

    # Stop ends everything at once.
    qtbot.mouseClick(window.stop_button, LEFT)
    wait_status(qtbot, window, "^You ended the session. Nobody can see or use your computer now.$")
    qtbot.waitUntil(lambda: tech.ended is not None, timeout=WAIT_MS)
    assert tech.ended == SessionEnded(EndReason.USER_STOPPED, clean=True, by_peer=True)
    assert not app.shell.bar.isVisible()
    assert app.shell.notifications[-1][0] == "The session has ended"
    assert window.page == "home"


def test_quitting_ends_the_session_for_the_technician(
    qtbot: QtBot, make_app: AppFactory, tech: TechPeer
) -> None:
    app = make_app()
    connecting = tech.connect(request_code(qtbot, app.window))
    qtbot.waitUntil(lambda: app.window.consent_dialog is not None, timeout=WAIT_MS)
    assert app.window.consent_dialog is not None
    qtbot.waitUntil(app.window.consent_dialog.allow_button.isEnabled, timeout=WAIT_MS)
    qtbot.mouseClick(app.window.consent_dialog.allow_button, LEFT)
    channel = wait_result(qtbot, connecting)
    # What app.py does on aboutToQuit.
    app.bridge.shutdown(timeout=5)
    ended = tech.run(channel.wait_closed())
    assert ended == SessionEnded(EndReason.USER_STOPPED, clean=True, by_peer=True)
