"""Rate limits and lockouts (pure, time injected)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from relay.limits import FailureLimiter, Lockout, RateLimiter


def test_rate_limiter_allows_a_burst_then_the_refill_rate() -> None:
    limiter = RateLimiter(3, 60.0)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0)  # keys are independent
    assert limiter.retry_after("a", 0.0) == pytest.approx(20.0)
    assert not limiter.allow("a", 19.9)
    assert limiter.allow("a", 20.0)


def test_failure_limiter_retry_after_is_zero_for_unknown_keys() -> None:
    assert FailureLimiter(1, 10.0).retry_after("x", 0.0) == 0.0


def test_lockout_after_limit_failures_within_the_window() -> None:
    lockout = Lockout(3, window=100.0, duration=60.0)
    assert [lockout.failure("jane", t) for t in (0.0, 1.0, 2.0)] == [False, False, True]
    assert lockout.locked_for("jane", 2.0) == 60.0
    assert lockout.locked_for("jane", 61.0) == 1.0
    assert lockout.locked_for("jane", 62.0) == 0.0
    assert lockout.locked_for("sam", 2.0) == 0.0


def test_failures_spread_beyond_the_window_never_lock() -> None:
    lockout = Lockout(3, window=10.0, duration=60.0)
    for t in range(0, 300, 6):
        assert not lockout.failure("jane", float(t))


def test_failures_during_a_lockout_do_not_extend_it() -> None:
    lockout = Lockout(2, window=100.0, duration=60.0)
    lockout.failure("jane", 0.0)
    assert lockout.failure("jane", 1.0)
    assert lockout.failure("jane", 30.0)  # still locked, same end
    assert lockout.locked_for("jane", 30.0) == 31.0


def test_success_clears_failures_but_not_a_lockout() -> None:
    lockout = Lockout(2, window=100.0, duration=60.0)
    lockout.failure("jane", 0.0)
    lockout.success("jane", 1.0)
    assert not lockout.failure("jane", 2.0)  # counting starts over
    assert lockout.failure("jane", 3.0)
    lockout.success("jane", 4.0)
    assert lockout.locked_for("jane", 4.0) == 59.0


def test_lockout_memory_is_bounded() -> None:
    lockout = Lockout(5, window=1.0, duration=1.0, max_keys=10)
    for n in range(100):
        lockout.failure(f"k{n}", float(n))
    assert len(lockout) <= 10


def test_lockout_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Lockout(0, 1.0, 1.0)
    with pytest.raises(ValueError):
        Lockout(1, 1.0, 0.0)


@given(st.lists(st.floats(0, 1000), max_size=50))
def test_a_lockout_never_lasts_longer_than_its_duration(times: list[float]) -> None:
    lockout = Lockout(3, window=50.0, duration=30.0)
    for t in sorted(times):
        lockout.failure("k", t)
        assert 0.0 <= lockout.locked_for("k", t) <= 30.0 + 1e-9
