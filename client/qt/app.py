"""Composition root of the user client: builds the loop, core, bridge and window.

Shutdown order (on ``aboutToQuit``): the bridge closes the session within a
bounded time, then the loop thread stops, then Qt exits.
"""

from __future__ import annotations

import dataclasses
import sys

from PySide6.QtWidgets import QApplication

from client.core.session import UserClient
from client.qt.bridge import ClientBridge
from client.qt.window import ClientWindow
from common.crypto.identity import OrgTrust
from common.net.pairing import ConsentCallback
from common.net.runner import LoopThread
from common.qt.signals import SignalQuitter


__all__ = ["ClientOptions", "run"]

_CLOSE_TIMEOUT = 3.0


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """What the command line decided.

    Attributes:
        relay_url: the relay's peer endpoint, ws://host:port/v1/peer.
        org_public_key: the pinned organisation key (32 raw bytes).
        device: this computer's name, shown to the technician.
    """

    relay_url: str
    org_public_key: bytes
    device: str


def run(options: ClientOptions) -> int:
    """Run the client until the window is closed; returns the exit status."""
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Deskhand")
    app.setApplicationDisplayName("Deskhand")
    quitter = SignalQuitter(app)

    trust = OrgTrust(options.org_public_key)
    loop = LoopThread("deskhand-client-loop")
    loop.start()

    def make_client(consent: ConsentCallback) -> UserClient:
        return UserClient(options.relay_url, trust, consent, device=options.device)

    bridge = ClientBridge(loop, make_client)
    window = ClientWindow(bridge)

    def shutdown() -> None:
        bridge.shutdown(_CLOSE_TIMEOUT)
        loop.stop()

    app.aboutToQuit.connect(shutdown)
    window.resize(460, 420)
    window.show()
    try:
        return app.exec()
    finally:
        quitter.close()
