"""Composition root of the technician console: loop, core, bridge, report book and window.

Shutdown order (on ``aboutToQuit``): the bridge ends every session and the
queue watch within a bounded time, then the loop thread stops, then Qt exits.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication

from common.crypto.identity import TechnicianCredential
from common.net.runner import LoopThread
from common.net.tls import RelayPin
from common.qt.gc_guard import GuiThreadCollector
from common.qt.signals import SignalQuitter
from common.qt.widget_log import install_widget_log
from technician.core.console import ReportBook
from technician.core.session import TechnicianClient
from technician.qt.bridge import TechnicianBridge
from technician.qt.window import TechnicianWindow


__all__ = ["TechnicianOptions", "build", "credential_warning", "run"]

_CLOSE_TIMEOUT = 3.0
_DAY = 24 * 3600


@dataclasses.dataclass(frozen=True)
class TechnicianOptions:
    """What the command line and the settings file decided.

    Attributes:
        relay_url: the relay's peer endpoint, ws(s)://host:port/v1/peer.
        credential: the technician's key, certificate and revocation list.
        data_dir: where session reports are written.
        pin: the relay's pinned key or certificate (None: no pin).
        account: the account name to suggest at sign-in.
        password: sign in with this at start (from --password-stdin), or None.
    """

    relay_url: str
    credential: TechnicianCredential
    data_dir: Path
    pin: RelayPin | None = None
    account: str = ""
    password: str | None = None


def credential_warning(credential: TechnicianCredential, now: float) -> str:
    """A sentence when the certificate has expired or expires within two days, else ""."""
    left = credential.details.not_after - now
    if left <= 0:
        return "Your technician certificate has expired: users will refuse it. Ask for a new one."
    if left < 2 * _DAY:
        hours = max(1, int(left // 3600))
        return f"Your technician certificate expires in {hours} h: ask for a new one soon."
    return ""


def build(
    options: TechnicianOptions, loop: LoopThread, *, clock: Callable[[], float] = time.time
) -> tuple[TechnicianBridge, TechnicianWindow]:
    """Wire the core, the bridge and the window (tests use this too).

    Args:
        clock: wall-clock seconds (how long requests have waited; report times).
    """
    client = TechnicianClient(options.relay_url, options.credential, pin=options.pin)
    bridge = TechnicianBridge(loop, client)
    details = options.credential.details
    host = urllib.parse.urlsplit(options.relay_url).hostname or options.relay_url
    window = TechnicianWindow(
        bridge,
        ReportBook(options.data_dir),
        technician_name=f"{details.name} ({details.org})",
        certificate_id=details.tech_id,
        relay_name=host,
        account=options.account,
        clock=clock,
    )
    warning = credential_warning(options.credential, clock())
    if warning:
        window.status_label.setText(warning)
    return bridge, window


def run(options: TechnicianOptions) -> int:
    """Run the console until the window is closed; returns the exit status."""
    app = QApplication(sys.argv[:1])
    install_widget_log(app)  # tests only: DESKHAND_WIDGET_LOG
    collector = GuiThreadCollector(app)  # no cyclic GC in the asyncio thread
    collector.start()
    app.setApplicationName("Deskhand technician")
    quitter = SignalQuitter(app)

    loop = LoopThread("deskhand-technician-loop")
    loop.start()
    bridge, window = build(options, loop)

    def shutdown() -> None:
        bridge.shutdown(_CLOSE_TIMEOUT)
        loop.stop()

    app.aboutToQuit.connect(shutdown)
    window.resize(1280, 800)
    window.show()
    if options.password is not None and options.account:
        window.sign_in(options.account, options.password)
    try:
        return app.exec()
    finally:
        quitter.close()
