"""Offline verification of a session record (security.md 9 cases 44 and 45).

Each kind of tampering is caught, and reported as its own problem naming
the event; an honest record, amendments included, verifies clean.
"""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st

from common.capability import Capability
from common.crypto.signing_keys import signed_data
from common.record.events import (
    ActorRole,
    CapabilityGranted,
    PeerJoined,
    PeerLeft,
    ReportAmended,
    ReportMissing,
    SessionEnded,
    StreamSealed,
    payload_to_json,
)
from common.record.log import CONTEXT, Actor, RecordLog, SignedEvent, public_key_bytes
from common.record.verify import ProblemKind, RecordTrust, ReportState, verify_lines, verify_log
from tests.unit.common.record_helpers import (
    RELAY_KEY,
    SESSION,
    T0,
    TECH_KEY,
    TRUST,
    USER_KEY,
    fixed_key,
    record,
    report,
    streams,
)


def kinds(
    events: list[SignedEvent], trust: RecordTrust = TRUST
) -> list[tuple[ProblemKind, ActorRole | None, int | None]]:
    return [(p.kind, p.role, p.seq) for p in verify_log(events, trust).problems]


def test_an_honest_record_verifies() -> None:
    result = verify_log(record(), TRUST)
    assert result.ok, result.problems
    assert result.session == SESSION
    assert result.report == report()
    assert result.report_state is ReportState.FILED
    assert result.streams[ActorRole.USER].sealed
    assert result.streams[ActorRole.USER].signed_count == 8
    assert result.streams[ActorRole.TECHNICIAN].events == 7


def test_interleaving_the_streams_does_not_matter() -> None:
    u, t = streams()
    mixed = [e for pair in zip(u, t, strict=False) for e in pair] + u[len(t) :] + t[len(u) :]
    assert verify_log(mixed, TRUST).ok


def test_lines_round_trip() -> None:
    lines = [e.to_bytes() + b"\n" for e in record()]
    assert verify_lines([*lines, b"\n"], TRUST).ok


# --- case 44: edited, deleted, reordered, inserted, truncated -------------------


def _edit(event: SignedEvent, **changes: object) -> SignedEvent:
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"ts_ms": T0 + 5},
        {"payload": CapabilityGranted(Capability.FILES)},
        {"session": SESSION},  # unchanged: the control case below
        {"signature": bytes(64)},
        {"prev": bytes(32)},
    ],
)
def test_an_edited_user_event_is_named(change: dict[str, object]) -> None:
    events = record()
    i = next(i for i, e in enumerate(events) if e.actor.role is ActorRole.USER and e.seq == 3)
    events[i] = _edit(events[i], **change)
    found = kinds(events)
    if change == {"session": SESSION}:
        assert found == []
    else:
        assert found == [(ProblemKind.BAD_SIGNATURE, ActorRole.USER, 3)]


