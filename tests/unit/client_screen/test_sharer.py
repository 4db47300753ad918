"""ScreenSharer's asyncio adapter against a recording fake channel (no network, no X)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from client.core.screen.sharer import ScreenSharer, SharerConfig, follow_channel
from common.errors import InvalidState
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.screen.geometry import Rect
from common.session import MessageReceived, SessionEnded, SessionEvent
from technician.core.screen.canvas import Canvas
from technician.core.screen.decoder import FrameDecoder
from tests.screen_fakes import FakeCapture, same_bgr, text_like


WAIT = 10.0


class FakeSession:
    def __init__(self) -> None:
        self.is_open = True

    def queued_bytes(self, channel: Channel) -> int:
        return 0


class FakeChannel:
    """Records what the sharer sends; the test plays the viewer."""

    def __init__(self) -> None:
        self.session = FakeSession()
        self.sent: list[m.AppMessage] = []
        self.listeners: list[Callable[[SessionEvent], None]] = []

    def add_listener(self, listener: Callable[[SessionEvent], None]) -> None:
        self.listeners.append(listener)

    def send_nowait(self, msg: m.AppMessage) -> None:
        if not self.session.is_open:
            raise InvalidState("the session is closed")
        self.sent.append(msg)

    async def send(self, msg: m.AppMessage) -> None:
        self.send_nowait(msg)

    def deliver(self, msg: m.AppMessage) -> None:
        for listener in self.listeners:
            listener(MessageReceived(msg.CHANNEL, msg))

    def end(self) -> None:
        self.session.is_open = False
        for listener in self.listeners:
            listener(SessionEnded("gone", clean=True, by_peer=True))

    def frames(self) -> list[m.ScreenFrame]:
        return [x for x in self.sent if isinstance(x, m.ScreenFrame)]


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def polling(**overrides: object) -> SharerConfig:
    base: dict[str, object] = dict(
        use_damage=False, cursor=False, poll_active=0.002, poll_idle=0.002, ack_timeout=30.0
    )
    return SharerConfig(**{**base, **overrides})  # type: ignore[arg-type]


def make(
    capture: FakeCapture, config: SharerConfig | None = None
) -> tuple[ScreenSharer, FakeChannel]:
    channel = FakeChannel()
    sharer = ScreenSharer(
        channel,  # type: ignore[arg-type]
        config or polling(),
        capture_factory=lambda: capture,
        events_factory=lambda *_: None,
    )
    follow_channel(channel, sharer)  # type: ignore[arg-type]
    return sharer, channel


async def test_start_announces_monitors_then_sends_a_keyframe() -> None:
    capture = FakeCapture(320, 240)
    capture.screen[...] = text_like(240, 320)
    sharer, channel = make(capture)
    await sharer.start()
    try:
        await until(lambda: channel.frames(), "the first frame")
        assert channel.sent[0] == m.MonitorList((0, 0, 320, 240), 0)
        first = channel.frames()[0]
        assert first.keyframe and (first.width, first.height) == (320, 240)
        canvas = Canvas(320, 240)
        canvas.apply(FrameDecoder().decode(first))
        assert same_bgr(canvas.pixels, capture.screen)
        with pytest.raises(InvalidState):
            await sharer.start()
    finally:
        await sharer.stop()


async def test_at_most_a_window_in_flight_and_the_newest_state_goes_next() -> None:
    capture = FakeCapture(320, 240)
    sharer, channel = make(capture)
    await sharer.start()
    try:
        counter = 0

        def change() -> None:
            nonlocal counter
            counter += 1
            capture.screen[:8, :8, 0] = counter % 250

        def window_full() -> bool:
            change()
            return len(channel.frames()) >= 2

        await until(window_full, "the window to fill")
        for _ in range(50):  # the screen keeps changing, but no ack comes
            change()
            await asyncio.sleep(0.002)
        assert len(channel.frames()) == 2  # the window before any ack: two frames
        # Once acked, the newest state goes out, not the 50 in between.
        capture.screen[:8, :8, 0] = 251
        decoder, canvas = FrameDecoder(), Canvas(320, 240)
        applied = 0

        def newest_shown() -> bool:
            nonlocal applied
            frames = channel.frames()
            for frame in frames[applied:]:
                canvas.apply(decoder.decode(frame))
            applied = len(frames)
            return bool(canvas.pixels[0, 0, 0] == 251)

        channel.deliver(m.FrameAck(channel.frames()[-1].seq))
        await until(newest_shown, "the newest state")
        assert len(channel.frames()) <= 4  # one or two frames after the ack, no backlog
        assert sharer.stats().lost == 0
    finally:
        await sharer.stop()


async def test_keyframe_request_and_monitor_selection() -> None:
    capture = FakeCapture(640, 240, monitors=[Rect(0, 0, 320, 240), Rect(320, 0, 320, 240)])
    capture.screen[...] = text_like(240, 640)
    sharer, channel = make(capture)
    await sharer.start()
    try:
        await until(lambda: channel.frames(), "the first frame")
        assert channel.frames()[0].width == 640  # all monitors to start with
        channel.deliver(m.FrameAck(channel.frames()[-1].seq))
        channel.deliver(m.KeyframeRequest("lost sync"))
        await until(lambda: len(channel.frames()) >= 2, "the requested keyframe")
        assert channel.frames()[1].keyframe
        channel.deliver(m.SelectMonitor(2))
        await until(
            lambda: any(f.keyframe and f.width == 320 for f in channel.frames()),
            "a keyframe of monitor 2",
        )
        lists = [x for x in channel.sent if isinstance(x, m.MonitorList)]
        assert lists[-1].selected == 2 and sharer.stats().selected == 2
        key = next(f for f in channel.frames() if f.width == 320)
        canvas = Canvas(320, 240)
        canvas.apply(FrameDecoder().decode(key))
        assert same_bgr(canvas.pixels, capture.screen[:, 320:])
        channel.deliver(m.SelectMonitor(7))  # no such monitor: ignored
        assert sharer.stats().selected == 2
    finally:
        await sharer.stop()


async def test_stop_tells_the_viewer_and_releases_everything() -> None:
    capture = FakeCapture(64, 64)
    sharer, channel = make(capture)
    await sharer.start()
    await until(lambda: channel.frames(), "the first frame")
    await sharer.stop("paused by the user")
    assert channel.sent[-1] == m.ScreenStopped("paused by the user")
    assert capture.closed and not sharer.running
    count = len(channel.sent)
    await sharer.stop()  # again: nothing happens
    assert len(channel.sent) == count


async def test_session_end_stops_sending_and_stop_still_releases() -> None:
    capture = FakeCapture(64, 64)
    sharer, channel = make(capture)
    await sharer.start()
    await until(lambda: channel.frames(), "the first frame")
    channel.end()
    await until(lambda: not sharer.running, "the sharer to notice")
    await sharer.stop()
    assert capture.closed
    assert not any(isinstance(x, m.ScreenStopped) for x in channel.sent)


async def test_lost_acks_are_given_up_after_the_timeout() -> None:
    capture = FakeCapture(64, 64)
    sharer, channel = make(capture, polling(ack_timeout=0.05))
    await sharer.start()
    try:
        counter = 0

        def changing() -> bool:
            nonlocal counter
            counter += 1
            capture.screen[0, 0, 0] = counter % 250
            return sharer.stats().lost >= 3 and len(channel.frames()) > 6

        await until(changing, "frames to flow on although no ack ever comes")
    finally:
        await sharer.stop()
