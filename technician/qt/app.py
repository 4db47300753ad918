"""Composition root of the technician console: loop, core, bridge and window.

Shutdown order (on ``aboutToQuit``): the bridge closes the session within a
bounded time, then the loop thread stops, then Qt exits.
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import sys

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication

from common.crypto.identity import TechnicianCredential
from common.net.runner import LoopThread
from technician.core.session import TechnicianClient
from technician.qt.bridge import TechnicianBridge
from technician.qt.window import TechnicianWindow


__all__ = ["SignalQuitter", "TechnicianOptions", "run"]

_CLOSE_TIMEOUT = 3.0


@dataclasses.dataclass(frozen=True)
class TechnicianOptions:
    """What the command line decided.

    Attributes:
        relay_url: the relay's peer endpoint, ws://host:port/v1/peer.
        credential: the technician's key, certificate and revocation list.
    """

    relay_url: str
    credential: TechnicianCredential


class SignalQuitter:
    """Make SIGINT and SIGTERM quit the Qt loop cleanly, so the session gets closed.

    Python runs signal handlers only when the interpreter gets control; the
    wakeup socket makes Qt hand it control as soon as a signal arrives.
    (The client has the same helper: the programs share no Qt code.)
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


def run(options: TechnicianOptions) -> int:
    """Run the console until the window is closed; returns the exit status."""
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Deskhand technician")
    app.setApplicationDisplayName("Deskhand technician")
    quitter = SignalQuitter(app)

    loop = LoopThread("deskhand-technician-loop")
    loop.start()
    bridge = TechnicianBridge(loop, TechnicianClient(options.relay_url, options.credential))
    details = options.credential.details
    window = TechnicianWindow(bridge, who=f"{details.name} ({details.org})")

    def shutdown() -> None:
        bridge.shutdown(_CLOSE_TIMEOUT)
        loop.stop()

    app.aboutToQuit.connect(shutdown)
    window.resize(520, 420)
    window.show()
    try:
        return app.exec()
    finally:
        quitter.close()
