"""Accounts: names, roles, Argon2id password hashes and opaque bearer tokens.

Pure helpers, no storage: :mod:`relay.store` keeps the results.

Passwords are hashed with Argon2id at the OWASP minimum (m = 19 MiB, t = 2,
p = 1; about 20-40 ms here) and stored as PHC strings, so the parameters can
be raised later without breaking existing hashes.

A token looks like ``dh1.<id>.<secret>``. The relay stores the id and the
SHA-256 of the secret only; it finds the row by id and compares the secret's
hash with :func:`hmac.compare_digest`, so neither a database read nor a
timing difference gives a usable token away.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from common.protocol.relay_wire import MAX_PASSWORD


__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "IssuedToken",
    "check_account_name",
    "check_password",
    "check_role",
    "dummy_verify",
    "hash_password",
    "hash_secret",
    "issue_token",
    "secret_matches",
    "split_token",
    "verify_password",
]

ROLES = ("technician", "supervisor", "admin")
MIN_PASSWORD = 12
# Account names double as the tech_id in technician certificates.
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_TOKEN = re.compile(r"dh1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})")
# OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
_MEMORY_KIB = 19 * 1024
_ITERATIONS = 2
_LANES = 1
_SALT_BYTES = 16
_dummy_hash: str | None = None


def check_account_name(name: str) -> None:
    """Raises ValueError unless ``name`` is 1-128 of ``A-Z a-z 0-9 . _ @ + -``."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ValueError(
            f"account name {name!r} must be 1-128 letters, digits or . _ @ + -,"
            " starting with a letter or digit"
        )


def check_role(role: str) -> None:
    """Raises ValueError unless ``role`` is one of :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def check_password(password: str) -> None:
    """Raises ValueError for a password that is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD:
        raise ValueError(f"a password may have at most {MAX_PASSWORD} bytes")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The Argon2id PHC string for ``password`` (slow on purpose)."""
    kdf = Argon2id(
        salt=salt or secrets.token_bytes(_SALT_BYTES),
        length=32,
        iterations=_ITERATIONS,
        lanes=_LANES,
        memory_cost=_MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(password.encode("utf-8"))


def verify_password(password: str, phc: str) -> bool:
    """True when ``password`` matches the stored PHC string (constant time)."""
    try:
        Argon2id.verify_phc_encoded(password.encode("utf-8"), phc)
    except (InvalidKey, ValueError):
        return False
    return True


def dummy_verify(password: str) -> None:
    """Spend the time of a real verification, for unknown accounts (no timing oracle)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    verify_password(password, _dummy_hash)


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a token secret (tokens are random: no slow hash needed)."""
    return hashlib.sha256(secret.encode("ascii")).digest()


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    """A fresh bearer token.

    Attributes:
        text: what the client sends (``dh1.<id>.<secret>``); never stored or logged.
        token_id: the public half, the row's key.
        secret_hash: SHA-256 of the secret half, what the relay stores.
    """

    text: str = dataclasses.field(repr=False)
    token_id: str
    secret_hash: bytes = dataclasses.field(repr=False)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def issue_token(token_bytes: Callable[[int], bytes] = secrets.token_bytes) -> IssuedToken:
    """Mint a token: a 96-bit id and a 256-bit secret."""
    token_id, secret = _b64(token_bytes(12)), _b64(token_bytes(32))
    return IssuedToken(f"dh1.{token_id}.{secret}", token_id, hash_secret(secret))


def split_token(text: str) -> tuple[str, bytes] | None:
    """(token id, secret hash) of a well-formed token, else None."""
    match = _TOKEN.fullmatch(text)
    if match is None:
        return None
    return match.group(1), hash_secret(match.group(2))


def secret_matches(stored_hash: bytes, presented_hash: bytes) -> bool:
    """Constant-time comparison of two secret hashes."""
    return hmac.compare_digest(stored_hash, presented_hash)
