"""The untrusted frame decoder: exact round trips, every refusal, fuzzing, bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import simplejpeg
import zstandard
from hypothesis import HealthCheck, given, settings, strategies as st

from client.core.screen.encoder import H264Region
from common.errors import ProtocolError
from common.protocol.codec import decode as codec_decode, encode as codec_encode
from common.protocol.messages import CursorShape, ScreenEncoding as E, ScreenFrame
from common.screen.frame import EncodedRect, pack_rects
from common.screen.geometry import Rect
from technician.core.screen.canvas import Canvas
from technician.core.screen.decoder import (
    DecoderLimits,
    FrameDecoder,
    ScreenDecodeError,
    decode_cursor,
)
from tests.screen_fakes import photo_like, psnr, same_bgr, text_like


def frame(
    seq: int, key: bool, w: int, h: int, rects: list[EncodedRect], *, check: bool = True
) -> ScreenFrame:
    fields, data = pack_rects(rects)
    msg = ScreenFrame(seq, key, w, h, 0, fields, data)
    if check:
        msg.check()
    return msg


def zstd(pixels: np.ndarray) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(np.ascontiguousarray(pixels).tobytes())


def apply(decoder: FrameDecoder, canvas: Canvas, msg: ScreenFrame) -> None:
    canvas.apply(decoder.decode(msg))


def test_every_lossless_encoding_round_trips_exactly() -> None:
    text = text_like(64, 128)
    text[..., 3] = 255
    decoder = FrameDecoder()
    canvas = Canvas(256, 128)
    rects = [
        EncodedRect(Rect(0, 0, 128, 64), E.ZSTD, zstd(text)),
        EncodedRect(Rect(128, 0, 128, 64), E.RAW_BGRA, text.tobytes()),
        EncodedRect(Rect(0, 64, 256, 64), E.FILL, bytes((1, 2, 3, 255))),
    ]
    apply(decoder, canvas, frame(1, True, 256, 128, rects))
    assert same_bgr(canvas.pixels[:64, :128], text)
    assert same_bgr(canvas.pixels[:64, 128:], text)
    assert (canvas.pixels[64:, :, :3] == (1, 2, 3)).all()


def test_jpeg_and_h264_round_trip_above_psnr() -> None:
    photo = photo_like(128, 256)
    decoder = FrameDecoder()
    canvas = Canvas(256, 256)
    jpeg = simplejpeg.encode_jpeg(photo, 75, colorspace="BGRA", colorsubsampling="420")
    region = H264Region(Rect(0, 128, 256, 128), crf=23)
    first = region.encode(photo)
    apply(
        decoder,
        canvas,
        frame(1, True, 256, 256, [EncodedRect(Rect(0, 0, 256, 128), E.JPEG, jpeg), first]),
    )
    assert psnr(canvas.pixels[:128], photo) > 30
    assert psnr(canvas.pixels[128:], photo) > 30
    moved = photo_like(128, 256, phase=0.5)
    apply(decoder, canvas, frame(2, False, 256, 256, [region.encode(moved)]))
    assert psnr(canvas.pixels[128:], moved) > 30


def refused(decoder: FrameDecoder, msg: ScreenFrame, match: str) -> None:
    with pytest.raises(ScreenDecodeError, match=match):
        decoder.decode(msg)
    assert decoder.needs_keyframe


def keyed(w: int = 64, h: int = 64) -> FrameDecoder:
    decoder = FrameDecoder()
    decoder.decode(frame(1, True, w, h, [EncodedRect(Rect(0, 0, w, h), E.FILL, bytes(4))]))
    return decoder


def test_a_change_before_any_keyframe_is_refused() -> None:
    msg = frame(1, False, 64, 64, [EncodedRect(Rect(0, 0, 1, 1), E.FILL, bytes(4))])
    refused(FrameDecoder(), msg, "before any whole picture")


def test_a_change_of_another_size_is_refused() -> None:
    msg = frame(2, False, 65, 64, [EncodedRect(Rect(0, 0, 1, 1), E.FILL, bytes(4))])
    refused(keyed(), msg, "without a keyframe")


def test_out_of_order_changes_are_refused() -> None:
    decoder = keyed()
    ok = frame(5, False, 64, 64, [EncodedRect(Rect(0, 0, 1, 1), E.FILL, bytes(4))])
    decoder.decode(ok)
    refused(decoder, ok, "arrived after")


def test_rect_outside_the_screen_is_refused() -> None:
    bad = frame(2, False, 64, 64, [EncodedRect(Rect(60, 0, 8, 8), E.FILL, bytes(4))], check=False)
    refused(keyed(), bad, "outside the screen")


def test_lengths_must_add_up() -> None:
    good = frame(2, False, 64, 64, [EncodedRect(Rect(0, 0, 8, 8), E.FILL, bytes(4))])
    bad = ScreenFrame(2, False, 64, 64, 0, good.rects, good.data + b"x")
    refused(keyed(), bad, "do not add up")


def test_zstd_bomb_declared_size_is_refused_before_inflating() -> None:
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(64 << 20))  # 64 MiB of zeros
    assert len(bomb) < 10_000
    msg = frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.ZSTD, bomb)])
    tracemalloc.start()
    try:
        refused(FrameDecoder(), msg, "inflates to")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_zstd_bomb_without_declared_size_is_cut_at_the_rect() -> None:
    cctx = zstandard.ZstdCompressor(level=19, write_content_size=False)
    bomb = cctx.compress(bytes(64 << 20))
    msg = frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.ZSTD, bomb)])
    tracemalloc.start()
    try:
        refused(FrameDecoder(), msg, "zstd")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_zstd_short_or_trailing_data_is_refused() -> None:
    short = zstd(np.zeros((32, 64, 4), np.uint8))
    refused(
        FrameDecoder(),
        frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.ZSTD, short)]),
        "inflates to",
    )
    exact = zstd(np.zeros((64, 64, 4), np.uint8))
    refused(
        FrameDecoder(),
        frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.ZSTD, exact + b"junk")]),
        "zstd",
    )


def test_jpeg_of_the_wrong_size_or_garbage_is_refused() -> None:
    jpeg = simplejpeg.encode_jpeg(photo_like(32, 32), 70, colorspace="BGRA")
    refused(
        FrameDecoder(),
        frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.JPEG, jpeg)]),
        "JPEG is 32x32",
    )
    refused(
        FrameDecoder(),
        frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.JPEG, b"\xff\xd8garbage")]),
        "JPEG",
    )
    refused(
        FrameDecoder(),
        frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 32, 32), E.JPEG, jpeg[: len(jpeg) // 2])]),
        "JPEG",
    )


def test_h264_refusals() -> None:
    region = H264Region(Rect(0, 0, 64, 64), crf=30)
    key = region.encode(photo_like(64, 64))
    delta = region.encode(photo_like(64, 64, phase=1))
    # A delta with no stream started.
    refused(keyed(), frame(2, False, 64, 64, [delta]), "no stream")
    # A "key" that is not an IDR.
    bad_key = EncodedRect(key.rect, E.H264_KEY, delta.data)
    refused(keyed(), frame(2, False, 64, 64, [bad_key]), "IDR")
    # A stream whose pictures are larger than its rectangle (hostile SPS).
    big = H264Region(Rect(0, 0, 128, 128), crf=30).encode(photo_like(128, 128))
    lying = EncodedRect(Rect(0, 0, 64, 64), E.H264_KEY, big.data)
    refused(keyed(), frame(2, False, 64, 64, [lying]), "H.264")
    # Garbage after a good start.
    decoder = keyed()
    decoder.decode(frame(2, False, 64, 64, [key]))
    junk = EncodedRect(key.rect, E.H264, b"\x00\x00\x01\x41" + bytes(50))
    refused(decoder, frame(3, False, 64, 64, [junk]), "H.264")


def test_views_and_frames_beyond_the_limits_are_refused() -> None:
    limits = DecoderLimits(max_pixels=1000 * 1000)
    big = frame(1, True, 2000, 1000, [EncodedRect(Rect(0, 0, 1, 1), E.FILL, bytes(4))])
    refused(FrameDecoder(limits), big, "larger than this viewer accepts")
    fill = EncodedRect(Rect(0, 0, 100, 100), E.FILL, bytes(4))
    refused(FrameDecoder(limits), frame(1, True, 100, 100, [fill] * 2), "more than the 100x100")
    sliver = EncodedRect(Rect(0, 0, 1, 1), E.FILL, bytes(4))
    refused(FrameDecoder(limits), frame(1, True, 100, 100, [fill, sliver]), "10001 pixels")
    FrameDecoder(limits).decode(frame(1, True, 100, 100, [fill]))


def test_one_frame_decodes_to_at_most_one_view_of_pixels() -> None:
    """Issue 14: rectangles covering the view twice decoded to twice its size."""
    w, h = 2000, 1000
    whole = EncodedRect(Rect(0, 0, w, h), E.ZSTD, zstd(np.zeros((h, w, 4), np.uint8)))
    view_bytes = w * h * 4
    tracemalloc.start()
    try:
        refused(FrameDecoder(), frame(1, True, w, h, [whole, whole]), "more than the 2000x1000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # refused before anything is inflated
    tracemalloc.start()
    try:
        decoded = FrameDecoder().decode(frame(1, True, w, h, [whole]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(decoded.rects) == 1
    assert view_bytes <= peak < view_bytes + (4 << 20)


def test_a_keyframe_recovers_after_an_error() -> None:
    decoder = keyed()
    with pytest.raises(ScreenDecodeError):
        decoder.decode(frame(2, False, 99, 99, [EncodedRect(Rect(0, 0, 1, 1), E.FILL, bytes(4))]))
    # A keyframe with any number starts over (a new sharing session counts from 1).
    decoded = decoder.decode(
        frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.FILL, bytes(4))])
    )
    assert decoded.keyframe and not decoder.needs_keyframe


def test_palette_refusals() -> None:
    rect = Rect(0, 0, 8, 2)

    def palette(payload: bytes, match: str) -> None:
        msg = frame(1, True, 8, 2, [EncodedRect(rect, E.PALETTE, payload)], check=False)
        refused(FrameDecoder(), msg, match)

    two = bytes((0, 0, 0, 255, 255, 255))
    palette(bytes((0, 1)) + two + b"\x0f", "not 2")  # one row of indices missing
    palette(bytes((4, 1)) + two + b"\x0f\xf0", "flags")
    palette(bytes((0, 9)) + two + b"\x0f\xf0", "shorter than its palette")
    palette(bytes((2, 1)) + b"\x0f\xf0", "reused before one was sent")
    three = bytes((0, 0, 0, 9, 9, 9, 255, 255, 255))
    palette(bytes((0, 2)) + three + b"\xff\xff\xff\xff", "beyond the palette")  # index 3
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(8 << 20))
    palette(bytes((1, 1)) + two + bomb, "inflates to")
    ok = frame(1, True, 8, 2, [EncodedRect(rect, E.PALETTE, bytes((0, 1)) + two + b"\x0f\xf0")])
    pixels = FrameDecoder().decode(ok).rects[0][1]
    assert (pixels[0, :4, :3] == 0).all() and (pixels[0, 4:, :3] == 255).all()
    assert (pixels[1, :4, :3] == 255).all() and (pixels[1, 4:, :3] == 0).all()


def test_cursor_shapes() -> None:
    pixels = np.full((16, 8, 4), 200, np.uint8)
    data = zstandard.ZstdCompressor().compress(pixels.tobytes())
    image = decode_cursor(CursorShape(7, 8, 16, 1, 2, data))
    assert image.pixels.shape == (16, 8, 4) and (image.hot_x, image.hot_y) == (1, 2)
    with pytest.raises(ScreenDecodeError):
        decode_cursor(CursorShape(7, 8, 16, 1, 2, data[:-3]))
    with pytest.raises(ScreenDecodeError):
        decode_cursor(CursorShape(7, 8, 16, 9, 2, data))  # hot spot outside
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(64 << 20))
    with pytest.raises(ScreenDecodeError):
        decode_cursor(CursorShape(7, 8, 16, 1, 2, bomb))


# --- fuzzing ------------------------------------------------------------------

FUZZ_LIMITS = DecoderLimits(max_pixels=256 * 256)
MEMORY_BOUND = 16 << 20  # far below what any payload here could inflate to unchecked


def _seeds() -> list[bytes]:
    text = text_like(16, 16)
    return [
        zstd(text),
        simplejpeg.encode_jpeg(photo_like(16, 16), 70, colorspace="BGRA"),
        bytes(4),
        text.tobytes(),
        zstandard.ZstdCompressor(level=19).compress(bytes(8 << 20)),
        b"\x00\x00\x01\x65" + bytes(20),
        bytes((0, 1, 0, 0, 0, 255, 255, 255)) + bytes(16),  # 2 colours, 16x16 indices
        bytes((1, 1, 0, 0, 0, 255, 255, 255)) + zstandard.ZstdCompressor().compress(bytes(32)),
        bytes(H264Region(Rect(0, 0, 16, 16), crf=30).encode(photo_like(16, 16)).data),
    ]


SEEDS = _seeds()


def _payloads() -> st.SearchStrategy[bytes]:
    seeds = SEEDS
    return st.one_of(
        st.sampled_from(seeds),
        st.binary(max_size=2048),
        st.sampled_from(seeds).flatmap(
            lambda s: st.tuples(st.integers(0, max(0, len(s) - 1)), st.binary(max_size=8)).map(
                lambda cut: s[: cut[0]] + cut[1] + s[cut[0] + len(cut[1]) :]
            )
        ),
    )


rect_strategy = st.tuples(
    st.integers(-2, 300),
    st.integers(-2, 300),
    st.integers(-1, 300),
    st.integers(-1, 300),
    st.integers(-1, 7),
    _payloads(),
)


@given(
    seq=st.integers(-1, 5),
    key=st.booleans(),
    w=st.integers(-1, 400),
    h=st.integers(-1, 400),
    rects=st.lists(rect_strategy, max_size=4),
    prime=st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzzed_frames_raise_only_the_documented_error(
    seq: int,
    key: bool,
    w: int,
    h: int,
    rects: list[tuple[int, int, int, int, int, bytes]],
    prime: bool,
) -> None:
    decoder = FrameDecoder(FUZZ_LIMITS)
    if prime:
        decoder.decode(frame(1, True, 64, 64, [EncodedRect(Rect(0, 0, 64, 64), E.FILL, bytes(4))]))
    fields: list[int] = []
    data = b""
    for x, y, rw, rh, enc, payload in rects:
        fields += (x, y, rw, rh, enc, len(payload))
        data += payload
    msg = ScreenFrame(seq, key, w, h, 0, tuple(fields), data)
    tracemalloc.start()
    try:
        try:
            decoded = decoder.decode(msg)
        except ScreenDecodeError as exc:
            assert str(exc)
        else:
            canvas = Canvas(decoded.width, decoded.height)
            canvas.apply(decoded)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND


@given(st.binary(max_size=4096))
@settings(max_examples=300, deadline=None)
def test_fuzzed_wire_bytes_raise_only_protocol_errors(data: bytes) -> None:
    good = codec_encode(frame(1, True, 16, 16, [EncodedRect(Rect(0, 0, 16, 16), E.FILL, bytes(4))]))
    for blob in (data, good[:5] + data, good[: len(data) % len(good)] + data[:8]):
        try:
            msg = codec_decode(blob)
        except ProtocolError:
            continue
        if isinstance(msg, ScreenFrame):
            try:
                FrameDecoder(FUZZ_LIMITS).decode(msg)
            except ScreenDecodeError:
                pass


@st.composite
def valid_shaped_frames(draw: st.DrawFn) -> ScreenFrame:
    """Frames that pass the structural checks, so the payload decoders get fuzzed."""
    w, h = draw(st.integers(2, 128)), draw(st.integers(2, 128))
    rects: list[EncodedRect] = []
    for _ in range(draw(st.integers(1, 3))):
        x, y = draw(st.integers(0, w - 2)), draw(st.integers(0, h - 2))
        rw = draw(st.integers(1, w - x)) // 2 * 2 or 2
        rh = draw(st.integers(1, h - y)) // 2 * 2 or 2
        if x + rw > w or y + rh > h:
            continue
        enc = draw(
            st.sampled_from([E.ZSTD, E.JPEG, E.H264_KEY, E.H264, E.RAW_BGRA, E.FILL, E.PALETTE])
        )
        if enc is E.RAW_BGRA:
            payload = draw(st.binary(min_size=rw * rh * 4, max_size=rw * rh * 4))
        elif enc is E.FILL:
            payload = draw(st.binary(min_size=4, max_size=4))
        else:
            payload = draw(_payloads())
            if enc is E.PALETTE and len(payload) < 3:
                payload += bytes(3)
        rects.append(EncodedRect(Rect(x, y, rw, rh), enc, payload))
    return frame(draw(st.integers(1, 3)), draw(st.booleans()), w, h, rects)


@given(valid_shaped_frames(), st.booleans())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzzed_payloads_raise_only_the_documented_error(msg: ScreenFrame, prime: bool) -> None:
    decoder = FrameDecoder(FUZZ_LIMITS)
    if prime:
        fill = EncodedRect(Rect(0, 0, msg.width, msg.height), E.FILL, bytes(4))
        decoder.decode(frame(1, True, msg.width, msg.height, [fill]))
    tracemalloc.start()
    try:
        try:
            decoded = decoder.decode(msg)
        except ScreenDecodeError as exc:
            assert str(exc)
        else:
            Canvas(decoded.width, decoded.height).apply(decoded)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND
