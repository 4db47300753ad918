"""Check a session's record offline: signatures, chains, order, and what was withheld.

:func:`verify_log` takes the events of one session (from any number of
uploads, in the order they were stored) and the keys each role is trusted
to sign with, and returns a :class:`Verification`: a typed list of
problems, each saying in plain words what is wrong and which event it
concerns, for a supervisor to read. Nothing raises on bad input.

How each kind of tampering shows (security.md 9 cases 44 and 45):

- an edited event: its signature fails (``BAD_SIGNATURE``); re-signed with
  another key, the key is not trusted (``UNTRUSTED_KEY``);
- a deleted event: a gap in the actor's numbers (``MISSING``), or, in a
  stream whose closing event says how many came before, ``WITHHELD``;
- reordered events: ``OUT_OF_ORDER`` (the chain itself still holds);
- an inserted event: a second event with the same number (``FORK`` if both
  are validly signed: the actor signed two histories), a bad signature, or
  an event after the closing one (``AFTER_SEAL``);
- a cut tail: no closing event (``NOT_SEALED``);
- a stream left out entirely: ``NO_STREAM``.

A technician who re-signs its own stream from the edit onwards is not
caught here: that is what the relay's Merkle log and the witnesses are for.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.crypto.signing_keys import key_fingerprint, signed_data
from common.record.events import (
    ActorRole,
    EventKind,
    ReportAmended,
    ReportFiled,
    StreamSealed,
)
from common.record.jcs import RecordFormatError
from common.record.log import CONTEXT, GENESIS, SignedEvent, parse_event


__all__ = [
    "Problem",
    "ProblemKind",
    "RecordTrust",
    "ReportState",
    "StreamSummary",
    "Verification",
    "verify_lines",
    "verify_log",
]


class ProblemKind(enum.StrEnum):
    UNREADABLE = "unreadable"  # a line of a bundle is not a record event
    WRONG_SESSION = "wrong-session"
    UNTRUSTED_KEY = "untrusted-key"
    BAD_SIGNATURE = "bad-signature"
    WRONG_ACTOR = "wrong-actor"  # a kind this role may not sign
    DUPLICATE = "duplicate"
    FORK = "fork"
    OUT_OF_ORDER = "out-of-order"
    MISSING = "missing"
    WITHHELD = "withheld"
    BROKEN_CHAIN = "broken-chain"
    TIME_BACKWARDS = "time-backwards"
    SEAL_MISMATCH = "seal-mismatch"
    AFTER_SEAL = "after-seal"
    MISPLACED_AMENDMENT = "misplaced-amendment"
    NOT_SEALED = "not-sealed"
    NO_STREAM = "no-stream"


class ReportState(enum.StrEnum):
    FILED = "filed"
    AMENDED = "amended"  # added or corrected after the session
    ENDED_WITHOUT_REPORT = "ended-without-report"
    NONE = "none"  # no word about a report at all (a crash, or a cut stream)


_WHO = {
    ActorRole.USER: "the user's device",
    ActorRole.TECHNICIAN: "the technician",
    ActorRole.RELAY: "the relay",
}
_STREAM = {
    ActorRole.USER: "the user's events",
    ActorRole.TECHNICIAN: "the technician's events",
    ActorRole.RELAY: "the relay's events",
}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a record.

    Attributes:
        kind: what kind of problem.
        role: whose stream it is in (None: not tied to a stream).
        seq: the event's number in that stream (None: not one event).
        text: a plain sentence for a supervisor, naming the event.
    """

    kind: ProblemKind
    role: ActorRole | None
    seq: int | None
    text: str

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class StreamSummary:
    """What one actor's stream holds after checking.

    Attributes:
        events: how many distinct events are present.
        last_seq: the highest event number present.
        sealed: the closing event is present.
        signed_count: what the closing event says came before it (None if unsealed).
    """

    events: int
    last_seq: int
    sealed: bool
    signed_count: int | None


@dataclasses.dataclass(frozen=True)
class Verification:
    """The result of :func:`verify_log`.

    Attributes:
        session: the session id the record is about.
        problems: every problem found, in stream order (empty when it all checks).
        streams: a summary per role present.
        report: the report in force (the last amendment, or the filed one).
        report_state: filed, amended, ended without a report, or none.
    """

    session: str | None
    problems: tuple[Problem, ...]
    streams: Mapping[ActorRole, StreamSummary]
    report: ReportFiled | ReportAmended | None
    report_state: ReportState

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[ProblemKind]:
        return {p.kind for p in self.problems}


@dataclasses.dataclass(frozen=True)
class RecordTrust:
    """The public keys each role may sign with (raw 32-byte Ed25519 keys).

    The technician's keys come from certificates already checked against
    the organisation key (a renewed certificate gives a second key); the
    user's is the device key; the relay's is its record key.
    """

    user: frozenset[bytes] = frozenset()
    technician: frozenset[bytes] = frozenset()
    relay: frozenset[bytes] = frozenset()

    def keys(self, role: ActorRole) -> frozenset[bytes]:
        return {ActorRole.USER: self.user, ActorRole.TECHNICIAN: self.technician}.get(
            role, self.relay
        )


