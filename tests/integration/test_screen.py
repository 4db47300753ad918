"""Screen sharing through a real relay: real X displays, real pixels, both cores.

The user's side runs ScreenSharer on its SecureChannel and the technician's
side ScreenReceiver on its own; everything in between is the real relay.
Content comes from tests/x11_content.py on an Xvfb started here, and what the
receiver's canvas holds is compared with independent screenshots: exactly
for lossless areas, above LOSSY_MIN_PSNR for lossy ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np
import pytest

from client.core.screen.sharer import ScreenSharer, SharerConfig, follow_channel
from client.core.session import UserClient
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.protocol.messages import FrameAck
from common.screen.geometry import Rect
from relay.server import RelayServer
from technician.core.screen.receiver import (
    CursorChanged,
    ReceiverEvent,
    ScreenReceiver,
    StatusChanged,
)
from technician.core.session import TechnicianClient
from tests.pki import Org, make_org
from tests.screen_fakes import FakeCapture, photo_like, psnr, same_bgr, text_like
from tests.screen_x11 import ContentApp, grab_screen, resize_screen, set_monitors
from tests.xvfb import Xvfb


LOSSY_MIN_PSNR = 30.0  # dB: JPEG q70 / x264 crf 23-26 on the moving colour field
WAIT = 20.0  # seconds: the bound on every wait below


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


@contextlib.asynccontextmanager
async def paired(
    relay: RelayServer, org: Org
) -> AsyncIterator[tuple[SecureChannel, SecureChannel]]:
    user = UserClient(relay.url, org.trust, allow)
    tech = TechnicianClient(relay.url, org.technician())
    async with asyncio.timeout(WAIT):
        code = await user.request_help()
        user_ch, tech_ch = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display)
        )
    try:
        yield user_ch, tech_ch
    finally:
        async with asyncio.timeout(WAIT):
            await user.cancel()
            await tech_ch.wait_closed()


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def canvas_equals(receiver: ScreenReceiver, expected: np.ndarray) -> bool:
    canvas = receiver.canvas
    return canvas is not None and same_bgr(canvas.copy(), expected)


@contextlib.asynccontextmanager
async def sharing(
    user_ch: SecureChannel,
    tech_ch: SecureChannel,
    config: SharerConfig,
    receiver: ScreenReceiver | None = None,
    **kwargs: object,
) -> AsyncIterator[tuple[ScreenSharer, ScreenReceiver]]:
    receiver = receiver or ScreenReceiver()
    receiver.attach(tech_ch)
    sharer = ScreenSharer(user_ch, config, **kwargs)  # type: ignore[arg-type]
    follow_channel(user_ch, sharer)  # no session controller here: the sharer hears the viewer
    await sharer.start()
    try:
        yield sharer, receiver
    finally:
        await sharer.stop()
        receiver.close()


def no_events(*_: object) -> None:
    return None


# --- without X: a fake screen, polling --------------------------------------


async def test_fake_screen_through_the_relay(relay_server: RelayServer, org: Org) -> None:
    capture = FakeCapture(640, 480)
    capture.screen[...] = text_like(480, 640)
    config = SharerConfig(use_damage=False, cursor=False, poll_active=0.01, poll_idle=0.01)
    async with (
        paired(relay_server, org) as (user_ch, tech_ch),
        sharing(
            user_ch, tech_ch, config, capture_factory=lambda: capture, events_factory=no_events
        ) as (sharer, receiver),
    ):
        await until(lambda: canvas_equals(receiver, capture.screen), "the first picture")
        capture.screen[100:300, 100:400] = photo_like(200, 300)
        await until(
            lambda: (
                receiver.canvas is not None
                and psnr(receiver.canvas.copy(), capture.screen) > LOSSY_MIN_PSNR
            ),
            "the change",
        )
        # Still: the lossless refresh makes it exact.
        await until(lambda: canvas_equals(receiver, capture.screen), "the lossless refresh")
        stats = sharer.stats()
        assert stats.damage == "polling" and stats.frames >= 2 and stats.lost == 0
        assert receiver.stats().errors == 0


async def test_burst_of_dropped_acks_recovers(relay_server: RelayServer, org: Org) -> None:
    capture = FakeCapture(320, 240)
    dropping = {"left": 0}
    acks: list[int] = []

    def ack_filter(ack: FrameAck) -> bool:
        if dropping["left"] > 0:
            dropping["left"] -= 1
            return False
        acks.append(ack.seq)
        return True

    receiver = ScreenReceiver(ack_filter=ack_filter)
    config = SharerConfig(
        use_damage=False, cursor=False, poll_active=0.005, poll_idle=0.005, ack_timeout=0.3
    )
    async with (
        paired(relay_server, org) as (user_ch, tech_ch),
        sharing(
            user_ch,
            tech_ch,
            config,
            receiver,
            capture_factory=lambda: capture,
            events_factory=no_events,
        ) as (sharer, _),
    ):
        await until(lambda: receiver.canvas is not None, "the first picture")
        frames_before = sharer.stats().frames
        # Drop the next 10 acknowledgements while the screen keeps changing.
        dropping["left"] = 10
        counter = 0

        def changing() -> bool:
            nonlocal counter
            counter += 1
            capture.screen[:16, :16, 0] = counter % 256
            return dropping["left"] == 0 and sharer.stats().lost > 0

        await until(changing, "the burst to be dropped and noticed")
        assert sharer.stats().lost > 0  # frames whose ack never came were given up on
        # Sending goes on, acks flow again, and the picture converges.
        capture.screen[100:200, 100:200, :3] = 77
        await until(lambda: canvas_equals(receiver, capture.screen), "recovery after the burst")
        assert sharer.stats().frames > frames_before + 2
        assert acks and acks[-1] >= sharer.stats().frames - sharer.stats().in_flight - 1


# --- a real X display ---------------------------------------------------------


@dataclasses.dataclass
class Desktop:
    xvfb: Xvfb
    app: ContentApp

    @property
    def display(self) -> str:
        return self.xvfb.display

    def rect(self, key: str) -> Rect:
        return Rect(*self.app.info[key])


@pytest.fixture(scope="module")
def desktop() -> Iterator[Desktop]:
    with (
        Xvfb(1024, 768) as xvfb,
        ContentApp(xvfb, "--scene", "static", "--video-size", "384x256") as app,
    ):
        yield Desktop(xvfb, app)


pytestmark = pytest.mark.x11


async def run_motion_then_freeze(desktop: Desktop, sharer: ScreenSharer) -> None:
    """Play the video until the sharer has switched it to H.264, then stop all motion."""
    desktop.app.command("scene video")
    try:
        await until(
            lambda: (
                sharer.stats().motion_region is not None
                and sharer.stats().encodings.get("h264", 0) >= 5
            ),
            "the moving area to go out as H.264",
        )
    finally:
        desktop.app.command("freeze")


async def test_text_is_exact_and_motion_is_close(
    relay_server: RelayServer, org: Org, desktop: Desktop
) -> None:
    # No lossless refresh in this test, so the moving area stays lossy.
    config = SharerConfig(display=desktop.display, refresh_after=3600.0)
    async with (
        paired(relay_server, org) as (user_ch, tech_ch),
        sharing(user_ch, tech_ch, config) as (sharer, receiver),
    ):
        await run_motion_then_freeze(desktop, sharer)
        assert sharer.stats().damage == "xdamage" and sharer.stats().shm
        editor, video = desktop.rect("editor"), desktop.rect("video")
        # The editor left of the video, minus one tile along its edges (a tile
        # that is half photo wallpaper may rightly go out as JPEG).
        text_area = Rect(editor.x + 64, editor.y + 64, video.x - editor.x - 128, editor.h - 128)

        def matches() -> bool:
            canvas = receiver.canvas
            if canvas is None:
                return False
            screen = grab_screen(desktop.display)
            got = canvas.copy()
            t, v = text_area, video
            return same_bgr(
                got[t.y : t.bottom, t.x : t.right], screen[t.y : t.bottom, t.x : t.right]
            ) and (
                psnr(got[v.y : v.bottom, v.x : v.right], screen[v.y : v.bottom, v.x : v.right])
                > LOSSY_MIN_PSNR
            )

        await until(matches, "exact text and close motion")
        encodings = sharer.stats().encodings
        assert encodings.get("zstd", 0) > 0
        assert encodings.get("jpeg", 0) + encodings.get("h264", 0) > 0


async def test_picture_becomes_exact_once_motion_stops(
    relay_server: RelayServer, org: Org, desktop: Desktop
) -> None:
    config = SharerConfig(display=desktop.display)
    async with (
        paired(relay_server, org) as (user_ch, tech_ch),
        sharing(user_ch, tech_ch, config) as (sharer, receiver),
    ):
        await run_motion_then_freeze(desktop, sharer)
        await until(
            lambda: canvas_equals(receiver, grab_screen(desktop.display)),
            "the whole picture to match exactly after the lossless refresh",
        )
        assert receiver.stats().errors == 0 and sharer.stats().error is None


async def test_cursor_position_and_shape(
    relay_server: RelayServer, org: Org, desktop: Desktop
) -> None:
    from Xlib import display as xdisplay
    from Xlib.ext import xtest

    seen: list[CursorChanged] = []

    def listener(event: ReceiverEvent) -> None:
        if isinstance(event, CursorChanged):
            seen.append(event)

    receiver = ScreenReceiver()
    receiver.add_listener(listener)
    config = SharerConfig(display=desktop.display)
    d = xdisplay.Display(desktop.display)
    try:
        async with (
            paired(relay_server, org) as (user_ch, tech_ch),
            sharing(user_ch, tech_ch, config, receiver),
        ):
            for x, y in ((100, 200), (321, 123)):
                xtest.fake_input(d, 6, x=x, y=y)  # MotionNotify: absolute move
                d.sync()

                def pointer_at(x: int = x, y: int = y) -> bool:
                    return any((c.x, c.y, c.visible) == (x, y, True) for c in seen)

                await until(pointer_at, f"the pointer at {x},{y}")
            assert seen[-1].image is not None  # the pointer's image arrived too
            assert seen[-1].image.width > 0
    finally:
        d.close()


async def test_monitor_switch(relay_server: RelayServer, org: Org) -> None:
    with Xvfb(1280, 480) as xvfb:
        set_monitors(xvfb.display, [("LEFT", 0, 0, 640, 480), ("RIGHT", 640, 0, 640, 480)])
        with ContentApp(xvfb, "--scene", "static", "--video-size", "256x160"):
            config = SharerConfig(display=xvfb.display)
            async with (
                paired(relay_server, org) as (user_ch, tech_ch),
                sharing(user_ch, tech_ch, config) as (sharer, receiver),
            ):
                await until(lambda: len(receiver.monitors.monitors) == 2, "the monitor list")
                assert receiver.monitors.monitors == ((0, 0, 640, 480), (640, 0, 640, 480))
                assert receiver.monitors.selected == 0
                await until(
                    lambda: canvas_equals(receiver, grab_screen(xvfb.display)),
                    "both monitors side by side",
                )
                receiver.select_monitor(2)
                await until(
                    lambda: canvas_equals(receiver, grab_screen(xvfb.display, (640, 0, 640, 480))),
                    "the right monitor alone",
                )
                assert receiver.monitors.selected == 2 and sharer.stats().selected == 2
                receiver.select_monitor(1)
                await until(
                    lambda: canvas_equals(receiver, grab_screen(xvfb.display, (0, 0, 640, 480))),
                    "the left monitor alone",
                )


async def test_resolution_change(relay_server: RelayServer, org: Org) -> None:
    with Xvfb(1024, 768) as xvfb, ContentApp(xvfb, "--scene", "static", "--video-size", "256x160"):
        config = SharerConfig(display=xvfb.display)
        statuses: list[str] = []
        receiver = ScreenReceiver()
        receiver.add_listener(
            lambda e: statuses.append(e.text) if isinstance(e, StatusChanged) else None
        )
        async with (
            paired(relay_server, org) as (user_ch, tech_ch),
            sharing(user_ch, tech_ch, config, receiver) as (sharer, _),
        ):
            await until(
                lambda: canvas_equals(receiver, grab_screen(xvfb.display)), "the first picture"
            )
            for size in ((800, 600), (1024, 768)):
                resize_screen(xvfb.display, *size)

                def shows(size: tuple[int, int] = size) -> bool:
                    return (
                        receiver.canvas is not None
                        and receiver.canvas.size == size
                        and canvas_equals(receiver, grab_screen(xvfb.display))
                    )

                await until(shows, f"the picture at {size[0]}x{size[1]}")
            assert sharer.stats().error is None
            assert receiver.stats().errors == 0, statuses


async def test_without_damage_and_mit_shm_it_polls_and_still_matches(
    relay_server: RelayServer, org: Org
) -> None:
    from client.core.screen.capture import CaptureError, MssCapture

    extra = ("-extension", "DAMAGE", "-extension", "MIT-SHM")  # switch both off
    with (
        Xvfb(640, 480, extra_args=extra) as xvfb,
        ContentApp(xvfb, "--scene", "static", "--video-size", "128x96"),
    ):
        with pytest.raises(CaptureError, match="MIT-SHM"):
            MssCapture(xvfb.display, require_shm=True)
        config = SharerConfig(display=xvfb.display)
        async with (
            paired(relay_server, org) as (user_ch, tech_ch),
            sharing(user_ch, tech_ch, config) as (sharer, receiver),
        ):
            await until(lambda: canvas_equals(receiver, grab_screen(xvfb.display)), "the picture")
            stats = sharer.stats()
            assert stats.damage == "polling" and not stats.shm
