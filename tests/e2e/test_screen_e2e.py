"""End to end: the relay process, an Xvfb with content, both cores, and the Qt viewer.

What the technician's widget shows (1:1, grabbed from the widget) must match
the user's screen pixel for pixel once motion has stopped, and the moving
area must have been shown while it moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from bench.relay_process import RelayProcess
from client.core.screen.sharer import ScreenSharer, SharerConfig, follow_channel
from client.core.session import UserClient
from common.net.pairing import ConsentRequest
from technician.core.screen.receiver import ScreenReceiver
from technician.core.session import TechnicianClient
from technician.qt.viewer import ScreenPanel
from tests.pki import make_org
from tests.screen_fakes import same_bgr
from tests.screen_x11 import ContentApp, grab_screen
from tests.xvfb import Xvfb


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.x11,
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
    pytest.mark.usefixtures("gui_thread_gc"),
]

WAIT = 30.0


@pytest.fixture(scope="module")
def relay() -> Iterator[RelayProcess]:
    # The technician here claims a code without an account.
    with RelayProcess("--code-claims", "anyone") as process:
        yield process


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                QApplication.processEvents()
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {WAIT} s waiting for {what}") from None


def widget_picture(panel: ScreenPanel, width: int, height: int) -> np.ndarray | None:
    view = panel.view
    image = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    pixels = data.reshape(image.height(), image.bytesPerLine() // 4, 4)
    o = view.origin()
    x, y = int(o.x()), int(o.y())
    if x < 0 or y < 0 or x + width > image.width() or y + height > image.height():
        return None
    return pixels[y : y + height, x : x + width].copy()


async def test_the_viewer_shows_the_users_screen(relay: RelayProcess, qtbot: QtBot) -> None:
    org = make_org()
    with (
        Xvfb(800, 600) as xvfb,
        ContentApp(xvfb, "--scene", "video", "--video-size", "320x240") as app,
    ):
        panel = ScreenPanel()
        qtbot.addWidget(panel)
        panel.fit_button.setChecked(False)  # 1:1
        panel.resize(1000, 800)
        panel.show()
        qtbot.waitExposed(panel)
        user = UserClient(relay.url, org.trust, allow)
        tech = TechnicianClient(relay.url, org.technician())
        async with asyncio.timeout(WAIT):
            code = await user.request_help()
            user_ch, tech_ch = await asyncio.gather(
                user.wait_for_technician(), tech.connect(code.display)
            )
        receiver = ScreenReceiver()
        panel.attach(receiver)
        receiver.attach(tech_ch)
        sharer = ScreenSharer(user_ch, SharerConfig(display=xvfb.display))
        follow_channel(user_ch, sharer)
        await sharer.start()
        try:
            await until(lambda: sharer.stats().encodings.get("h264", 0) >= 5, "video as H.264")
            await until(
                lambda: "fps" in panel.stats_label.text() and receiver.stats().fps > 5,
                "live status",
            )
            app.command("freeze")

            def matches() -> bool:
                shown = widget_picture(panel, 800, 600)
                if shown is None:
                    return False
                screen = grab_screen(xvfb.display)
                # The remote pointer is drawn over the picture: leave it out.
                c, o = panel.view.cursor_rect(), panel.view.origin()
                x, y = c.x() - int(o.x()), c.y() - int(o.y())
                for img in (shown, screen):
                    img[max(0, y) : max(0, y + c.height()), max(0, x) : max(0, x + c.width())] = 0
                return not c.isEmpty() and same_bgr(shown, screen)

            await until(matches, "the widget to show the user's screen exactly")
            assert panel.view.paint_count > 10
            assert "800x600" in panel.stats_label.text()
        finally:
            await sharer.stop()
            receiver.close()
            async with asyncio.timeout(WAIT):
                await user.cancel()
                await tech_ch.wait_closed()
