"""Issue 14, pure parts: addresses behind proxies, byte budgets, counters across restarts."""

from __future__ import annotations

import pytest

from relay.budget import ByteBudget
from relay.counters import _aged
from relay.limits import FailureLimiter, Lockout, RateLimiter
from relay.proxy import client_address, parse_networks


PROXIES = parse_networks("10.0.0.1, 192.168.0.0/16, ::1")


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # Not a trusted proxy: the header is ignored.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # The right-most hop a trusted proxy appended.
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        # A client that forges hops on the left gains nothing.
        ("10.0.0.1", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),
        # Chains of trusted proxies are skipped, in one header or several.
        ("10.0.0.1", ["198.51.100.1, 192.168.4.4"], "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1", "192.168.4.4"], "198.51.100.1"),
        # Garbage stops the walk at the proxy that passed it on.
        ("10.0.0.1", ["198.51.100.1, not-an-ip"], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1, not-an-ip, 192.168.1.1"], "192.168.1.1"),
        # Ports and brackets, and IPv4-mapped IPv6.
        ("::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["198.51.100.1:8080"], "198.51.100.1"),
        # No header, or only proxies in it.
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["192.168.1.1"], "192.168.1.1"),
    ],
)
def test_client_address(peer: str, headers: list[str], client: str) -> None:
    assert client_address(peer, headers, PROXIES) == client


def test_no_trusted_proxies_means_the_tcp_peer() -> None:
    assert client_address("10.0.0.1", ["198.51.100.1"], ()) == "10.0.0.1"
    with pytest.raises(ValueError, match="trusted_proxies"):
        parse_networks("10.0.0.1, example.org")


def test_byte_budget() -> None:
    budget = ByteBudget(100, 250)
    budget.set_queued("a", 101)
    assert budget.must_pause("a") and not budget.may_resume("a")
    budget.set_queued("a", 50)
    assert budget.may_resume("a") and not budget.must_pause("a")
    budget.add_sending("b", 120)
    budget.set_queued("c", 90)
    assert budget.total == 260 and budget.overloaded
    assert budget.largest() == "b"
    budget.add_sending("b", -120)
    assert budget.total == 140 and not budget.overloaded
    budget.forget("a")
    budget.forget("c")
    assert budget.total == 0 and budget.largest() is None


def test_a_bucket_survives_export_and_restore_with_the_downtime_credited() -> None:
    rate = RateLimiter(4, 400.0)  # one token back every 100 s
    for _ in range(4):
        assert rate.allow("k", 1000.0)
    assert not rate.allow("k", 1000.0)
    rows = rate.export(1000.0, 10)
    assert rows == [("k", 4.0, 0.0, 0.0)]
    again = RateLimiter(4, 400.0)
    # The relay was down for 150 s; the new process's clock starts elsewhere.
    again.restore(_aged(again, rows, 150.0), 5.0)
    assert again.allow("k", 5.0)  # 1.5 tokens came back
    assert not again.allow("k", 5.0)
    # Fully refilled keys are not stored at all.
    assert FailureLimiter(1, 10.0).export(0.0, 10) == []
    assert _aged(again, rows, 400.0) == []


def test_a_lockout_survives_export_and_restore() -> None:
    lockout = Lockout(2, 900.0, 600.0)
    lockout.failure("jane", 100.0)
    assert lockout.failure("jane", 101.0)
    rows = lockout.export(101.0, 10)
    again = Lockout(2, 900.0, 600.0)
    again.restore(_aged(again, rows, 100.0), 7.0)
    assert again.locked_for("jane", 7.0) == pytest.approx(500.0)
    assert lockout.changes == 2 and again.changes == 0
