"""The relay's database: accounts, bearer tokens and stored help requests.

SQLAlchemy 2 runs the same code on SQLite (the default: a file that
``deskhand-relay init`` configures, or memory when none is configured) and
PostgreSQL (``--database-url postgresql+psycopg://...``). Alembic migrates
the schema (:meth:`Store.migrate`, run at start-up and by every account
command); the revisions are in ``relay/migrations/versions``.

Everything here is synchronous. The relay calls it from one worker thread
(:class:`relay.services.Database`); the account commands call it directly.
Rows come back as frozen dataclasses, never as live ORM objects.

What is stored: account names, display names, roles, Argon2id hashes,
token ids with the SHA-256 of their secrets, the help requests users
posted (so that a relay restart loses nothing they typed), and the rate-limit
and lockout counters (address keys, account names and ids, counts: so that a
restart does not reset them). Never stored:
passwords, token secrets, pairing codes, keys or session content.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from common.errors import DeskhandError
from relay.queue import HelpRequest


__all__ = [
    "MEMORY_URL",
    "Account",
    "AccountExists",
    "NoSuchAccount",
    "Store",
    "StoreError",
    "StoredToken",
    "sqlite_url",
]

MEMORY_URL = "sqlite://"
_MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic keeps its migration context in module globals: one migration per process at a time.
_MIGRATING = threading.Lock()
# PostgreSQL: the advisory lock that makes concurrent migrations wait for each other.
_MIGRATION_LOCK_ID = 0x6465736B68616E64  # "deskhand"


class StoreError(DeskhandError):
    """The database cannot be opened, migrated or used; the message says why."""


class NoSuchAccount(StoreError, LookupError):
    """No account has that name."""


class AccountExists(StoreError):
    """An account with that name exists already."""


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparseable)"


def sqlite_url(path: Path) -> str:
    """The database URL of an SQLite file."""
    return f"sqlite:///{path.resolve()}"


# --- schema (the migrations are the source of truth; this mirrors them) -----------


class _Base(DeclarativeBase):
    pass


class _AccountRow(_Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Double)
    password_changed_at: Mapped[float] = mapped_column(Double)
    disabled_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class _TokenRow(_Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class _RequestRow(_Base):
    __tablename__ = "help_requests"
    id: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    system_summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)
    resume_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    address: Mapped[str] = mapped_column(String(64))


class _LimitRow(_Base):
    __tablename__ = "limit_counters"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    a: Mapped[float] = mapped_column(Double)
    b: Mapped[float] = mapped_column(Double)
    c: Mapped[float] = mapped_column(Double)
    saved_at: Mapped[float] = mapped_column(Double)


# A limiter's row: (key, and three numbers whose meaning the limiter defines).
LimitRow = tuple[str, float, float, float]


# --- what callers get -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Account:
    """One account, as stored.

    Attributes:
        id: the database id.
        name: the sign-in name (also the tech_id of its certificates).
        display_name: shown to supervisors and in logs of claims.
        role: technician, supervisor or admin.
        password_hash: the Argon2id PHC string.
        created_at, password_changed_at: unix seconds.
        disabled_at: unix seconds, or None while the account is enabled.
    """

    id: int
    name: str
    display_name: str
    role: str
    password_hash: str = dataclasses.field(repr=False)
    created_at: float
    password_changed_at: float
    disabled_at: float | None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@dataclasses.dataclass(frozen=True)
class StoredToken:
    """A bearer token's row: its id, owner, secret hash and lifetime."""

    token_id: str
    account_id: int
    secret_hash: bytes = dataclasses.field(repr=False)
    created_at: float
    expires_at: float


def _account(row: _AccountRow) -> Account:
    return Account(
        row.id,
        row.name,
        row.display_name,
        row.role,
        row.password_hash,
        row.created_at,
        row.password_changed_at,
        row.disabled_at,
    )


# --- the store ------------------------------------------------------------------


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    # The relay and the account commands may use one file at once.
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


