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

This module is the public import path; the code lives in one module per
responsibility, all pure (time comes in as ``now``)::

    signing_keys.py           key ids, fingerprints, signed data, PEM and hex parsing
    certificates.py           Certificate, SignedCertificate, display-name rules
    revocation.py             RevocationList, SignedRevocationList, RevocationStore
    org_key.py                OrgKey: issues certificates, signs revocation lists
    org_trust.py              OrgTrust, TechnicianIdentity: the verifying side
    technician_credential.py  TechnicianCredential: the technician's key and papers

Reading and writing key files (``org.key``, ``org.pub``, ``technician.key``...)
is :mod:`common.keyfiles`, outside ``common.crypto``. Importing this module
registers the certificate and revocation-list message types (ids 40-43).
"""

from __future__ import annotations

from common.crypto.certificates import (
    CERT_SIGNATURE_CONTEXT,
    MAX_CERT_VALIDITY,
    TECHNICIAN_ROLE,
    Certificate,
    SignedCertificate,
    check_display_name,
)
from common.crypto.org_key import OrgKey
from common.crypto.org_trust import OrgTrust, TechnicianIdentity
from common.crypto.revocation import (
    CRL_SIGNATURE_CONTEXT,
    MAX_CRL_AGE,
    MAX_REVOKED,
    MemoryRevocationStore,
    RevocationList,
    RevocationStore,
    SignedRevocationList,
)
from common.crypto.signing_keys import (
    KEY_ID_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    key_fingerprint,
    key_id,
    parse_org_public_key,
)
from common.crypto.technician_credential import TechnicianCredential


__all__ = [
    "CERT_SIGNATURE_CONTEXT",
    "CRL_SIGNATURE_CONTEXT",
    "KEY_ID_BYTES",
    "MAX_CERT_VALIDITY",
    "MAX_CRL_AGE",
    "MAX_REVOKED",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "TECHNICIAN_ROLE",
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
    "parse_org_public_key",
]
