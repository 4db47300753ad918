"""The frame scheduler: what is due when (pure: time is passed in, nothing sleeps)."""

from __future__ import annotations

import pytest

from client.core.screen.scheduler import FrameHeader, FramePlan, FrameScheduler, Phase, Wait
from common.errors import InvalidState


def scheduler(**overrides: float) -> FrameScheduler:
    """Ten frames a second at most, short polls; overrides by keyword."""
    settings: dict[str, float] = dict(
        max_fps=10.0, ack_timeout=1.0, poll_active=0.05, poll_idle=0.5, safety_poll=3.0
    )
    return FrameScheduler(**{**settings, **overrides})  # type: ignore[arg-type]


def phase(s: FrameScheduler) -> Phase:
    return s.phase  # (a call, so that mypy does not narrow it between steps)


def plan(
    s: FrameScheduler,
    now: float,
    *,
    damage_mode: bool = True,
    damage: bool = True,
    refresh_at: float | None = None,
) -> FramePlan:
    planned = s.begin(now, damage_mode=damage_mode, damage=damage, refresh_at=refresh_at)
    assert planned is not None
    return planned


def send(s: FrameScheduler, now: float, *, size: int = 1000, **kwargs: bool) -> FrameHeader:
    """Produce and send one frame at now (captured then, sent at once)."""
    plan(s, now, **kwargs)
    header = s.frame_ready(now)
    s.sending(size, now)
    s.sent(now)
    return header


def test_the_first_frame_is_a_full_keyframe_due_at_once() -> None:
    s = scheduler()
    assert phase(s) is Phase.IDLE
    assert s.wait(0.0, damage=False, refresh_at=None) == Wait(True, None)
    first = plan(s, 0.0, damage=False)
    assert first.keyframe and first.full and first.quality == s.quality()
    assert phase(s) is Phase.PRODUCING and not s.needs_keyframe
    assert s.frame_ready(0.0) == FrameHeader(1, 0)  # no latency measured yet
    s.sending(5000, 0.001)
    assert s.flow.in_flight == 1 and phase(s) is Phase.SENDING
    s.sent(0.002)
    assert phase(s) is Phase.IDLE


def waits(s: FrameScheduler, now: float, seconds: float, **kwargs: bool | float | None) -> bool:
    """Whether s says to wait (about) seconds at now."""
    wait = s.wait(
        now, damage=bool(kwargs.get("damage", False)), refresh_at=kwargs.get("refresh_at")
    )
    return not wait.go and wait.timeout == pytest.approx(seconds)


def test_the_frame_rate_cap_spaces_frames() -> None:
    s = scheduler(max_fps=10.0)
    send(s, 0.0)
    assert waits(s, 0.04, 0.06, damage=True)
    assert s.wait(0.1, damage=True, refresh_at=None).go
    damaged = plan(s, 0.1)
    assert not damaged.keyframe and not damaged.full  # only the damage is grabbed


def test_a_full_window_waits_for_an_ack_or_the_ack_timeout() -> None:
    s = scheduler(max_fps=0.0, ack_timeout=0.5, max_window=2)
    send(s, 0.0)
    send(s, 0.01)
    assert s.flow.in_flight == 2  # the window before any ack
    wait = s.wait(0.02, damage=True, refresh_at=None)
    assert not wait.go and wait.timeout is not None
    assert 0.48 <= wait.timeout < 0.6  # until the first frame's ack is overdue
    assert s.on_ack(1, 0.03) == [1]
    assert s.wait(0.03, damage=True, refresh_at=None).go
    send(s, 0.03)  # the window is full again
    # No ack for frame 2 ever: given up on after the timeout, and frames flow on.
    assert not s.wait(0.3, damage=True, refresh_at=None).go
    assert s.wait(0.52, damage=True, refresh_at=None).go  # frame 2 is given up on
    assert s.flow.lost == 1 and s.flow.in_flight == 1


def test_acks_are_cumulative_and_resize_the_window() -> None:
    s = scheduler(max_fps=0.0, max_window=3)
    for i in range(2):
        send(s, i * 0.001, size=100)
    assert s.on_ack(2, 0.01) == [1, 2]  # the ack for 1 was lost: 2 covers it
    assert s.on_ack(2, 0.02) == []  # a duplicate: harmless
    assert s.flow.window == 3  # small frames: one more in flight hides the round trip


def test_with_damage_nothing_is_due_but_the_safety_poll_and_refreshes() -> None:
    s = scheduler(safety_poll=3.0)
    send(s, 0.0)  # the keyframe: a full grab, which schedules the next poll
    assert waits(s, 0.2, 2.8)
    assert waits(s, 0.2, 0.3, refresh_at=0.5)
    assert s.wait(0.2, damage=True, refresh_at=None).go
    # A refresh falls due: a damage-only frame (the pipeline adds the refresh).
    refresh = plan(s, 0.5, damage=False, refresh_at=0.5)
    assert not refresh.full
    s.nothing_new()
    # The poll falls due: the whole view is grabbed, damage or not.
    poll = plan(s, 3.0, damage=True)
    assert poll.full and not poll.keyframe


