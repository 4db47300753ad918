"""The consent dialogs: who is asking, the number to compare, what to allow.

Three dialogs, all pure views (plain values in, an answer out):

- :class:`ConsentDialog`: a verified technician asks to connect. Shows the
  name and organisation from the certificate, the verification number, and
  one box per capability asked for, with only "view" ticked.
- :class:`MoreRightsDialog`: during a session, the technician asks for more
  (or the user ticked a capability in the session bar). Nothing is ticked
  unless the user asked for it themselves.
- :class:`VerificationFailedDialog`: the technician could not be verified.
  A red warning, what to do, and no way forward.

Friction against tricked clicks (security.md 4.3): Allow stays disabled for
``allow_delay`` seconds after the dialog appears, with a countdown; Decline
is the default button, so Enter, Escape and closing the window all decline.
Remote input cannot click any of them: whoever opens a dialog tells the core
(``ClientBridge.set_dialog_open``), which pauses remote input until it closes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from client.qt.wording import (
    CAPABILITY_CONSEQUENCES,
    CAPABILITY_LABELS,
    REPORT_STEPS,
    VERIFICATION_FAILED,
)
from common.qt.widgets import enlarge_font, plain_label


__all__ = [
    "ALLOW_DELAY",
    "CAPABILITY_LABELS",
    "ConsentDialog",
    "MoreRightsDialog",
    "VerificationFailedDialog",
]

# Seconds before Allow can be clicked (security.md 4.3: about 3 s).
ALLOW_DELAY = 2.5
WARNING_STYLE = "color: #b00020;"
_ALLOW_TEXT = "&Allow"


class _GrantDialog(QDialog):
    """Checkboxes per capability, a delayed Allow, and Decline as the default.

    Signals:
        answered: the capabilities ticked (a tuple of str) after Allow, or None
            after Decline, Escape or closing the window; emitted exactly once.

    Attributes:
        allow_button, decline_button: the two answers.
        checkboxes: one per capability offered, by name.
    """

    answered = Signal(object)

    def __init__(
        self,
        capabilities: Sequence[str],
        checked: Sequence[str],
        allow_delay: float,
        parent: QWidget | None,
    ) -> None:
        super().__init__(parent)
        self._answered = False
        self._ticks_left = max(0, math.ceil(allow_delay))
        self._armed = self._ticks_left == 0
        self._countdown = QTimer(self)
        if self._ticks_left:
            self._countdown.setInterval(max(1, round(allow_delay * 1000 / self._ticks_left)))
        self._countdown.timeout.connect(self._on_countdown_tick)
        self.setModal(True)
        self.setMinimumWidth(440)

        self.checkboxes: dict[str, QCheckBox] = {}
        self._capability_rows: list[QWidget] = []
        for capability in capabilities:
            box = QCheckBox(CAPABILITY_LABELS.get(capability, capability), self)
            box.setObjectName(f"capability-{capability}")
            box.setChecked(capability in checked)
            box.toggled.connect(self._update_allow)
            self.checkboxes[capability] = box
            consequence = plain_label(CAPABILITY_CONSEQUENCES.get(capability, ""))
            consequence.setObjectName(f"consequence-{capability}")
            consequence.setIndent(24)  # under its box; normal colour: greyed text is hard to read
            row = QWidget(self)
            row_layout = QVBoxLayout(row)
            row_layout.setContentsMargins(0, 0, 0, 0)
            row_layout.setSpacing(0)
            row_layout.addWidget(box)
            row_layout.addWidget(consequence)
            self._capability_rows.append(row)

        self.decline_button = QPushButton("&Decline", self)
        self.allow_button = QPushButton(_ALLOW_TEXT, self)
        # Enter must never allow by accident: Decline is the default, and the
        # Allow button does not become default when it gets the focus.
        self.decline_button.setDefault(True)
        self.allow_button.setAutoDefault(False)
        self.decline_button.clicked.connect(self.reject)
        self.allow_button.clicked.connect(self.accept)
        self._update_allow()

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.decline_button)
        row.addWidget(self.allow_button)
        return row

    @property
    def allow_armed(self) -> bool:
        """The delay has passed: Allow may be clicked (if something is ticked)."""
        return self._armed

    def granted(self) -> tuple[str, ...]:
        """The capabilities currently ticked, in the order they were offered."""
        return tuple(cap for cap, box in self.checkboxes.items() if box.isChecked())

    def _update_allow(self, _checked: bool = False) -> None:
        # Allowing nothing is not a meaningful answer: that is Decline.
        self.allow_button.setEnabled(self._armed and bool(self.granted()))
        if self._armed:
            self.allow_button.setText(_ALLOW_TEXT)
        else:
            self.allow_button.setText(f"Allow ({self._ticks_left})")

    def _on_countdown_tick(self) -> None:
        self._ticks_left -= 1
        if self._ticks_left <= 0:
            self._countdown.stop()
            self._armed = True
        self._update_allow()

    def showEvent(self, event: QShowEvent) -> None:
        """Qt override: the delay runs from the moment the dialog appears."""
        super().showEvent(event)
        if not self._armed and not self._countdown.isActive():
            self._countdown.start()
        self.decline_button.setFocus()

    def done(self, result: int) -> None:
        """Qt override: every way of closing the dialog ends here, once."""
        self._countdown.stop()
        if not self._answered:
            self._answered = True
            accepted = (
                result == QDialog.DialogCode.Accepted.value and self._armed and bool(self.granted())
            )
            self.answered.emit(self.granted() if accepted else None)
        super().done(result)


class ConsentDialog(_GrantDialog):
    """Asks the user whether a verified technician may connect.

    Attributes:
        sas_label: the verification number.
        (and those of the grant dialog: allow_button, decline_button, checkboxes)
    """

    def __init__(
        self,
        *,
        name: str,
        org: str,
        fingerprint: str,
        sas: str,
        requested: Sequence[str],
        allow_delay: float = ALLOW_DELAY,
        answer_within: float | None = 60.0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(requested, ("view",), allow_delay, parent)
        self.setWindowTitle("Deskhand — allow remote help?")

        who = plain_label(f"{name} ({org}) wants to connect to this computer.")
        who.setObjectName("who")
        enlarge_font(who, 1.2, bold=True)
        verified = plain_label(f"✔ Checked: this is a technician of {org}.")
        verified.setObjectName("verified")
        # The key's fingerprint is for those who ask (an IT person on the phone, say).
        self.details_button = QToolButton(self)
        self.details_button.setObjectName("details")
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_label = plain_label(f"Technician key fingerprint: {fingerprint}")
        self.details_label.setObjectName("fingerprint")
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_label.setVisible(False)
        self.details_button.toggled.connect(self.details_label.setVisible)

        compare = plain_label("Verification number:")
        self.sas_label = plain_label(sas)
        self.sas_label.setObjectName("sas")
        enlarge_font(self.sas_label, 2.5, bold=True)
        self.sas_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        advice = plain_label(
            "Ask the technician to read their number to you. Allow only if it is the same number."
        )
        allow_intro = plain_label("Allow the technician to:")

        layout = QVBoxLayout(self)
        layout.addWidget(who)
        verified_row = QHBoxLayout()
        verified_row.addWidget(verified, 1)
        verified_row.addWidget(self.details_button)
        layout.addLayout(verified_row)
        layout.addWidget(self.details_label)
        layout.addSpacing(8)
        layout.addWidget(compare)
        layout.addWidget(self.sas_label)
        layout.addWidget(advice)
        layout.addSpacing(8)
        layout.addWidget(allow_intro)
        for row in self._capability_rows:
            layout.addWidget(row)
        if answer_within:
            later = plain_label(
                f"Without an answer within {answer_within:g} seconds, the request is declined. "
                "You can stop the session at any time."
            )
            later.setObjectName("timeout")
            layout.addWidget(later)
        layout.addSpacing(8)
        layout.addLayout(self._buttons())


class MoreRightsDialog(_GrantDialog):
    """During a session: allow more than the technician has now?

    Args:
        technician: "Jane Doe (ACME IT)".
        requested: the capabilities offered.
        by_user: the user asked for it (a toggle in the session bar): the
            boxes start ticked. Otherwise the technician asked, and nothing
            is ticked until the user ticks it.
    """

    def __init__(
        self,
        *,
        technician: str,
        requested: Sequence[str],
        by_user: bool = False,
        allow_delay: float = ALLOW_DELAY,
        answer_within: float = 60.0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(requested, requested if by_user else (), allow_delay, parent)
        self.setWindowTitle("Deskhand — allow more?")
        # Unanswered questions are declined (security.md 4.2), like the first one.
        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.setInterval(round(answer_within * 1000))
        self._expiry.timeout.connect(self.reject)
        if by_user:
            text = f"Allow {technician} to do more on this computer?"
        else:
            text = f"{technician} asks for more access to this computer."
        who = plain_label(text)
        who.setObjectName("who")
        enlarge_font(who, 1.1, bold=True)
        hint = plain_label(
            "Tick only what you want to allow. Remote control is paused while this "
            "window is open, so only you can answer it."
        )
        later = plain_label(
            f"Without an answer within {answer_within:g} seconds, the request is declined."
        )
        layout = QVBoxLayout(self)
        layout.addWidget(who)
        layout.addWidget(hint)
        layout.addSpacing(8)
        for row in self._capability_rows:
            layout.addWidget(row)
        layout.addWidget(later)
        layout.addSpacing(8)
        layout.addLayout(self._buttons())

    def showEvent(self, event: QShowEvent) -> None:
        """Qt override: the time to answer runs from the moment the dialog appears."""
        super().showEvent(event)
        if not self._expiry.isActive():
            self._expiry.start()


class VerificationFailedDialog(QDialog):
    """The technician could not be verified: a red warning and no way forward.

    Attributes:
        close_button: the only button.
        warning_label, reason_label: the warning and the core's reason.
    """

    def __init__(self, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModal(True)
        self.setMinimumWidth(480)
        self.setWindowTitle("Deskhand — technician NOT verified")
        heading = plain_label("⚠ Warning: this technician could not be verified")
        heading.setObjectName("heading")
        heading.setStyleSheet(WARNING_STYLE)
        enlarge_font(heading, 1.3, bold=True)
        self.warning_label = plain_label(VERIFICATION_FAILED)
        self.warning_label.setObjectName("warning")
        self.warning_label.setStyleSheet(WARNING_STYLE)
        enlarge_font(self.warning_label, 1.0, bold=True)
        self.reason_label = plain_label(f"Details: {reason}")
        self.reason_label.setObjectName("reason")
        steps = QLabel(self)
        steps.setTextFormat(Qt.TextFormat.PlainText)
        steps.setWordWrap(True)
        steps.setText("\n".join(f"{i}. {step}" for i, step in enumerate(REPORT_STEPS, 1)))
        steps.setObjectName("steps")
        self.close_button = QPushButton("&Close", self)
        self.close_button.setDefault(True)
        self.close_button.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.reason_label)
        layout.addSpacing(8)
        layout.addWidget(plain_label("What to do now:"))
        layout.addWidget(steps)
        layout.addSpacing(8)
        layout.addLayout(row)
