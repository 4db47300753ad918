"""The technician's side: their private key, certificate and latest revocation list.

Reading and writing the credential's files is :mod:`common.keyfiles`'s job.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.crypto.certificates import Certificate, SignedCertificate
from common.crypto.revocation import SignedRevocationList
from common.errors import ProtocolError
from common.protocol.codec import decode_as


__all__ = ["TechnicianCredential"]


class TechnicianCredential:
    """A technician's private key, certificate and latest revocation list.

    Attributes:
        certificate: the encoded :class:`SignedCertificate` for this key.
        revocations: the latest encoded :class:`SignedRevocationList`; replace
            it whenever a fresher one arrives.
        public_bytes: the raw 32-byte public key.
    """

    def __init__(
        self, private_key: Ed25519PrivateKey, certificate: bytes, revocations: bytes
    ) -> None:
        """Bundle the parts, checking that the certificate is for this key.

        Raises:
            ValueError: the certificate or list is malformed, or the
                certificate certifies another key.
        """
        self._key = private_key
        self.public_bytes: bytes = private_key.public_key().public_bytes_raw()
        try:
            details = decode_as(Certificate, decode_as(SignedCertificate, certificate).body)
            decode_as(SignedRevocationList, revocations)
        except ProtocolError as exc:
            raise ValueError(f"technician credential is malformed: {exc}") from None
        if details.public_key != self.public_bytes:
            raise ValueError("the certificate was issued for a different technician key")
        self.certificate = bytes(certificate)
        self.revocations = bytes(revocations)
        self._details = details

    @staticmethod
    def generate_key() -> Ed25519PrivateKey:
        """A new random technician key."""
        return Ed25519PrivateKey.generate()

    @property
    def details(self) -> Certificate:
        """The certificate's contents, as issued (not verified here)."""
        return self._details

    def sign(self, data: bytes) -> bytes:
        """Sign data with the technician key (64 bytes)."""
        return self._key.sign(bytes(data))

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM. Secret."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
