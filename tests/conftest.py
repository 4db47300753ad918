"""Fixtures for every test directory. Subdirectories add their own conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
