"""FramePipeline end to end through the real codec, decoder and canvas (fake capture)."""

from __future__ import annotations

from client.core.screen.pacing import Adapter
from client.core.screen.pipeline import FrameJob, FramePipeline, split_rect, subtract
from common.protocol.messages import ScreenEncoding
from common.screen.geometry import Rect
from tests.screen_fakes import (
    FakeCapture,
    FakeClock,
    Loopback,
    photo_like,
    psnr,
    same_bgr,
    text_like,
)


W, H = 640, 480
VIEW = Rect(0, 0, W, H)
QUALITY = Adapter(start_level=1).quality()
LOSSY_MIN_PSNR = 30.0


def setup() -> tuple[FakeCapture, FakeClock, Loopback]:
    capture = FakeCapture(W, H)
    capture.screen[...] = text_like(H, W)
    clock = FakeClock()
    return capture, clock, Loopback(FramePipeline(capture, clock))


def test_split_and_subtract() -> None:
    blocks = split_rect(Rect(0, 0, 1100, 300))
    assert len(blocks) == 6 and sum(b.area for b in blocks) == 1100 * 300
    parts = subtract(Rect(0, 0, 100, 100), Rect(25, 25, 50, 50))
    assert sum(p.area for p in parts) == 100 * 100 - 50 * 50
    assert subtract(Rect(0, 0, 10, 10), Rect(20, 20, 5, 5)) == [Rect(0, 0, 10, 10)]


def test_keyframe_then_exact_small_changes_from_damage_only() -> None:
    capture, clock, loop = setup()
    key = loop.step(FrameJob(VIEW, None, True, QUALITY))
    assert key is not None and key.keyframe
    assert loop.canvas is not None and same_bgr(loop.canvas.pixels, capture.screen)
    # A typed character, reported by damage: only that tile is grabbed.
    capture.screen[200:212, 300:307, :3] = 0
    capture.grabs.clear()
    clock.advance(0.03)
    typed = loop.step(FrameJob(VIEW, [Rect(300, 200, 7, 12)], False, QUALITY))
    assert typed is not None and not typed.keyframe
    assert capture.grabs == [Rect(256, 192, 64, 64)]
    assert typed.encodings.keys() <= {ScreenEncoding.ZSTD, ScreenEncoding.FILL}
    assert typed.payload_bytes < 1500
    assert same_bgr(loop.canvas.pixels, capture.screen)


def test_nothing_changed_produces_nothing() -> None:
    _, clock, loop = setup()
    loop.step(FrameJob(VIEW, None, True, QUALITY))
    clock.advance(1)
    assert loop.step(FrameJob(VIEW, [Rect(0, 0, 64, 64)], False, QUALITY)) is None
    assert loop.step(FrameJob(VIEW, None, False, QUALITY)) is None  # polling


def test_sustained_motion_goes_h264_then_lossless_refresh_makes_it_exact() -> None:
    capture, clock, loop = setup()
    loop.step(FrameJob(VIEW, None, True, QUALITY))
    video = Rect(64, 64, 384, 256)
    seen = set()
    for i in range(30):
        clock.advance(0.033)
        capture.screen[video.y : video.bottom, video.x : video.right] = photo_like(
            video.h, video.w, phase=i / 4
        )
        produced = loop.step(FrameJob(VIEW, [video], False, QUALITY))
        assert produced is not None
        seen |= set(produced.encodings)
    assert ScreenEncoding.H264 in seen and ScreenEncoding.H264_KEY in seen
    assert loop.pipeline.motion_active
    assert loop.canvas is not None
    assert psnr(loop.canvas.pixels, capture.screen) > LOSSY_MIN_PSNR
    # Motion stops: after refresh_after the region comes back losslessly.
    refresh = None
    for _ in range(20):
        clock.advance(0.05)
        produced = loop.step(FrameJob(VIEW, [], False, QUALITY))
        if produced is not None:
            refresh = produced
    assert refresh is not None and ScreenEncoding.H264 not in refresh.encodings
    assert not loop.pipeline.motion_active
    assert same_bgr(loop.canvas.pixels, capture.screen)
    assert loop.pipeline.next_refresh() is None


def test_view_change_is_a_keyframe_of_the_new_size() -> None:
    capture = FakeCapture(1280, 480, monitors=[Rect(0, 0, 640, 480), Rect(640, 0, 640, 480)])
    capture.screen[:, :640] = text_like(480, 640, seed=1)
    capture.screen[:, 640:] = text_like(480, 640, seed=2)
    clock = FakeClock()
    loop = Loopback(FramePipeline(capture, clock))
    loop.step(FrameJob(Rect(0, 0, 1280, 480), None, True, QUALITY))
    assert loop.canvas is not None and loop.canvas.size == (1280, 480)
    right = Rect(640, 0, 640, 480)
    produced = loop.step(FrameJob(right, None, False, QUALITY))
    assert produced is not None and produced.keyframe
    assert loop.canvas.size == (640, 480)
    assert same_bgr(loop.canvas.pixels, capture.screen[:, 640:])
    # Damage in view coordinates maps to the right place on the desktop.
    capture.screen[10:20, 650:660, :3] = 0
    clock.advance(0.1)
    loop.step(FrameJob(right, [Rect(10, 10, 10, 10)], False, QUALITY))
    assert same_bgr(loop.canvas.pixels, capture.screen[:, 640:])
