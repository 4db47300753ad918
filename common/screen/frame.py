"""How a frame's rectangles sit in a ScreenFrame message (pure).

A :class:`~common.protocol.messages.ScreenFrame` keeps its rectangles as a
flat tuple of integers plus one byte string; these helpers build and split
them. Structural checks live in ``ScreenFrame.check()``; payloads are checked
by the technician's decoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from common.protocol.messages import RECT_FIELDS, ScreenEncoding, ScreenFrame
from common.screen.geometry import Rect


__all__ = ["EncodedRect", "encoded_size", "frame_rects", "pack_rects"]


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedRect:
    """One rectangle of a frame and its encoded payload."""

    rect: Rect
    encoding: ScreenEncoding
    data: bytes | memoryview

    @property
    def size(self) -> int:
        return len(self.data)


def pack_rects(rects: Sequence[EncodedRect]) -> tuple[tuple[int, ...], bytes]:
    """The (rects, data) fields of a ScreenFrame for these rectangles."""
    fields: list[int] = []
    for r in rects:
        fields += (r.rect.x, r.rect.y, r.rect.w, r.rect.h, int(r.encoding), len(r.data))
    return tuple(fields), b"".join(r.data for r in rects)


def frame_rects(frame: ScreenFrame) -> Iterator[EncodedRect]:
    """The rectangles of a (checked) frame, payloads as views into frame.data."""
    data = memoryview(frame.data)
    offset = 0
    fields = frame.rects
    for i in range(0, len(fields), RECT_FIELDS):
        x, y, w, h, encoding, length = fields[i : i + RECT_FIELDS]
        yield EncodedRect(
            Rect(x, y, w, h), ScreenEncoding(encoding), data[offset : offset + length]
        )
        offset += length


def _varint_size(value: int) -> int:
    zigzag = (value << 1) ^ (value >> 63)
    return max(1, -(-zigzag.bit_length() // 7))


def encoded_size(frame: ScreenFrame) -> int:
    """len(codec.encode(frame)), computed without encoding (for statistics)."""
    fields = (frame.seq, frame.width, frame.height, frame.latency_us)
    size = 1 + 2 + 1  # version, type id 128 (two varint bytes), keyframe flag
    size += sum(_varint_size(v) for v in fields)
    size += max(1, -(-len(frame.rects).bit_length() // 7))
    size += sum(_varint_size(v) for v in frame.rects)
    size += max(1, -(-len(frame.data).bit_length() // 7)) + len(frame.data)
    return size
