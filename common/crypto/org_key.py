"""The organisation's signing key: it issues certificates and revocation lists.

Kept offline by the admins (security.md 2.7); its public half is what user
clients pin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.crypto.certificates import (
    CERT_SIGNATURE_CONTEXT,
    MAX_CERT_VALIDITY,
    Certificate,
    SignedCertificate,
)
from common.crypto.revocation import CRL_SIGNATURE_CONTEXT, RevocationList, SignedRevocationList
from common.crypto.signing_keys import key_id, signed_data
from common.errors import ProtocolError
from common.protocol.codec import encode


__all__ = ["OrgKey"]


class OrgKey:
    """The organisation's signing key: issues certificates and revocation lists.

    Attributes:
        public_bytes: the raw 32-byte Ed25519 public key (what clients pin).
        key_id: :func:`key_id` of the public key.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_bytes: bytes = private_key.public_key().public_bytes_raw()
        self.key_id: bytes = key_id(self.public_bytes)

    @classmethod
    def generate(cls) -> OrgKey:
        """A new random org key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> OrgKey:
        """Rebuild from the 32-byte raw private key. Raises ValueError."""
        if len(raw) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """The 32-byte raw private key. Secret: keep it offline."""
        return self._key.private_bytes_raw()

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM. Secret."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def issue(
        self,
        *,
        serial: int,
        tech_id: str,
        name: str,
        org: str,
        public_key: bytes,
        roles: Sequence[str],
        not_before: int,
        not_after: int,
    ) -> bytes:
        """Certify a technician's public key.

        Args:
            serial: a serial never used before by this org.
            tech_id: the technician's account id.
            name: the display name users will see.
            org: the organisation's display name.
            public_key: the technician's raw Ed25519 public key (32 bytes).
            roles: at least one role, e.g. ``["technician"]``.
            not_before: start of validity, unix seconds.
            not_after: end of validity, unix seconds; at most 30 days later.

        Returns:
            The encoded :class:`SignedCertificate`.

        Raises:
            ValueError: a field is invalid or the validity exceeds 30 days.
        """
        if not_after <= not_before:
            raise ValueError("a certificate must end after it starts")
        if not_after - not_before > MAX_CERT_VALIDITY:
            raise ValueError("a certificate may be valid for at most 30 days")
        cert = Certificate(
            serial=serial,
            tech_id=tech_id,
            name=name,
            org=org,
            public_key=bytes(public_key),
            roles=tuple(roles),
            not_before=not_before,
            not_after=not_after,
            org_key_id=self.key_id,
        )
        try:
            body = encode(cert)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from None
        signature = self._key.sign(signed_data(CERT_SIGNATURE_CONTEXT, body))
        return encode(SignedCertificate(body=body, signature=signature))

    def sign_revocations(self, serials: Iterable[int], issued_at: int) -> bytes:
        """Sign the list of revoked serials, dated issued_at.

        Returns:
            The encoded :class:`SignedRevocationList`.

        Raises:
            ValueError: a serial is not positive or there are too many.
        """
        crl = RevocationList(
            org_key_id=self.key_id, issued_at=issued_at, serials=tuple(sorted(set(serials)))
        )
        try:
            body = encode(crl)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from None
        signature = self._key.sign(signed_data(CRL_SIGNATURE_CONTEXT, body))
        return encode(SignedRevocationList(body=body, signature=signature))
