"""relay.resume.ResumeTable: suspending pairs, joining them once, restarts, accounts."""

from __future__ import annotations

import pytest

from common.protocol.relay_wire import CloseCode, PeerRole
from relay.registry import RelayRejection
from relay.resume import ResumeTable


U, T = PeerRole.USER, PeerRole.TECHNICIAN
ID, OTHER = b"i" * 32, b"o" * 32


def suspended(grace: float = 120.0, account: int | None = 7) -> ResumeTable[str]:
    table: ResumeTable[str] = ResumeTable(grace, started_at=-1000.0)
    table.offer("user", U, ID, b"", None)
    table.offer("tech", T, ID, b"", account)
    assert table.suspend("user", "tech", 0.0)
    return table


def test_both_sides_join_once() -> None:
    table = suspended()
    first = table.arrive("user2", U, ID, b"", None, 1.0)
    assert first.partner is None and first.expires_at == 120.0
    second = table.arrive("tech2", T, ID, b"", 7, 2.0)
    assert second.partner == "user2"
    assert len(table) == 0
    with pytest.raises(RelayRejection) as refused:
        table.arrive("user3", U, ID, b"", None, 3.0)
    assert refused.value.code is CloseCode.UNKNOWN_RESUME


def test_no_suspension_without_matching_offers() -> None:
    table: ResumeTable[str] = ResumeTable(120.0, started_at=-1000.0)
    table.offer("user", U, ID, b"", None)
    table.offer("tech", T, OTHER, b"", None)
    assert not table.suspend("user", "tech", 0.0)
    table.offer("a", U, ID, b"", None)
    table.offer("b", U, ID, b"", None)
    assert not table.suspend("a", "b", 0.0)  # two users: not a pair


def test_the_grace_period_ends_the_wait() -> None:
    table = suspended(grace=10.0)
    assert table.arrive("user2", U, ID, b"", None, 5.0).expires_at == 10.0
    with pytest.raises(RelayRejection) as refused:
        table.arrive("tech2", T, ID, b"", 7, 10.0)
    assert refused.value.code is CloseCode.UNKNOWN_RESUME


def test_the_technician_must_be_the_same_account() -> None:
    table = suspended(account=7)
    with pytest.raises(RelayRejection) as refused:
        table.arrive("tech2", T, ID, b"", 8, 1.0)
    assert refused.value.code is CloseCode.FORBIDDEN
    with pytest.raises(RelayRejection):
        table.arrive("tech3", T, ID, b"", None, 1.0)
    assert table.arrive("tech4", T, ID, b"", 7, 1.0).partner is None


def test_after_a_restart_unknown_ids_pair_within_the_grace_period() -> None:
    table: ResumeTable[str] = ResumeTable(120.0, started_at=100.0)
    first = table.arrive("user", U, ID, b"", None, 110.0)
    assert first.partner is None and first.expires_at == 220.0
    assert table.arrive("tech", T, ID, OTHER, None, 111.0).partner == "user"
    # The same ticket does not join twice, even inside the window.
    with pytest.raises(RelayRejection):
        table.arrive("user2", U, ID, b"", None, 112.0)
    with pytest.raises(RelayRejection) as late:
        table.arrive("user3", U, b"n" * 32, b"", None, 220.0)
    assert late.value.code is CloseCode.UNKNOWN_RESUME


def test_a_previous_id_matches_too() -> None:
    table: ResumeTable[str] = ResumeTable(120.0, started_at=-1000.0)
    table.offer("user", U, OTHER, ID, None)  # the user moved on, the technician did not
    table.offer("tech", T, ID, b"", None)
    assert table.suspend("user", "tech", 0.0)
    assert table.arrive("tech2", T, ID, b"", None, 1.0).partner is None
    assert table.arrive("user2", U, OTHER, ID, None, 1.0).partner == "tech2"


def test_coming_back_before_the_relay_noticed_suspends_the_live_pair() -> None:
    table: ResumeTable[str] = ResumeTable(120.0, started_at=-1000.0)
    table.offer("user", U, ID, b"", None)
    table.offer("tech", T, ID, b"", None)
    arrival = table.arrive("user2", U, ID, b"", None, 1.0)
    assert arrival.partner is None
    assert set(arrival.stale) == {
        ("user", CloseCode.REPLACED),
        ("tech", CloseCode.PEER_SUSPENDED),
    }
    assert table.arrive("tech2", T, ID, b"", None, 2.0).partner == "user2"


def test_a_second_attempt_of_one_side_replaces_the_first() -> None:
    table = suspended()
    table.arrive("user2", U, ID, b"", None, 1.0)
    again = table.arrive("user3", U, ID, b"", None, 2.0)
    assert again.stale == (("user2", CloseCode.REPLACED),)
    assert table.arrive("tech2", T, ID, b"", 7, 3.0).partner == "user3"


def test_a_waiting_side_that_leaves_frees_its_place() -> None:
    table = suspended()
    table.arrive("user2", U, ID, b"", None, 1.0)
    table.forget("user2")
    assert table.arrive("tech2", T, ID, b"", 7, 2.0).partner is None
    assert table.arrive("user3", U, ID, b"", None, 3.0).partner == "tech2"


def test_grace_is_validated() -> None:
    with pytest.raises(ValueError):
        ResumeTable(601.0, started_at=0.0)
    with pytest.raises(ValueError):
        ResumeTable(0.0, started_at=0.0)
