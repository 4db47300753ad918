"""Drivers for the user client's GUI tests: a real relay, a real technician core, the real app.

- :class:`RelayThread`: the relay in process on 127.0.0.1, in its own loop thread,
  with a technician account (so the queue can be claimed).
- :class:`TechPeer`: the technician's real core (TechnicianClient, TechnicianSessionController)
  in its own loop thread, recording everything the user's side sends.
- :class:`ClientApp`: the user client as app.py builds it (HelpFlow, ClientBridge,
  ClientShell), with screen sharing and control replaced by what the test gives.
- :class:`FakeInjector`: records what the real ControlService lets through.
- helpers that click through the window like a user.

Every wait is bounded (:data:`WAIT` seconds, :data:`WAIT_MS` for qtbot).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QWidget
from pytestqt.qtbot import QtBot

from client.core.features import SharerFactory
from client.core.options import ClientOptions
from client.core.session_controller import ControlFactory
from client.core.system_summary import SystemSummary
from client.qt.app import build_flow
from client.qt.bridge import ClientBridge
from client.qt.shell import ClientShell
from client.qt.window import ClientWindow
from common.capability import parse_capabilities
from common.crypto.identity import TechnicianCredential
from common.net.channel import SecureChannel
from common.net.pairing import PairingTimeouts
from common.net.runner import LoopThread
from common.net.tls import RelayPin
from common.protocol.messages import AppMessage
from common.session import MessageReceived, SessionEnded, SessionEvent
from relay.config import RelayConfig
from relay.server import RelayServer, serve
from technician.core.queue import QueueWatch
from technician.core.session import TechnicianClient
from technician.core.session_controller import (
    TechnicianSessionController,
    TechnicianSessionEvent,
)
from tests.integration.relay_helpers import PASSWORD, create_account


__all__ = [
    "LEFT",
    "SUMMARY",
    "WAIT",
    "WAIT_MS",
    "ClientApp",
    "FakeInjector",
    "RelayThread",
    "TechPeer",
    "pass_gate",
    "request_code",
    "save_shot",
    "submit_request",
    "tick",
    "wait_status",
]

T = TypeVar("T")
WAIT = 10.0
WAIT_MS = 10_000
LEFT = Qt.MouseButton.LeftButton
SHOTS_ENV = "DESKHAND_CLIENT_SHOTS"

SUMMARY = SystemSummary(
    os="Debian GNU/Linux 12 (Linux 6.1)",
    cpu="Test CPU, 4 cores",
    memory="16.0 GiB, 9.5 GiB available",
    disk="500 GiB, 120 GiB free",
    network="eth0 192.0.2.7",
)


def save_shot(widget: QWidget, name: str) -> None:
    """Save widget as NAME.png in $DESKHAND_CLIENT_SHOTS, when that is set."""
    directory = os.environ.get(SHOTS_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(Path(directory) / f"{name}.png"))


class RelayThread:
    """The real relay on 127.0.0.1, in its own loop thread, with the account "jane"."""

    def __init__(self, **config: Any) -> None:
        self.loop = LoopThread("test-relay")
        self.loop.start()
        self.server: RelayServer = self.loop.submit(
            serve(RelayConfig(host="127.0.0.1", port=0, close_timeout=2.0, **config))
        ).result(WAIT)
        self.loop.submit(create_account(self.server, "jane", display_name="Jane Doe")).result(WAIT)

    @property
    def url(self) -> str:
        return self.server.url

    def queue_counts(self) -> tuple[int, int]:
        async def counts() -> tuple[int, int]:
            return self.server.relay.hub.queue.counts()

        return self.loop.submit(counts()).result(WAIT)

    def stop(self) -> None:
        self.loop.submit(self.server.close()).result(WAIT)
        self.loop.stop()


class TechPeer:
    """The technician's real core, signed in as "jane", in its own loop thread.

    Attributes:
        received: every message the user's side sent, in order (thread safe to read).
        ended: how the secure session ended, once it has.
        events: every event of the technician's session controller.
        channel, session: the open session.
    """

    def __init__(self, url: str, credential: TechnicianCredential) -> None:
        self.loop = LoopThread("test-technician")
        self.loop.start()
        self.client = TechnicianClient(
            url, credential, timeouts=PairingTimeouts(hello=5.0, consent=30.0)
        )
        self.run(self.client.login("jane", PASSWORD))
        self.received: list[AppMessage] = []
        self.ended: SessionEnded | None = None
        self.channel: SecureChannel | None = None
        self.session: TechnicianSessionController | None = None
        self.events: list[TechnicianSessionEvent] = []
        self.sas: list[str] = []
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.submit(coro).result(WAIT)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return self.loop.submit(coro)

    def connect(
        self, code: str, requested: tuple[str, ...] = ("view",)
    ) -> concurrent.futures.Future[SecureChannel]:
        return self.submit(
            self._adopt(self.client.connect(code, requested=requested, on_sas=self.sas.append))
        )

    def claim(
        self, request_id: str, requested: tuple[str, ...] = ("view",)
    ) -> concurrent.futures.Future[SecureChannel]:
        coro = self.client.claim(request_id, requested=requested, on_sas=self.sas.append)
        return self.submit(self._adopt(coro))

    def watch(self) -> QueueWatch:
        async def watch() -> QueueWatch:
            queue = await self.client.watch_queue()
            await queue.wait_synced()
            return queue

        return self.run(watch())

    async def _adopt(self, pairing: Coroutine[Any, Any, SecureChannel]) -> SecureChannel:
        channel = await pairing
        self.channel = channel
        channel.add_listener(self._on_event)
        self.session = TechnicianSessionController(channel, self._on_session_event)
        return channel

    def _on_session_event(self, event: TechnicianSessionEvent) -> None:
        with self._lock:
            self.events.append(event)

    def _on_event(self, event: SessionEvent) -> None:
        with self._lock:
            if isinstance(event, MessageReceived):
                self.received.append(event.message)
            elif isinstance(event, SessionEnded):
                self.ended = event

    def messages(self, kind: type[T]) -> list[T]:
        with self._lock:
            return [m for m in self.received if isinstance(m, kind)]

    def send(self, message: AppMessage) -> None:
        def send() -> None:
            assert self.channel is not None
            self.channel.send_nowait(message)

        self.loop.call_soon(send)

    def ask(self, capabilities: tuple[str, ...]) -> None:
        def ask() -> None:
            assert self.session is not None
            self.session.request(parse_capabilities(capabilities))

        self.loop.call_soon(ask)

    def end(self) -> None:
        assert self.session is not None
        self.run(self.session.end())

    def stop(self) -> None:
        channel = self.channel
        if channel is not None and channel.ended is None:
            try:
                self.run(channel.close("test over"))
            except Exception:
                pass
        self.loop.stop()


class ClientApp:
    """The user client, wired as app.py wires it (no tray: offscreen has none).

    Args:
        url, org_key, pin: the relay, the pinned organisation key and relay pin.
        sharer_factory, control_factory: screen sharing and control (None: off).
        allow_delay: the consent dialogs' delay (short, except where it is tested).
        timeouts: the pairing timeouts.
    """

    def __init__(
        self,
        qtbot: QtBot,
        url: str,
        org_key: bytes,
        *,
        pin: RelayPin | None = None,
        sharer_factory: SharerFactory | None = None,
        control_factory: ControlFactory | None = None,
        allow_delay: float = 0.05,
        timeouts: PairingTimeouts | None = None,
        use_clipboard: bool = False,
    ) -> None:
        self.loop = LoopThread("test-client-loop")
        self.loop.start()
        options = ClientOptions(url, org_key, "Test computer", pin=pin)
        self.flow = build_flow(
            options,
            sharer_factory=sharer_factory,
            control_factory=control_factory,
            summary=lambda: SUMMARY,
            timeouts=timeouts,
        )
        self.bridge = ClientBridge(self.loop, self.flow)
        clipboard = QApplication.clipboard() if use_clipboard else None
        self.shell = ClientShell(
            self.bridge,
            use_tray=False,
            clipboard=clipboard,
            allow_delay=allow_delay,
            bar_reassert_ms=0,
            screenshot_delay_ms=10,
            default_name="Bob Example",
        )
        self.window: ClientWindow = self.shell.window
        qtbot.addWidget(self.window)
        qtbot.addWidget(self.shell.bar)
        self.shell.start()

    def dialogs_open(self) -> frozenset[str]:
        async def read() -> frozenset[str]:
            return self.flow.dialogs_open

        return self.loop.submit(read()).result(WAIT)

    def close(self) -> None:
        self.bridge.shutdown(5.0)
        self.loop.stop()


class FakeInjector:
    """Stands in for XInjector under the real ControlService: records what got through."""

    def __init__(self) -> None:
        self.done: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def log(self) -> list[tuple[str, int, int]]:
        with self._lock:
            return list(self.done)

    def _add(self, entry: tuple[str, int, int]) -> None:
        with self._lock:
            self.done.append(entry)

    def move(self, x: int, y: int) -> None:
        self._add(("move", x, y))

    def button(self, button: int, pressed: bool) -> None:
        self._add(("button", button, int(pressed)))

    def scroll(self, clicks_x: int, clicks_y: int) -> None:
        self._add(("scroll", clicks_x, clicks_y))

    def key(self, keysym: int, pressed: bool) -> bool:
        self._add(("key", keysym, int(pressed)))
        return True

    def key_ready_at(self, keysym: int) -> float:
        return 0.0

    def type_text(self, text: str) -> int:
        self._add(("text", len(text), 0))
        return len(text)

    def retry_at(self) -> float:
        return 0.0

    def restore_keymap(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- clicking through the window ------------------------------------------------------


def tick(qtbot: QtBot, box: QCheckBox) -> None:
    # Click the indicator: a stretched checkbox's centre can lie past its text.
    qtbot.mouseClick(box, LEFT, pos=QPoint(6, box.height() // 2))


def wait_status(qtbot: QtBot, window: ClientWindow, pattern: str) -> None:
    def check() -> None:
        assert re.search(pattern, window.status_label.text()), window.status_label.text()

    qtbot.waitUntil(check, timeout=WAIT_MS)


def pass_gate(qtbot: QtBot, window: ClientWindow) -> None:
    """Confirm the anti-scam notice (the page must be showing)."""
    assert window.page == "gate"
    tick(qtbot, window.gate.confirm_box)
    qtbot.mouseClick(window.gate.continue_button, LEFT)


def request_code(qtbot: QtBot, window: ClientWindow) -> str:
    """Home -> phone support -> gate -> the code."""
    qtbot.mouseClick(window.code_button, LEFT)
    pass_gate(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.code_label.text()), timeout=WAIT_MS)
    code = window.code_label.text()
    assert re.fullmatch(r"\d{3}-\d{3}-\d{3}", code)
    return code


def submit_request(
    qtbot: QtBot, window: ClientWindow, description: str = "My printer is on fire"
) -> None:
    """Home -> Request help -> gate -> form -> Send."""
    qtbot.mouseClick(window.request_button, LEFT)
    pass_gate(qtbot, window)
    assert window.page == "form"
    window.form.description_edit.setPlainText(description)
    qtbot.mouseClick(window.form.send_button, LEFT)
    qtbot.waitUntil(lambda: window.page == "queue", timeout=WAIT_MS)
