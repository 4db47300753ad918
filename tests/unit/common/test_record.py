"""The record layer: confidentiality, integrity, ordering and rekeying."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from common.crypto.record import (
    HEADER,
    MAX_PLAINTEXT,
    RECORD_OVERHEAD,
    RecordOpener,
    RecordSealer,
    RecordType,
)
from common.errors import CryptoError, ProtocolError


KEY = bytes(range(32))
SID = b"s" * 16


def pair() -> tuple[RecordSealer, RecordOpener]:
    return RecordSealer(KEY, SID), RecordOpener(KEY, SID)


def test_round_trip_and_no_plaintext_on_the_wire() -> None:
    sealer, opener = pair()
    wire = sealer.seal(RecordType.DATA, b"secret message")
    assert b"secret" not in wire
    assert len(wire) == RECORD_OVERHEAD + len(b"secret message")
    assert opener.open(wire) == (RecordType.DATA, b"secret message")


def test_every_bit_flip_is_detected() -> None:
    sealer = RecordSealer(KEY, SID)
    wire = sealer.seal(RecordType.DATA, b"hello")
    for i in range(len(wire) * 8):
        flipped = bytearray(wire)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises((CryptoError, ProtocolError)):
            RecordOpener(KEY, SID).open(bytes(flipped))


def test_replay_drop_and_reorder_are_fatal() -> None:
    sealer, opener = pair()
    first, second, third = (sealer.seal(RecordType.DATA, bytes([i])) for i in range(3))
    opener.open(first)
    with pytest.raises(CryptoError, match="replayed"):
        opener.open(first)
    with pytest.raises(CryptoError, match="missing"):
        opener.open(third)
    assert opener.open(second)[1] == b"\x01"


def test_other_session_id_fails() -> None:
    wire = RecordSealer(KEY, SID).seal(RecordType.DATA, b"x")
    with pytest.raises(CryptoError):
        RecordOpener(KEY, b"t" * 16).open(wire)


def test_key_update_ratchets_and_old_key_stops_working() -> None:
    sealer, opener = pair()
    opener.open(sealer.seal(RecordType.KEY_UPDATE, b""))
    wire = sealer.seal(RecordType.DATA, b"after")
    assert sealer.epoch == opener.epoch == 1
    assert opener.open(wire) == (RecordType.DATA, b"after")
    stale = RecordOpener(KEY, SID)
    stale.seq = 1
    with pytest.raises(CryptoError, match="epoch"):
        stale.open(wire)


def test_future_epoch_is_refused() -> None:
    sealer, opener = pair()
    sealer.seal(RecordType.KEY_UPDATE, b"")  # the receiver never saw it
    with pytest.raises(CryptoError, match="epoch"):
        opener.open(sealer.seal(RecordType.DATA, b"x"))


def test_key_update_with_payload_is_refused() -> None:
    _, opener = pair()
    # Seal a KEY_UPDATE by hand with a payload: a conforming sealer never does.
    wire = RecordSealer(KEY, SID)._aead.encrypt(
        bytes(12), b"extra", HEADER.pack(1, RecordType.KEY_UPDATE, 0, 0) + SID
    )
    with pytest.raises(ProtocolError, match="no payload"):
        opener.open(HEADER.pack(1, RecordType.KEY_UPDATE, 0, 0) + wire)


def test_size_limits_checked_before_decrypting() -> None:
    _, opener = pair()
    with pytest.raises(ProtocolError, match="shorter"):
        opener.open(b"\x01" * (RECORD_OVERHEAD - 1))
    with pytest.raises(ProtocolError, match="larger"):
        opener.open(b"\x01" * (MAX_PLAINTEXT + RECORD_OVERHEAD + 1))
    with pytest.raises(ProtocolError):
        RecordSealer(KEY, SID).seal(RecordType.DATA, bytes(MAX_PLAINTEXT + 1))


def test_unknown_version_and_type() -> None:
    sealer, opener = pair()
    wire = bytearray(sealer.seal(RecordType.DATA, b"x"))
    wire[0] = 9
    with pytest.raises(ProtocolError, match="version"):
        opener.open(bytes(wire))
    wire[0], wire[1] = 1, 77
    with pytest.raises(ProtocolError, match="type"):
        opener.open(bytes(wire))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_our_errors(data: bytes) -> None:
    with pytest.raises((CryptoError, ProtocolError)):
        RecordOpener(KEY, SID).open(data)
