"""The viewer process: a TechnicianClient, a ScreenReceiver and the Qt ScreenPanel
(offscreen, 1:1).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.screen.common import HEIGHT, WIDTH, emit


# --- the viewer process ----------------------------------------------------------------


def viewer_role(args: argparse.Namespace) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSocketNotifier, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from common.keyfiles import load_technician_credential
    from common.net.runner import LoopThread
    from technician.core.screen.receiver import ScreenReceiver
    from technician.core.session import TechnicianClient
    from technician.qt.viewer import ScreenPanel

    def quiet(mode: Any, context: Any, message: str) -> None:
        if "propagateSizeHints" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(quiet)
    app = QApplication(sys.argv[:1])
    panel = ScreenPanel()
    panel.fit_button.setChecked(False)  # 1:1, a technician with a large monitor
    panel.resize(WIDTH + 40, HEIGHT + 100)
    panel.show()
    paints: list[tuple[float, int]] = []
    panel.view.painted.connect(lambda seq: paints.append((time.monotonic(), seq)))
    receiver = ScreenReceiver()
    panel.attach(receiver)
    loop = LoopThread("bench-viewer")
    loop.start()
    credential = load_technician_credential(Path(args.tech))

    async def connect() -> Any:
        channel = await TechnicianClient(args.relay, credential).connect(args.code)
        receiver.attach(channel)
        return channel

    channel = loop.submit(connect()).result(30)
    emit({"paired": True})

    def command() -> None:
        line = sys.stdin.readline()
        if not line or line.split()[0] == "quit":
            app.quit()
            return
        word = line.split()[0]
        if word == "reset":
            receiver.timings.clear()
            paints.clear()
            emit({"reset": True})
        elif word == "stats":
            st = receiver.stats()
            emit(
                {
                    "timings": [
                        [t.seq, t.arrived_at, t.applied_at, t.size] for t in list(receiver.timings)
                    ],
                    "paints": paints[:],
                    "errors": st.errors,
                    "dropped": st.dropped,
                    "status": panel.stats_label.text(),
                }
            )

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(command)
    app.exec()
    receiver.close()
    with contextlib.suppress(Exception):
        loop.submit(channel.close()).result(5)
    loop.stop()
