"""Fixtures for every test directory. Subdirectories add their own conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from common.qt.gc_guard import GuiThreadCollector
from relay.store import sqlite_url
from tests.postgres import PostgresServer, PostgresUnavailable
from tests.xvfb import Xvfb


@pytest.fixture(scope="session")
def xvfb() -> Iterator[Xvfb]:
    """One 1920x1080x24 Xvfb for the session, started by the first test that asks.

    Skips the requesting tests when Xvfb is not installed.
    """
    with Xvfb() as server:
        yield server


@pytest.fixture
def x_display(xvfb: Xvfb, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points DISPLAY (for this test only) at the session's Xvfb; returns ":N"."""
    if not xvfb.running:
        pytest.fail(f"the session's Xvfb has died: {xvfb!r}")
    monkeypatch.setenv("DISPLAY", xvfb.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return xvfb.display


@pytest.fixture(autouse=True)
def private_xdg_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apps under test keep their state (revocation lists, reports) in a folder of the test's."""
    base = tmp_path_factory.mktemp("xdg")
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(base / name.lower()))
    # A start-up error in a test must fail the test, not wait on a dialog nobody closes.
    monkeypatch.setenv("DESKHAND_NO_ERROR_DIALOG", "1")


# --- the relay's databases: SQLite and a private PostgreSQL server -------------------


def _must_run_postgres() -> bool:
    """In CI, and as root (where scripts/test.sh installs it), PostgreSQL is never skipped."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.geteuid() == 0


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session, started by the first test that asks.

    It listens on a Unix socket in a temporary folder only (see tests/postgres.py).
    Without PostgreSQL installed the requesting tests are skipped, except in CI
    or as root, where they fail: the PostgreSQL variants must run there.
    """
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        if _must_run_postgres():
            pytest.fail(f"{exc} (CI or root: PostgreSQL tests must not be skipped)", pytrace=False)
        pytest.skip(f"{exc}: skipping the PostgreSQL variant")
    with server:
        yield server


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once on SQLite (a file) and once on PostgreSQL.

    Each PostgreSQL test gets a database of its own on the session's server,
    dropped afterwards. ``-m "not postgresql"`` runs the SQLite variants only.
    """
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "relay.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    if not server.running:
        pytest.fail(f"the session's PostgreSQL server has died: {server!r}")
    name, url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def gui_thread_gc(qapp: QApplication) -> Iterator[None]:
    """As in the apps: cyclic garbage is collected on the GUI thread only.

    The tests run real cores and relays in other threads; a collection there
    that frees Qt objects crashed the suite once.
    """
    collector = GuiThreadCollector(qapp)
    collector.start()
    yield
    collector.stop()
    collector.deleteLater()
