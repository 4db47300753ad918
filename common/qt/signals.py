"""Quit a Qt app cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import signal
import socket

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication


__all__ = ["SignalQuitter"]


class SignalQuitter:
    """Make SIGINT and SIGTERM quit the Qt loop cleanly, so the session gets closed.

    Python runs signal handlers only when the interpreter gets control; the
    wakeup socket makes Qt hand it control as soon as a signal arrives.
    """

    def __init__(self, app: QApplication) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, app)
        self._notifier.activated.connect(self._drain)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda _signum, _frame: app.quit())

    def _drain(self) -> None:
        try:
            self._reader.recv(64)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()
