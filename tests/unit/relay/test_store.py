"""The relay's database: migrations, accounts, tokens and stored requests (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from relay.queue import HelpRequest
from relay.store import AccountExists, NoSuchAccount, Store, StoreError, _Base, sqlite_url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(sqlite_url(tmp_path / "relay.sqlite3"))
    s.migrate()
    yield s
    s.close()


def test_migrations_reach_the_head_and_match_the_models(store: Store) -> None:
    assert store.revision() == "0002"
    assert store.migrate() == "0002"  # idempotent
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), _Base.metadata)
    assert diff == []


def test_a_file_database_persists(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "db.sqlite3")
    first = Store(url)
    first.migrate()
    first.create_account("jane", "Jane", "technician", "hash", 1.0)
    first.close()
    again = Store(url)
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
