"""The relay's slow collaborators, made safe for the event loop.

* :class:`Database` runs every :class:`~relay.store.Store` call in one
  worker thread, so SQLite and PostgreSQL never block forwarding.
* :class:`Authenticator` signs technicians in (Argon2id in a small thread
  pool, never more than a few at once), issues and checks bearer tokens,
  and enforces the sign-in limits: a lockout per account and a failure
  budget per address (security.md 2.7 and 3).

Every refusal is a :class:`~relay.registry.RelayRejection` with a close
code and a reason the technician's app can show as it is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from common.protocol.relay_wire import CloseCode
from relay.accounts import (
    IssuedToken,
    dummy_verify,
    issue_token,
    secret_matches,
    split_token,
    verify_password,
)
from relay.admin import fresh_revocations
from relay.config import RelayConfig
from relay.limits import FailureLimiter, Lockout, RateLimiter
from relay.registry import RelayRejection
from relay.store import Account, Store, StoreError


__all__ = ["Authenticator", "Database", "Principal", "SignedIn", "locked_out"]

P = ParamSpec("P")
T = TypeVar("T")

# Argon2id at m = 19 MiB: two at once is ~40 MiB of memory at most.
_HASH_WORKERS = 2
# The largest revocation list handed out at sign-in (what LoggedIn carries).
_MAX_CRL = (1 << 20) - 8192
_BEARER = "bearer "


class Database:
    """A :class:`Store` behind one worker thread.

    Args:
        store: the database to use; the worker thread owns it from now on.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="relay-db"
        )

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in the database thread.

        Raises:
            RelayRejection: 1011 when the database fails (details are logged
                by the caller, never sent to peers).
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except StoreError as exc:
            raise _DatabaseDown(exc) from None

    def close(self) -> None:
        """Finish queued work, stop the thread and close the connections."""
        self._executor.shutdown(wait=True)
        self.store.close()


class _DatabaseDown(RelayRejection):
    def __init__(self, cause: StoreError) -> None:
        super().__init__(
            CloseCode.INTERNAL_ERROR, "the relay cannot reach its database; try again later"
        )
        self.cause = cause


@dataclasses.dataclass(frozen=True)
class Principal:
    """A signed-in account, as a connection's token showed it.

    Attributes:
        account_id: the account's database id.
        name: its sign-in name.
        display_name: the name shown to supervisors.
        role: technician, supervisor or admin.
        token_id: the token the connection used (never its secret).
        expires_at: when that token expires (unix seconds).
    """

    account_id: int
    name: str
    display_name: str
    role: str
    token_id: str
    expires_at: float

    @property
    def sees_claimers(self) -> bool:
        """Supervisors and admins see who claimed each request."""
        return self.role in ("supervisor", "admin")


