"""Flow control and adaptation for the frame stream (sans-I/O: time is passed in).

::

    produce ──> sent(seq) ──> in flight ──> acked(seq) (cumulative) ──> slot free
                                  │
                                  └── no ack within the timeout ──> expire(): slot free

:class:`FlowControl` keeps at most ``window`` frames in flight. Frames are
never queued behind a full window: the sharer simply does not capture until a
slot frees, and then captures the newest state, so stale frames are dropped
by construction and latency stays bounded. Acknowledgements are cumulative,
so one lost ack is repaired by the next; a burst of lost acks is repaired by
the timeout.

:class:`Adapter` turns round-trip times and delivery rates into the window,
a frame-rate cap and the lossy codecs' quality.
"""

from __future__ import annotations

import collections
import dataclasses
import math


__all__ = ["AckSample", "Adapter", "FlowControl", "Quality"]


@dataclasses.dataclass(frozen=True)
class AckSample:
    """What one acknowledged frame tells about the link.

    Attributes:
        seq: the frame.
        rtt: seconds from sending it to its acknowledgement.
        size: its encoded size in bytes.
        delivery_rate: bytes per second the link moved while carrying it, or
            0.0 when the sample says nothing (a frame acked with others).
    """

    seq: int
    rtt: float
    size: int
    delivery_rate: float


@dataclasses.dataclass
class _InFlight:
    seq: int
    sent_at: float
    size: int


