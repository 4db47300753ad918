"""Support-record events: every kind round-trips through canonical JSON; bad ones are refused."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing

import pytest
from hypothesis import given, settings, strategies as st

from common.errors import InvalidState
from common.record.events import (
    PAYLOADS,
    ActorRole,
    ChatMessage,
    Direction,
    EventKind,
    Payload,
    ReportAmended,
    ReportMissing,
    SessionEnded,
    StreamSealed,
    chat_message,
    payload_from_json,
    payload_to_json,
    sha256_hex,
)
from common.record.jcs import MAX_SAFE_INTEGER, RecordFormatError, canonicalize, parse_canonical
from common.record.log import GENESIS, RecordLog, SignedEvent, parse_event
from tests.unit.common.record_helpers import SESSION, T0, TECH_KEY, USER_KEY, report


def test_every_kind_has_one_payload_and_roles() -> None:
    assert set(PAYLOADS) == set(EventKind)
    for kind, cls in PAYLOADS.items():
        assert cls.KIND is kind
        assert cls.ROLES


def _strategy_for(cls: type[Payload]) -> st.SearchStrategy[Payload]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[object]] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        options: list[st.SearchStrategy[object]] = []
        for t in members:
            if t is type(None):
                options.append(st.none())
            elif t is bool:
                options.append(st.booleans())
            elif t is int:
                options.append(st.integers(0, MAX_SAFE_INTEGER))
            elif isinstance(t, type) and issubclass(t, enum.Enum):
                options.append(st.sampled_from(list(t)))
            elif "hex" in f.metadata:
                options.append(st.binary(min_size=32, max_size=32).map(bytes.hex))
            else:
                options.append(st.text(max_size=40))
        fields[f.name] = st.one_of(options)
    return st.builds(cls, **fields)


def _any_payload() -> st.SearchStrategy[Payload]:
    plain = [_strategy_for(c) for c in PAYLOADS.values() if c is not ChatMessage]
    chats = st.builds(
        chat_message, st.text(max_size=40), st.sampled_from(Direction), keep_text=st.booleans()
    )
    return st.one_of([*plain, chats])


@settings(max_examples=300)
@given(_any_payload())
def test_payload_round_trip(payload: Payload) -> None:
    data = canonicalize(payload_to_json(payload))
    assert payload_from_json(payload.KIND, parse_canonical(data)) == payload


@settings(max_examples=100, deadline=None)
@given(_any_payload(), st.integers(0, MAX_SAFE_INTEGER))
def test_signed_event_round_trip(payload: Payload, ts: int) -> None:
    role = next(iter(sorted(payload.ROLES)))
    key = USER_KEY
    event = SignedEvent(
        SESSION, 1, ts, RecordLog(SESSION, role, key).actor, payload, GENESIS, b"s" * 64
    )
    again = parse_event(event.to_bytes())
    assert again == event
    assert again.hash == event.hash
    assert again.to_bytes() == event.to_bytes()


def test_the_canonical_bytes_of_an_event() -> None:
    log = RecordLog(SESSION, ActorRole.TECHNICIAN, TECH_KEY)
    event = log.append(SessionEnded("technician-ended", abnormal=False, by_peer=False), T0)
    key = log.actor.key.hex()
    assert (
        event.body_bytes
        == (
            f'{{"actor":{{"key":"{key}","role":"technician"}},'
            '"data":{"abnormal":false,"by_peer":false,"reason":"technician-ended"},'
            f'"kind":"session.ended","prev":"{"00" * 32}","seq":1,"session":"{SESSION}",'
            f'"ts_ms":{T0},"v":1}}'
        ).encode()
    )
    assert (
        event.to_bytes()
        == b'{"event":' + event.body_bytes + b',"sig":"' + event.signature.hex().encode() + b'"}'
    )


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (EventKind.SESSION_ENDED, {"reason": "x", "abnormal": False}, "missing"),
        (EventKind.SESSION_ENDED, {"reason": "x", "abnormal": 0, "by_peer": False}, "wrong type"),
        (
            EventKind.SESSION_ENDED,
            {"reason": "x", "abnormal": False, "by_peer": False, "more": 1},
            "unknown",
        ),
        (EventKind.CAPABILITY_GRANTED, {"capability": "root"}, "unknown value"),
        (EventKind.CAPABILITY_GRANTED, {"capability": None}, "may not be null"),
        (EventKind.STREAM_SEALED, {"count": -1, "last_hash": "00" * 32}, "out of range"),
        (EventKind.STREAM_SEALED, {"count": True, "last_hash": "00" * 32}, "wrong type"),
        (EventKind.STREAM_SEALED, {"count": 1, "last_hash": "AB" * 32}, "hex"),
        (EventKind.STREAM_SEALED, {"count": 1, "last_hash": "00" * 31}, "hex"),
        (EventKind.PAIRING_FAILED, {"reason": "x" * 10_000}, "too long"),
        (
            EventKind.CHAT_MESSAGE,
            {"direction": "to-user", "size": 5, "sha256": sha256_hex(b"hello"), "text": "hellO"},
            "does not match",
        ),
    ],
)
def test_bad_payloads_are_refused(kind: EventKind, data: dict[str, object], message: str) -> None:
    with pytest.raises(RecordFormatError, match=message):
        payload_from_json(kind, data)


def test_chat_keeps_the_text_or_only_its_hash() -> None:
    kept = chat_message("héllo", Direction.TO_USER, keep_text=True)
    hashed = chat_message("héllo", Direction.TO_USER, keep_text=False)
    assert kept.text == "héllo" and hashed.text is None
    assert kept.sha256 == hashed.sha256 == sha256_hex("héllo".encode())
    assert kept.size == hashed.size == 6
    assert "héllo" not in canonicalize(payload_to_json(hashed)).decode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}",
        b'{"event":{},"sig":""}',
        b"[1]",
    ],
)
def test_parse_event_refuses_garbage(data: bytes) -> None:
    with pytest.raises(RecordFormatError):
        parse_event(data)


def test_parse_event_refuses_unknown_kind_version_and_role() -> None:
    log = RecordLog(SESSION, ActorRole.USER, USER_KEY)
    good = log.append(chat_message("x", Direction.TO_USER, keep_text=True), T0)
    for old, new in [
        (b'"kind":"chat.message"', b'"kind":"chat.shout"'),
        (b'"v":1', b'"v":2'),
        (b'"role":"user"', b'"role":"admin"'),
        (b'"seq":1', b'"seq":0'),
    ]:
        with pytest.raises(RecordFormatError):
            parse_event(good.to_bytes().replace(old, new))


@given(st.binary(max_size=300))
def test_parse_event_raises_only_record_format_error(data: bytes) -> None:
    try:
        parse_event(data)
    except RecordFormatError:
        pass


# --- the log ------------------------------------------------------------------


def test_log_numbers_and_chains_its_events() -> None:
    log = RecordLog(SESSION, ActorRole.USER, USER_KEY)
    a = log.append(chat_message("a", Direction.TO_USER, keep_text=False), T0)
    b = log.append(chat_message("b", Direction.TO_USER, keep_text=False), T0 + 5)
    assert (a.seq, b.seq) == (1, 2)
    assert a.prev == GENESIS and b.prev == a.hash
    assert log.count == 2 and log.head == b.hash
    seal = log.seal(T0 + 6)
    assert seal.payload == StreamSealed(2, b.hash.hex())
    assert log.sealed


def test_times_never_go_backwards() -> None:
    log = RecordLog(SESSION, ActorRole.USER, USER_KEY)
    log.append(chat_message("a", Direction.TO_USER, keep_text=False), T0)
    assert log.append(chat_message("b", Direction.TO_USER, keep_text=False), T0 - 1000).ts_ms == T0


def test_a_role_may_only_record_its_own_kinds() -> None:
    log = RecordLog(SESSION, ActorRole.USER, USER_KEY)
    with pytest.raises(ValueError, match="may not record"):
        log.append(report(), T0)
    with pytest.raises(ValueError, match="seal"):
        log.append(StreamSealed(0, GENESIS.hex()), T0)


def test_after_the_seal_only_amendments() -> None:
    log = RecordLog(SESSION, ActorRole.TECHNICIAN, TECH_KEY)
    amendment = ReportAmended(**payload_to_json(report()))  # type: ignore[arg-type]
    with pytest.raises(InvalidState, match="after the stream is sealed"):
        log.append(amendment, T0)
    log.append(ReportMissing(), T0)
    log.seal(T0)
    with pytest.raises(InvalidState, match="sealed"):
        log.append(ReportMissing(), T0)
    with pytest.raises(InvalidState, match="already sealed"):
        log.seal(T0)
    assert log.append(amendment, T0 + 1).seq == 3


def test_resume_goes_on_from_the_last_event() -> None:
    log = RecordLog(SESSION, ActorRole.TECHNICIAN, TECH_KEY)
    log.append(ReportMissing(), T0)
    seal = log.seal(T0 + 1)
    again = RecordLog.resume(parse_event(seal.to_bytes()), TECH_KEY)
    assert again.sealed and again.count == 2 and again.head == seal.hash
    with pytest.raises(ValueError, match="another key"):
        RecordLog.resume(seal, USER_KEY)
