"""Technician identity: org-signed certificates and signed revocation lists.

Trust is anchored in one organisation key (Ed25519, kept offline by the
admins; security.md 2.7). Its public half is pinned in every user client's
configuration. The org key certifies each technician's own Ed25519 key for at
most 30 days, and signs a dated list of revoked serial numbers that the relay
distributes. The relay can withhold a list but cannot forge one, so clients
refuse lists older than :data:`MAX_CRL_AGE` (4 hours by default), and a
client that keeps a :class:`RevocationStore` never lets an older list
override the newest one it has seen (a revoked technician cannot replay a
list signed before the revocation).

::

    OrgKey.issue()            -> SignedCertificate{Certificate, sig}
    OrgKey.sign_revocations() -> SignedRevocationList{RevocationList, sig}
    OrgTrust.verify(cert, crl, now) -> TechnicianIdentity   or IdentityError

Signatures cover a domain-separation label followed by the exact encoded
body, so a signature made for one purpose never validates for another.

Everything here is pure (time comes in as ``now``) except the explicit
``load``/``save`` helpers at the bottom, which read and write key files.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import IdentityError, ProtocolError
from common.protocol.codec import Message, decode_as, encode, message


__all__ = [
    "CERT_FILE",
    "CERT_SIGNATURE_CONTEXT",
    "CRL_FILE",
    "CRL_SIGNATURE_CONTEXT",
    "KEY_ID_BYTES",
    "MAX_CERT_VALIDITY",
    "MAX_CRL_AGE",
    "MAX_REVOKED",
    "ORG_KEY_FILE",
    "ORG_PUBLIC_FILE",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "TECHNICIAN_ROLE",
    "TECH_KEY_FILE",
    "Certificate",
    "MemoryRevocationStore",
    "OrgKey",
    "OrgTrust",
    "RevocationList",
    "RevocationStore",
    "SignedCertificate",
    "SignedRevocationList",
    "TechnicianCredential",
    "TechnicianIdentity",
    "check_display_name",
    "key_fingerprint",
    "key_id",
    "load_org_key",
    "load_org_public_key",
    "parse_org_public_key",
    "save_org_key",
    "save_org_public_key",
]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_BYTES = 8
MAX_CERT_VALIDITY = 30 * 24 * 3600
# The relay hands out a freshly signed list at every sign-in and token
# renewal (hourly), so 4 hours leaves room for a missed renewal or two.
MAX_CRL_AGE = 4 * 3600
# The certificate role that may pair as a technician.
TECHNICIAN_ROLE = "technician"
MAX_REVOKED = 100_000
CERT_SIGNATURE_CONTEXT = b"Deskhand cert v1\0"
CRL_SIGNATURE_CONTEXT = b"Deskhand crl v1\0"

ORG_KEY_FILE = "org.key"
ORG_PUBLIC_FILE = "org.pub"
TECH_KEY_FILE = "technician.key"
CERT_FILE = "technician.cert"
CRL_FILE = "revocations.crl"

_TECH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_ROLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
# Bidi overrides and isolates could make "Jane — ACME IT (verified)" in the
# consent dialog read as something else, so names may not contain them.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_MAX_VARINT = 10


def key_id(public_key: bytes) -> bytes:
    """The 8-byte id of an org public key: the start of its SHA-256."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_BYTES]


def key_fingerprint(public_key: bytes) -> str:
    """A short human form of a public key, e.g. ``"3f2a 9c01 77de b4e5"``."""
    digest = hashlib.sha256(public_key).hexdigest()[:16]
    return " ".join(digest[i : i + 4] for i in range(0, 16, 4))


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


# --- wire formats --------------------------------------------------------------


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


# --- verified result -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TechnicianIdentity:
    """A technician whose certificate chains to the pinned org key.

    Only :meth:`OrgTrust.verify` should create these: holding one means the
    certificate was checked at the time given to it.

    Attributes:
        tech_id: the technician's account id.
        name: display name, safe to show (no control or bidi characters).
        org: the organisation's display name.
        serial: the certificate's serial number.
        roles: the roles the certificate grants.
        public_key: the technician's raw Ed25519 public key.
        not_after: when the certificate expires, unix seconds.
    """

    tech_id: str
    name: str
    org: str
    serial: int
    roles: tuple[str, ...]
    public_key: bytes
    not_after: int

    @property
    def fingerprint(self) -> str:
        """The technician key's short fingerprint, e.g. ``"3f2a 9c01 77de b4e5"``."""
        return key_fingerprint(self.public_key)


# --- the org side --------------------------------------------------------------


def _signed_data(context: bytes, body: bytes) -> bytes:
    return context + body


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
        signature = self._key.sign(_signed_data(CERT_SIGNATURE_CONTEXT, body))
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
        signature = self._key.sign(_signed_data(CRL_SIGNATURE_CONTEXT, body))
        return encode(SignedRevocationList(body=body, signature=signature))


