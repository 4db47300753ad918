"""The pure receive state machine (security.md 5.1, 5.5, 9 cases 39 and 40)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from common.errors import InvalidState
from common.files.receive import (
    CreatePartial,
    DeletePartial,
    FileReceiver,
    Finalise,
    Offer,
    ReceiveState,
    WriteAt,
)
from common.files.refusal import Refusal, TransferRefused


TID = bytes(range(16))
DATA = b"hello, world\n" * 100


def offer(data: bytes = DATA, name: str = "notes.txt", size: int | None = None) -> Offer:
    declared = len(data) if size is None else size
    return Offer(TID, name, declared, hashlib.sha256(data).digest())


def accepted(o: Offer) -> FileReceiver:
    r = FileReceiver(o)
    assert r.accept() == [CreatePartial(r.safe_name.name, TID)]
    assert state_of(r) is ReceiveState.ACCEPTED
    return r


def state_of(r: FileReceiver) -> ReceiveState:
    """r.state, without mypy narrowing it across calls that change it."""
    return r.state


def test_happy_path_in_chunks() -> None:
    r = accepted(offer())
    assert r.on_chunk(0, DATA[:500]) == [WriteAt(0, DATA[:500])]
    assert state_of(r) is ReceiveState.RECEIVING
    assert r.on_chunk(500, DATA[500:]) == [WriteAt(500, DATA[500:])]
    assert r.on_end() == [Finalise("notes.txt")]
    assert state_of(r) is ReceiveState.VERIFYING
    assert r.on_end() == []  # a repeated end changes nothing
    r.finalised("notes (1).txt")
    assert state_of(r) is ReceiveState.DONE and r.final_name == "notes (1).txt"
    assert r.sha256() == hashlib.sha256(DATA).digest()
    assert r.on_chunk(len(DATA), b"x") == [] and r.cancel() == []


def test_empty_file() -> None:
    r = accepted(offer(b""))
    assert r.on_end() == [Finalise("notes.txt")]


def test_offer_name_is_sanitised() -> None:
    r = FileReceiver(offer(name="../../.bashrc"))
    assert r.safe_name.name == "bashrc"
    assert r.accept() == [CreatePartial("bashrc", TID)]


def test_one_byte_more_than_declared_fails_before_writing() -> None:
    r = accepted(offer(size=10))
    assert r.on_chunk(0, b"0123456789"[:9]) == [WriteAt(0, b"012345678")]
    assert r.on_chunk(9, b"9X") == [DeletePartial()]
    assert state_of(r) is ReceiveState.FAILED and r.reason is Refusal.SIZE_EXCEEDED
    assert r.received == 9


def test_declared_1kib_streamed_10mib() -> None:
    r = accepted(Offer(TID, "x", 1024, bytes(32)))
    actions = r.on_chunk(0, b"a" * 1024)
    assert actions == [WriteAt(0, b"a" * 1024)]
    assert r.on_chunk(1024, b"a") == [DeletePartial()]
    assert r.reason is Refusal.SIZE_EXCEEDED
    for i in range(10):  # the rest, already in flight, is ignored
        assert r.on_chunk(1025 + i, b"a" * 1024) == []


def test_chunk_after_verified_end_fails() -> None:
    r = accepted(offer(b"ab"))
    r.on_chunk(0, b"ab")
    r.on_end()
    assert r.on_chunk(2, b"c") == [DeletePartial()]
    assert r.reason is Refusal.SIZE_EXCEEDED
    with pytest.raises(InvalidState):
        r.finalised("x")


def test_sha256_mismatch_deletes_the_partial() -> None:
    r = accepted(Offer(TID, "x", 3, hashlib.sha256(b"abd").digest()))
    r.on_chunk(0, b"abc")
    assert r.on_end() == [DeletePartial()]
    assert state_of(r) is ReceiveState.FAILED and r.reason is Refusal.HASH_MISMATCH


def test_short_stream_is_truncated() -> None:
    r = accepted(offer())
    r.on_chunk(0, DATA[:10])
    assert r.on_end() == [DeletePartial()]
    assert r.reason is Refusal.TRUNCATED


@pytest.mark.parametrize("offset", [1, 9, 11, -1])
def test_gaps_and_overlaps_fail(offset: int) -> None:
    r = accepted(offer())
    r.on_chunk(0, DATA[:10])
    assert r.on_chunk(offset, DATA[10:20]) == [DeletePartial()]
    assert r.reason is Refusal.OUT_OF_ORDER


def test_data_before_accept_fails_without_touching_disk() -> None:
    r = FileReceiver(offer())
    assert r.on_chunk(0, DATA) == []
    assert r.reason is Refusal.DATA_BEFORE_ACCEPT
    r2 = FileReceiver(offer())
    assert r2.on_end() == []
    assert r2.reason is Refusal.DATA_BEFORE_ACCEPT


def test_decline_and_cancel() -> None:
    r = FileReceiver(offer())
    assert r.decline() == []
    assert r.reason is Refusal.DECLINED
    with pytest.raises(InvalidState):
        r.accept()
    r2 = FileReceiver(offer())
    assert r2.cancel() == []  # nothing was created yet
    r3 = accepted(offer())
    r3.on_chunk(0, DATA[:5])
    assert r3.cancel() == [DeletePartial()]
    assert r3.reason is Refusal.CANCELLED


def test_io_failure() -> None:
    r = accepted(offer())
    assert r.io_failed() == [DeletePartial()]
    assert r.reason is Refusal.WRITE_FAILED
    assert r.io_failed() == []


def test_accept_twice_is_a_bug() -> None:
    r = accepted(offer())
    with pytest.raises(InvalidState):
        r.accept()


@pytest.mark.parametrize(
    ("o", "reason"),
    [
        (Offer(b"short", "x", 1, bytes(32)), Refusal.BAD_OFFER),
        (Offer(TID, "x", 1, bytes(31)), Refusal.BAD_OFFER),
        (Offer(TID, "x", -1, bytes(32)), Refusal.BAD_OFFER),
        (Offer(TID, "x", 1 << 63, bytes(32)), Refusal.BAD_OFFER),
        (Offer(TID, "x" * 1025, 1, bytes(32)), Refusal.BAD_OFFER),
        (Offer(TID, "x", 101, bytes(32)), Refusal.FILE_TOO_LARGE),
    ],
)
def test_bad_offers_are_refused_before_asking(o: Offer, reason: Refusal) -> None:
    with pytest.raises(TransferRefused) as caught:
        FileReceiver(o, max_file_bytes=100)
    assert caught.value.reason is reason


def test_files_over_4_gib_are_fine_for_the_state_machine() -> None:
    size = (4 << 30) + 7
    r = accepted(Offer(TID, "disk.img", size, bytes(32)))
    assert r.on_chunk(0, b"x") == [WriteAt(0, b"x")]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=30), st.integers(0, 2))
def test_any_chunking_reaches_done_exactly_when_everything_matches(
    data: bytes, cuts: list[int], extra: int
) -> None:
    """Writes cover [0, received) exactly once and never pass the declared size."""
    r = accepted(offer(data))
    stream = data + b"!" * extra
    written = bytearray()
    pos = 0
    for cut in [*cuts, len(stream)]:
        piece = stream[pos : pos + cut]
        for action in r.on_chunk(pos, piece):
            if isinstance(action, WriteAt):
                assert action.offset == len(written)
                written += action.data
        pos += len(piece)
        if pos >= len(stream):
            break
    assert len(written) <= len(data)
    actions = r.on_end()
    if extra:
        assert state_of(r) is ReceiveState.FAILED
    else:
        assert bytes(written) == data
        assert actions == [Finalise("notes.txt")]
