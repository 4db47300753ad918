"""Screen messages (ids 128-143): round trips and structural checks."""

from __future__ import annotations

import pytest

from common.errors import ProtocolError
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.protocol.codec import decode, encode
from common.screen.frame import EncodedRect, encoded_size, frame_rects, pack_rects
from common.screen.geometry import Rect


E = m.ScreenEncoding

EXAMPLES: list[m.AppMessage] = [
    m.ScreenFrame(1, True, 1920, 1080, 4567, (0, 0, 64, 64, E.ZSTD, 3), b"abc"),
    m.ScreenFrame(9, False, 3840, 2160, 0, (), b""),
    m.FrameAck(7, 1500),
    m.FrameAck(7),
    m.KeyframeRequest("viewer joined"),
    m.MonitorList((0, 0, 1920, 1080, 1920, 0, 1280, 1024), 2),
    m.SelectMonitor(0),
    m.CursorShape(3, 16, 16, 7, 7, b"zstd"),
    m.CursorPosition(-5, 1079, 3, False),
    m.ScreenStopped("The user paused sharing."),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda msg: type(msg).__name__)
def test_round_trip(msg: m.AppMessage) -> None:
    assert decode(encode(msg)) == msg


def test_every_screen_type_has_an_example_and_ids_stay_in_range() -> None:
    screen_types = {
        cls for cls in vars(m).values() if isinstance(cls, type) and issubclass(cls, m.AppMessage)
    }
    screen_types = {c for c in screen_types if 128 <= getattr(c, "TYPE_ID", 0) <= 143}
    assert screen_types == {type(x) for x in EXAMPLES}
    assert m.CursorPosition.CHANNEL is Channel.CONTROL  # never waits behind a frame
    assert {c.CHANNEL for c in screen_types} == {Channel.SCREEN, Channel.CONTROL}


def bad(msg: m.AppMessage, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        encode(msg)


def test_frame_checks() -> None:
    ok = (0, 0, 10, 10, E.FILL, 4)
    bad(m.ScreenFrame(0, True, 10, 10, 0, ok, bytes(4)), "sequence")
    bad(m.ScreenFrame(1, True, 0, 10, 0, ok, bytes(4)), "screen size")
    bad(m.ScreenFrame(1, True, 16384, 16384, 0, ok, bytes(4)), "larger than")
    bad(m.ScreenFrame(1, True, 10, 10, -1, ok, bytes(4)), "timing")
    bad(m.ScreenFrame(1, True, 10, 10, 0, ok[:5], bytes(4)), "whole rectangles")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (5, 5, 6, 1, E.FILL, 4), bytes(4)), "outside")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (0, 0, 0, 1, E.FILL, 4), bytes(4)), "out of range")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (0, 0, 2, 2, E.RAW_BGRA, 4), bytes(4)), "raw")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (0, 0, 2, 2, E.FILL, 3), bytes(3)), "fill")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (0, 0, 3, 2, E.H264, 1), bytes(1)), "even")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (0, 0, 2, 2, 99, 1), bytes(1)), "unknown")
    bad(m.ScreenFrame(1, True, 10, 10, 0, ok, bytes(5)), "add up")
    bad(m.ScreenFrame(1, True, 10, 10, 0, (0, 0, 2, 2, E.ZSTD, -1), b""), "negative")


def test_other_checks() -> None:
    bad(m.FrameAck(-1), "out of range")
    bad(m.MonitorList((), 0), "whole monitors")
    bad(m.MonitorList((0, 0, 10, 10), 2), "selected")
    bad(m.MonitorList((0, 0, 0, 10), 0), "screen size")
    bad(m.SelectMonitor(17), "out of range")
    bad(m.CursorShape(1, 300, 16, 0, 0, b""), "cursor size")
    bad(m.CursorShape(1, 16, 16, 16, 0, b""), "hot spot")
    bad(m.CursorPosition(1 << 21, 0, 0), "out of range")


def test_pack_and_split_rects() -> None:
    rects = [
        EncodedRect(Rect(0, 0, 4, 4), E.ZSTD, b"abc"),
        EncodedRect(Rect(4, 0, 4, 4), E.FILL, bytes(4)),
    ]
    fields, data = pack_rects(rects)
    frame = m.ScreenFrame(1, True, 8, 4, 0, fields, data)
    frame.check()
    back = list(frame_rects(frame))
    assert [(r.rect, r.encoding, bytes(r.data)) for r in back] == [
        (r.rect, r.encoding, bytes(r.data)) for r in rects
    ]


@pytest.mark.parametrize(
    "frame",
    [
        m.ScreenFrame(1, True, 10, 10, 0, (), b""),
        m.ScreenFrame(300, False, 1920, 1080, 12345, (0, 0, 64, 64, 1, 200), bytes(200)),
        m.ScreenFrame(1 << 40, True, 16, 16, 1, (8, 8, 8, 8, 6, 130) * 3, bytes(390)),
    ],
)
def test_encoded_size_is_exact(frame: m.ScreenFrame) -> None:
    assert encoded_size(frame) == len(encode(frame))
