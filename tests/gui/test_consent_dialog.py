"""The consent dialogs: what they show, their defaults, the delay, and every way to answer."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton
from pytestqt.qtbot import QtBot

from client.qt.consent_dialog import (
    ALLOW_DELAY,
    ConsentDialog,
    MoreRightsDialog,
    VerificationFailedDialog,
)
from client.qt.wording import CAPABILITY_CONSEQUENCES, REPORT_STEPS


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform says this for every top-level window with a layout.
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

REQUESTED = ("view", "control", "clipboard", "files")


@pytest.fixture
def dialog(qtbot: QtBot) -> ConsentDialog:
    widget = ConsentDialog(
        name="Jane Doe",
        org="ACME IT",
        fingerprint="3f2a 9c01 77de b4e5",
        sas="0815",
        requested=REQUESTED,
        allow_delay=0,
    )
    qtbot.addWidget(widget)
    widget.open()
    qtbot.waitExposed(widget)
    return widget


def tick(qtbot: QtBot, box: QCheckBox) -> None:
    # Click the indicator: a stretched checkbox's centre can lie past its text.
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))


def texts(dialog: ConsentDialog) -> str:
    return "\n".join(label.text() for label in dialog.findChildren(QLabel))


def test_shows_the_verified_technician_and_the_number(qtbot: QtBot, dialog: ConsentDialog) -> None:
    shown = texts(dialog)
    assert "Jane Doe" in shown
    assert "ACME IT" in shown
    assert dialog.sas_label.text() == "0815"
    # Plain words first; the key fingerprint only for those who ask.
    assert not dialog.details_label.isVisible()
    qtbot.mouseClick(dialog.details_button, Qt.MouseButton.LeftButton)
    assert dialog.details_label.isVisible()
    assert "3f2a 9c01 77de b4e5" in dialog.details_label.text()


def test_the_explanations_are_not_greyed_out(dialog: ConsentDialog) -> None:
    for capability in REQUESTED:
        label = dialog.findChild(QLabel, f"consequence-{capability}")
        assert label is not None and label.isEnabled()


def test_names_are_plain_text() -> None:
    # Certificate names must never be rendered as markup.
    widget = ConsentDialog(
        name="<b>Jane</b>", org="<i>ACME</i>", fingerprint="f", sas="1234", requested=("view",)
    )
    try:
        assert all(
            label.textFormat() == Qt.TextFormat.PlainText for label in widget.findChildren(QLabel)
        )
    finally:
        widget.deleteLater()


def test_only_view_is_checked_by_default(dialog: ConsentDialog) -> None:
    assert list(dialog.checkboxes) == list(REQUESTED)
    assert {cap: box.isChecked() for cap, box in dialog.checkboxes.items()} == {
        "view": True,
        "control": False,
        "clipboard": False,
        "files": False,
    }


def test_decline_is_the_default_button(dialog: ConsentDialog) -> None:
    assert dialog.decline_button.isDefault()
    assert not dialog.allow_button.isDefault()
    assert not dialog.allow_button.autoDefault()


def test_allow_returns_the_checked_capabilities(qtbot: QtBot, dialog: ConsentDialog) -> None:
    tick(qtbot, dialog.checkboxes["clipboard"])
    with qtbot.waitSignal(dialog.answered, timeout=1000) as blocker:
        qtbot.mouseClick(dialog.allow_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [("view", "clipboard")]
    assert not dialog.isVisible()


def test_allow_needs_at_least_one_capability(qtbot: QtBot, dialog: ConsentDialog) -> None:
    tick(qtbot, dialog.checkboxes["view"])
    assert not dialog.allow_button.isEnabled()
    tick(qtbot, dialog.checkboxes["files"])
    assert dialog.allow_button.isEnabled()


def test_decline_returns_none(qtbot: QtBot, dialog: ConsentDialog) -> None:
    with qtbot.waitSignal(dialog.answered, timeout=1000) as blocker:
        qtbot.mouseClick(dialog.decline_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [None]


def test_enter_declines(qtbot: QtBot, dialog: ConsentDialog) -> None:
    with qtbot.waitSignal(dialog.answered, timeout=1000) as blocker:
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert blocker.args == [None]


def test_escape_declines(qtbot: QtBot, dialog: ConsentDialog) -> None:
    with qtbot.waitSignal(dialog.answered, timeout=1000) as blocker:
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert blocker.args == [None]


def test_closing_the_window_declines(qtbot: QtBot, dialog: ConsentDialog) -> None:
    with qtbot.waitSignal(dialog.answered, timeout=1000) as blocker:
        dialog.close()
    assert blocker.args == [None]


def test_answers_only_once(qtbot: QtBot, dialog: ConsentDialog) -> None:
    answers: list[object] = []
    dialog.answered.connect(answers.append)
    dialog.accept()
    dialog.reject()
    dialog.close()
    assert answers == [("view",)]


def test_each_capability_says_what_it_lets_them_do(dialog: ConsentDialog) -> None:
    shown = texts(dialog)
    for capability in REQUESTED:
        assert CAPABILITY_CONSEQUENCES[capability] in shown


def test_allow_works_only_after_the_delay(qtbot: QtBot) -> None:
    widget = ConsentDialog(
        name="Jane Doe", org="ACME IT", fingerprint="f", sas="0815", requested=("view",)
    )
    qtbot.addWidget(widget)
    answers: list[object] = []
    widget.answered.connect(answers.append)
    shown_at = time.monotonic()
    widget.open()
    qtbot.waitExposed(widget)
    assert not widget.allow_armed
    assert not widget.allow_button.isEnabled()
    assert widget.allow_button.text() == "Allow (3)"
    # A click that lands at once (the classic tricked click) does nothing.
    qtbot.mouseClick(widget.allow_button, Qt.MouseButton.LeftButton)
    assert answers == [] and widget.isVisible()
    qtbot.waitUntil(widget.allow_button.isEnabled, timeout=5000)
    waited = time.monotonic() - shown_at
    assert ALLOW_DELAY - 0.3 <= waited < ALLOW_DELAY + 2.0
    assert widget.allow_button.text() == "&Allow"
    qtbot.mouseClick(widget.allow_button, Qt.MouseButton.LeftButton)
    assert answers == [("view",)]


def test_accepting_before_the_delay_is_a_decline(qtbot: QtBot) -> None:
    widget = ConsentDialog(
        name="Jane Doe", org="ACME IT", fingerprint="f", sas="0815", requested=("view",)
    )
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.answered, timeout=1000) as blocker:
        widget.open()
        widget.accept()
    assert blocker.args == [None]


def test_more_rights_asked_by_the_technician_start_unticked(qtbot: QtBot) -> None:
    widget = MoreRightsDialog(
        technician="Jane Doe (ACME IT)", requested=("control", "clipboard"), allow_delay=0
    )
    qtbot.addWidget(widget)
    widget.open()
    assert widget.granted() == ()
    assert not widget.allow_button.isEnabled()
    assert "Jane Doe (ACME IT) asks for more access" in texts(widget)
    assert CAPABILITY_CONSEQUENCES["control"] in texts(widget)
    assert widget.decline_button.isDefault()
    tick(qtbot, widget.checkboxes["control"])
    with qtbot.waitSignal(widget.answered, timeout=1000) as blocker:
        qtbot.mouseClick(widget.allow_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [("control",)]


def test_more_rights_asked_by_the_user_start_ticked_and_still_wait(qtbot: QtBot) -> None:
    widget = MoreRightsDialog(technician="Jane Doe (ACME IT)", requested=("files",), by_user=True)
    qtbot.addWidget(widget)
    widget.open()
    assert widget.granted() == ("files",)
    assert not widget.allow_button.isEnabled()  # the delay applies all the same
    with qtbot.waitSignal(widget.answered, timeout=1000) as blocker:
        qtbot.keyClick(widget, Qt.Key.Key_Escape)
    assert blocker.args == [None]


def test_verification_failure_is_red_and_has_no_way_forward(qtbot: QtBot) -> None:
    widget = VerificationFailedDialog("the certificate is not from your organisation")
    qtbot.addWidget(widget)
    widget.open()
    assert "#b00020" in widget.warning_label.styleSheet()
    assert "could not be verified" in widget.warning_label.text()
    assert "the certificate is not from your organisation" in widget.reason_label.text()
    shown = texts(widget)
    assert REPORT_STEPS[0].split(".")[0] in shown
    assert [b.text() for b in widget.findChildren(QPushButton)] == ["&Close"]
    assert not widget.findChildren(QCheckBox)
    with qtbot.waitSignal(widget.finished, timeout=1000):
        qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_an_unanswered_request_for_more_is_declined(qtbot: QtBot) -> None:
    widget = MoreRightsDialog(
        technician="Jane Doe (ACME IT)", requested=("control",), allow_delay=0, answer_within=0.2
    )
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.answered, timeout=3000) as blocker:
        widget.open()
    assert blocker.args == [None]
    assert not widget.isVisible()
