"""The pages before anything leaves the computer: the anti-scam gate, reporting, the form.

- :class:`AntiScamPage`: "Only continue if you contacted your IT support
  yourself", with a box to tick before Continue works, and a "No, someone
  contacted me" answer that leads to :class:`ReportPage` instead.
- :class:`RequestFormPage`: what is wrong, a category, an optional
  screenshot (with a preview) and an optional system summary shown in full
  before it is sent.
- :class:`ScreenshotDialog`: the screenshot at a readable size.

Pure views: they emit the user's intents; the window decides what happens.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from client.core.request_form import MAX_DESCRIPTION_BYTES, MAX_NAME, RequestDraft
from client.qt.wording import (
    ANTI_SCAM,
    ANTI_SCAM_CONFIRM,
    ANTI_SCAM_DETAILS,
    ANTI_SCAM_TITLE,
    REPORT_STEPS,
    REPORT_TITLE,
)
from common.protocol.support import CATEGORIES
from common.qt.widgets import enlarge_font, plain_label


__all__ = ["AntiScamPage", "ReportPage", "RequestFormPage", "ScreenshotDialog"]

WARNING_STYLE = "color: #b00020;"
_NO_CATEGORY = "Choose a category…"


class AntiScamPage(QWidget):
    """The gate before any code or request goes out (security.md 4.3, point 3).

    Signals:
        confirmed: the user ticked the box and clicked Continue.
        refused: the user answered that someone else contacted them.
        back_requested: the user went back.

    Attributes:
        confirm_box, continue_button, refuse_button, back_button.
    """

    confirmed = Signal()
    refused = Signal()
    back_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = plain_label(ANTI_SCAM_TITLE)
        enlarge_font(title, 1.3, bold=True)
        warning = plain_label(ANTI_SCAM)
        warning.setObjectName("anti-scam")
        warning.setStyleSheet(WARNING_STYLE)
        enlarge_font(warning, 1.1, bold=True)
        details = plain_label(ANTI_SCAM_DETAILS)
        self.confirm_box = QCheckBox(ANTI_SCAM_CONFIRM, self)
        self.confirm_box.setObjectName("anti-scam-confirm")
        self.continue_button = QPushButton("&Continue", self)
        self.refuse_button = QPushButton("&No, someone contacted me", self)
        self.back_button = QPushButton("&Back", self)
        self.continue_button.setEnabled(False)
        self.confirm_box.toggled.connect(self.continue_button.setEnabled)
        self.continue_button.clicked.connect(self.on_continue_clicked)
        self.refuse_button.clicked.connect(self.refused)
        self.back_button.clicked.connect(self.back_requested)

        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.refuse_button)
        buttons.addWidget(self.continue_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(warning)
        layout.addWidget(details)
        layout.addSpacing(8)
        layout.addWidget(self.confirm_box)
        layout.addStretch(1)
        layout.addLayout(buttons)

    def reset(self) -> None:
        """Untick the box: the question is asked every time."""
        self.confirm_box.setChecked(False)
        self.confirm_box.setFocus()

    @Slot()
    def on_continue_clicked(self) -> None:
        if self.confirm_box.isChecked():
            self.confirmed.emit()


class ReportPage(QWidget):
    """What to do when someone else started this: no code, no request, how to report.

    Signals:
        done: the user read it and goes back to the start.
    """

    done = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = plain_label(REPORT_TITLE)
        title.setObjectName("report-title")
        title.setStyleSheet(WARNING_STYLE)
        enlarge_font(title, 1.3, bold=True)
        steps = "\n\n".join(f"{i}. {step}" for i, step in enumerate(REPORT_STEPS, 1))
        self.steps_label = plain_label(steps)
        self.steps_label.setObjectName("report-steps")
        nothing = plain_label("Nothing was sent and no code was made.")
        self.done_button = QPushButton("&Back to the start", self)
        self.done_button.clicked.connect(self.done)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.steps_label)
        layout.addWidget(nothing)
        layout.addStretch(1)
        layout.addWidget(self.done_button)


class ScreenshotDialog(QDialog):
    """Shows a screenshot, scaled to fit (scroll for the full size)."""

    def __init__(self, pixmap: QPixmap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Deskhand — your screenshot")
        self.image = QLabel(self)
        self.image.setObjectName("screenshot")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setPixmap(
            pixmap.scaled(
                960,
                600,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        scroll = QScrollArea(self)
        scroll.setWidget(self.image)
        scroll.setWidgetResizable(True)
        close = QPushButton("&Close", self)
        close.setDefault(True)
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(f"Screenshot, {pixmap.width()} by {pixmap.height()} pixels."))
        layout.addWidget(scroll, 1)
        layout.addLayout(row)
        self.resize(1000, 700)


class RequestFormPage(QWidget):
    """The "Request help" form.

    Signals:
        submitted: the user clicked Send with a valid form (a RequestDraft).
        back_requested: the user went back.
        summary_wanted: the summary box was ticked; the window asks the core
            and calls :meth:`set_summary`.
        screenshot_wanted: the user clicked "Take a screenshot"; the window
            takes it and calls :meth:`set_screenshot`.
        preview_wanted: show the screenshot.

    Attributes:
        name_edit, description_edit, category_box, summary_box, summary_view,
        screenshot_button, preview_button, remove_button, thumbnail,
        problems_label, send_button, back_button.
    """

    submitted = Signal(object)
    back_requested = Signal()
    summary_wanted = Signal()
    screenshot_wanted = Signal()
    preview_wanted = Signal()

    def __init__(self, default_name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._screenshot: QPixmap | None = None
        self._summary = ""

        title = plain_label("Ask your IT support for help")
        enlarge_font(title, 1.3, bold=True)

        self.name_edit = QLineEdit(default_name, self)
        self.name_edit.setMaxLength(MAX_NAME)
        self.name_edit.setPlaceholderText("Your name, as the technician will see it")
        self.description_edit = QPlainTextEdit(self)
        self.description_edit.setPlaceholderText(
            "What is wrong? What were you trying to do? Any error message?"
        )
        self.description_edit.setTabChangesFocus(True)
        self.description_edit.setMaximumHeight(110)
        self.name_edit.textChanged.connect(self.on_edited)
        self.description_edit.textChanged.connect(self.on_edited)
        self.description_count = plain_label(wrap=False)
        self.description_count.setObjectName("description-count")
        self.description_count.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.category_box = QComboBox(self)
        self.category_box.addItem(_NO_CATEGORY, "")
        for category in CATEGORIES:
            self.category_box.addItem(category, category)

        self.screenshot_button = QPushButton("Take a &screenshot", self)
        self.preview_button = QPushButton("&Preview", self)
        self.remove_button = QPushButton("Re&move", self)
        self.thumbnail = QLabel(self)
        self.thumbnail.setObjectName("thumbnail")
        self.thumbnail.setFixedSize(120, 68)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setFrameShape(QLabel.Shape.StyledPanel)
        screenshot_note = plain_label(
            "The screenshot stays on this computer. Once a technician is connected, "
            "you can show it to them from the chat window."
        )
        screenshot_note.setEnabled(False)
        self.screenshot_button.clicked.connect(self.screenshot_wanted)
        self.preview_button.clicked.connect(self.preview_wanted)
        self.remove_button.clicked.connect(self.on_remove_clicked)

        self.summary_box = QCheckBox("Send a &summary of this computer (shown below)", self)
        self.summary_box.toggled.connect(self.on_summary_toggled)
        # A label, not a scrolling box: every line is in view before it is sent.
        self.summary_view = QLabel(self)
        self.summary_view.setObjectName("summary")
        self.summary_view.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_view.setWordWrap(True)
        self.summary_view.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_view.setFrameShape(QLabel.Shape.StyledPanel)
        self.summary_view.setMargin(6)
        self.summary_view.setText("Reading the summary…")
        self.summary_view.setVisible(False)

        self.problems_label = plain_label()
        self.problems_label.setObjectName("problems")
        self.problems_label.setStyleSheet(WARNING_STYLE)
        self.send_button = QPushButton("S&end request", self)
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.on_send_clicked)
        self.back_button = QPushButton("&Back", self)
        self.back_button.clicked.connect(self.back_requested)

        form = QFormLayout()
        form.addRow("&Name:", self.name_edit)
        form.addRow("&What is wrong?", self.description_edit)
        form.addRow("", self.description_count)
        self._count_description()
        form.addRow("&Category:", self.category_box)
        shot_row = QHBoxLayout()
        shot_row.addWidget(self.thumbnail)
        shot_buttons = QVBoxLayout()
        shot_buttons.addWidget(self.screenshot_button)
        shot_buttons.addWidget(self.preview_button)
        shot_buttons.addWidget(self.remove_button)
        shot_row.addLayout(shot_buttons)
        shot_row.addWidget(screenshot_note, 1)
        form.addRow("Screenshot:", shot_row)

        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(self.summary_box)
        layout.addWidget(self.summary_view)
        layout.addWidget(self.problems_label)
        layout.addLayout(buttons)
        self._show_screenshot_state()

    # --- state ---

    @property
    def screenshot(self) -> QPixmap | None:
        return self._screenshot

    def draft(self) -> RequestDraft:
        """What the form holds now."""
        return RequestDraft(
            name=self.name_edit.text(),
            description=self.description_edit.toPlainText(),
            category=str(self.category_box.currentData() or ""),
            include_summary=self.summary_box.isChecked(),
            summary=self._summary,
            screenshot=self._screenshot is not None,
        )

    def set_summary(self, text: str) -> None:
        """The summary, exactly as it would be sent: shown in full."""
        self._summary = text
        self.summary_view.setText(text)

    def set_screenshot(self, pixmap: QPixmap | None) -> None:
        self._screenshot = None if pixmap is None or pixmap.isNull() else pixmap
        self._show_screenshot_state()

    def _show_screenshot_state(self) -> None:
        has = self._screenshot is not None
        self.preview_button.setEnabled(has)
        self.remove_button.setEnabled(has)
        if self._screenshot is not None:
            self.thumbnail.setPixmap(
                self._screenshot.scaled(
                    self.thumbnail.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
            self.screenshot_button.setText("Take it &again")
        else:
            self.thumbnail.clear()
            self.thumbnail.setText("none")
            self.screenshot_button.setText("Take a &screenshot")

    def start(self) -> None:
        """Shown again: clear old problems, put the cursor where typing starts."""
        self.problems_label.clear()
        if self.name_edit.text().strip():
            self.description_edit.setFocus()
        else:
            self.name_edit.setFocus()

    # --- slots ---

    @Slot(bool)
    def on_summary_toggled(self, on: bool) -> None:
        self.summary_view.setVisible(on)
        if on and not self._summary:
            self.summary_wanted.emit()

    @Slot()
    def on_edited(self) -> None:
        self.problems_label.clear()
        self._count_description()

    def _count_description(self) -> None:
        # The limit is in bytes on the wire; most people type one byte per character.
        used = len(self.description_edit.toPlainText().encode("utf-8"))
        self.description_count.setText(f"{used:,} / {MAX_DESCRIPTION_BYTES:,}")
        over = used > MAX_DESCRIPTION_BYTES
        self.description_count.setStyleSheet("color: #b00020; font-weight: bold;" if over else "")
        self.description_count.setAccessibleName(
            f"{used} of {MAX_DESCRIPTION_BYTES} characters used"
            + (": too long, please shorten it" if over else "")
        )

    @Slot()
    def on_remove_clicked(self) -> None:
        self.set_screenshot(None)

    @Slot()
    def on_send_clicked(self) -> None:
        draft = self.draft()
        problems = draft.problems()
        if problems:
            self.problems_label.setText(" ".join(problems))
            return
        self.problems_label.clear()
        self.submitted.emit(draft)
