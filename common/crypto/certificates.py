"""Technician certificates: what the org key vouches for, and their wire formats.

A :class:`Certificate` says that a public key belongs to a technician; a
:class:`SignedCertificate` carries its encoded body and the org key's
signature over ``CERT_SIGNATURE_CONTEXT + body``. :class:`~common.crypto.org_key.OrgKey`
issues them and :class:`~common.crypto.org_trust.OrgTrust` checks them.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from common.crypto.signing_keys import KEY_ID_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from common.errors import ProtocolError
from common.protocol.codec import Message, message


__all__ = [
    "CERT_SIGNATURE_CONTEXT",
    "MAX_CERT_VALIDITY",
    "TECHNICIAN_ROLE",
    "Certificate",
    "SignedCertificate",
    "check_display_name",
]

MAX_CERT_VALIDITY = 30 * 24 * 3600
# The certificate role that may pair as a technician.
TECHNICIAN_ROLE = "technician"
CERT_SIGNATURE_CONTEXT = b"Deskhand cert v1\0"

_TECH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_ROLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
# Bidi overrides and isolates could make "Jane — ACME IT (verified)" in the
# consent dialog read as something else, so names may not contain them.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _display_text_problem(value: str) -> str | None:
    if not value or value != value.strip():
        return "is empty or has surrounding spaces"
    for ch in value:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return "contains a control character"
    return None


def check_display_name(value: str, what: str = "name") -> None:
    """Refuse a name that cannot go in a certificate (empty, padded, control characters).

    Raises:
        ValueError: says what is wrong, starting with ``what``.
    """
    problem = _display_text_problem(value)
    if problem:
        raise ValueError(f"{what} {problem}")


def _check_display_text(value: str, what: str) -> None:
    problem = _display_text_problem(value)
    if problem:
        raise ProtocolError(f"{what} {problem}")


@message(40)
class Certificate(Message):
    """What the org key vouches for: this public key belongs to this technician.

    Attributes:
        serial: unique per org, never reused; what revocation names.
        tech_id: the technician's account id (ASCII, e.g. ``jane@acme``).
        name: the display name the user sees in the consent dialog.
        org: the organisation's display name.
        public_key: the technician's raw Ed25519 public key.
        roles: what the technician may do, e.g. ``("technician",)``.
        not_before: start of validity, unix seconds.
        not_after: end of validity, unix seconds (exclusive).
        org_key_id: :func:`key_id` of the issuing org key.
    """

    MAX_SIZE = 4096
    serial: int
    tech_id: str = dataclasses.field(metadata={"max": 128})
    name: str = dataclasses.field(metadata={"max": 256})
    org: str = dataclasses.field(metadata={"max": 256})
    public_key: bytes = dataclasses.field(metadata={"max": PUBLIC_KEY_BYTES})
    roles: tuple[str, ...] = dataclasses.field(metadata={"max_items": 16, "item_max": 32})
    not_before: int
    not_after: int
    org_key_id: bytes = dataclasses.field(metadata={"max": KEY_ID_BYTES})

    def check(self) -> None:
        if self.serial < 1:
            raise ProtocolError("certificate serial must be positive")
        if not _TECH_ID.fullmatch(self.tech_id):
            raise ProtocolError("technician id must be 1-128 ASCII letters, digits or ._@+-")
        _check_display_text(self.name, "technician name")
        _check_display_text(self.org, "organisation name")
        if len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ProtocolError("technician public key must be 32 bytes")
        if not self.roles or len(set(self.roles)) != len(self.roles):
            raise ProtocolError("certificate roles must be present and distinct")
        if not all(_ROLE.fullmatch(role) for role in self.roles):
            raise ProtocolError("a role must be 1-32 lowercase letters, digits or ._-")
        if self.not_after <= self.not_before:
            raise ProtocolError("certificate ends before it starts")
        if len(self.org_key_id) != KEY_ID_BYTES:
            raise ProtocolError("org key id must be 8 bytes")


@message(41)
class SignedCertificate(Message):
    """An encoded :class:`Certificate` and the org key's signature over it."""

    MAX_SIZE = Certificate.MAX_SIZE + 128
    body: bytes = dataclasses.field(metadata={"max": Certificate.MAX_SIZE})
    signature: bytes = dataclasses.field(metadata={"max": SIGNATURE_BYTES})

    def check(self) -> None:
        if len(self.signature) != SIGNATURE_BYTES:
            raise ProtocolError("signature must be 64 bytes")
