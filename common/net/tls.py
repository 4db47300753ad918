"""TLS for relay connections: TLS 1.3 only, and pinning for self-hosted relays.

A client recognises its relay by one of two pins (security.md 3):

* the relay's certificate itself (a PEM file): OpenSSL then trusts that one
  certificate and nothing else, and we also compare it byte for byte;
* ``sha256:<64 hex digits>``, the SHA-256 of the certificate's
  SubjectPublicKeyInfo, so the certificate can be renewed on the same key.

The pin is checked right after the TLS handshake and *before* the websocket
upgrade request goes out, so a bearer token never reaches a relay that is not
the pinned one. A relay with no pin configured is checked against the system's
certificate authorities, with hostname checking, like any HTTPS site.

Plain ``ws://`` is for loopback only: :func:`check_plain_allowed` refuses
anything else before a byte is sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import ssl
import urllib.parse
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from common.errors import DeskhandError


__all__ = [
    "PIN_PREFIX",
    "PinMismatch",
    "RelayPin",
    "check_plain_allowed",
    "default_client_context",
    "format_spki_pin",
    "is_loopback_host",
    "spki_sha256",
]

PIN_PREFIX = "sha256:"
_DIGEST_BYTES = 32

_MISMATCH = (
    "The relay's certificate does not match the pinned {what}: refusing to connect."
    " Someone may be intercepting the connection, or the relay's certificate was"
    " replaced; ask your administrator for the current pin."
)


class PinMismatch(DeskhandError):
    """The relay presented a certificate that the pin does not allow."""


def spki_sha256(certificate_der: bytes) -> bytes:
    """SHA-256 of a DER certificate's SubjectPublicKeyInfo.

    Raises:
        ValueError: not a DER certificate.
    """
    cert = x509.load_der_x509_certificate(certificate_der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def format_spki_pin(digest: bytes) -> str:
    """The text form of an SPKI pin: ``sha256:`` and 64 hex digits."""
    return PIN_PREFIX + digest.hex()


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_plain_allowed(url: str) -> None:
    """Refuse a plain ``ws://`` URL unless it points at loopback.

    Raises:
        ValueError: the URL is plain ``ws://`` and its host is not loopback.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "ws" and not is_loopback_host(parts.hostname or ""):
        raise ValueError(
            "plain ws:// is only allowed to a relay on this computer (loopback);"
            " use the relay's wss:// address"
        )


def _tls13_client() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def default_client_context() -> ssl.SSLContext:
    """TLS 1.3, the system's certificate authorities, hostname checking on."""
    context = _tls13_client()
    context.load_default_certs()
    return context


@dataclasses.dataclass(frozen=True)
class RelayPin:
    """What a client accepts as its relay's certificate.

    Exactly one of the two is set.

    Attributes:
        spki_sha256: the SHA-256 of the accepted public key (SubjectPublicKeyInfo).
        certificate: the one accepted certificate, DER.
    """

    spki_sha256: bytes | None = None
    certificate: bytes | None = None

    def __post_init__(self) -> None:
        if (self.spki_sha256 is None) == (self.certificate is None):
            raise ValueError("a relay pin is either a certificate or a public-key hash")
        if self.spki_sha256 is not None and len(self.spki_sha256) != _DIGEST_BYTES:
            raise ValueError("a public-key pin is a 32-byte SHA-256")

    @classmethod
    def parse(cls, text: str) -> RelayPin:
        """Parse ``sha256:<64 hex digits>`` (colons and spaces in the hex are ignored).

        Raises:
            ValueError: anything else.
        """
        text = text.strip()
        if not text.lower().startswith(PIN_PREFIX):
            raise ValueError(f"a relay pin starts with {PIN_PREFIX!r}, like {PIN_PREFIX}3f2a...")
        digits = "".join(text[len(PIN_PREFIX) :].replace(":", "").split())
        try:
            digest = bytes.fromhex(digits)
        except ValueError:
            raise ValueError("a relay pin is 'sha256:' and 64 hexadecimal digits") from None
        if len(digest) != _DIGEST_BYTES:
            raise ValueError("a relay pin is 'sha256:' and 64 hexadecimal digits")
        return cls(spki_sha256=digest)

    @classmethod
    def from_certificate_pem(cls, pem: bytes) -> RelayPin:
        """Pin exactly this certificate.

        Raises:
            ValueError: not a PEM certificate.
        """
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise ValueError("the pinned relay certificate is not a PEM certificate") from None
        return cls(certificate=cert.public_bytes(serialization.Encoding.DER))

    @classmethod
    def load_certificate(cls, path: Path) -> RelayPin:
        """Pin the certificate in a PEM file. Raises OSError or ValueError."""
        return cls.from_certificate_pem(path.read_bytes())

    def describe(self) -> str:
        """The pin as text (a certificate pin is shown as its public-key hash)."""
        if self.spki_sha256 is not None:
            return format_spki_pin(self.spki_sha256)
        assert self.certificate is not None
        return format_spki_pin(spki_sha256(self.certificate))

    def client_context(self) -> ssl.SSLContext:
        """A TLS 1.3 client context for this pin.

        With a certificate pin, OpenSSL trusts that certificate only. With a
        public-key pin, OpenSSL's chain check is off and :meth:`check` (run
        by the connection before anything is sent) is the check. Hostname
        checking is off in both cases: the pin is stricter than a name.
        """
        context = _tls13_client()
        context.check_hostname = False
        if self.certificate is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            context.load_verify_locations(cadata=self.certificate)
        else:
            context.verify_mode = ssl.CERT_NONE
        return context

    def check(self, certificate_der: bytes | None) -> None:
        """Accept the relay's certificate, or raise.

        Raises:
            PinMismatch: no certificate, or one the pin does not allow.
        """
        if not certificate_der:
            raise PinMismatch("The relay sent no certificate: refusing to connect.")
        if self.certificate is not None:
            if not hmac.compare_digest(certificate_der, self.certificate):
                raise PinMismatch(_MISMATCH.format(what="certificate"))
            return
        assert self.spki_sha256 is not None
        try:
            digest = spki_sha256(certificate_der)
        except ValueError:
            raise PinMismatch("The relay sent an unreadable certificate: refusing.") from None
        if not hmac.compare_digest(digest, self.spki_sha256):
            raise PinMismatch(_MISMATCH.format(what="public key"))

    @staticmethod
    def mismatch_message(kind: str = "certificate") -> str:
        """The text used when OpenSSL itself refused the pinned certificate."""
        return _MISMATCH.format(what=kind)