def test_nothing_to_do_plans_no_frame_and_changes_nothing() -> None:
    s = scheduler()
    send(s, 0.0)
    before = s.due_at(damage=False, refresh_at=None)
    assert s.begin(0.2, damage_mode=True, damage=False, refresh_at=None) is None
    assert phase(s) is Phase.IDLE
    assert s.due_at(damage=False, refresh_at=None) == before


def test_polling_is_fast_while_the_screen_changes_and_slow_when_idle() -> None:
    s = scheduler(max_fps=0.0, poll_active=0.05, poll_idle=0.5)
    send(s, 0.0, damage_mode=False)  # nothing changed before: the idle interval
    s.on_ack(1, 0.01)
    assert waits(s, 0.01, 0.49)
    # The frame at 0.0 was a change: poll fast for ACTIVE_FOR after it.
    assert plan(s, 0.5, damage_mode=False, damage=False).full  # polling grabs it all
    s.nothing_new()
    assert s.due_at(damage=False, refresh_at=None) == pytest.approx(0.55)
    quiet = FrameScheduler.ACTIVE_FOR + 1.0
    plan(s, quiet, damage_mode=False, damage=False)
    s.nothing_new()
    assert s.due_at(damage=False, refresh_at=None) == pytest.approx(quiet + 0.5)


def test_an_empty_frame_keeps_refreshes_and_polls_away_for_a_moment() -> None:
    s = scheduler(max_fps=0.0)
    send(s, 0.0)
    s.on_ack(1, 0.01)
    plan(s, 1.0, damage=False, refresh_at=1.0)
    s.nothing_new()  # the refresh turned out to have nothing to send
    due = s.due_at(damage=False, refresh_at=1.0)
    assert due == pytest.approx(1.0 + FrameScheduler.QUIET_FOR)
    assert s.due_at(damage=True, refresh_at=1.0) == pytest.approx(1.0)  # damage does not wait


def test_a_failed_grab_reopens_the_screen_and_sends_a_keyframe() -> None:
    s = scheduler(max_fps=0.0)
    send(s, 0.0)
    plan(s, 0.1)
    s.capture_failed()
    assert phase(s) is Phase.IDLE and s.screen_changed and s.needs_keyframe
    assert s.wait(0.1, damage=False, refresh_at=None).go
    assert s.take_screen_change() and not s.take_screen_change()
    assert plan(s, 0.1, damage=False).keyframe


def test_a_screen_change_is_due_at_once_and_taken_once() -> None:
    s = scheduler(max_fps=0.0)
    send(s, 0.0)
    assert not s.wait(0.1, damage=False, refresh_at=None).go
    s.note_screen_change()
    assert s.wait(0.1, damage=False, refresh_at=None).go
    assert s.take_screen_change() and not s.screen_changed


def test_a_keyframe_request_forgets_the_frames_in_flight() -> None:
    s = scheduler(max_fps=0.0)
    send(s, 0.0)
    send(s, 0.01)
    assert not s.wait(0.02, damage=False, refresh_at=None).go  # the window is full
    s.request_keyframe()
    assert s.flow.in_flight == 0 and s.needs_keyframe
    assert s.wait(0.02, damage=False, refresh_at=None).go
    assert plan(s, 0.02).keyframe


def test_latency_is_measured_from_capture_to_ack_and_reported_once_a_second() -> None:
    s = scheduler(max_fps=0.0)
    plan(s, 0.0)
    assert s.frame_ready(0.0) == FrameHeader(1, 0)
    s.sending(1000, 0.004)  # captured at 0.0, sent at 0.004
    s.sent(0.005)
    s.on_ack(1, 0.020)
    assert s.latency == pytest.approx(0.020)
    plan(s, 0.03)
    assert s.frame_ready(0.03) == FrameHeader(2, 20_000)  # microseconds
    s.sending(1000, 0.03)
    s.sent(0.03)
    s.on_ack(2, 0.04)
    assert s.latency is not None
    assert s.latency == pytest.approx(0.8 * 0.020 + 0.2 * 0.010)  # smoothed
    plan(s, 0.5)
    assert s.frame_ready(0.5).latency_us == 0  # reported less than a second ago
    s.sending(1000, 0.5)
    s.sent(0.5)
    plan(s, 1.03)
    assert s.frame_ready(1.03).latency_us == int(s.latency * 1e6)


def test_sequence_numbers_count_frames_sent_only() -> None:
    s = scheduler(max_fps=0.0)
    assert send(s, 0.0).seq == 1
    plan(s, 0.1)
    s.nothing_new()
    plan(s, 0.2)
    s.capture_failed()
    assert send(s, 0.3).seq == 2


def test_steps_out_of_order_are_refused() -> None:
    s = scheduler()
    with pytest.raises(InvalidState):
        s.frame_ready(0.0)  # nothing is being produced
    with pytest.raises(InvalidState):
        s.nothing_new()
    plan(s, 0.0)
    with pytest.raises(InvalidState):
        s.begin(0.0, damage_mode=True, damage=True, refresh_at=None)  # one frame at a time
    with pytest.raises(InvalidState):
        s.sending(100, 0.0)  # not ready yet
    s.frame_ready(0.0)
    with pytest.raises(InvalidState):
        s.capture_failed()
