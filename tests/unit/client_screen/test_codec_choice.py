"""Codec choice, tile history, motion detection and the encoders' round trips."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard

from client.core.screen.encoder import (
    Codec,
    EncoderSettings,
    H264Region,
    TileEncoder,
    choose_codec,
    pack_palette,
    photo_tiles,
)
from client.core.screen.policy import MotionDetector, MotionSettings, TileHistory
from common.protocol.messages import ScreenEncoding
from common.screen.geometry import Rect
from technician.core.screen.decoder import FrameDecoder
from tests.screen_fakes import photo_like, psnr, same_bgr, text_like


JPEG_MIN_PSNR = 30.0  # dB, q70 4:2:0 on the smooth test pattern
H264_MIN_PSNR = 30.0


def decode_one(encoding: ScreenEncoding, data: bytes, rect: Rect) -> np.ndarray:
    decoder = FrameDecoder()
    return decoder._decode_rect(rect, encoding, memoryview(data))


def test_small_rects_and_refreshes_are_lossless() -> None:
    history = TileHistory(640, 480)
    settings = EncoderSettings()
    assert choose_codec(Rect(0, 0, 30, 30), history, settings) is Codec.LOSSLESS
    history.heat[:] = 1.0
    assert choose_codec(Rect(0, 0, 30, 30), history, settings) is Codec.LOSSLESS
    assert choose_codec(Rect(0, 0, 256, 256), history, settings, refresh=True) is Codec.LOSSLESS


def test_hot_or_photo_like_areas_go_to_jpeg() -> None:
    history = TileHistory(640, 480)
    settings = EncoderSettings()
    big = Rect(0, 0, 256, 256)
    assert choose_codec(big, history, settings) is Codec.TRY_LOSSLESS
    history.heat[:4, :4] = 0.9
    assert choose_codec(big, history, settings) is Codec.JPEG
    line = Rect(0, 0, 512, 16)  # a line being typed: hot, but stays lossless
    assert choose_codec(line, history, settings) is Codec.TRY_LOSSLESS
    history.heat[:] = 0
    history.sent(big, lossy=True, poor_lossless=True)
    assert choose_codec(big, history, settings) is Codec.JPEG


def test_text_is_sent_losslessly_and_exactly() -> None:
    rect = Rect(0, 0, 320, 96)
    pixels = text_like(96, 320)
    history = TileHistory(640, 480)
    (out,) = TileEncoder().encode(rect, pixels, history, 70)
    assert out.encoding is ScreenEncoding.ZSTD
    assert out.size < 0.2 * rect.area * 4
    assert same_bgr(decode_one(out.encoding, bytes(out.data), rect), pixels)
    assert not history.lossy.any()


def test_photo_falls_back_to_jpeg_and_is_remembered() -> None:
    rect = Rect(0, 0, 256, 256)
    pixels = photo_like(256, 256)
    history = TileHistory(640, 480)
    encoder = TileEncoder()
    (out,) = encoder.encode(rect, pixels, history, 70)
    assert out.encoding is ScreenEncoding.JPEG
    assert psnr(decode_one(out.encoding, bytes(out.data), rect), pixels) > JPEG_MIN_PSNR
    assert history.lossy[:4, :4].all() and history.photo_like(rect)
    # Next time it goes straight to JPEG, and the refresh is lossless and exact.
    assert choose_codec(rect, history, encoder.settings) is Codec.JPEG
    (refresh,) = encoder.encode(rect, pixels, history, 70, refresh=True)
    assert refresh.encoding is ScreenEncoding.ZSTD
    assert same_bgr(decode_one(refresh.encoding, bytes(refresh.data), rect), pixels)
    assert not history.lossy.any()


def test_uniform_rect_is_a_fill() -> None:
    pixels = np.zeros((64, 128, 4), np.uint8)
    pixels[..., :3] = (10, 20, 30)
    out = TileEncoder().lossless(Rect(0, 0, 128, 64), pixels)
    assert out.encoding is ScreenEncoding.FILL
    assert bytes(out.data) == bytes((10, 20, 30, 255))


def test_lossless_does_not_touch_the_callers_pixels() -> None:
    pixels = text_like(64, 64)
    pixels[..., 3] = 0
    TileEncoder().lossless(Rect(0, 0, 64, 64), pixels)
    assert not pixels[..., 3].any()


def test_partial_lossless_rect_keeps_the_tile_lossy() -> None:
    history = TileHistory(256, 256)
    history.sent(Rect(0, 0, 128, 128), lossy=True)
    history.sent(Rect(10, 10, 5, 5), lossy=False)
    assert history.lossy[0, 0]  # only part of the tile was resent
    history.sent(Rect(0, 0, 64, 64), lossy=False)
    assert not history.lossy[0, 0] and history.lossy[1, 1]


def test_refresh_is_due_after_stillness_and_limited() -> None:
    history = TileHistory(640, 640)
    history.mark_lossy(Rect(0, 0, 640, 640), now=10.0)
    assert history.next_refresh(0.3) == 10.3
    assert history.refresh_due(10.2, 0.3, 1000) == []
    due = history.refresh_due(10.3, 0.3, 25)
    assert sum(r.area for r in due) < 640 * 640  # a band first
    assert due[0].y == 0


def test_h264_round_trip_and_psnr() -> None:
    rect = Rect(64, 32, 320, 192)
    region = H264Region(rect, crf=23)
    decoder = FrameDecoder()
    outs = []
    for i in range(5):
        pixels = photo_like(192, 320, phase=i / 3)
        out = region.encode(pixels)
        outs.append(out.encoding)
        got = decoder._decode_rect(rect, out.encoding, out.data)
        assert psnr(got, pixels) > H264_MIN_PSNR
    assert outs[0] is ScreenEncoding.H264_KEY
    assert set(outs[1:]) == {ScreenEncoding.H264}


def test_motion_detector_engages_on_sustained_large_change_and_stops_when_still() -> None:
    history = TileHistory(1280, 720)
    motion = MotionDetector(1280, 720, MotionSettings())
    video = Rect(128, 64, 640, 360)
    now = 0.0
    region = None
    for _ in range(12):
        now += 0.033
        history.frame(history.mask_of([video]), now)
        region = motion.update(now, video.area, history)
    assert region is not None and region.contains(video)
    assert region.w % 2 == 0 and region.h % 2 == 0
    first_generation = motion.generation
    # Still for longer than still_after: back to tiles.
    for _ in range(12):
        now += 0.033
        history.frame(history.mask_of([]), now)
        region = motion.update(now, 0, history)
    assert region is None and motion.generation > first_generation


def test_typing_never_engages_motion() -> None:
    history = TileHistory(1920, 1080)
    motion = MotionDetector(1920, 1080)
    line = Rect(100, 500, 320, 24)
    now = 0.0
    for _ in range(100):
        now += 0.01
        history.frame(history.mask_of([line]), now)
        assert motion.update(now, line.area, history) is None


def test_mixed_rect_is_split_between_lossless_and_jpeg() -> None:
    pixels = photo_like(256, 512)
    pixels[:, :256] = text_like(256, 256)
    history = TileHistory(512, 256)
    out = TileEncoder().encode(Rect(0, 0, 512, 256), pixels, history, 70)
    by_encoding = {o.encoding: o.rect for o in out}
    assert by_encoding == {
        ScreenEncoding.ZSTD: Rect(0, 0, 256, 256),
        ScreenEncoding.JPEG: Rect(256, 0, 256, 256),
    }
    assert not history.lossy[:, :4].any() and history.lossy[:, 4:].all()


def test_photo_tiles_mask() -> None:
    pixels = text_like(100, 200)
    pixels[:, 128:] = photo_like(100, 72)
    mask = photo_tiles(pixels)
    assert mask.shape == (2, 4)
    assert not mask[:, :2].any() and mask[:, 2:].all()


@pytest.mark.parametrize("colors", [2, 3, 4, 9, 16])
@pytest.mark.parametrize("width", [1, 7, 8, 13, 64])
def test_palette_round_trip_is_exact(colors: int, width: int) -> None:
    rng = np.random.default_rng(colors * 100 + width)
    palette = rng.integers(0, 256, (colors, 4), dtype=np.uint8)
    index = rng.integers(0, colors, (9, width))
    index.flat[:colors] = np.arange(colors)[: index.size]  # every colour used
    pixels = palette[index]
    rect = Rect(0, 0, width, 9)
    packed = pack_palette(pixels, zstandard.ZstdCompressor())
    assert packed is not None
    got = decode_one(ScreenEncoding.PALETTE, packed[0], rect)
    assert same_bgr(got, pixels)


def test_a_typed_glyph_is_a_tiny_palette() -> None:
    glyph = np.full((12, 8, 4), 255, np.uint8)
    glyph[2:10, 1:3, :3] = 20  # a dark stroke on white: two colours
    glyph[2:4, 3:7, :3] = 20
    out = TileEncoder().lossless(Rect(0, 0, 8, 12), glyph)
    assert out.encoding is ScreenEncoding.PALETTE
    assert out.size <= 2 + 2 * 3 + 12  # flags, count, two colours, one byte per row
    assert same_bgr(decode_one(out.encoding, bytes(out.data), Rect(0, 0, 8, 12)), glyph)


def test_many_colours_are_not_a_palette() -> None:
    assert pack_palette(photo_like(32, 32), zstandard.ZstdCompressor()) is None


def test_palette_colours_are_reused_until_a_keyframe() -> None:
    glyph = np.full((12, 8, 4), 255, np.uint8)
    glyph[2:10, 1:3, :3] = 20
    encoder = TileEncoder()
    first = encoder.lossless(Rect(0, 0, 8, 12), glyph)
    second = encoder.lossless(Rect(8, 0, 8, 12), glyph)
    assert first.encoding is second.encoding is ScreenEncoding.PALETTE
    assert first.data[0] & 2 == 0 and second.data[0] & 2  # the same colours again
    assert second.size == first.size - 6
    # The decoder follows the same rule; a keyframe resets both sides.
    decoder = FrameDecoder()
    a = decoder._decode_palette(first.data, 8, 12)
    b = decoder._decode_palette(second.data, 8, 12)
    assert same_bgr(a, glyph) and same_bgr(b, glyph)
    encoder.reset()
    assert encoder.lossless(Rect(0, 0, 8, 12), glyph).data[0] & 2 == 0