def test_an_edited_report_is_caught_and_not_believed() -> None:
    events = record()
    i = next(i for i, e in enumerate(events) if e.kind == "report.filed")
    events[i] = _edit(events[i], payload=report(outcome="Not resolved", account="mallory"))
    result = verify_log(events, TRUST)
    assert [p.kind for p in result.problems] == [ProblemKind.BAD_SIGNATURE]
    assert "report.filed" in result.problems[0].text
    assert result.report is None


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_any_field_of_any_event_edited_is_caught(data: st.DataObject) -> None:
    events = record()
    i = data.draw(st.integers(0, len(events) - 1))
    event = events[i]
    field = data.draw(st.sampled_from(["seq", "ts_ms", "prev", "signature", "session", "payload"]))
    if field == "seq":
        new: object = event.seq + data.draw(st.integers(1, 5))
    elif field == "ts_ms":
        new = event.ts_ms + data.draw(st.integers(1, 10**6))
    elif field in ("prev", "signature"):
        old: bytes = getattr(event, field)
        bit = data.draw(st.integers(0, len(old) * 8 - 1))
        new = bytes(b ^ (1 << (bit % 8)) if n == bit // 8 else b for n, b in enumerate(old))
    elif field == "session":
        new = SESSION + "x"
    else:
        new = SessionEnded("forged", abnormal=True, by_peer=False)
    events[i] = _edit(event, **{field: new})
    assert not verify_log(events, TRUST).ok


def test_a_deleted_event_without_a_seal_is_missing() -> None:
    u, t = streams(with_report=False)  # the technician's events are not sealed
    del t[1]
    found = kinds([*u, *t])
    assert (ProblemKind.MISSING, ActorRole.TECHNICIAN, 2) in found
    assert (ProblemKind.NOT_SEALED, ActorRole.TECHNICIAN, None) in found
    assert all(k[0] is not ProblemKind.BROKEN_CHAIN for k in found)


def test_reordered_events_are_out_of_order_only() -> None:
    u, t = streams()
    t[2], t[3] = t[3], t[2]
    assert kinds([*u, *t]) == [(ProblemKind.OUT_OF_ORDER, ActorRole.TECHNICIAN, 3)]


def test_truncated_tail_is_not_sealed() -> None:
    u, t = streams()
    result = verify_log([*u, *t[:-3]], TRUST)
    assert [(p.kind, p.role) for p in result.problems] == [
        (ProblemKind.NOT_SEALED, ActorRole.TECHNICIAN)
    ]
    assert "after event 4" in result.problems[0].text
    assert result.report_state is ReportState.NONE


def test_an_inserted_forgery_is_caught() -> None:
    u, t = streams()
    forger = RecordLog(SESSION, ActorRole.USER, fixed_key(9))
    forger._seq, forger._head = 2, u[1].hash  # splice in after the user's event 2
    forged = forger.append(CapabilityGranted(Capability.FILES), T0 + 22)
    found = kinds([*t, *u[:2], forged, *u[2:]])
    assert found == [(ProblemKind.UNTRUSTED_KEY, ActorRole.USER, 3)]


def test_an_event_after_the_seal_is_caught() -> None:
    u, t = streams()
    log = RecordLog.resume(u[-1], USER_KEY)
    log._sealed = False  # a broken or hostile client signing on
    extra = log.append(CapabilityGranted(Capability.FILES), T0 + 200)
    assert kinds([*t, *u, extra]) == [(ProblemKind.AFTER_SEAL, ActorRole.USER, 10)]


def test_a_fork_is_caught() -> None:
    u, t = streams()
    log = RecordLog.resume(u[2], USER_KEY)
    other = log.append(CapabilityGranted(Capability.FILES), T0 + 21)
    found = kinds([*t, *u, other])
    assert (ProblemKind.FORK, ActorRole.USER, 4) in found


def test_a_duplicate_is_reported_once() -> None:
    u, t = streams()
    assert kinds([*t, *u, u[4]]) == [
        (ProblemKind.OUT_OF_ORDER, ActorRole.USER, 5),
        (ProblemKind.DUPLICATE, ActorRole.USER, 5),
    ]


def test_a_broken_chain_is_caught() -> None:
    u, t = streams()
    log = RecordLog(SESSION, ActorRole.TECHNICIAN, TECH_KEY)
    log._seq = 2  # a technician app re-signing event 3 onto a made-up history
    t[2:] = [log.append(e.payload, e.ts_ms) if e.seq == 3 else e for e in t[2:]]
    found = kinds([*u, *t])
    assert found[0] == (ProblemKind.BROKEN_CHAIN, ActorRole.TECHNICIAN, 3)


def test_an_event_from_another_session_is_named() -> None:
    u, t = streams()
    other = RecordLog("other", ActorRole.USER, USER_KEY).append(
        CapabilityGranted(Capability.FILES), T0
    )
    found = kinds([*t, *u, other])
    assert found == [(ProblemKind.WRONG_SESSION, ActorRole.USER, 1)]


# --- case 45: the technician withholds user events ----------------------------


def test_withheld_user_events_are_detected_from_the_seal() -> None:
    u, t = streams()
    handed_over = [e for e in u if e.seq not in (4, 5, 6)]
    result = verify_log([*t, *handed_over], TRUST)
    assert [(p.kind, p.role, p.seq) for p in result.problems] == [
        (ProblemKind.WITHHELD, ActorRole.USER, 4)
    ]
    assert "signed 8 events before closing, but only 5" in result.problems[0].text
    assert "4 to 6" in result.problems[0].text


def test_withheld_tail_and_seal_are_detected() -> None:
    u, t = streams()
    assert kinds([*t, *u[:4]]) == [(ProblemKind.NOT_SEALED, ActorRole.USER, None)]


def test_withheld_user_stream_is_detected() -> None:
    _, t = streams()
    assert kinds(t) == [(ProblemKind.NO_STREAM, ActorRole.USER, None)]


def _signed(event: SignedEvent, key: Ed25519PrivateKey) -> SignedEvent:
    """event signed as is by key: what a side holding its key can make."""
    return dataclasses.replace(event, signature=key.sign(signed_data(CONTEXT, event.body_bytes)))


def test_a_seal_that_lies_about_its_count_is_caught() -> None:
    u, t = streams()
    seal = u[-1]
    lying = _signed(dataclasses.replace(seal, payload=StreamSealed(5, seal.prev.hex())), USER_KEY)
    assert kinds([*t, *u[:-1], lying]) == [(ProblemKind.SEAL_MISMATCH, ActorRole.USER, 9)]


# --- keys and actors ----------------------------------------------------------


def test_wrong_actor_key_is_detected() -> None:
    trust = dataclasses.replace(TRUST, technician=frozenset({bytes(32)}))
    found = kinds(record(), trust)
    assert {k[0] for k in found} == {ProblemKind.UNTRUSTED_KEY}
    assert {k[1] for k in found} == {ActorRole.TECHNICIAN}
    assert len(found) == 7


def test_a_key_trusted_for_one_role_is_not_trusted_for_another() -> None:
    # The technician signs events claiming to be the user's.
    posing = RecordLog(SESSION, ActorRole.USER, TECH_KEY)
    fake_user = [posing.append(CapabilityGranted(Capability.CONTROL), T0), posing.seal(T0 + 1)]
    _, t = streams()
    found = kinds([*t, *fake_user])
    assert found == [
        (ProblemKind.UNTRUSTED_KEY, ActorRole.USER, 1),
        (ProblemKind.UNTRUSTED_KEY, ActorRole.USER, 2),
    ]


def test_a_kind_signed_by_the_wrong_role_is_caught() -> None:
    # A user client signing a closing report, which only the technician files.
    u, t = streams()
    forged = _signed(dataclasses.replace(u[0], payload=report()), USER_KEY)
    found = kinds([*t, forged, *u[1:]])
    assert found == [
        (ProblemKind.WRONG_ACTOR, ActorRole.USER, 1),
        (ProblemKind.BROKEN_CHAIN, ActorRole.USER, 2),
    ]


# --- the report: missing, then amended ----------------------------------------


def test_ended_without_a_report_then_amended() -> None:
    u, t = streams(with_report=False)
    tech = RecordLog.resume(t[-1], TECH_KEY)
    t.append(tech.append(ReportMissing(), T0 + 100))
    t.append(tech.seal(T0 + 101))
    result = verify_log([*u, *t], TRUST)
    assert result.ok and result.report_state is ReportState.ENDED_WITHOUT_REPORT
    assert result.report is None

    # Days later, after a restart, from the stored last event.
    later = RecordLog.resume(t[-1], TECH_KEY)
    amendment = ReportAmended(**payload_to_json(report(notes="Filed late")))  # type: ignore[arg-type]
    t.append(later.append(amendment, T0 + 86_400_000))
    result = verify_log([*u, *t], TRUST)
    assert result.ok, result.problems
    assert result.report_state is ReportState.AMENDED
    assert result.report == amendment

    # A correction by a renewed certificate's key, trusted alongside the old.
    renewed = fixed_key(7)
    renewed_public = public_key_bytes(renewed)
    fix = ReportAmended(**payload_to_json(report(outcome="Escalated")))  # type: ignore[arg-type]
    last = t[-1]
    unsigned = SignedEvent(
        SESSION,
        last.seq + 1,
        T0 + 2 * 86_400_000,
        Actor(ActorRole.TECHNICIAN, renewed_public),
        fix,
        last.hash,
        b"",
    )
    t.append(_signed(unsigned, renewed))
    trust = dataclasses.replace(TRUST, technician=TRUST.technician | {renewed_public})
    result = verify_log([*u, *t], trust)
    assert result.ok and result.report == fix
    assert not verify_log([*u, *t], TRUST).ok  # not without the renewed key


def test_an_amendment_before_the_seal_is_misplaced() -> None:
    u, t = streams(with_report=False)
    tech = RecordLog.resume(t[-1], TECH_KEY)
    tech._sealed = True  # as a hostile app would
    amendment = ReportAmended(**payload_to_json(report()))  # type: ignore[arg-type]
    t.append(tech.append(amendment, T0 + 100))
    found = kinds([*u, *t])
    assert found == [
        (ProblemKind.MISPLACED_AMENDMENT, ActorRole.TECHNICIAN, 6),
        (ProblemKind.NOT_SEALED, ActorRole.TECHNICIAN, None),
    ]


# --- the relay's stream, and bundles ------------------------------------------


def test_the_relay_stream_verifies_and_may_be_required() -> None:
    relay = RecordLog(SESSION, ActorRole.RELAY, RELAY_KEY)
    r = [
        relay.append(PeerJoined(ActorRole.USER), T0 - 5),
        relay.append(PeerJoined(ActorRole.TECHNICIAN), T0 - 4),
        relay.append(PeerLeft(ActorRole.TECHNICIAN), T0 + 95),
        relay.seal(T0 + 96),
    ]
    everything = frozenset(ActorRole)
    assert verify_log([*record(), *r], TRUST, required=everything).ok
    assert kinds(record(), TRUST) == []
    found = verify_log(record(), TRUST, required=everything).problems
    assert [(p.kind, p.role) for p in found] == [(ProblemKind.NO_STREAM, ActorRole.RELAY)]


def test_unreadable_lines_are_named_and_the_rest_checked() -> None:
    lines = [e.to_bytes() for e in record()]
    lines.insert(3, b'{"event": "spaced"}')
    result = verify_lines(lines, TRUST)
    assert [p.kind for p in result.problems] == [ProblemKind.UNREADABLE]
    assert result.problems[0].text.startswith("Line 4 is not a record event")


def test_an_empty_record() -> None:
    result = verify_log([], TRUST)
    assert {p.kind for p in result.problems} == {ProblemKind.NO_STREAM}
    assert result.session is None


def test_verification_of_a_long_session_is_quick() -> None:
    log = RecordLog(SESSION, ActorRole.USER, USER_KEY)
    events = [log.append(CapabilityGranted(Capability.VIEW), T0 + i) for i in range(2000)]
    events.append(log.seal(T0 + 2000))
    assert verify_log(events, TRUST, required=frozenset({ActorRole.USER})).ok
