"""Key files: reading and writing the organisation's and technicians' keys.

The file I/O of the identity system lives here, outside :mod:`common.crypto`
(which only parses and produces bytes). An organisation directory holds::

    org.key            the org private key, PEM, mode 0600 (keep it offline)
    org.pub            the org public key, one line of hex (what clients pin)
    revocations.crl    the encoded SignedRevocationList

and a technician's credential directory holds::

    technician.key     the technician's private key, PEM, mode 0600
    technician.cert    the encoded SignedCertificate
    revocations.crl    the latest encoded SignedRevocationList

Every write but the org key's replaces its file atomically
(:func:`common.atomic_write.write_file_atomically`); an org key is created
once and never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.atomic_write import write_file_atomically
from common.crypto.org_key import OrgKey
from common.crypto.signing_keys import PUBLIC_KEY_BYTES, parse_org_public_key, private_key_from_pem
from common.crypto.technician_credential import TechnicianCredential


__all__ = [
    "CERT_FILE",
    "CRL_FILE",
    "ORG_KEY_FILE",
    "ORG_PUBLIC_FILE",
    "TECH_KEY_FILE",
    "load_org_key",
    "load_org_public_key",
    "load_technician_credential",
    "load_technician_key",
    "save_org_key",
    "save_org_public_key",
    "save_technician_credential",
]

ORG_KEY_FILE = "org.key"
ORG_PUBLIC_FILE = "org.pub"
TECH_KEY_FILE = "technician.key"
CERT_FILE = "technician.cert"
CRL_FILE = "revocations.crl"


# --- the technician's credential -------------------------------------------------


def load_technician_key(directory: Path) -> Ed25519PrivateKey:
    """Read only technician.key from directory. Raises OSError or ValueError."""
    return private_key_from_pem((directory / TECH_KEY_FILE).read_bytes(), "technician key")


def load_technician_credential(directory: Path) -> TechnicianCredential:
    """Read technician.key, technician.cert and revocations.crl from directory.

    Raises:
        OSError: a file is missing or unreadable.
        ValueError: a file's content is invalid.
    """
    return TechnicianCredential(
        load_technician_key(directory),
        (directory / CERT_FILE).read_bytes(),
        (directory / CRL_FILE).read_bytes(),
    )


def save_technician_credential(directory: Path, credential: TechnicianCredential) -> None:
    """Write the three files to directory (the key with mode 0600).

    Each file is replaced atomically; the directory must exist.
    """
    write_file_atomically(directory / TECH_KEY_FILE, credential.private_pem(), 0o600)
    write_file_atomically(directory / CERT_FILE, credential.certificate, 0o644)
    write_file_atomically(directory / CRL_FILE, credential.revocations, 0o644)


# --- the organisation's keys -------------------------------------------------------


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
    return OrgKey(private_key_from_pem(path.read_bytes(), "org key"))


def load_org_public_key(path: Path) -> bytes:
    """Read an org.pub file (hex text). Raises OSError or ValueError."""
    return parse_org_public_key(path.read_text(encoding="ascii", errors="replace"))


def save_org_public_key(path: Path, public_key: bytes) -> None:
    """Write an org.pub file: the raw public key as one line of hex."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError("an org public key is 32 bytes")
    write_file_atomically(path, public_key.hex().encode("ascii") + b"\n", 0o644)
