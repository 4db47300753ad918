"""The technician console under test, the fixtures its tests share and their steps.

The tests (test_technician_*.py) drive the console for real: its bridge and loop
thread, a relay on 127.0.0.1, real users (UserClient, UserSessionController,
ScreenSharer on a fake screen, see technician_support.py) and a real
organisation and certificate.

Fixtures: ``org``; ``relay`` (with the account jane, so code claims need a
sign-in too) and ``open_relay`` (no accounts, anyone may claim a code);
``users`` makes :class:`~tests.gui.technician_support.UserPeer` s and
``consoles`` makes :class:`Console` s (``consoles(url, clock=, resume_grace=)``);
all are closed at teardown. A test module uses them by binding them to module
names (``relay = technician_console.relay``), with ``org`` when it uses ``users``
or ``consoles``.

Steps: :func:`sign_in`, :func:`signed_in`, :func:`claim_first`,
:func:`connect_by_code`, :func:`wait_picture`, :func:`wait_text`; reading:
:func:`queue_rows`, :func:`chat_lines`. Every wait is bounded by
:data:`WAIT_MS`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from common.net.runner import LoopThread
from common.session import SessionLimits
from technician.core.console import TabState
from technician.core.session import TechnicianClient
from technician.qt import app as technician_app
from technician.qt.app import TechnicianOptions, build
from technician.qt.bridge import TechnicianBridge
from technician.qt.queue_page import QueuePage
from technician.qt.session_tab import SessionTab
from technician.qt.window import TechnicianWindow
from tests.gui.technician_support import PASSWORD, RelayThread, UserPeer
from tests.pki import Org, make_org


WAIT_MS = 10_000
LEFT = Qt.MouseButton.LeftButton


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Console:
    """The console under test, with what it needs."""

    def __init__(self, window: TechnicianWindow, bridge: TechnicianBridge, data_dir: Path) -> None:
        self.window = window
        self.bridge = bridge
        self.data_dir = data_dir

    @property
    def page(self) -> QueuePage:
        return self.window.queue_page

    def tabs(self) -> list[SessionTab]:
        return list(self.window.sessions.values())

    def only_tab(self) -> SessionTab:
        (tab,) = self.tabs()
        return tab


@pytest.fixture
def org() -> Org:
    return make_org()


@pytest.fixture
def relay() -> Iterator[RelayThread]:
    """A relay with the account jane (so code claims need a sign-in too)."""
    server = RelayThread(account="jane").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_relay() -> Iterator[RelayThread]:
    """A relay without accounts where anyone may claim a code (the default asks for a login)."""
    server = RelayThread(code_claims="anyone").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def users(org: Org) -> Iterator[Callable[..., UserPeer]]:
    made: list[UserPeer] = []

    def make(url: str, **kwargs: object) -> UserPeer:
        user = UserPeer(url, org, name=f"user-{len(made)}", **kwargs)  # type: ignore[arg-type]
        made.append(user)
        return user

    try:
        yield make
    finally:
        for user in made:
            user.close()


@pytest.fixture
def consoles(
    qtbot: QtBot, org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Console]]:
    made: list[tuple[TechnicianBridge, LoopThread]] = []

    def make(
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        resume_grace: float | None = None,
    ) -> Console:
        """A console; resume_grace: how long its sessions wait for a dropped link."""
        loop = LoopThread("test-technician-loop")
        loop.start()
        options = TechnicianOptions(
            relay_url=url,
            credential=org.technician("Jane Doe", org="ACME IT"),
            data_dir=tmp_path / "technician",
            account="jane",
        )
        with monkeypatch.context() as patch:
            if resume_grace is not None:
                limits = SessionLimits(resume_grace=resume_grace)
                patch.setattr(
                    technician_app,
                    "TechnicianClient",
                    functools.partial(TechnicianClient, limits=limits),
                )
            bridge, window = build(options, loop, **({"clock": clock} if clock else {}))
        made.append((bridge, loop))
        qtbot.addWidget(window)
        window.resize(1100, 700)
        window.show()
        return Console(window, bridge, options.data_dir)

    try:
        yield make
    finally:
        for bridge, loop in made:
            bridge.shutdown()
            loop.stop()


def wait_text(qtbot: QtBot, label: object, pattern: str) -> None:
    def check() -> None:
        text = label.text()  # type: ignore[attr-defined]
        assert re.search(pattern, text), text

    qtbot.waitUntil(check, timeout=WAIT_MS)


def sign_in(qtbot: QtBot, console: Console, password: str = PASSWORD) -> None:
    page = console.page
    page.password_edit.clear()
    qtbot.keyClicks(page.password_edit, password)
    qtbot.keyClick(page.password_edit, Qt.Key.Key_Return)


def signed_in(qtbot: QtBot, console: Console) -> None:
    sign_in(qtbot, console)
    wait_text(qtbot, console.page.queue_status, "^Live: ")


def queue_rows(console: Console) -> list[list[str]]:
    tree = console.page.queue_list
    rows = []
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        assert item is not None
        rows.append([item.text(c) for c in range(tree.columnCount())])
    return rows


def claim_first(qtbot: QtBot, console: Console, user: UserPeer) -> SessionTab:
    qtbot.waitUntil(lambda: console.page.claim_button.isEnabled(), timeout=WAIT_MS)
    qtbot.mouseClick(console.page.claim_button, LEFT)
    qtbot.waitUntil(lambda: bool(console.window.sessions), timeout=WAIT_MS)
    tab = console.tabs()[-1]
    user.wait_connected()
    qtbot.waitUntil(lambda: tab.state is TabState.LIVE, timeout=WAIT_MS)
    return tab


def connect_by_code(qtbot: QtBot, console: Console, code: str) -> SessionTab:
    qtbot.keyClicks(console.page.code_edit, code)
    qtbot.keyClick(console.page.code_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(console.window.sessions), timeout=WAIT_MS)
    return console.tabs()[-1]


def chat_lines(tab: SessionTab) -> list[str]:
    transcript = tab.chat.transcript
    return [transcript.item(i).text() for i in range(transcript.count())]


def wait_picture(qtbot: QtBot, tab: SessionTab) -> None:
    qtbot.waitUntil(lambda: tab.screen_panel.view.canvas is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tab.screen_panel.view.paint_count > 0, timeout=WAIT_MS)
