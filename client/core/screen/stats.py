"""What the sharer reports: per-frame records and snapshots (plain data, no I/O)."""

from __future__ import annotations

import collections
import dataclasses

from common.protocol.messages import ScreenEncoding


__all__ = ["ENCODING_NAMES", "FrameRecord", "SharerStats", "mark_acked"]


@dataclasses.dataclass(frozen=True)
class FrameRecord:
    """One frame sent, for statistics. Times in seconds (clock of the sharer).

    size is the encoded ScreenFrame message (before encryption and framing).
    """

    seq: int
    captured_at: float
    sent_at: float
    size: int
    keyframe: bool
    grab: float
    diff: float
    encode: float
    send: float
    encodings: tuple[str, ...]
    acked_at: float | None = None


@dataclasses.dataclass(frozen=True)
class SharerStats:
    """A snapshot of the sharer's state, safe to pass to other threads."""

    running: bool
    damage: str
    shm: bool
    frames: int
    keyframes: int
    bytes_sent: int
    lost: int
    in_flight: int
    rtt_ms: float | None
    latency_ms: float | None
    bandwidth_mbps: float | None
    quality_level: int
    motion_region: tuple[int, int, int, int] | None
    view: tuple[int, int, int, int]
    selected: int
    encodings: dict[str, int]
    error: str | None


ENCODING_NAMES = {
    ScreenEncoding.RAW_BGRA: "raw",
    ScreenEncoding.ZSTD: "zstd",
    ScreenEncoding.JPEG: "jpeg",
    ScreenEncoding.H264: "h264",
    ScreenEncoding.H264_KEY: "h264",
    ScreenEncoding.FILL: "fill",
    ScreenEncoding.PALETTE: "palette",
}


def mark_acked(log: collections.deque[FrameRecord], seq: int, now: float) -> None:
    """Note in the log when frame seq was acknowledged."""
    # The log is small and acks come in order: search from the right.
    for i in range(len(log) - 1, -1, -1):
        record = log[i]
        if record.seq == seq:
            log[i] = dataclasses.replace(record, acked_at=now)
            return
        if record.seq < seq:
            return
