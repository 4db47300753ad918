"""The relay's database: migrations, accounts, tokens and stored requests.

Every test taking ``store`` or ``database_url`` runs twice: on an SQLite file and on a
fresh database of the session's private PostgreSQL server (tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from relay.queue import HelpRequest
from relay.store import AccountExists, NoSuchAccount, Store, StoreError, _Base, sqlite_url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.migrate()
    yield s
    s.close()


def test_migrations_reach_the_head_and_match_the_models(store: Store) -> None:
    assert store.revision() == "0002"
    assert store.migrate() == "0002"  # idempotent
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), _Base.metadata)
    assert diff == []


def test_a_database_persists(database_url: str) -> None:
    first = Store(database_url)
    first.migrate()
    first.create_account("jane", "Jane", "technician", "hash", 1.0)
    first.close()
    again = Store(database_url)
    assert again.persistent
    assert again.migrate() == "0002"
    account = again.account("jane")
    assert account is not None and account.display_name == "Jane"
    again.close()


def test_memory_databases_are_private_and_not_persistent() -> None:
    a, b = Store(), Store()
    for s in (a, b):
        s.migrate()
        assert not s.persistent
    a.create_account("jane", "Jane", "technician", "h", 1.0)
    assert b.account("jane") is None


def test_accounts(store: Store) -> None:
    jane = store.create_account("jane", "Jane", "technician", "h1", 10.0)
    assert jane.enabled and jane.password_changed_at == 10.0
    assert "h1" not in repr(jane)
    with pytest.raises(AccountExists, match="already exists"):
        store.create_account("jane", "Other", "admin", "h", 11.0)
    store.create_account("sam", "Sam", "supervisor", "h2", 12.0)
    assert [a.name for a in store.accounts()] == ["jane", "sam"]
    assert store.has_accounts()
    disabled = store.set_disabled("jane", True, 20.0)
    assert disabled.disabled_at == 20.0 and not disabled.enabled
    assert store.enabled_among([jane.id, 999]) == set()
    assert store.set_disabled("jane", False, 21.0).enabled
    changed = store.set_password("jane", "h3", 30.0)
    assert (changed.password_hash, changed.password_changed_at) == ("h3", 30.0)
    store.delete_account("sam")
    assert store.account("sam") is None
    for action in (
        lambda: store.set_disabled("nobody", True, 1.0),
        lambda: store.set_password("nobody", "h", 1.0),
        lambda: store.delete_account("nobody"),
    ):
        with pytest.raises(NoSuchAccount, match="no account named 'nobody'"):
            action()


def test_tokens_go_with_their_account(store: Store) -> None:
    jane = store.create_account("jane", "Jane", "technician", "h", 1.0)
    store.add_token("t1", jane.id, b"s" * 32, 1.0, 100.0)
    store.add_token("t2", jane.id, b"s" * 32, 1.0, 5.0)
    found = store.token("t1")
    assert found is not None and found[1].name == "jane" and found[0].expires_at == 100.0
    assert store.purge_tokens(50.0) == 1
    assert store.token("t2") is None
    store.set_password("jane", "new", 60.0)  # signs out everywhere
    assert store.token("t1") is None
    store.add_token("t3", jane.id, b"s" * 32, 1.0, 100.0)
    store.set_disabled("jane", True, 70.0)
    assert store.token("t3") is None
    store.add_token("t4", jane.id, b"s" * 32, 1.0, 100.0)
    store.delete_account("jane")
    assert store.token("t4") is None


def test_requests_round_trip(store: Store) -> None:
    text = "Outlook crashes — é ß €\nsince Monday"
    for n, t in ((2, 20.0), (1, 10.0)):
        store.add_request(
            HelpRequest(bytes([n]) * 16, f"user {n}", text, "mail", "Win 11", t, b"r" * 32, "a")
        )
    stored = store.requests()
    assert [r.id for r in stored] == [b"\x01" * 16, b"\x02" * 16]
    assert (stored[0].description, stored[0].resume_hash, stored[0].address) == (
        text,
        b"r" * 32,
        "a",
    )
    store.delete_requests([b"\x01" * 16])
    assert [r.id for r in store.requests()] == [b"\x02" * 16]
    store.delete_requests([])


def test_bad_urls_never_show_a_password() -> None:
    with pytest.raises(StoreError) as refused:
        Store("postgresql+nosuchdriver://admin:hunter2@db/deskhand")
    assert "hunter2" not in str(refused.value)
    assert "cannot use database URL" in str(refused.value)


def test_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    s = Store(sqlite_url(tmp_path / "missing-dir" / "relay.sqlite3"))
    with pytest.raises(StoreError, match="cannot open the database"):
        s.migrate()


def test_an_unreachable_postgresql_is_a_store_error_without_the_password(tmp_path: Path) -> None:
    s = Store(f"postgresql+psycopg://admin:hunter2@/deskhand?host={tmp_path / 'no-server'}")
    with pytest.raises(StoreError, match="cannot open the database") as refused:
        s.migrate()
    assert "hunter2" not in str(refused.value)


def test_concurrent_migrations_wait_for_each_other(database_url: str) -> None:
    # The relay starting while an account command runs, or two relays on one database.
    code = "import sys; from relay.store import Store; print(Store(sys.argv[1]).migrate())"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [run.communicate(timeout=60) for run in runs]
    assert [(run.returncode, out, err) for run, (out, err) in zip(runs, results, strict=True)] == [
        (0, "0002\n", "")
    ] * 3


def test_typed_names_with_nul_are_unknown_and_never_break_the_counters(store: Store) -> None:
    # PostgreSQL text cannot hold NUL; a sign-in name is typed by anyone.
    store.create_account("jane", "Jane", "technician", "h", 1.0)
    assert store.account("ja\0ne") is None
    rows = {
        "sign_in_lockout": [("ja\0ne", 1.0, 2.0, 3.0), ("jane", 1.0, 2.0, 3.0)],
        "address_login_failures": [("192.0.2.1", 4.0, 0.0, 0.0)],
    }
    store.save_limits(rows, 10.0)
    assert store.limits() == {
        "sign_in_lockout": (10.0, [("jane", 1.0, 2.0, 3.0)]),
        "address_login_failures": (10.0, [("192.0.2.1", 4.0, 0.0, 0.0)]),
    }


def test_times_and_bytes_round_trip_exactly(store: Store) -> None:
    # Times are unix seconds in double precision (no time zones anywhere); ids are raw bytes.
    now = 1_767_225_600.123456
    jane = store.create_account("jane", "Jane", "technician", "h", now)
    store.add_token("t1", jane.id, bytes(range(32)), now, now + 0.000001)
    found = store.token("t1")
    assert found is not None
    token, account = found
    assert (token.created_at, token.expires_at, account.created_at) == (now, now + 0.000001, now)
    assert type(token.secret_hash) is bytes and token.secret_hash == bytes(range(32))
    store.add_request(HelpRequest(b"\0" * 16, "n", "d", "", "", now, b"\xff" * 32, "::1"))
    (stored,) = store.requests()
    assert type(stored.id) is bytes and stored.id == b"\0" * 16
    assert (stored.created_at, stored.resume_hash) == (now, b"\xff" * 32)
