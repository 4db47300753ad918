"""Signed revocation lists, and where a verifier keeps the newest one it has seen.

The org key signs a dated list of revoked serial numbers
(``CRL_SIGNATURE_CONTEXT + body``); the relay distributes it. The relay can
withhold a list but cannot forge one, so verifiers refuse lists older than
:data:`MAX_CRL_AGE`, and one that keeps a :class:`RevocationStore` never lets
an older list override the newest one it has seen.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from common.crypto.signing_keys import KEY_ID_BYTES, SIGNATURE_BYTES
from common.errors import ProtocolError
from common.protocol.codec import Message, message


__all__ = [
    "CRL_SIGNATURE_CONTEXT",
    "MAX_CRL_AGE",
    "MAX_REVOKED",
    "MemoryRevocationStore",
    "RevocationList",
    "RevocationStore",
    "SignedRevocationList",
]

# The relay hands out a freshly signed list at every sign-in and token
# renewal (hourly), so 4 hours leaves room for a missed renewal or two.
MAX_CRL_AGE = 4 * 3600
MAX_REVOKED = 100_000
CRL_SIGNATURE_CONTEXT = b"Deskhand crl v1\0"
_MAX_VARINT = 10


@message(42)
class RevocationList(Message):
    """The serials an org has revoked, as of issued_at.

    Attributes:
        org_key_id: :func:`key_id` of the signing org key.
        issued_at: when the list was signed, unix seconds; clients refuse old lists.
        serials: revoked serial numbers, strictly increasing.
    """

    MAX_SIZE = 64 + _MAX_VARINT * MAX_REVOKED
    org_key_id: bytes = dataclasses.field(metadata={"max": KEY_ID_BYTES})
    issued_at: int
    serials: tuple[int, ...] = dataclasses.field(metadata={"max_items": MAX_REVOKED})

    def check(self) -> None:
        if len(self.org_key_id) != KEY_ID_BYTES:
            raise ProtocolError("org key id must be 8 bytes")
        previous = 0
        for serial in self.serials:
            # Sorted and unique: one canonical form, and lookups can bisect.
            if serial <= previous:
                raise ProtocolError("revoked serials must be positive and strictly increasing")
            previous = serial


@message(43)
class SignedRevocationList(Message):
    """An encoded :class:`RevocationList` and the org key's signature over it."""

    MAX_SIZE = RevocationList.MAX_SIZE + 128
    body: bytes = dataclasses.field(metadata={"max": RevocationList.MAX_SIZE})
    signature: bytes = dataclasses.field(metadata={"max": SIGNATURE_BYTES})

    def check(self) -> None:
        if len(self.signature) != SIGNATURE_BYTES:
            raise ProtocolError("signature must be 64 bytes")


class RevocationStore(Protocol):
    """Where a verifier keeps the newest revocation list it has seen, per organisation.

    Implementations only store bytes: :class:`OrgTrust` checks the signature
    of what it reads back, so a damaged or planted file cannot help anyone.
    """

    def newest(self, org_key_id: bytes) -> bytes | None:
        """The stored encoded :class:`SignedRevocationList`, or None."""
        ...

    def remember(self, org_key_id: bytes, revocations: bytes) -> None:
        """Store a newer encoded :class:`SignedRevocationList` (replacing the old one)."""
        ...


class MemoryRevocationStore:
    """A :class:`RevocationStore` in memory (tests, and apps without a data folder)."""

    def __init__(self) -> None:
        self._lists: dict[bytes, bytes] = {}

    def newest(self, org_key_id: bytes) -> bytes | None:
        return self._lists.get(bytes(org_key_id))

    def remember(self, org_key_id: bytes, revocations: bytes) -> None:
        self._lists[bytes(org_key_id)] = bytes(revocations)