DEFAULT_REQUIRED = frozenset({ActorRole.USER, ActorRole.TECHNICIAN})


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> "3 to 5, 9"."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start} to {prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


class _Checker:
    def __init__(self, trust: RecordTrust) -> None:
        self.trust = trust
        self.problems: list[Problem] = []
        self._keys: dict[bytes, Ed25519PublicKey] = {}

    def add(self, kind: ProblemKind, role: ActorRole | None, seq: int | None, text: str) -> None:
        self.problems.append(Problem(kind, role, seq, text))

    def signature_ok(self, event: SignedEvent) -> bool:
        key = self._keys.get(event.actor.key)
        if key is None:
            key = self._keys[event.actor.key] = Ed25519PublicKey.from_public_bytes(event.actor.key)
        try:
            key.verify(event.signature, signed_data(CONTEXT, event.body_bytes))
        except InvalidSignature:
            return False
        return True


def verify_log(
    events: Iterable[SignedEvent],
    trust: RecordTrust,
    *,
    session: str | None = None,
    required: frozenset[ActorRole] = DEFAULT_REQUIRED,
) -> Verification:
    """Check every event of one session and report each problem found.

    Args:
        events: the session's events, in the order they were stored.
        trust: the keys each role may sign with.
        session: the session id expected (default: the first event's).
        required: the roles whose streams must be present.
    """
    checker = _Checker(trust)
    all_events = list(events)
    if session is None and all_events:
        session = all_events[0].session
    valid: set[int] = set()  # ids of events whose key and signature check
    streams: dict[ActorRole, list[SignedEvent]] = {}
    for event in all_events:
        role, seq = event.actor.role, event.seq
        if event.session != session:
            checker.add(
                ProblemKind.WRONG_SESSION,
                role,
                seq,
                f"Event {seq} of {_STREAM[role]} belongs to another session ({event.session}).",
            )
            continue
        if event.actor.key not in trust.keys(role):
            checker.add(
                ProblemKind.UNTRUSTED_KEY,
                role,
                seq,
                f"Event {seq} of {_STREAM[role]} is signed with a key that is not {_WHO[role]}'s "
                f"(fingerprint {key_fingerprint(event.actor.key)}).",
            )
        elif not checker.signature_ok(event):
            checker.add(
                ProblemKind.BAD_SIGNATURE,
                role,
                seq,
                f"Event {seq} of {_STREAM[role]} ({event.kind}) was changed after "
                f"{_WHO[role]} signed it: its signature does not match.",
            )
        else:
            valid.add(id(event))
        if role not in event.payload.ROLES:
            checker.add(
                ProblemKind.WRONG_ACTOR,
                role,
                seq,
                f"Event {seq} of {_STREAM[role]} is a {event.kind}, which {_WHO[role]} "
                "never records.",
            )
        streams.setdefault(role, []).append(event)

    summaries: dict[ActorRole, StreamSummary] = {}
    chosen: dict[ActorRole, list[SignedEvent]] = {}
    for role in ActorRole:
        if role in streams:
            chosen[role], summaries[role] = _check_stream(checker, role, streams[role], valid)
        elif role in required:
            checker.add(
                ProblemKind.NO_STREAM,
                role,
                None,
                f"The record holds none of {_STREAM[role]}: they were left out.",
            )
    report, state = _report(chosen.get(ActorRole.TECHNICIAN, []), valid)
    return Verification(session, tuple(checker.problems), summaries, report, state)


