"""Verifying technicians against the pinned org key: certificate, revocation, signature.

::

    OrgTrust.verify(cert, crl, now) -> TechnicianIdentity   or IdentityError

Pure: time comes in as ``now``, and the newest revocation list seen is kept
in a :class:`~common.crypto.revocation.RevocationStore` the caller supplies.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.crypto.certificates import (
    CERT_SIGNATURE_CONTEXT,
    MAX_CERT_VALIDITY,
    TECHNICIAN_ROLE,
    Certificate,
    SignedCertificate,
)
from common.crypto.revocation import (
    CRL_SIGNATURE_CONTEXT,
    MAX_CRL_AGE,
    RevocationList,
    RevocationStore,
    SignedRevocationList,
)
from common.crypto.signing_keys import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    key_fingerprint,
    key_id,
    signature_ok,
    signed_data,
)
from common.errors import IdentityError, ProtocolError
from common.protocol.codec import decode_as


__all__ = ["OrgTrust", "TechnicianIdentity"]


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
        if not signature_ok(
            self.public_key, signed.signature, signed_data(CERT_SIGNATURE_CONTEXT, signed.body)
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
        if not signature_ok(
            self.public_key, signed.signature, signed_data(CRL_SIGNATURE_CONTEXT, signed.body)
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
        if len(signature) != SIGNATURE_BYTES or not signature_ok(
            identity.public_key, bytes(signature), bytes(data)
        ):
            raise IdentityError(f"signature is not from technician {identity.name}")
