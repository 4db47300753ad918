"""The consent dialog: who is asking, the number to compare, what to allow.

It is a pure view: it gets plain values and answers with the capabilities
the user ticked, or None. Declining is the default and the safe way out:
Enter, Escape and closing the window all decline.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


__all__ = ["CAPABILITY_LABELS", "ConsentDialog"]

# What each capability means to someone who is not technical.
CAPABILITY_LABELS = {
    "view": "See your screen",
    "control": "Control your mouse and keyboard",
    "clipboard": "Read and change your clipboard",
    "files": "Send and receive files",
}
# Seeing the screen is what the user asked for by requesting help; anything
# more must be a deliberate tick.
_CHECKED_BY_DEFAULT = frozenset({"view"})


def _plain_label(text: str, parent: QWidget) -> QLabel:
    # Names come from certificates: never let them be read as rich text.
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


def _scaled_font(base: QFont, factor: float, *, bold: bool = False) -> QFont:
    font = QFont(base)
    if font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * factor)
    else:
        font.setPixelSize(max(1, round(font.pixelSize() * factor)))
    font.setBold(bold)
    return font


class ConsentDialog(QDialog):
    """Asks the user whether a verified technician may connect.

    Signals:
        answered: the capabilities ticked (a tuple of str) after Allow, or None
            after Decline, Escape or closing the window; emitted exactly once.

    Attributes:
        allow_button, decline_button: the two answers.
        checkboxes: one per requested capability, by capability name.
    """

    answered = Signal(object)

    def __init__(
        self,
        *,
        name: str,
        org: str,
        fingerprint: str,
        sas: str,
        requested: Sequence[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._answered = False
        self.setWindowTitle("Deskhand — allow remote help?")
        self.setModal(True)

        who = _plain_label(f"{name} ({org}) wants to connect to this computer.", self)
        who.setObjectName("who")
        who.setFont(_scaled_font(self.font(), 1.2, bold=True))
        verified = _plain_label(
            f"Verified technician of {org}. Key fingerprint: {fingerprint}", self
        )
        verified.setObjectName("verified")
        verified.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        compare = _plain_label("Verification number:", self)
        self.sas_label = _plain_label(sas, self)
        self.sas_label.setObjectName("sas")
        self.sas_label.setFont(_scaled_font(self.font(), 2.5, bold=True))
        self.sas_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        advice = _plain_label(
            "Ask the technician to read their number to you. Allow only if it is the same number.",
            self,
        )

        allow_intro = _plain_label("Allow the technician to:", self)
        self.checkboxes: dict[str, QCheckBox] = {}
        for capability in requested:
            box = QCheckBox(CAPABILITY_LABELS.get(capability, capability), self)
            box.setObjectName(f"capability-{capability}")
            box.setChecked(capability in _CHECKED_BY_DEFAULT)
            box.toggled.connect(self._on_checkbox_toggled)
            self.checkboxes[capability] = box

        self.decline_button = QPushButton("&Decline", self)
        self.allow_button = QPushButton("&Allow", self)
        # Enter must never allow by accident: Decline is the default, and the
        # Allow button does not become default when it gets the focus.
        self.decline_button.setDefault(True)
        self.allow_button.setAutoDefault(False)
        self.decline_button.clicked.connect(self.reject)
        self.allow_button.clicked.connect(self.accept)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.decline_button)
        buttons.addWidget(self.allow_button)

        layout = QVBoxLayout(self)
        layout.addWidget(who)
        layout.addWidget(verified)
        layout.addSpacing(8)
        layout.addWidget(compare)
        layout.addWidget(self.sas_label)
        layout.addWidget(advice)
        layout.addSpacing(8)
        layout.addWidget(allow_intro)
        for box in self.checkboxes.values():
            layout.addWidget(box)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        self._on_checkbox_toggled()
        self.decline_button.setFocus()

    def granted(self) -> tuple[str, ...]:
        """The capabilities currently ticked, in the order they were requested."""
        return tuple(cap for cap, box in self.checkboxes.items() if box.isChecked())

    def _on_checkbox_toggled(self, _checked: bool = False) -> None:
        # Allowing nothing is not a meaningful answer: that is Decline.
        self.allow_button.setEnabled(bool(self.granted()))

    def done(self, result: int) -> None:
        """Qt override: every way of closing the dialog ends here, once."""
        if not self._answered:
            self._answered = True
            accepted = result == QDialog.DialogCode.Accepted.value and bool(self.granted())
            self.answered.emit(self.granted() if accepted else None)
        super().done(result)
