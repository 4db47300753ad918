"""ScreenReceiver against a recording fake channel: canvas, acks, refusals, backlog, stats."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import numpy as np
import zstandard

from common.protocol import messages as m
from common.screen.frame import EncodedRect, pack_rects
from common.screen.geometry import Rect
from common.session import MessageReceived, SessionEnded, SessionEvent
from technician.core.screen.receiver import (
    CanvasChanged,
    CursorChanged,
    FrameApplied,
    MonitorsChanged,
    ReceiverEvent,
    ScreenReceiver,
    StatsWindow,
    StatusChanged,
)


WAIT = 10.0
E = m.ScreenEncoding


class FakeSession:
    is_open = True


class FakeChannel:
    def __init__(self) -> None:
        self.session = FakeSession()
        self.sent: list[m.AppMessage] = []
        self.listeners: list[Callable[[SessionEvent], None]] = []

    def add_listener(self, listener: Callable[[SessionEvent], None]) -> None:
        self.listeners.append(listener)

    def send_nowait(self, msg: m.AppMessage) -> None:
        self.sent.append(msg)

    def deliver(self, msg: m.AppMessage) -> None:
        for listener in self.listeners:
            listener(MessageReceived(msg.CHANNEL, msg))

    def acks(self) -> list[int]:
        return [x.seq for x in self.sent if isinstance(x, m.FrameAck)]


def fill(
    seq: int, key: bool, w: int, h: int, rect: Rect, bgr: tuple[int, int, int]
) -> m.ScreenFrame:
    fields, data = pack_rects([EncodedRect(rect, E.FILL, bytes((*bgr, 255)))])
    return m.ScreenFrame(seq, key, w, h, 0, fields, data)


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def attached(**kwargs: object) -> tuple[ScreenReceiver, FakeChannel, list[ReceiverEvent]]:
    receiver = ScreenReceiver(**kwargs)  # type: ignore[arg-type]
    events: list[ReceiverEvent] = []
    receiver.add_listener(events.append)
    channel = FakeChannel()
    receiver.attach(channel)  # type: ignore[arg-type]
    return receiver, channel, events


async def test_frames_reach_the_canvas_and_are_acknowledged() -> None:
    receiver, channel, events = attached()
    try:
        assert isinstance(channel.sent[0], m.KeyframeRequest)  # asks on joining
        channel.deliver(fill(1, True, 64, 32, Rect(0, 0, 64, 32), (1, 2, 3)))
        channel.deliver(fill(2, False, 64, 32, Rect(8, 8, 4, 4), (9, 9, 9)))
        await until(lambda: channel.acks() == [1, 2], "two acks")
        canvas = receiver.canvas
        assert canvas is not None and canvas.size == (64, 32)
        assert (canvas.pixels[0, 0, :3] == (1, 2, 3)).all()
        assert (canvas.pixels[9, 9, :3] == (9, 9, 9)).all()
        assert isinstance(events[0], CanvasChanged)
        applied = [e for e in events if isinstance(e, FrameApplied)]
        assert [e.seq for e in applied] == [1, 2] and applied[1].dirty == (Rect(8, 8, 4, 4),)
        stats = receiver.stats()
        assert stats.frames == 2 and stats.width == 64 and stats.encoding == "fill"
    finally:
        receiver.close()


async def test_a_bad_frame_is_refused_and_a_keyframe_requested() -> None:
    receiver, channel, events = attached()
    try:
        channel.deliver(fill(1, True, 64, 32, Rect(0, 0, 64, 32), (1, 2, 3)))
        bomb = zstandard.ZstdCompressor(level=19).compress(bytes(1 << 24))
        fields, data = pack_rects([EncodedRect(Rect(0, 0, 8, 8), E.ZSTD, bomb)])
        channel.deliver(m.ScreenFrame(2, False, 64, 32, 0, fields, data))
        await until(
            lambda: any(isinstance(e, StatusChanged) and e.error for e in events), "the refusal"
        )
        await until(
            lambda: sum(isinstance(x, m.KeyframeRequest) for x in channel.sent) == 2,
            "a keyframe request",
        )
        # Changes are ignored until the keyframe; then all is well again.
        channel.deliver(fill(3, False, 64, 32, Rect(0, 0, 1, 1), (7, 7, 7)))
        channel.deliver(fill(4, True, 64, 32, Rect(0, 0, 64, 32), (5, 5, 5)))
        await until(lambda: 4 in channel.acks(), "the keyframe applied")
        assert 2 not in channel.acks() and 3 not in channel.acks()
        assert receiver.canvas is not None and receiver.canvas.pixels[0, 0, 0] == 5
        assert receiver.stats().errors == 1
    finally:
        receiver.close()


async def test_a_backlog_beyond_the_limit_is_dropped_whole() -> None:
    receiver, channel, events = attached(max_backlog_frames=4)
    gate = threading.Event()
    receiver.add_listener(lambda e: gate.wait(WAIT) if isinstance(e, CanvasChanged) else None)
    try:
        channel.deliver(fill(1, True, 64, 32, Rect(0, 0, 64, 32), (1, 2, 3)))  # blocks the thread
        for seq in range(2, 12):  # the decode thread is stuck: these pile up
            channel.deliver(fill(seq, False, 64, 32, Rect(0, 0, 1, 1), (seq, 0, 0)))
        assert receiver.stats().dropped > 0
        assert any(isinstance(e, StatusChanged) for e in events)
        assert sum(isinstance(x, m.KeyframeRequest) for x in channel.sent) >= 2
        gate.set()
        channel.deliver(fill(20, True, 64, 32, Rect(0, 0, 64, 32), (4, 4, 4)))
        await until(lambda: 20 in channel.acks(), "recovery from the keyframe")
    finally:
        gate.set()
        receiver.close()


async def test_cursor_monitors_stop_and_session_end() -> None:
    receiver, channel, events = attached()
    try:
        pixels = np.full((4, 4, 4), 200, np.uint8).tobytes()
        channel.deliver(m.CursorShape(5, 4, 4, 1, 1, zstandard.ZstdCompressor().compress(pixels)))
        channel.deliver(m.CursorPosition(10, 20, 5, True))
        cursor = receiver.cursor
        assert (cursor.x, cursor.y, cursor.visible) == (10, 20, True)
        assert cursor.image is not None and cursor.image.serial == 5
        channel.deliver(m.CursorShape(6, 4, 4, 1, 1, b"not zstd"))
        assert any(isinstance(e, StatusChanged) and e.error for e in events)
        channel.deliver(m.MonitorList((0, 0, 1920, 1080, 1920, 0, 1280, 1024), 2))
        assert receiver.monitors == MonitorsChanged(((0, 0, 1920, 1080), (1920, 0, 1280, 1024)), 2)
        receiver.select_monitor(1)
        assert channel.sent[-1] == m.SelectMonitor(1)
        channel.deliver(m.ScreenStopped("paused"))
        assert events[-1] == StatusChanged("The user paused the session.", stopped=True)
        for listener in channel.listeners:
            listener(SessionEnded("bye", clean=True, by_peer=True))
        assert isinstance(events[-1], StatusChanged) and "bye" in events[-1].text
        assert any(isinstance(e, CursorChanged) for e in events)
    finally:
        receiver.close()


def test_stats_window() -> None:
    window = StatsWindow(span=1.0)
    for i in range(30):
        window.add(10.0 + i / 30, 1000, 0.002, ("zstd",) if i % 3 else ("JPEG", "zstd"))
    stats = window.snapshot(11.0)
    assert 29 <= stats.fps <= 31
    assert abs(stats.mbps - 0.24) < 0.02
    assert stats.encoding == "zstd+JPEG" and abs(stats.decode_ms - 2.0) < 1e-6
    assert window.snapshot(20.0).fps == 0 and window.snapshot(20.0).encoding == "idle"
