"""The help-request queue as a pure state machine, with injected time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from common.protocol.relay_wire import CloseCode, RequestState
from relay.queue import HelpQueue, HelpRequest
from relay.registry import RelayRejection


T0 = 1_700_000_000.0
HASH = b"h" * 32


def rid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def make(**kwargs: Any) -> HelpQueue:
    return HelpQueue(**kwargs)


def post(
    q: HelpQueue, n: int, now: float = T0, address: str = "192.0.2.1", **fields: str
) -> HelpRequest:
    return q.post(
        rid(n),
        name=fields.get("name", f"user {n}"),
        description=fields.get("description", "help"),
        category=fields.get("category", ""),
        system_summary=fields.get("system_summary", ""),
        resume_hash=HASH,
        address=address,
        now=now,
    )


def rejection(code: CloseCode, reason: str | None = None) -> Any:
    def check(e: RelayRejection) -> bool:
        return e.code is code and (reason is None or e.reason == reason)

    return pytest.raises(RelayRejection, check=check)


def test_requests_queue_in_posting_order() -> None:
    q = make()
    for n, t in ((1, T0), (2, T0 + 1), (3, T0 + 1)):
        post(q, n, t, address=f"a{n}")
    assert [r.id for r in q] == [rid(1), rid(2), rid(3)]
    assert q.positions() == {rid(1): 1, rid(2): 2, rid(3): 3}
    assert all(r.attached and r.state is RequestState.WAITING for r in q)


def test_a_claim_takes_the_request_out_of_the_numbering() -> None:
    q = make()
    for n in (1, 2, 3):
        post(q, n, T0 + n, address=f"a{n}")
    claimed = q.claim(rid(2), account_id=7, name="Jane", now=T0 + 10)
    assert (claimed.state, claimed.claimed_by, claimed.claimed_name) == (
        RequestState.CLAIMED,
        7,
        "Jane",
    )
    assert q.positions() == {rid(1): 1, rid(2): 0, rid(3): 2}
    assert q.counts() == (2, 1)


def test_release_puts_a_claim_back_in_its_place() -> None:
    q = make()
    for n in (1, 2):
        post(q, n, T0 + n, address=f"a{n}")
    q.claim(rid(1), 7, "Jane", T0 + 5)
    assert q.positions()[rid(2)] == 1
    released = q.release(rid(1))
    assert released is not None and released.claimed_by is None
    assert q.positions() == {rid(1): 1, rid(2): 2}
    assert q.release(rid(1)) is None  # not claimed any more


def test_claim_refusals() -> None:
    q = make()
    post(q, 1)
    with rejection(CloseCode.UNKNOWN_REQUEST, "this request is no longer queued"):
        q.claim(rid(9), 1, "x", T0)
    q.claim(rid(1), 1, "x", T0)
    with rejection(CloseCode.REQUEST_TAKEN):
        q.claim(rid(1), 2, "y", T0)
    post(q, 2, address="b")
    q.detach(rid(2), T0)
    with rejection(CloseCode.USER_AWAY):
        q.claim(rid(2), 2, "y", T0)


def test_a_user_who_leaves_releases_the_claim_and_keeps_the_place() -> None:
    q = make()
    post(q, 1)
    post(q, 2, T0 + 1, address="b")
    q.claim(rid(1), 1, "x", T0 + 2)
    away = q.detach(rid(1), T0 + 3)
    assert away is not None
    assert (away.state, away.attached, away.away_since) == (RequestState.WAITING, False, T0 + 3)
    assert q.positions() == {rid(1): 1, rid(2): 2}
    request, was_attached = q.resume(rid(1), HASH, T0 + 4)
    assert (request.attached, request.away_since, was_attached) == (True, None, False)
    assert q.resume(rid(1), HASH, T0 + 5)[1] is True


def test_resume_needs_the_right_token_and_does_not_tell_which_was_wrong() -> None:
    q = make()
    post(q, 1)
    reason = "no such request (it may have expired); post it again"
    with rejection(CloseCode.UNKNOWN_REQUEST, reason):
        q.resume(rid(1), b"x" * 32, T0)
    with rejection(CloseCode.UNKNOWN_REQUEST, reason):
        q.resume(rid(2), HASH, T0)


def test_waiting_requests_expire_after_request_ttl() -> None:
    q = make(request_ttl=100)
    post(q, 1)
    post(q, 2, T0 + 50, address="b")
    q.claim(rid(2), 1, "x", T0 + 60)
    assert q.expire(T0 + 99.9) == []
    assert [r.id for r in q.expire(T0 + 100)] == [rid(1)]
    # A claimed request is being served; it does not expire under the technician.
    assert q.expire(T0 + 1000) == []
    q.release(rid(2))
    assert [r.id for r in q.expire(T0 + 1000)] == [rid(2)]
    assert len(q) == 0


def test_away_users_have_resume_window_to_come_back() -> None:
    q = make(resume_window=30, request_ttl=1000)
    post(q, 1)
    q.detach(rid(1), T0 + 10)
    assert q.expires_at(q.get(rid(1))) == T0 + 40  # type: ignore[arg-type]
    assert q.expire(T0 + 39) == []
    with rejection(CloseCode.REQUEST_EXPIRED, "this request has expired"):
        q.resume(rid(1), HASH, T0 + 40)
    assert rid(1) not in q


def test_load_after_a_restart_makes_everything_waiting_and_away() -> None:
    q = make(resume_window=30)
    stored = [
        HelpRequest(rid(n), f"u{n}", "d", "", "", T0 + n, HASH, "a", state=RequestState.CLAIMED)
        for n in (2, 1)
    ]
    q.load(stored, T0 + 100)
    assert [r.id for r in q] == [rid(1), rid(2)]
    assert all(r.state is RequestState.WAITING and not r.attached for r in q)
    assert q.positions() == {rid(1): 1, rid(2): 2}
    assert q.expire(T0 + 129) == []
    assert len(q.expire(T0 + 130)) == 2


def test_limits() -> None:
    q = make(max_requests=2, max_per_address=1)
    post(q, 1, address="a")
    with rejection(CloseCode.RATE_LIMITED, "too many open requests from this address"):
        post(q, 2, address="a")
    post(q, 2, address="b")
    with rejection(CloseCode.QUEUE_FULL):
        post(q, 3, address="c")
    q.finish(rid(1))
    post(q, 3, address="c")


@pytest.mark.parametrize(
    ("fields", "code", "reason"),
    [
        ({"name": ""}, CloseCode.BAD_MESSAGE, "a request needs a name and a description"),
        ({"description": "   "}, CloseCode.BAD_MESSAGE, "a request needs a name and a description"),
        (
            {"description": "é" * 51},
            CloseCode.REQUEST_TOO_LARGE,
            "the request text is 108 bytes; the limit is 100",
        ),
        (
            {"system_summary": "s" * 201},
            CloseCode.REQUEST_TOO_LARGE,
            "the system summary is 201 bytes; the limit is 200",
        ),
        ({"name": "a\nb"}, CloseCode.BAD_MESSAGE, "the name contains a control character"),
        (
            {"category": "x\u2066"},
            CloseCode.BAD_MESSAGE,
            "the category contains a control character",
        ),
        (
            {"system_summary": "\x00"},
            CloseCode.BAD_MESSAGE,
            "the system summary contains a control character",
        ),
    ],
)
def test_text_checks(fields: dict[str, str], code: CloseCode, reason: str) -> None:
    q = make(max_text=100, max_summary=200)
    with rejection(code, reason):
        post(q, 1, **fields)
    assert len(q) == 0


def test_multiline_descriptions_are_fine() -> None:
    q = make()
    post(q, 1, description="line one\n\tline two", system_summary="os: x\nram: y")
    assert q.get(rid(1)) is not None


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError):
        HelpQueue(max_requests=0)
    with pytest.raises(ValueError):
        HelpQueue(max_summary=10**6)
    with pytest.raises(ValueError):
        HelpQueue(resume_window=0)


class QueueMachine(RuleBasedStateMachine):
    """Random sequences keep the numbering, the counts and the deadlines consistent."""

    def __init__(self) -> None:
        super().__init__()
        self.q = HelpQueue(max_requests=8, max_per_address=3, request_ttl=50, resume_window=20)
        self.now = T0
        self.next = 1

    @rule(dt=st.floats(0, 10), address=st.sampled_from("abc"))
    def post(self, dt: float, address: str) -> None:
        self.now += dt
        try:
            post(self.q, self.next, self.now, address=address)
        except RelayRejection as exc:
            assert exc.code in (CloseCode.QUEUE_FULL, CloseCode.RATE_LIMITED)
        self.next += 1

    def _pick(self, data: st.DataObject) -> bytes:
        return data.draw(st.sampled_from(sorted(r.id for r in self.q)))

    @precondition(lambda self: len(self.q) > 0)
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        request_id = self._pick(data)
        try:
            self.q.claim(request_id, 1, "x", self.now)
        except RelayRejection as exc:
            assert exc.code in (CloseCode.REQUEST_TAKEN, CloseCode.USER_AWAY)

    @precondition(lambda self: len(self.q) > 0)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self.q.release(self._pick(data))

    @precondition(lambda self: len(self.q) > 0)
    @rule(data=st.data())
    def detach(self, data: st.DataObject) -> None:
        self.q.detach(self._pick(data), self.now)

    @precondition(lambda self: len(self.q) > 0)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        try:
            self.q.resume(self._pick(data), HASH, self.now)
        except RelayRejection as exc:
            assert exc.code is CloseCode.REQUEST_EXPIRED

    @precondition(lambda self: len(self.q) > 0)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        assert self.q.finish(self._pick(data)) is not None

    @rule(dt=st.floats(0, 30))
    def expire(self, dt: float) -> None:
        self.now += dt
        for request in self.q.expire(self.now):
            assert request.state is RequestState.WAITING
            assert self.now >= self.q.expires_at(request)

    @invariant()
    def numbering(self) -> None:
        positions = self.q.positions()
        waiting = [r for r in self.q if r.state is RequestState.WAITING]
        assert [positions[r.id] for r in waiting] == list(range(1, len(waiting) + 1))
        for r in self.q:
            if r.state is RequestState.CLAIMED:
                assert positions[r.id] == 0 and r.attached and r.claimed_by is not None
            else:
                assert r.claimed_by is None
            assert r.attached == (r.away_since is None)
        assert sum(self.q.counts()) == len(self.q) <= 8


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
