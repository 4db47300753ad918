"""The RA1 record layer: per-direction AEAD with counter nonces.

Wire form of a record::

    version (1) | type (1) | epoch (u32) | seq (u64) | ciphertext + 16-byte tag

The 14-byte header and the session id are the associated data; the nonce is
``epoch || seq``, so it never repeats under one key. The receiver requires
exactly the next ``seq`` of the current ``epoch``: a replayed, dropped or
reordered record is fatal (the relay hop is ordered TCP, so nothing
legitimate reorders). ``KEY_UPDATE`` ratchets one direction's key forward.

Both classes are pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from common.errors import CryptoError, ProtocolError


__all__ = [
    "HEADER",
    "MAX_PLAINTEXT",
    "RECORD_OVERHEAD",
    "RecordOpener",
    "RecordSealer",
    "RecordType",
    "ratchet_key",
]

RECORD_VERSION = 1
HEADER = struct.Struct(">BBIQ")
TAG_BYTES = 16
RECORD_OVERHEAD = HEADER.size + TAG_BYTES
MAX_PLAINTEXT = 1 << 20
_NONCE = struct.Struct(">IQ")
_MAX_SEQ = (1 << 64) - 1


class RecordType(enum.IntEnum):
    AUTH = 1  # handshake confirmation (M3, M4)
    DATA = 2
    KEY_UPDATE = 3
    HEARTBEAT = 4
    CLOSE = 5


def ratchet_key(key: bytes) -> bytes:
    """The next epoch's key; the old one cannot be computed from it."""
    return HKDFExpand(hashes.SHA256(), 32, b"RA1 key update").derive(key)


class _Direction:
    def __init__(self, key: bytes, sid: bytes) -> None:
        if len(key) != 32:
            raise ValueError("record keys are 32 bytes")
        self._key = key
        self._aead = ChaCha20Poly1305(key)
        self.sid = sid
        self.epoch = 0
        self.seq = 0
        self.bytes_this_epoch = 0

    def _ratchet(self) -> None:
        self._key = ratchet_key(self._key)
        self._aead = ChaCha20Poly1305(self._key)
        self.epoch += 1
        self.seq = 0
        self.bytes_this_epoch = 0


class RecordSealer(_Direction):
    """Encrypts records in one direction."""

    def seal(self, rtype: RecordType, plaintext: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT:
            raise ProtocolError("record plaintext larger than 1 MiB")
        if self.seq >= _MAX_SEQ:
            raise CryptoError("sequence numbers exhausted")
        header = HEADER.pack(RECORD_VERSION, rtype, self.epoch, self.seq)
        sealed = self._aead.encrypt(_NONCE.pack(self.epoch, self.seq), plaintext, header + self.sid)
        self.seq += 1
        self.bytes_this_epoch += len(plaintext)
        if rtype is RecordType.KEY_UPDATE:
            self._ratchet()
        return header + sealed


class RecordOpener(_Direction):
    """Decrypts and checks records from the other direction."""

    def open(self, wire: bytes) -> tuple[RecordType, bytes]:
        """Authenticate and decrypt one record.

        Returns:
            The record type and plaintext. After a KEY_UPDATE the opener has
            already moved to the next key.

        Raises:
            ProtocolError: the record is malformed or out of bounds.
            CryptoError: it failed authentication, or arrived out of order.
        """
        if len(wire) < RECORD_OVERHEAD:
            raise ProtocolError("record shorter than its header and tag")
        if len(wire) > MAX_PLAINTEXT + RECORD_OVERHEAD:
            raise ProtocolError("record larger than 1 MiB")
        version, raw_type, epoch, seq = HEADER.unpack_from(wire)
        if version != RECORD_VERSION:
            raise ProtocolError(f"unsupported record version {version}")
        try:
            rtype = RecordType(raw_type)
        except ValueError:
            raise ProtocolError(f"unknown record type {raw_type}") from None
        if epoch != self.epoch:
            raise CryptoError("record from an unexpected key epoch (tampering or replay)")
        if seq != self.seq:
            what = "replayed" if seq < self.seq else "missing"
            raise CryptoError(f"record out of sequence: a record was {what} or reordered")
        header = wire[: HEADER.size]
        try:
            plaintext = self._aead.decrypt(
                _NONCE.pack(epoch, seq), wire[HEADER.size :], header + self.sid
            )
        except InvalidTag:
            raise CryptoError("record failed authentication (tampered in transit)") from None
        self.seq += 1
        self.bytes_this_epoch += len(plaintext)
        if rtype is RecordType.KEY_UPDATE:
            if plaintext:
                raise ProtocolError("key update records carry no payload")
            self._ratchet()
        return rtype, plaintext