class FlowControl:
    """Which frames are in flight, and whether another may go.

    Attributes:
        window: frames allowed in flight (1 or more).
        srtt: smoothed round-trip time in seconds (None before the first ack).
        lost: frames given up on by timeout so far.
    """

    def __init__(self, window: int = 2, *, min_timeout: float = 1.0) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.min_timeout = min_timeout
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.lost = 0
        self._flight: collections.OrderedDict[int, _InFlight] = collections.OrderedDict()
        self._last_ack_at: float | None = None
        self._bandwidth_hint = 1e6  # bytes/s assumed before measuring (a slow link)

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    @property
    def bytes_in_flight(self) -> int:
        return sum(f.size for f in self._flight.values())

    def set_bandwidth_hint(self, bytes_per_second: float) -> None:
        """Let timeouts allow for the time a large frame takes on this link."""
        if bytes_per_second > 0:
            self._bandwidth_hint = bytes_per_second

    def can_send(self, now: float) -> bool:
        """Whether a frame may go now (expires timed-out frames first)."""
        self.expire(now)
        return len(self._flight) < self.window

    def sent(self, seq: int, now: float, size: int) -> None:
        """Record a frame handed to the channel."""
        if self._flight and seq <= next(reversed(self._flight)):
            raise ValueError("frames must be sent in increasing order")
        self._flight[seq] = _InFlight(seq, now, size)

    def timeout_for(self, size: int) -> float:
        """How long to wait for a frame's acknowledgement before giving up on it."""
        base = self.min_timeout
        if self.srtt is not None:
            base = max(base, self.srtt + 4 * self.rttvar)
        return base + 2.0 * size / self._bandwidth_hint

    def acked(self, seq: int, now: float) -> list[AckSample]:
        """Every frame up to seq arrived. Returns one sample per frame newly acked."""
        samples: list[AckSample] = []
        while self._flight:
            first = next(iter(self._flight.values()))
            if first.seq > seq:
                break
            del self._flight[first.seq]
            rtt = max(0.0, now - first.sent_at)
            self._update_rtt(rtt)
            # Time the link spent on this frame: from when it was sent, or from
            # the previous ack if it was queued behind another frame.
            start = first.sent_at
            if self._last_ack_at is not None:
                start = max(start, self._last_ack_at)
            busy = now - start
            rate = first.size / busy if busy > 0 and first.size > 0 else 0.0
            samples.append(AckSample(first.seq, rtt, first.size, rate))
        if samples:
            self._last_ack_at = now
        return samples

    def _update_rtt(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def expire(self, now: float) -> int:
        """Give up on frames whose ack is overdue; returns how many."""
        count = 0
        while self._flight:
            first = next(iter(self._flight.values()))
            if now - first.sent_at < self.timeout_for(first.size):
                break
            del self._flight[first.seq]
            count += 1
        self.lost += count
        return count

    def next_deadline(self) -> float | None:
        """When the oldest frame in flight times out (None when nothing is in flight)."""
        if not self._flight:
            return None
        first = next(iter(self._flight.values()))
        return first.sent_at + self.timeout_for(first.size)

    def reset(self) -> None:
        """Forget the frames in flight (the viewer restarts from a keyframe)."""
        self._flight.clear()
        self._last_ack_at = None


@dataclasses.dataclass(frozen=True)
class Quality:
    """What the adapter currently asks of the encoder and the pacer.

    Attributes:
        level: 0 (best) to len(JPEG_QUALITY) - 1 (most compressed).
        jpeg_quality: simplejpeg quality for lossy tiles.
        h264_crf: x264 constant rate factor for motion regions.
        min_interval: seconds between frames (the frame-rate cap).
        window: frames allowed in flight.
    """

    level: int
    jpeg_quality: int
    h264_crf: int
    min_interval: float
    window: int


class Adapter:
    """Adapts quality, frame rate and window to the measured link.

    Feed it every :class:`AckSample` with :meth:`on_ack` and every frame sent
    with :meth:`on_frame`; read :meth:`quality`. Quality steps down when the
    frames the content needs at the target rate would fill more than
    ``high_water`` of the measured bandwidth, and back up, slowly, when they
    would fill less than ``low_water``.
    """

    JPEG_QUALITY = (80, 70, 55, 40, 30)
    SMALL_FRAME = 64 * 1024
    H264_CRF = (23, 26, 30, 34, 38)

    def __init__(
        self,
        *,
        max_fps: float = 60.0,
        start_level: int = 1,
        high_water: float = 0.8,
        low_water: float = 0.3,
        step_down_after: float = 0.5,
        step_up_after: float = 2.0,
        max_window: int = 3,
    ) -> None:
        self.max_fps = max_fps
        self.level = start_level
        self.high_water = high_water
        self.low_water = low_water
        self.step_down_after = step_down_after
        self.step_up_after = step_up_after
        self.max_window = max_window
        self.bandwidth: float | None = None  # bytes/s, windowed max of delivery rates
        self.rtt: float | None = None
        self._rates: collections.deque[tuple[float, float]] = collections.deque()
        self._frame_bytes = 0.0  # EWMA of bytes per frame
        self._last_change = -math.inf

    def on_ack(self, sample: AckSample, now: float) -> None:
        self.rtt = sample.rtt if self.rtt is None else 0.875 * self.rtt + 0.125 * sample.rtt
        # Only frames large enough to take measurable link time say much about
        # bandwidth; tiny ones mostly measure latency.
        if sample.delivery_rate > 0 and sample.size >= 16 * 1024:
            self._rates.append((now, sample.delivery_rate))
        while self._rates and now - self._rates[0][0] > 5.0:
            self._rates.popleft()
        if self._rates:
            self.bandwidth = max(rate for _, rate in self._rates)

    def on_frame(self, size: int, now: float) -> None:
        """A frame of size bytes was sent; adapt if the link cannot keep up."""
        self._frame_bytes = size if self._frame_bytes == 0 else 0.8 * self._frame_bytes + 0.2 * size
        if self.bandwidth is None:
            return
        demand = self._frame_bytes * self.max_fps
        since = now - self._last_change
        if demand > self.high_water * self.bandwidth and since >= self.step_down_after:
            if self.level < len(self.JPEG_QUALITY) - 1:
                self.level += 1
                self._last_change = now
        elif demand < self.low_water * self.bandwidth and since >= self.step_up_after:
            if self.level > 0:
                self.level -= 1
                self._last_change = now

    def quality(self) -> Quality:
        interval = 1.0 / self.max_fps if self.max_fps > 0 else 0.0
        if self.bandwidth:
            # Pace to the link: a frame is not captured before the link could
            # have carried the last one, so what goes out is fresh and no queue
            # builds up. (The bandwidth is a windowed maximum: this never holds
            # a fast link back.)
            interval = max(interval, self._frame_bytes / self.bandwidth)
        window = 2
        if (self.rtt is not None and self.rtt > 0.03) or self._frame_bytes < self.SMALL_FRAME:
            # Far away, or small frames that cost little to have one more of
            # in flight: a third frame hides the ack's round trip.
            window = 3
        if self.rtt is not None and self.rtt > 0.15:
            window = 4
        return Quality(
            self.level,
            self.JPEG_QUALITY[self.level],
            self.H264_CRF[self.level],
            min(interval, 1.0),
            min(window, self.max_window),
        )
