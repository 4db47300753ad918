"""A program that cannot start says why on screen, not only on a terminal nobody sees.

Launched from a desktop menu, a program's standard error goes nowhere: a
missing or broken settings file would look like "nothing happens". So the
apps show the same message in a dialog, with where the settings are looked
for, when there is a display and standard error is not a terminal.
"""

from __future__ import annotations

import os
import sys


__all__ = ["should_show_startup_error", "show_startup_error"]

_HEADLESS = ("offscreen", "minimal")


def should_show_startup_error() -> bool:
    """A dialog helps here: a display, no terminal, a platform someone can see."""
    if os.environ.get("DESKHAND_NO_ERROR_DIALOG"):
        return False
    if os.environ.get("QT_QPA_PLATFORM", "") in _HEADLESS:
        return False
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    return not (sys.stderr is not None and sys.stderr.isatty())


def show_startup_error(title: str, message: str, hint: str) -> None:
    """Show the error (and the way forward) and wait until it is closed."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    from common.qt.widget_log import install_widget_log

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    install_widget_log(app)  # tests only: DESKHAND_WIDGET_LOG
    box = QMessageBox(QMessageBox.Icon.Critical, title, message)
    box.setObjectName("startup-error")
    box.setInformativeText(hint)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.exec()
