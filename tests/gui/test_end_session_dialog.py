"""The end-session form insists on a complete report."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox
from pytestqt.qtbot import QtBot

from technician.core.report import SessionReport
from technician.qt.end_session_dialog import EndSessionDialog


def test_incomplete_report_is_refused_with_reasons(qtbot: QtBot) -> None:
    dialog = EndSessionDialog(notes="restarted spooler")
    qtbot.addWidget(dialog)
    dialog.buttons.accepted.emit()
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert "Describe the problem." in dialog.error.text()
    assert "Pick a category." in dialog.error.text()
    assert dialog.report is None


def test_errors_clear_as_they_are_fixed(qtbot: QtBot) -> None:
    dialog = EndSessionDialog(problem="Printer offline")
    qtbot.addWidget(dialog)
    dialog.buttons.accepted.emit()
    assert "Pick a category." in dialog.error.text()
    dialog.category.setCurrentText("Printing")
    assert "Pick a category." not in dialog.error.text()
    assert dialog.error.text()  # what is still missing stays
    dialog.cause.setText("Stuck print spooler")
    dialog.resolution.setPlainText("Restarted the spooler.")
    dialog.outcome.setCurrentText("Resolved")
    assert dialog.error.text() == ""


def test_the_button_says_what_it_does(qtbot: QtBot) -> None:
    live = EndSessionDialog()
    over = EndSessionDialog(session_over=True)
    for dialog in (live, over):
        qtbot.addWidget(dialog)
    ok = QDialogButtonBox.StandardButton.Ok
    assert live.buttons.button(ok).text() == "&End session and file report"
    assert over.buttons.button(ok).text() == "&File report"


def test_complete_report_is_accepted(qtbot: QtBot) -> None:
    dialog = EndSessionDialog(notes="restarted spooler", problem="Printer offline")
    qtbot.addWidget(dialog)
    dialog.cause.setText("Stuck print spooler")
    dialog.resolution.setPlainText("Restarted the spooler service; test page printed.")
    dialog.category.setCurrentText("Printing")
    dialog.outcome.setCurrentText("Resolved")
    dialog.buttons.accepted.emit()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.report == SessionReport(
        problem="Printer offline",
        cause="Stuck print spooler",
        resolution="Restarted the spooler service; test page printed.",
        category="Printing",
        outcome="Resolved",
        notes="restarted spooler",
    )


def test_report_validation() -> None:
    good = SessionReport("p", "", "r", "Email", "Escalated")
    assert good.problems() == []
    assert SessionReport("p", "", "r", "Email", "Escalated", notes="x" * 5000).problems() == [
        "The notes field is longer than 4000 characters."
    ]
