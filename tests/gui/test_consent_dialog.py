"""The consent dialog: what it shows, its defaults, and every way to answer."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QLabel
from pytestqt.qtbot import QtBot

from client.qt.consent_dialog import ConsentDialog


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


def test_shows_the_verified_technician_and_the_number(dialog: ConsentDialog) -> None:
    shown = texts(dialog)
    assert "Jane Doe" in shown
    assert "ACME IT" in shown
    assert "3f2a 9c01 77de b4e5" in shown
    assert dialog.sas_label.text() == "0815"


def test_names_are_plain_text() -> None:
    # Certificate names must never be rendered as markup.
    widget = ConsentDialog(
        name="<b>Jane</b>", org="ACME", fingerprint="f", sas="1234", requested=("view",)
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
