"""Ed25519 key primitives shared by certificates, revocation lists and credentials.

Key ids and fingerprints, the domain-separated signed data, signature
checks, and parsing keys from bytes and text (reading and writing the key
files is :mod:`common.keyfiles`'s job). Pure: no I/O.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


__all__ = [
    "KEY_ID_BYTES",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "key_fingerprint",
    "key_id",
    "parse_org_public_key",
    "private_key_from_pem",
    "signature_ok",
    "signed_data",
]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_BYTES = 8


def key_id(public_key: bytes) -> bytes:
    """The 8-byte id of an org public key: the start of its SHA-256."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_BYTES]


def key_fingerprint(public_key: bytes) -> str:
    """A short human form of a public key, e.g. ``"3f2a 9c01 77de b4e5"``."""
    digest = hashlib.sha256(public_key).hexdigest()[:16]
    return " ".join(digest[i : i + 4] for i in range(0, 16, 4))


def signed_data(context: bytes, body: bytes) -> bytes:
    """What a signature covers: a domain-separation label, then the exact encoded body."""
    return context + body


def signature_ok(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether signature is public_key's Ed25519 signature over data."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def private_key_from_pem(data: bytes, what: str) -> Ed25519PrivateKey:
    """Parse an unencrypted PEM Ed25519 private key; ``what`` names it in errors.

    Raises:
        ValueError: not an unencrypted PEM private key, or not Ed25519.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError):
        raise ValueError(f"{what} file is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{what} file does not hold an Ed25519 key")
    return key


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