def _check_stream(
    checker: _Checker, role: ActorRole, given: list[SignedEvent], valid: set[int]
) -> tuple[list[SignedEvent], StreamSummary]:
    what = _STREAM[role]
    # Order as stored: an event numbered below one stored before it was moved.
    highest = 0
    for event in given:
        if event.seq < highest:
            checker.add(
                ProblemKind.OUT_OF_ORDER,
                role,
                event.seq,
                f"Event {event.seq} of {what} is stored after event {highest}: "
                "the events were reordered.",
            )
        highest = max(highest, event.seq)

    # One event per number: identical copies are duplicates; if copies
    # differ, a validly signed one wins, and two validly signed ones are a fork.
    by_seq: dict[int, list[SignedEvent]] = {}
    for event in given:
        by_seq.setdefault(event.seq, []).append(event)
    ordered: list[SignedEvent] = []
    for seq in sorted(by_seq):
        copies = by_seq[seq]
        distinct: dict[bytes, SignedEvent] = {}
        genuine: list[bytes] = []
        for copy in copies:
            spelling = copy.body_bytes + copy.signature
            distinct.setdefault(spelling, copy)
            if id(copy) in valid and spelling not in genuine:
                genuine.append(spelling)
        if len(distinct) < len(copies):
            checker.add(
                ProblemKind.DUPLICATE, role, seq, f"Event {seq} of {what} is stored more than once."
            )
        if len(genuine) > 1:
            checker.add(
                ProblemKind.FORK,
                role,
                seq,
                f"{_WHO[role].capitalize()} signed {len(genuine)} different events numbered "
                f"{seq}: two versions of the same history.",
            )
        pick = distinct[genuine[0]] if genuine else next(iter(distinct.values()))
        if genuine:
            valid.add(id(pick))
        ordered.append(pick)

    missing: list[int] = []
    expected, prev_hash, prev_ts, prev_valid = 1, GENESIS, 0, True
    seal: SignedEvent | None = None
    for event in ordered:
        seq = event.seq
        # What an edited or forged event claims (its link, its time) means
        # nothing: its signature problem already says it all.
        genuine_pair = prev_valid and id(event) in valid
        if seq > expected:
            missing.extend(range(expected, seq))
        elif event.prev != prev_hash and genuine_pair:
            checker.add(
                ProblemKind.BROKEN_CHAIN,
                role,
                seq,
                f"Event {seq} of {what} does not follow event {seq - 1}: the chain is broken "
                "(an event before it was replaced).",
            )
        if event.ts_ms < prev_ts and genuine_pair:
            checker.add(
                ProblemKind.TIME_BACKWARDS,
                role,
                seq,
                f"Event {seq} of {what} is dated before the event before it.",
            )
        payload = event.payload
        if seal is not None and not isinstance(payload, ReportAmended):
            checker.add(
                ProblemKind.AFTER_SEAL,
                role,
                seq,
                f"Event {seq} of {what} ({event.kind}) comes after {_WHO[role]} closed its "
                f"events at event {seal.seq}.",
            )
        elif seal is None and isinstance(payload, ReportAmended):
            checker.add(
                ProblemKind.MISPLACED_AMENDMENT,
                role,
                seq,
                f"Event {seq} of {what} amends the report before the session's events were closed.",
            )
        if isinstance(payload, StreamSealed) and seal is None:
            seal = event
            if payload.count != seq - 1 or payload.last_hash != event.prev.hex():
                checker.add(
                    ProblemKind.SEAL_MISMATCH,
                    role,
                    seq,
                    f"The closing event of {what} (event {seq}) says {payload.count} events came "
                    "before it, with a last hash that does not match them.",
                )
        expected, prev_hash, prev_ts, prev_valid = (
            seq + 1,
            event.hash,
            event.ts_ms,
            id(event) in valid,
        )

    if missing:
        if seal is not None and all(n < seal.seq for n in missing):
            signed = seal.seq - 1
            checker.add(
                ProblemKind.WITHHELD,
                role,
                missing[0],
                f"{_WHO[role].capitalize()} signed {signed} events before closing, but only "
                f"{signed - len(missing)} are in the record: events {_ranges(missing)} were "
                "withheld or lost.",
            )
        else:
            checker.add(
                ProblemKind.MISSING,
                role,
                missing[0],
                f"Events {_ranges(missing)} of {what} are missing.",
            )
    if seal is None:
        checker.add(
            ProblemKind.NOT_SEALED,
            role,
            None,
            f"{what.capitalize()} have no closing event after event {ordered[-1].seq}: "
            f"later events may have been cut off, or {_WHO[role]} stopped before the end.",
        )
    summary = StreamSummary(
        events=len(ordered),
        last_seq=ordered[-1].seq,
        sealed=seal is not None,
        signed_count=seal.seq - 1 if seal is not None else None,
    )
    return ordered, summary


def _report(
    events: list[SignedEvent], valid: set[int]
) -> tuple[ReportFiled | ReportAmended | None, ReportState]:
    report: ReportFiled | ReportAmended | None = None
    state = ReportState.NONE
    for event in events:
        if id(event) not in valid:
            continue  # a forged or edited report does not count
        payload = event.payload
        if isinstance(payload, ReportAmended):
            report, state = payload, ReportState.AMENDED
        elif isinstance(payload, ReportFiled):
            report, state = payload, ReportState.FILED
        elif event.kind is EventKind.REPORT_MISSING and report is None:
            state = ReportState.ENDED_WITHOUT_REPORT
    return report, state


def verify_lines(
    lines: Iterable[bytes],
    trust: RecordTrust,
    *,
    session: str | None = None,
    required: frozenset[ActorRole] = DEFAULT_REQUIRED,
) -> Verification:
    """Parse a bundle's event lines (blank lines skipped), then :func:`verify_log` them.

    A line that is not a record event is reported as ``UNREADABLE`` with its
    line number, and the rest are still checked.
    """
    events: list[SignedEvent] = []
    unreadable: list[Problem] = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            events.append(parse_event(line))
        except RecordFormatError as e:
            unreadable.append(
                Problem(
                    ProblemKind.UNREADABLE,
                    None,
                    None,
                    f"Line {number} is not a record event ({e}).",
                )
            )
    result = verify_log(events, trust, session=session, required=required)
    return dataclasses.replace(result, problems=(*unreadable, *result.problems))
