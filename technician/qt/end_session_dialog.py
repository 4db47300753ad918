"""The end-session form: problem, cause, resolution, category and outcome."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from common.protocol.support import CATEGORIES, OUTCOMES
from common.qt.widgets import plain_label
from technician.core.report import MAX_FIELD, SessionReport


__all__ = ["EndSessionDialog"]


class EndSessionDialog(QDialog):
    """Asks for the closing report; `report` holds it after Accepted.

    Args:
        notes: the session's notes, prefilled.
        problem: the problem as the user described it, prefilled.
        note: a line under the form (where the report goes).
        session_over: the session has ended already: the form only files the report.
    """

    def __init__(
        self,
        notes: str = "",
        problem: str = "",
        parent: QWidget | None = None,
        *,
        note: str = "",
        session_over: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("End session")
        self.report: SessionReport | None = None
        self.problem = QLineEdit(problem, self)
        self.problem.setMaxLength(MAX_FIELD)
        self.cause = QLineEdit(self)
        self.cause.setMaxLength(MAX_FIELD)
        self.resolution = QPlainTextEdit(self)
        self.category = QComboBox(self)
        self.category.addItems(["Choose…", *CATEGORIES])
        self.outcome = QComboBox(self)
        self.outcome.addItems(["Choose…", *OUTCOMES])
        self.notes = QPlainTextEdit(notes, self)
        self.error = plain_label()
        self.error.setStyleSheet("color: #b00020;")
        form = QFormLayout()
        form.addRow("&Problem:", self.problem)
        form.addRow("C&ause:", self.cause)
        form.addRow("&Resolution:", self.resolution)
        form.addRow("Ca&tegory:", self.category)
        form.addRow("&Outcome:", self.outcome)
        form.addRow("&Notes:", self.notes)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("&File report" if session_over else "&End session and file report")
        self.buttons.accepted.connect(self.on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.note = plain_label(note)
        self.note.setVisible(bool(note))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        # Once an error is shown, it follows the fields: fixed problems disappear.
        for edit in (self.problem, self.cause):
            edit.textChanged.connect(self.on_field_changed)
        for text in (self.resolution, self.notes):
            text.textChanged.connect(self.on_field_changed)
        for box in (self.category, self.outcome):
            box.currentIndexChanged.connect(self.on_field_changed)

    def current(self) -> SessionReport:
        return SessionReport(
            problem=self.problem.text(),
            cause=self.cause.text(),
            resolution=self.resolution.toPlainText(),
            category=self.category.currentText(),
            outcome=self.outcome.currentText(),
            notes=self.notes.toPlainText(),
        )

    @Slot()
    def on_field_changed(self) -> None:
        if self.error.text():
            self.error.setText(" ".join(self.current().problems()))

    @Slot()
    def on_buttons_accepted(self) -> None:
        report = self.current()
        problems = report.problems()
        if problems:
            self.error.setText(" ".join(problems))
            return
        self.report = report
        self.accept()
