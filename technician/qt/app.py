"""Composition root of the technician console: loop, core, bridge and window.

Shutdown order (on ``aboutToQuit``): the bridge closes the session within a
bounded time, then the loop thread stops, then Qt exits.
"""

from __future__ import annotations

import dataclasses
import sys

from PySide6.QtWidgets import QApplication

from common.crypto.identity import TechnicianCredential
from common.net.runner import LoopThread
from common.qt.signals import SignalQuitter
from technician.core.session import TechnicianClient
from technician.qt.bridge import TechnicianBridge
from technician.qt.window import TechnicianWindow


__all__ = ["TechnicianOptions", "run"]

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
