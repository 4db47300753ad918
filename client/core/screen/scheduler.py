"""When the sharer produces a frame, and what kind (sans-I/O: time is passed in).

::

    IDLE ──begin()──> PRODUCING ──frame_ready()──> SENDING ──sending(), sent()──> IDLE
      ▲                   │
      └── nothing_new(), capture_failed() ──┘

:class:`FrameScheduler` holds every decision of the frame loop that is not
I/O: the frame-rate cap and link pacing (through :class:`~.pacing.Adapter`),
frames in flight and their acks (:class:`~.pacing.FlowControl`), when a
keyframe is needed, when to poll the whole view and how often, when to come
back for a lossless refresh, the capture-to-ack latency and when to tell the
viewer about it. :class:`~.sharer.ScreenSharer` feeds it events and the
clock, and does what it says: wait, grab and encode in its worker, send.

The scheduler does not see pixels: the sharer tells it whether damage is
pending and when the pipeline's next lossless refresh falls due.
"""

from __future__ import annotations

import dataclasses
import enum

from client.core.screen.pacing import Adapter, FlowControl, Quality
from common.errors import InvalidState


__all__ = ["FrameHeader", "FramePlan", "FrameScheduler", "Phase", "Wait"]


class Phase(enum.Enum):
    """Where the scheduler is in producing one frame."""

    IDLE = "idle"  # waiting until a frame is due
    PRODUCING = "producing"  # the worker grabs, diffs and encodes
    SENDING = "sending"  # the frame is being handed to the channel


@dataclasses.dataclass(frozen=True)
class Wait:
    """What the frame loop should do now.

    Attributes:
        go: produce a frame now.
        timeout: otherwise, seconds to wait for an event at most (None: until
            an event, nothing is due by itself).
    """

    go: bool
    timeout: float | None


@dataclasses.dataclass(frozen=True)
class FramePlan:
    """The frame to produce.

    Attributes:
        keyframe: the whole view, and the viewer starts over.
        full: grab and diff the whole view (the damage is dropped), else only
            the damaged rectangles.
        quality: the adapter's current settings for the encoder.
    """

    keyframe: bool
    full: bool
    quality: Quality


@dataclasses.dataclass(frozen=True)
class FrameHeader:
    """What the frame to send carries besides its rectangles.

    Attributes:
        seq: its sequence number (1, 2, ...).
        latency_us: the measured capture-to-ack latency for the viewer to
            show, in microseconds (at least 1), or 0 for no news.
    """

    seq: int
    latency_us: int