class Store:
    """The relay's database.

    Args:
        url: an SQLAlchemy database URL; empty means a private in-memory
            SQLite database (nothing survives the process).

    Raises:
        StoreError: the URL is invalid or its driver is not installed.
    """

    def __init__(self, url: str = "") -> None:
        self.url = url or MEMORY_URL
        try:
            parsed = make_url(self.url)
            self.description = parsed.render_as_string(hide_password=True)
            if parsed.get_backend_name() == "sqlite":
                memory = parsed.database in (None, "", ":memory:")
                self.persistent = not memory
                self.engine: Engine = create_engine(
                    parsed,
                    connect_args={"check_same_thread": False},
                    **({"poolclass": StaticPool} if memory else {}),
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.persistent = True
                self.engine = create_engine(parsed, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            detail = str(exc).replace(self.url, "...")
            raise StoreError(f"cannot use database URL {_safe_url(self.url)}: {detail}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(f"database error on {self.description}: {detail}") from None

    # --- schema ---

    def migrate(self) -> str:
        """Bring the schema to the newest revision; return it.

        Raises:
            StoreError: the database cannot be reached or migrated.
        """
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with _MIGRATING, self.engine.begin() as connection:
                # Two migrators at once (a relay starting while an account command runs)
                # must not both create the tables. Both locks last until the commit, and
                # DDL is transactional on both, so the next one finds nothing left to do.
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                    )
                elif connection.dialect.name == "sqlite":
                    # The driver would run each CREATE outside any transaction; this takes
                    # the write lock now (others wait up to busy_timeout).
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                revision = MigrationContext.configure(connection).get_current_revision()
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(f"cannot open the database {self.description}: {detail}") from None
        return revision or ""

    def revision(self) -> str | None:
        """The schema revision the database is at (None before any migration)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # --- accounts ---

    def create_account(
        self, name: str, display_name: str, role: str, password_hash: str, now: float
    ) -> Account:
        """Add an enabled account.

        Raises:
            AccountExists: the name is taken.
        """
        row = _AccountRow(
            name=name,
            display_name=display_name,
            role=role,
            password_hash=password_hash,
            created_at=now,
            password_changed_at=now,
            disabled_at=None,
        )
        try:
            with self._session() as session:
                session.add(row)
                session.flush()
                return _account(row)
        except IntegrityError:
            raise AccountExists(f"an account named {name!r} already exists") from None

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        with self._session() as session:
            rows = session.scalars(select(_AccountRow).order_by(_AccountRow.name))
            return [_account(r) for r in rows]

    def account(self, name: str) -> Account | None:
        """The account with this name, if any."""
        if "\0" in name:
            # No account name holds NUL (check_account_name), and PostgreSQL text cannot:
            # a typed name with one is unknown, not a database error.
            return None
        with self._session() as session:
            row = session.scalars(select(_AccountRow).where(_AccountRow.name == name)).first()
            return None if row is None else _account(row)

    def has_accounts(self) -> bool:
        """True once any account exists."""
        with self._session() as session:
            return bool(session.scalar(select(func.count()).select_from(_AccountRow)))

    def _row(self, session: Session, name: str) -> _AccountRow:
        row = session.scalars(select(_AccountRow).where(_AccountRow.name == name)).first()
        if row is None:
            raise NoSuchAccount(f"no account named {name!r}")
        return row

    def set_disabled(self, name: str, disabled: bool, now: float) -> Account:
        """Disable (and sign out everywhere) or re-enable an account.

        Raises:
            NoSuchAccount: no account has that name.
        """
        with self._session() as session:
            row = self._row(session, name)
            if disabled:
                if row.disabled_at is None:
                    row.disabled_at = now
                session.execute(delete(_TokenRow).where(_TokenRow.account_id == row.id))
            else:
                row.disabled_at = None
            return _account(row)

    def set_password(self, name: str, password_hash: str, now: float) -> Account:
        """Replace the password hash and sign the account out everywhere.

        Raises:
            NoSuchAccount: no account has that name.
        """
        with self._session() as session:
            row = self._row(session, name)
            row.password_hash = password_hash
            row.password_changed_at = now
            session.execute(delete(_TokenRow).where(_TokenRow.account_id == row.id))
            return _account(row)

    def delete_account(self, name: str) -> Account:
        """Remove an account and its tokens.

        Raises:
            NoSuchAccount: no account has that name.
        """
        with self._session() as session:
            row = self._row(session, name)
            account = _account(row)
            session.execute(delete(_TokenRow).where(_TokenRow.account_id == row.id))
            session.delete(row)
            return account

    def enabled_among(self, ids: Iterable[int]) -> set[int]:
        """Which of these account ids still exist and are enabled."""
        wanted = set(ids)
        if not wanted:
            return set()
        with self._session() as session:
            rows = session.scalars(
                select(_AccountRow.id).where(
                    _AccountRow.id.in_(wanted), _AccountRow.disabled_at.is_(None)
                )
            )
            return set(rows)

    # --- tokens ---

    def add_token(
        self, token_id: str, account_id: int, secret_hash: bytes, now: float, expires_at: float
    ) -> None:
        """Store a new token's id and secret hash."""
        with self._session() as session:
            session.add(
                _TokenRow(
                    id=token_id,
                    account_id=account_id,
                    secret_hash=secret_hash,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def token(self, token_id: str) -> tuple[StoredToken, Account] | None:
        """A token and its account, by the token's id."""
        with self._session() as session:
            found = session.execute(
                select(_TokenRow, _AccountRow)
                .join(_AccountRow, _AccountRow.id == _TokenRow.account_id)
                .where(_TokenRow.id == token_id)
            ).first()
            if found is None:
                return None
            token, account = found[0], found[1]
            return (
                StoredToken(
                    token.id,
                    token.account_id,
                    token.secret_hash,
                    token.created_at,
                    token.expires_at,
                ),
                _account(account),
            )

    def delete_token(self, token_id: str) -> None:
        with self._session() as session:
            session.execute(delete(_TokenRow).where(_TokenRow.id == token_id))

    def purge_tokens(self, now: float) -> int:
        """Delete expired tokens; return how many."""
        with self._session() as session:
            result = session.execute(delete(_TokenRow).where(_TokenRow.expires_at <= now))
            return int(getattr(result, "rowcount", 0) or 0)

    # --- help requests ---

    def add_request(self, request: HelpRequest) -> None:
        """Store a posted request (before the user is told it is queued)."""
        with self._session() as session:
            session.add(
                _RequestRow(
                    id=request.id,
                    name=request.name,
                    description=request.description,
                    category=request.category,
                    system_summary=request.system_summary,
                    created_at=request.created_at,
                    resume_hash=request.resume_hash,
                    address=request.address,
                )
            )

    def delete_requests(self, request_ids: Iterable[bytes]) -> None:
        """Forget finished requests (started, cancelled or expired)."""
        ids = list(request_ids)
        if not ids:
            return
        with self._session() as session:
            session.execute(delete(_RequestRow).where(_RequestRow.id.in_(ids)))

    def requests(self) -> list[HelpRequest]:
        """Every stored request, oldest first (all WAITING and away)."""
        with self._session() as session:
            rows = session.scalars(select(_RequestRow).order_by(_RequestRow.created_at))
            return [
                HelpRequest(
                    id=r.id,
                    name=r.name,
                    description=r.description,
                    category=r.category,
                    system_summary=r.system_summary,
                    created_at=r.created_at,
                    resume_hash=r.resume_hash,
                    address=r.address,
                )
                for r in rows
            ]

    # --- rate-limit and lockout counters ---

    def save_limits(self, rows: dict[str, list[LimitRow]], now: float) -> None:
        """Replace the stored counters of these kinds with ``rows`` (saved at ``now``).

        Keys holding NUL are left out: PostgreSQL text cannot hold NUL, and one such
        key (a sign-in name typed by anyone) would otherwise fail the whole snapshot.
        Such keys are typed account names, which no account can have, so no lockout
        that matters is lost; the address's own counters are kept as usual.
        """
        with self._session() as session:
            session.execute(delete(_LimitRow).where(_LimitRow.kind.in_(list(rows))))
            session.add_all(
                _LimitRow(kind=kind, key=key, a=a, b=b, c=c, saved_at=now)
                for kind, kind_rows in rows.items()
                for key, a, b, c in kind_rows
                if "\0" not in key
            )

    def limits(self) -> dict[str, tuple[float, list[LimitRow]]]:
        """The stored counters: kind -> (when saved, rows)."""
        result: dict[str, tuple[float, list[LimitRow]]] = {}
        with self._session() as session:
            for row in session.scalars(select(_LimitRow)):
                _, rows = result.setdefault(row.kind, (row.saved_at, []))
                rows.append((row.key, row.a, row.b, row.c))
        return result
