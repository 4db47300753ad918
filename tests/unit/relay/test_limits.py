"""Connection caps, token buckets and failure limits (pure, time injected)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from relay.limits import ConnectionLimiter, FailureLimiter, TokenBucket, address_key


# --- address_key --------------------------------------------------------------


def test_ipv4_addresses_count_individually() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") != address_key("192.0.2.2")


def test_ipv6_addresses_count_per_64() -> None:
    same = address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff::9")
    assert same[0] == same[1] == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != same[0]


def test_ipv4_mapped_ipv6_counts_as_ipv4() -> None:
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_non_ip_addresses_are_used_as_is() -> None:
    assert address_key("unknown") == "unknown"
    assert address_key("/run/relay.sock") == "/run/relay.sock"


# --- TokenBucket --------------------------------------------------------------


def test_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(capacity=3, rate=0.5, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(101.9)  # 0.95 tokens
    assert bucket.take(102.0)
    assert bucket.level(1000.0) == 3  # never above capacity


def test_bucket_ignores_a_clock_that_goes_backwards() -> None:
    bucket = TokenBucket(capacity=2, rate=1.0, now=50.0)
    bucket.drain(50.0, 2)
    assert bucket.level(10.0) == 0
    assert bucket.level(50.5) == pytest.approx(0.5)


def test_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity=0, rate=1, now=0)
    with pytest.raises(ValueError):
        TokenBucket(capacity=1, rate=0, now=0)


# --- FailureLimiter -----------------------------------------------------------


def test_failures_block_a_key_after_the_limit_and_only_that_key() -> None:
    limiter = FailureLimiter(limit=10, window=600.0)
    for _ in range(9):
        limiter.record_failure("a", 0.0)
        assert not limiter.blocked("a", 0.0)
    limiter.record_failure("a", 0.0)
    assert limiter.blocked("a", 0.0)
    assert not limiter.blocked("b", 0.0)
    # One failure's worth comes back every window / limit seconds.
    assert limiter.blocked("a", 59.0)
    assert not limiter.blocked("a", 60.0)


def test_full_buckets_are_forgotten_on_sweep() -> None:
    limiter = FailureLimiter(limit=2, window=10.0)
    limiter.record_failure("a", 0.0)
    limiter.record_failure("b", 8.0)
    limiter.sweep(6.0)
    assert len(limiter) == 1  # "a" refilled at 5.0
    assert not limiter.blocked("a", 6.0)


def test_remembered_keys_are_bounded() -> None:
    limiter = FailureLimiter(limit=1, window=1000.0, max_keys=3)
    for i in range(10):
        limiter.record_failure(f"k{i}", float(i))
    assert len(limiter) == 3
    # The most recent offenders are the ones kept.
    assert all(limiter.blocked(f"k{i}", 10.0) for i in (7, 8, 9))


@given(
    limit=st.integers(1, 20),
    window=st.floats(1.0, 1000.0),
    gaps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=200),
)
def test_an_attacker_never_gets_more_than_the_budget(
    limit: int, window: float, gaps: list[float]
) -> None:
    """Whoever checks blocked() first fails at most limit + elapsed * rate times."""
    limiter = FailureLimiter(limit=limit, window=window)
    now, start, allowed = 0.0, 0.0, 0
    for gap in gaps:
        now += gap
        if not limiter.blocked("x", now):
            limiter.record_failure("x", now)
            allowed += 1
        assert allowed <= limit + (now - start) * limit / window + 1e-6


# --- ConnectionLimiter --------------------------------------------------------


def test_connection_caps_per_key_and_in_total() -> None:
    limiter = ConnectionLimiter(per_key=2, total=3)
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") == "too many connections from this address"
    assert limiter.acquire("b") is None
    assert limiter.acquire("c") == "relay is at its connection limit"
    assert (limiter.total, limiter.count("a"), limiter.count("b")) == (3, 2, 1)
    limiter.release("a")
    assert limiter.acquire("c") is None
    assert limiter.total == 3


def test_releasing_an_unknown_key_is_a_bug() -> None:
    limiter = ConnectionLimiter(per_key=1, total=1)
    with pytest.raises(KeyError):
        limiter.release("nobody")


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abc")), max_size=100))
def test_connection_counts_match_a_model(ops: list[tuple[bool, str]]) -> None:
    limiter = ConnectionLimiter(per_key=3, total=5)
    model: dict[str, int] = {}
    for acquire, key in ops:
        if acquire:
            ok = limiter.acquire(key) is None
            assert ok == (sum(model.values()) < 5 and model.get(key, 0) < 3)
            if ok:
                model[key] = model.get(key, 0) + 1
        elif model.get(key, 0):
            limiter.release(key)
            model[key] -= 1
        assert limiter.total == sum(model.values())
        assert all(limiter.count(k) == n for k, n in model.items())
