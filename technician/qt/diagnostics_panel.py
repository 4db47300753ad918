"""The session tab's Diagnostics panel: what the user chose to tell about their computer."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QScrollArea, QWidget

from common.qt.widgets import plain_label
from technician.core.console import SessionOrigin, diagnostics_rows


__all__ = ["DiagnosticsPanel"]


class DiagnosticsPanel(QScrollArea):
    """Rows of (name, value), all plain text: everything here came from the user."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("diagnostics")
        self.setWidgetResizable(True)

    def fill(self, origin: SessionOrigin, device: str) -> list[tuple[str, str]]:
        """Show what is known; returns the rows shown."""
        rows: list[tuple[str, str]] = []
        if origin.description:
            rows.append(("Problem", origin.description))
        rows += diagnostics_rows(origin, device)
        if origin.kind == "queue" and not origin.system_summary:
            rows.append(("", "The user did not share a system summary."))
        if origin.kind == "code" and not rows:
            rows.append(("", "Nothing shared yet: a code session carries only the device name."))
        sheet = QWidget()
        form = QFormLayout(sheet)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for name, value in rows:
            label = plain_label(value)  # what the user sent: never rich text
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if name:
                form.addRow(plain_label(f"{name}:", wrap=False), label)
            else:
                form.addRow(label)
        self.setWidget(sheet)
        return rows