@dataclasses.dataclass(frozen=True)
class SignedIn:
    """The result of a sign-in: the token to hand out, and to whom."""

    token: IssuedToken
    account: Account
    expires_in: int
    revocations: bytes
    expires_at: float = 0.0

    def renews(self, principal: Principal) -> Principal:
        """``principal`` as it stands with this (renewed) token."""
        return dataclasses.replace(
            principal, token_id=self.token.token_id, expires_at=self.expires_at
        )


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class Authenticator:
    """Sign-in, bearer tokens and the limits around them.

    Args:
        config: token lifetime and the sign-in limits.
        db: the database.
        clock: wall-clock seconds (tokens outlive the process).
    """

    def __init__(
        self, config: RelayConfig, db: Database, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self._hashing = concurrent.futures.ThreadPoolExecutor(
            max_workers=_HASH_WORKERS, thread_name_prefix="relay-argon2"
        )
        self._slots = asyncio.Semaphore(_HASH_WORKERS * 2)
        self._account_lockout = Lockout(
            config.login_failures_before_lockout, config.failure_window, config.lockout_duration
        )
        self._address_failures = FailureLimiter(
            config.login_failures_per_address, config.failure_window
        )
        self._account_rate = RateLimiter(config.account_rate, config.rate_window)

    def close(self) -> None:
        self._hashing.shutdown(wait=True)

    def limiters(self) -> dict[str, tuple[FailureLimiter | Lockout, Callable[[], float]]]:
        """The sign-in limiters by kind, with their clock (for relay.counters)."""
        return {
            "sign_in_lockout": (self._account_lockout, self.clock),
            "address_login_failures": (self._address_failures, self.clock),
            "account_rate": (self._account_rate, self.clock),
        }

    async def _verify(self, password: str, account: Account | None) -> bool:
        loop = asyncio.get_running_loop()
        async with self._slots:
            if account is None:
                await loop.run_in_executor(self._hashing, dummy_verify, password)
                return False
            return await loop.run_in_executor(
                self._hashing, verify_password, password, account.password_hash
            )

    async def login(self, name: str, password: str, address: str) -> SignedIn:
        """Check a name and password; issue a token.

        Raises:
            RelayRejection: RATE_LIMITED (this address failed too often),
                LOCKED_OUT (this account failed too often), LOGIN_FAILED,
                ACCOUNT_DISABLED, or 1011 (database down).
        """
        now = self.clock()
        if self._address_failures.blocked(address, now):
            wait = self._address_failures.retry_after(address, now)
            raise RelayRejection(
                CloseCode.RATE_LIMITED,
                f"too many failed sign-ins from this address; try again in {_minutes(wait)}",
            )
        locked = self._account_lockout.locked_for(name, now)
        if locked > 0:
            raise locked_out("sign-ins", locked)
        account = await self.db.run(self.db.store.account, name)
        if not await self._verify(password, account):
            now = self.clock()
            self._address_failures.record_failure(address, now)
            if self._account_lockout.failure(name, now):
                raise locked_out("sign-ins", self._account_lockout.locked_for(name, now))
            raise RelayRejection(CloseCode.LOGIN_FAILED, "wrong account name or password")
        assert account is not None
        self._account_lockout.success(name, now)
        if not account.enabled:
            raise RelayRejection(CloseCode.ACCOUNT_DISABLED, "this account is disabled")
        return await self._issue(account)

    async def _issue(self, account: Account) -> SignedIn:
        token = issue_token()
        now = self.clock()
        ttl = self.config.token_ttl
        await self.db.run(
            self.db.store.add_token, token.token_id, account.id, token.secret_hash, now, now + ttl
        )
        revocations = await self.db.run(_read_revocations, self.config.org_dir, now)
        return SignedIn(token, account, max(1, math.floor(ttl)), revocations, now + ttl)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer`` header.

        Raises:
            RelayRejection: UNAUTHORIZED (no, malformed or unknown token),
                TOKEN_EXPIRED, ACCOUNT_DISABLED, RATE_LIMITED (this account
                is acting too fast) or 1011.
        """
        if not authorization:
            raise RelayRejection(CloseCode.UNAUTHORIZED, "sign in first (no token was sent)")
        if authorization[: len(_BEARER)].lower() != _BEARER:
            raise RelayRejection(CloseCode.UNAUTHORIZED, "send the token as 'Bearer <token>'")
        parts = split_token(authorization[len(_BEARER) :].strip())
        if parts is None:
            raise RelayRejection(CloseCode.UNAUTHORIZED, "invalid sign-in token; sign in again")
        token_id, secret_hash = parts
        found = await self.db.run(self.db.store.token, token_id)
        if found is None or not secret_matches(found[0].secret_hash, secret_hash):
            raise RelayRejection(CloseCode.UNAUTHORIZED, "invalid sign-in token; sign in again")
        token, account = found
        now = self.clock()
        if now >= token.expires_at:
            raise RelayRejection(CloseCode.TOKEN_EXPIRED, "your sign-in has expired; sign in again")
        if not account.enabled:
            raise RelayRejection(CloseCode.ACCOUNT_DISABLED, "this account is disabled")
        principal = Principal(
            account.id, account.name, account.display_name, account.role, token_id, token.expires_at
        )
        self.charge(principal)
        return principal

    def charge(self, principal: Principal) -> None:
        """Count one authenticated action against the account's rate.

        Raises:
            RelayRejection: RATE_LIMITED.
        """
        if not self._account_rate.allow(str(principal.account_id), self.clock()):
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "too many requests from this account; slow down"
            )

    async def renew(self, principal: Principal) -> SignedIn:
        """A fresh token for a connected, still enabled account; the old one stops working.

        A renewal that left the old token valid would give a stolen token a
        full extra lifetime, and the owner no way to end it by renewing.

        Raises:
            RelayRejection: ACCOUNT_DISABLED, RATE_LIMITED or 1011.
        """
        self.charge(principal)
        account = await self.db.run(self.db.store.account, principal.name)
        if account is None or account.id != principal.account_id or not account.enabled:
            raise RelayRejection(CloseCode.ACCOUNT_DISABLED, "this account is disabled")
        signed = await self._issue(account)
        await self.db.run(self.db.store.delete_token, principal.token_id)
        return signed


def locked_out(what: str, seconds: float) -> RelayRejection:
    """The LOCKED_OUT refusal for ``what`` ("sign-ins", "claims")."""
    return RelayRejection(
        CloseCode.LOCKED_OUT,
        f"too many failed {what} for this account; try again in {_minutes(seconds)}",
    )


def _read_revocations(org_dir: str, now: float) -> bytes:
    """The organisation's revocation list, or b"" (none configured or too big).

    Re-signed now when ``org_dir`` holds the organisation key (issue 14: users
    accept lists up to 4 hours old, so every sign-in carries a fresh one).
    """
    if not org_dir:
        return b""
    data = fresh_revocations(Path(org_dir), int(now))
    if data is None:
        return b""
    return data if len(data) <= _MAX_CRL else b""
