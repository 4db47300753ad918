"""Composition root of the user client: builds the loop, core, bridge and widgets.

With a system tray on the desktop the app lives in the tray (closing the
window hides it); without one it falls back to its normal window, and
closing that window quits.

Shutdown order (on ``aboutToQuit``): the bridge ends the request or session
within a bounded time, then the loop thread stops, then Qt exits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from client.core.control.service import ControlService
from client.core.features import SharerFactory
from client.core.help_flow import HelpFlow
from client.core.options import ClientOptions
from client.core.presence import PresenceState
from client.core.revocation_store import client_trust
from client.core.screen.sharer import ScreenSharer
from client.core.session import QueueStatus, UserClient
from client.core.session_controller import ControlFactory
from client.core.system_summary import SystemSummary, collect_summary
from client.qt.bridge import ClientBridge
from client.qt.icons import icon_for
from client.qt.shell import ClientShell
from common.net.pairing import ConsentCallback, PairingTimeouts
from common.net.runner import LoopThread
from common.qt.gc_guard import GuiThreadCollector
from common.qt.signals import SignalQuitter
from common.qt.widget_log import install_widget_log


__all__ = ["ClientOptions", "build_flow", "run", "tray_available"]

_CLOSE_TIMEOUT = 3.0
PROG = "deskhand-client"


def tray_available() -> bool:
    """Is there a system tray on this desktop? (Needs a QApplication.)"""
    return QSystemTrayIcon.isSystemTrayAvailable()


def build_flow(
    options: ClientOptions,
    *,
    sharer_factory: SharerFactory | None = ScreenSharer,
    control_factory: ControlFactory | None = ControlService.for_x11,
    summary: Callable[[], SystemSummary] = collect_summary,
    timeouts: PairingTimeouts | None = None,
) -> HelpFlow:
    """The client's core for these options: screen sharing with mss, input with XTest."""
    trust = client_trust(
        options.org_public_key, options.data_dir, max_crl_age=options.revocation_max_age
    )

    def make_client(
        consent: ConsentCallback, on_queue: Callable[[QueueStatus], None]
    ) -> UserClient:
        return UserClient(
            options.relay_url,
            trust,
            consent,
            device=options.device,
            pin=options.pin,
            on_queue=on_queue,
            timeouts=timeouts,
        )

    return HelpFlow(
        make_client,
        sharer_factory=sharer_factory,
        control_factory=control_factory,
        summary=summary,
    )


def run(options: ClientOptions) -> int:
    """Run the client until the user quits; returns the exit status."""
    app = QApplication(sys.argv[:1])
    install_widget_log(app)  # tests only: DESKHAND_WIDGET_LOG
    collector = GuiThreadCollector(app)  # no cyclic GC in the asyncio thread
    collector.start()
    app.setApplicationName("Deskhand")
    app.setDesktopFileName("deskhand-client")
    app.setWindowIcon(icon_for(PresenceState.IDLE))
    # The tray keeps the app alive; without a tray the window's close quits.
    app.setQuitOnLastWindowClosed(False)
    quitter = SignalQuitter(app)

    loop = LoopThread("deskhand-client-loop")
    loop.start()
    flow = build_flow(options)
    bridge = ClientBridge(loop, flow)
    use_tray = not options.no_tray and tray_available()
    shell = ClientShell(bridge, use_tray=use_tray, clipboard=QGuiApplication.clipboard())
    shell.quit_requested.connect(app.quit)
    if use_tray:
        print(f"{PROG}: running in the system tray", file=sys.stderr, flush=True)
    else:
        reason = "--no-tray was given" if options.no_tray else "no system tray on this desktop"
        print(f"{PROG}: {reason}: showing a window instead", file=sys.stderr, flush=True)

    def shutdown() -> None:
        bridge.shutdown(_CLOSE_TIMEOUT)
        loop.stop()

    app.aboutToQuit.connect(shutdown)
    shell.start(show_window=not options.hidden)
    try:
        return app.exec()
    finally:
        quitter.close()