# --- the verifying side ----------------------------------------------------------


def _format_time(t: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return f"{t:.0f} (unix time)"


def _format_age(seconds: float) -> str:
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


def _signature_ok(public_key: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


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


class OrgTrust:
    """Verifies technicians against one pinned org public key.

    Attributes:
        public_key: the pinned raw Ed25519 org public key.
        key_id: its :func:`key_id`.
        max_crl_age: the oldest revocation list accepted, in seconds.
        clock_skew: tolerated clock difference with the issuer, in seconds,
            for lists and certificates dated in the future (never after a
            certificate expires).
        revocations: the newest list seen so far is kept there; a list older
            than it never decides (the newest one does). Without a store every
            list is judged on its own, as before.
    """

    def __init__(
        self,
        org_public_key: bytes,
        *,
        max_crl_age: float = MAX_CRL_AGE,
        clock_skew: float = 300,
        revocations: RevocationStore | None = None,
    ) -> None:
        if len(org_public_key) != PUBLIC_KEY_BYTES:
            raise ValueError("an org public key is 32 bytes")
        self.public_key = bytes(org_public_key)
        self.key_id = key_id(self.public_key)
        self.max_crl_age = max_crl_age
        self.clock_skew = clock_skew
        self.revocations = revocations

    def verify(
        self, certificate: bytes, revocations: bytes, now: float, *, role: str = TECHNICIAN_ROLE
    ) -> TechnicianIdentity:
        """Check a technician's certificate and the org's revocation list.

        Args:
            certificate: an encoded :class:`SignedCertificate`.
            revocations: an encoded :class:`SignedRevocationList`.
            now: the current time, unix seconds.
            role: the role the certificate must grant (pairing as a
                technician needs :data:`TECHNICIAN_ROLE`).

        Returns:
            The verified identity.

        Raises:
            IdentityError: the certificate or list is malformed, not signed by
                the pinned org key, outside its validity, lacks the role, or
                the certificate is revoked (by this list or by a newer one
                seen before). The message can be shown to the user.
        """
        try:
            signed = decode_as(SignedCertificate, certificate)
            cert = decode_as(Certificate, signed.body)
        except ProtocolError as exc:
            raise IdentityError(f"technician certificate is malformed ({exc})") from None
        if cert.org_key_id != self.key_id:
            raise IdentityError("technician certificate was issued by a different organisation")
        if not _signature_ok(
            self.public_key, signed.signature, _signed_data(CERT_SIGNATURE_CONTEXT, signed.body)
        ):
            raise IdentityError("technician certificate is not signed by your organisation's key")
        try:
            Ed25519PublicKey.from_public_bytes(cert.public_key)
        except ValueError:
            raise IdentityError("technician certificate holds an invalid key") from None
        if cert.not_after - cert.not_before > MAX_CERT_VALIDITY:
            raise IdentityError("technician certificate is valid for longer than 30 days")
        if role not in cert.roles:
            raise IdentityError(
                f"the certificate of {cert.name} does not allow the {role} role"
                f" (it grants: {', '.join(cert.roles)})"
            )

        for crl in self._deciding_lists(revocations, now):
            i = bisect.bisect_left(crl.serials, cert.serial)
            if i < len(crl.serials) and crl.serials[i] == cert.serial:
                raise IdentityError(
                    f"technician certificate {cert.serial} for {cert.name} has been revoked"
                )

        if now + self.clock_skew < cert.not_before:
            raise IdentityError(
                f"technician certificate is not valid before {_format_time(cert.not_before)}"
            )
        # No grace after expiry: the issuer's clock does not matter here, ours does.
        if now >= cert.not_after:
            raise IdentityError(f"technician certificate expired on {_format_time(cert.not_after)}")
        return TechnicianIdentity(
            tech_id=cert.tech_id,
            name=cert.name,
            org=cert.org,
            serial=cert.serial,
            roles=cert.roles,
            public_key=cert.public_key,
            not_after=cert.not_after,
        )

    def _deciding_lists(self, revocations: bytes, now: float) -> list[RevocationList]:
        """The lists a certificate is checked against: the offered one and the newest seen.

        With a store, an offered list older than the newest one seen does not
        decide alone (that one was signed later, so it names every serial the
        old one names and maybe more); a newer offered list replaces it.
        """
        offered = self._signed_revocations(revocations)
        stored = self._stored_revocations()
        if stored is not None and stored.issued_at > offered.issued_at:
            # Freshness is the newest list's: it is the one that decides.
            self._check_age(stored, now)
            return [stored, offered]
        self._check_age(offered, now)
        if self.revocations is not None and (stored is None or offered != stored):
            self.revocations.remember(self.key_id, bytes(revocations))
        return [offered]

    def _stored_revocations(self) -> RevocationList | None:
        if self.revocations is None:
            return None
        data = self.revocations.newest(self.key_id)
        if data is None:
            return None
        try:
            return self._signed_revocations(data)
        except IdentityError:
            return None  # damaged or planted: ignore it, the next good list replaces it

    def verify_revocations(self, revocations: bytes, now: float) -> RevocationList:
        """Check that a revocation list is the org's and fresh.

        The relay uses this before serving a list. It looks at this list
        alone (not at any store).

        Raises:
            IdentityError: malformed, not signed by the pinned org key, dated
                in the future, or older than max_crl_age.
        """
        crl = self._signed_revocations(revocations)
        self._check_age(crl, now)
        return crl

    def _signed_revocations(self, revocations: bytes) -> RevocationList:
        try:
            signed = decode_as(SignedRevocationList, revocations)
            crl = decode_as(RevocationList, signed.body)
        except ProtocolError as exc:
            raise IdentityError(f"revocation list is malformed ({exc})") from None
        if crl.org_key_id != self.key_id:
            raise IdentityError("revocation list belongs to a different organisation")
        if not _signature_ok(
            self.public_key, signed.signature, _signed_data(CRL_SIGNATURE_CONTEXT, signed.body)
        ):
            raise IdentityError("revocation list is not signed by your organisation's key")
        return crl

    def _check_age(self, crl: RevocationList, now: float) -> None:
        if crl.issued_at > now + self.clock_skew:
            raise IdentityError(
                f"revocation list is dated in the future ({_format_time(crl.issued_at)});"
                " check this computer's clock"
            )
        age = now - crl.issued_at
        if age > self.max_crl_age:
            raise IdentityError(
                f"revocation list is out of date (signed {_format_age(age)} ago);"
                " the organisation must publish a fresh one"
            )

    def verify_signature(self, identity: TechnicianIdentity, data: bytes, signature: bytes) -> None:
        """Check that the technician's key signed data.

        Callers bind the purpose into data themselves (e.g. ``b"RA1 tech-auth|" + TH``).

        Raises:
            IdentityError: the signature is not the technician's over data.
        """
        if len(signature) != SIGNATURE_BYTES or not _signature_ok(
            identity.public_key, bytes(signature), bytes(data)
        ):
            raise IdentityError(f"signature is not from technician {identity.name}")


# --- the technician side ---------------------------------------------------------


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

    @staticmethod
    def load_key(directory: Path) -> Ed25519PrivateKey:
        """Read only technician.key from directory. Raises OSError or ValueError."""
        return _load_private_pem((directory / TECH_KEY_FILE).read_bytes(), "technician key")

    @classmethod
    def load(cls, directory: Path) -> TechnicianCredential:
        """Read technician.key, technician.cert and revocations.crl from directory.

        Raises:
            OSError: a file is missing or unreadable.
            ValueError: a file's content is invalid.
        """
        return cls(
            cls.load_key(directory),
            (directory / CERT_FILE).read_bytes(),
            (directory / CRL_FILE).read_bytes(),
        )

    def save(self, directory: Path) -> None:
        """Write the three files to directory (the key with mode 0600).

        Each file is replaced atomically; the directory must exist.
        """
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _replace_file(directory / TECH_KEY_FILE, pem, 0o600)
        _replace_file(directory / CERT_FILE, self.certificate, 0o644)
        _replace_file(directory / CRL_FILE, self.revocations, 0o644)


# --- files -------------------------------------------------------------------------


def _load_private_pem(data: bytes, what: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError):
        raise ValueError(f"{what} file is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{what} file does not hold an Ed25519 key")
    return key


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    # mkstemp creates the file 0600, so a key is never readable by others,
    # even for a moment; the rename makes the write all-or-nothing.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_org_key(path: Path, key: OrgKey) -> None:
    """Write the org private key as PEM with mode 0600.

    Raises:
        FileExistsError: path exists; an org key is never overwritten.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_pem())
        f.flush()
        os.fsync(f.fileno())


def load_org_key(path: Path) -> OrgKey:
    """Read the org private key written by :func:`save_org_key`.

    Raises:
        OSError: the file is missing or unreadable.
        ValueError: the file is not an Ed25519 PEM private key.
    """
    return OrgKey(_load_private_pem(path.read_bytes(), "org key"))


def parse_org_public_key(text: str) -> bytes:
    """Parse an org public key written as 64 hex digits (spaces allowed).

    Raises:
        ValueError: not hex, or not 32 bytes.
    """
    try:
        raw = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise ValueError("org public key must be written in hexadecimal") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError("org public key must be 64 hex digits (32 bytes)")
    return raw


def load_org_public_key(path: Path) -> bytes:
    """Read an org.pub file (hex text). Raises OSError or ValueError."""
    return parse_org_public_key(path.read_text(encoding="ascii", errors="replace"))


def save_org_public_key(path: Path, public_key: bytes) -> None:
    """Write an org.pub file: the raw public key as one line of hex."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError("an org public key is 32 bytes")
    _replace_file(path, public_key.hex().encode("ascii") + b"\n", 0o644)
