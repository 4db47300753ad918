"""The pacing state machine and the adapter (pure: fake time)."""

from __future__ import annotations

import pytest

from client.core.screen.pacing import AckSample, Adapter, FlowControl


def test_window_limits_frames_in_flight() -> None:
    flow = FlowControl(2)
    assert flow.can_send(0.0)
    flow.sent(1, 0.0, 1000)
    assert flow.can_send(0.0)
    flow.sent(2, 0.001, 1000)
    assert not flow.can_send(0.002)
    samples = flow.acked(1, 0.010)
    assert [s.seq for s in samples] == [1]
    assert samples[0].rtt == pytest.approx(0.010)
    assert flow.can_send(0.010)


def test_acks_are_cumulative_and_a_lost_ack_is_repaired_by_the_next() -> None:
    flow = FlowControl(3)
    for seq in (1, 2, 3):
        flow.sent(seq, seq * 0.001, 500)
    # The ack for 1 and 2 never came; the ack for 3 frees everything.
    assert [s.seq for s in flow.acked(3, 0.02)] == [1, 2, 3]
    assert flow.in_flight == 0
    assert flow.acked(2, 0.03) == []  # late or duplicate: harmless


def test_burst_of_dropped_acks_recovers_by_timeout() -> None:
    flow = FlowControl(2, min_timeout=0.5)
    flow.sent(1, 0.0, 100)
    flow.sent(2, 0.0, 100)
    assert not flow.can_send(0.4)
    deadline = flow.next_deadline()
    assert deadline is not None and 0.5 <= deadline < 0.6
    assert flow.can_send(deadline + 0.01)  # both given up on
    assert flow.lost == 2
    flow.sent(3, 0.7, 100)
    assert [s.seq for s in flow.acked(3, 0.71)] == [3]


def test_timeout_allows_for_large_frames_on_slow_links() -> None:
    flow = FlowControl(2, min_timeout=0.5)
    flow.set_bandwidth_hint(100_000)  # 100 kB/s
    assert flow.timeout_for(1_000_000) > 20  # 10 s to carry it, doubled


def test_sequence_must_increase_and_reset_forgets() -> None:
    flow = FlowControl(2)
    flow.sent(5, 0.0, 1)
    with pytest.raises(ValueError):
        flow.sent(5, 0.0, 1)
    flow.reset()
    assert flow.in_flight == 0 and flow.next_deadline() is None
    with pytest.raises(ValueError):
        FlowControl(0)


def test_delivery_rate_uses_link_busy_time() -> None:
    flow = FlowControl(2)
    flow.sent(1, 0.0, 100_000)
    flow.sent(2, 0.0, 100_000)
    first, _ = flow.acked(2, 0.2)
    assert first.delivery_rate == pytest.approx(500_000)  # 100 kB in 0.2 s
    flow.sent(3, 0.2, 100_000)
    flow.sent(4, 0.2, 100_000)
    (third,) = flow.acked(3, 0.3)
    (fourth,) = flow.acked(4, 0.4)
    assert third.delivery_rate == pytest.approx(1_000_000)
    assert fourth.delivery_rate == pytest.approx(1_000_000)  # queued behind 3


def feed(adapter: Adapter, now: float, size: int, rate: float, rtt: float = 0.01) -> None:
    adapter.on_ack(AckSample(1, rtt, size, rate), now)
    adapter.on_frame(size, now)


def test_adapter_steps_quality_down_on_a_slow_link_and_paces() -> None:
    adapter = Adapter(max_fps=30, start_level=0)
    now = 0.0
    for _ in range(60):  # 3 s of 100 kB frames on a 1 MB/s link
        now += 0.05
        feed(adapter, now, 100_000, 1_000_000)
    q = adapter.quality()
    assert q.level == len(Adapter.JPEG_QUALITY) - 1
    assert q.jpeg_quality < 50 and q.h264_crf > 30
    assert q.min_interval == pytest.approx(0.1, rel=0.1)  # 100 kB at 1 MB/s


def test_adapter_steps_back_up_slowly_on_a_fast_link() -> None:
    adapter = Adapter(max_fps=30, start_level=4)
    now = 0.0
    levels = []
    for _ in range(160):  # 8 s of 20 kB frames on a 100 MB/s link
        now += 0.05
        feed(adapter, now, 20_000, 100_000_000)
        levels.append(adapter.level)
    assert levels[-1] == 0
    assert levels[10] >= 3  # at most one step per 2 s
    assert adapter.quality().min_interval == pytest.approx(1 / 30)


def test_adapter_window_grows_with_rtt_and_for_small_frames() -> None:
    adapter = Adapter()
    adapter.on_frame(500_000, 0.0)
    assert adapter.quality().window == 2
    for _ in range(40):
        adapter.on_ack(AckSample(1, 0.1, 100, 0.0), 0.0)
    assert adapter.quality().window == 3
    adapter = Adapter()
    for _ in range(40):
        adapter.on_frame(2_000, 0.0)  # typing: tiny frames
    assert adapter.quality().window == 3
    adapter = Adapter(max_window=4)
    for _ in range(40):
        adapter.on_ack(AckSample(1, 0.4, 100, 0.0), 0.0)
    assert adapter.quality().window == 4
