"""Longer codes after repeated failed pairings (security.md 2.7; issue 14)."""

from __future__ import annotations

import pytest

from client.core.code_policy import CodePolicy


MIN = 60.0


def test_three_failures_in_a_row_switch_to_nine_digits_for_an_hour() -> None:
    policy = CodePolicy()
    assert policy.digits(0) == 6 and policy.warning(0) is None
    assert policy.pairing_failed(0) is None
    assert policy.pairing_failed(10 * MIN) is None
    warning = policy.pairing_failed(29 * MIN)
    assert warning is not None and warning.digits == 9 and warning.until == 89 * MIN
    assert "intercept" in warning.message
    assert policy.digits(29 * MIN) == 9 and policy.warning(88 * MIN) == warning
    assert policy.digits(89 * MIN) == 6 and policy.warning(89 * MIN) is None


def test_failures_spread_over_more_than_half_an_hour_do_not_count_together() -> None:
    policy = CodePolicy()
    policy.pairing_failed(0)
    policy.pairing_failed(20 * MIN)
    assert policy.pairing_failed(31 * MIN) is None  # the first one is too old
    assert policy.digits(31 * MIN) == 6
    assert policy.pairing_failed(32 * MIN) is not None


def test_a_matching_code_ends_the_run_but_not_the_longer_codes() -> None:
    policy = CodePolicy()
    policy.pairing_failed(0)
    policy.pairing_failed(1)
    policy.code_matched(2)
    assert policy.pairing_failed(3) is None and policy.digits(3) == 6
    policy.pairing_failed(4)
    assert policy.pairing_failed(5) is not None
    policy.code_matched(6)
    assert policy.digits(7) == 9  # the hour runs on: whoever guessed may still be there


def test_more_failures_while_strong_extend_the_hour() -> None:
    policy = CodePolicy()
    for t in (0.0, 1.0, 2.0, 50 * MIN, 51 * MIN, 52 * MIN):
        policy.pairing_failed(t)
    assert policy.digits(100 * MIN) == 9


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        CodePolicy(failures=0)
    assert CodePolicy(failures=1).pairing_failed(0) is not None