class FrameScheduler:
    """The frame loop's decisions for one sharing session.

    Args:
        max_fps: frame-rate cap (0: none).
        max_window: frames in flight at most.
        ack_timeout: the shortest wait for an ack before a frame is given up on.
        poll_active / poll_idle: whole-view polling intervals without X DAMAGE,
            while the screen changes (changed within ACTIVE_FOR) and when not.
        safety_poll: with X DAMAGE, a whole-view check this often anyway.

    Attributes:
        flow: frames in flight (read it for statistics).
        adapter: link measurements and quality (read it for statistics).
        latency: smoothed seconds from capture to ack (None before the first).
    """

    ACTIVE_FOR = 2.0  # seconds after a change during which polling stays fast
    QUIET_FOR = 0.05  # after producing nothing, no refresh or poll for this long
    LATENCY_EVERY = 1.0  # seconds between latency reports to the viewer
    LATENCY_WEIGHT = 0.2  # weight of a new latency sample in the average
    CAPTURE_TIMES = 64  # capture times kept for frames awaiting their ack

    def __init__(
        self,
        *,
        max_fps: float = 60.0,
        max_window: int = 3,
        ack_timeout: float = 1.0,
        poll_active: float = 1 / 30,
        poll_idle: float = 1 / 5,
        safety_poll: float = 3.0,
    ) -> None:
        self.flow = FlowControl(2, min_timeout=ack_timeout)
        self.adapter = Adapter(max_fps=max_fps, max_window=max_window)
        self.poll_active = poll_active
        self.poll_idle = poll_idle
        self.safety_poll = safety_poll
        self.latency: float | None = None
        self._phase = Phase.IDLE
        self._need_key = True
        self._screen_changed = False
        self._seq = 0
        self._last_frame_at = -1e9
        self._last_change_at = -1e9
        self._next_poll = 0.0
        self._quiet_until = 0.0
        self._latency_sent_at = -1e9
        self._captured: dict[int, float] = {}
        self._pending: tuple[int, float] | None = None  # (seq, captured_at) being sent
        self._pending_size = 0

    # --- state ---

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def needs_keyframe(self) -> bool:
        return self._need_key

    @property
    def screen_changed(self) -> bool:
        """The screen's layout changed: reopen the capture before the next frame."""
        return self._screen_changed

    def quality(self) -> Quality:
        return self.adapter.quality()

    # --- events ---

    def request_keyframe(self) -> None:
        """Send the whole view next; what is in flight no longer counts."""
        self._need_key = True
        self.flow.reset()

    def note_screen_change(self) -> None:
        """RandR says the screen changed (or a grab failed)."""
        self._screen_changed = True

    def take_screen_change(self) -> bool:
        """Whether the screen changed since the last call (the sharer reopens then)."""
        changed, self._screen_changed = self._screen_changed, False
        return changed

    def on_ack(self, seq: int, now: float) -> list[int]:
        """The viewer acknowledged every frame up to seq. Returns the frames newly acked."""
        acked: list[int] = []
        for sample in self.flow.acked(seq, now):
            self.adapter.on_ack(sample, now)
            captured = self._captured.pop(sample.seq, None)
            if captured is not None:
                latency = now - captured
                self.latency = (
                    latency
                    if self.latency is None
                    else (1 - self.LATENCY_WEIGHT) * self.latency + self.LATENCY_WEIGHT * latency
                )
            acked.append(sample.seq)
        if self.adapter.bandwidth:
            self.flow.set_bandwidth_hint(self.adapter.bandwidth)
        self.flow.window = self.adapter.quality().window
        return acked

    # --- waiting ---

    def due_at(self, *, damage: bool, refresh_at: float | None) -> float:
        """When the next frame should be produced, frame slots aside.

        Args:
            damage: damage is pending.
            refresh_at: when the pipeline's next lossless refresh falls due
                (None: nothing lossy on the viewer).
        """
        earliest = self._last_frame_at + self.adapter.quality().min_interval
        if self._need_key or self._screen_changed or damage:
            return earliest
        wake = self._next_poll if refresh_at is None else min(refresh_at, self._next_poll)
        return max(earliest, self._quiet_until, wake)

    def wait(self, now: float, *, damage: bool, refresh_at: float | None) -> Wait:
        """Produce now, or how long to wait (frames overdue an ack are given up on)."""
        due = self.due_at(damage=damage, refresh_at=refresh_at)
        ready = self.flow.can_send(now)
        if ready and due <= now:
            return Wait(True, None)
        if ready:
            return Wait(False, max(0.0, due - now))
        deadline = self.flow.next_deadline()
        return Wait(False, None if deadline is None else max(0.0, deadline - now))

    # --- one frame ---

    def begin(
        self, now: float, *, damage_mode: bool, damage: bool, refresh_at: float | None
    ) -> FramePlan | None:
        """Plan the frame due now (None: nothing to produce after all).

        Args:
            damage_mode: X DAMAGE reports changes (else the view is polled).
            damage: the damage just taken is not empty.
            refresh_at: as for due_at().
        """
        self._expect(Phase.IDLE)
        keyframe = self._need_key
        full = keyframe or now >= self._next_poll or not damage_mode
        if full:
            if damage_mode:
                interval = self.safety_poll
            elif now - self._last_change_at < self.ACTIVE_FOR:
                interval = self.poll_active
            else:
                interval = self.poll_idle
            self._next_poll = now + interval
        elif not damage and refresh_at is None:
            return None
        self._need_key = False
        self._last_frame_at = now
        self._phase = Phase.PRODUCING
        return FramePlan(keyframe, full, self.adapter.quality())

    def capture_failed(self) -> None:
        """The grab failed (most often the screen changed size): reopen, keyframe."""
        self._expect(Phase.PRODUCING)
        self._phase = Phase.IDLE
        self._screen_changed = True
        self._need_key = True

    def nothing_new(self) -> None:
        """The frame came out empty: do not come back for a refresh or a poll at once."""
        self._expect(Phase.PRODUCING)
        self._phase = Phase.IDLE
        self._quiet_until = self._last_frame_at + self.QUIET_FOR

    def frame_ready(self, captured_at: float) -> FrameHeader:
        """The frame has content: its sequence number and latency news."""
        self._expect(Phase.PRODUCING)
        self._phase = Phase.SENDING
        self._last_change_at = self._last_frame_at
        self._seq += 1
        self._pending = (self._seq, captured_at)
        return FrameHeader(self._seq, self._latency_news(captured_at))

    def sending(self, size: int, now: float) -> None:
        """The frame of size bytes (the encoded message) goes to the channel now."""
        self._expect(Phase.SENDING)
        assert self._pending is not None
        seq, captured_at = self._pending
        self.flow.sent(seq, now, size)
        self._pending_size = size
        self._captured[seq] = captured_at
        if len(self._captured) > self.CAPTURE_TIMES:
            self._captured.pop(next(iter(self._captured)))

    def sent(self, now: float) -> None:
        """The channel took the frame."""
        self._expect(Phase.SENDING)
        self._phase = Phase.IDLE
        self._pending = None
        self.adapter.on_frame(self._pending_size, now)

    def _latency_news(self, now: float) -> int:
        # The viewer shows our measured latency; once a second is enough (and
        # saves bytes on every small frame).
        if self.latency is None or now - self._latency_sent_at < self.LATENCY_EVERY:
            return 0
        self._latency_sent_at = now
        return max(1, int(self.latency * 1e6))

    def _expect(self, phase: Phase) -> None:
        if self._phase is not phase:
            raise InvalidState(f"frame scheduler is {self._phase.value}, not {phase.value}")
