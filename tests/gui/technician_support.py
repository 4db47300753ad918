"""Real peers for the technician console's tests: a relay and users, each in a loop thread.

:class:`RelayThread` runs the real relay in process on 127.0.0.1 (optionally
with an account). :class:`UserPeer` is the user's real core (UserClient,
UserSessionController and a ScreenSharer over a fake screen) driven from the test's
thread: it asks for help by code or through the queue, answers consent,
grants, chats, stops, and records what the technician's side sent.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtWidgets import QWidget

from client.core.features import ScreenPort, SharerPort
from client.core.screen.sharer import ScreenSharer, SharerConfig
from client.core.session import HelpRequest, UserClient
from client.core.session_controller import (
    CapabilitiesAsked,
    SessionClosed,
    SessionState,
    UserSessionController,
    UserSessionEvent,
)
from common.capability import Capability
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.net.runner import LoopThread
from common.net.session_events import EndReason
from common.protocol.messages import AppMessage
from common.session import MessageReceived, SessionEnded, SessionEvent, SessionLimits
from relay.config import RelayConfig, load_config
from relay.server import RelayServer, serve
from tests.integration.relay_helpers import PASSWORD, create_account, disable_account
from tests.pki import Org
from tests.screen_fakes import FakeCapture, text_like


__all__ = ["PASSWORD", "WAIT", "RelayThread", "UserPeer", "screenshot"]

T = TypeVar("T")
WAIT = 10.0  # seconds: the bound on every wait of the helpers
SHOTS_ENV = "DESKHAND_SCREENSHOTS"


def screenshot(widget: QWidget, name: str) -> None:
    """Save widget as NAME.png in $DESKHAND_SCREENSHOTS, when that is set."""
    directory = os.environ.get(SHOTS_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(Path(directory) / f"{name}.png"))


class RelayThread:
    """The real relay on 127.0.0.1 in its own loop thread.

    Args:
        account: an account to create (password PASSWORD) at every start.
        config_file: a relay.toml (from ``deskhand-relay init``: TLS); its
            database is replaced by a fresh in-memory one.
        settings: other RelayConfig fields.
    """

    def __init__(
        self,
        *,
        account: str | None = None,
        display_name: str = "Jane Doe",
        config_file: Path | None = None,
        **settings: Any,
    ) -> None:
        self._account = account
        self._display_name = display_name
        self._config_file = config_file
        self._settings = settings
        self.loop = LoopThread("test-relay")
        self.server: RelayServer | None = None
        self.port = 0

    def _config(self, port: int) -> RelayConfig:
        flags = {"host": "127.0.0.1", "port": port, "close_timeout": 2.0, **self._settings}
        if self._config_file is None:
            return RelayConfig(**flags)
        config = load_config(flags=flags, config_file=self._config_file)
        return dataclasses.replace(config, database_url="")

    def start(self, port: int = 0) -> RelayThread:
        if not self.loop.loop.is_running():
            self.loop.start()
        self.server = self.loop.submit(serve(self._config(port))).result(WAIT)
        self.port = self.server.port
        if self._account is not None:
            self.loop.submit(
                create_account(self.server, self._account, display_name=self._display_name)
            ).result(WAIT)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def close(self) -> None:
        """Stop the relay: every peer loses its connection (GOING_AWAY)."""
        server, self.server = self.server, None
        if server is not None:
            self.loop.submit(server.close()).result(WAIT)

    def restart(self) -> None:
        """A fresh relay on the same port (its memory is gone)."""
        self.close()
        self.start(self.port)

    def stop(self) -> None:
        self.close()
        self.loop.stop()

    def disable(self, name: str) -> None:
        """Disable an account (the relay cuts it off within check_interval)."""
        assert self.server is not None
        self.loop.submit(disable_account(self.server, name)).result(WAIT)


class UserPeer:
    """The user's side, with real cores, in its own loop thread.

    Args:
        url: the relay.
        org: the organisation whose technicians the user trusts.
        grant: what the user allows at consent (None: decline), from what is asked.
        grant_more: answer CapabilitiesAsked by allowing everything the prompt asks for.
        device: the device name sent with consent.
        hold_consent: the user answers only once this is set (bounded by WAIT).
        limits: the session's limits (a short ``resume_grace`` ends a lost link sooner).

    Attributes:
        received: every message the technician's side sent, in order.
        asked: every CapabilitiesAsked.
        ended: how the secure session ended, once it has.
        closed: how the user's session controller saw the end, once it has.
        consent: the ConsentRequest the user saw.
        capture: the fake screen shared.
    """

    def __init__(
        self,
        url: str,
        org: Org,
        *,
        grant: Callable[[tuple[str, ...]], tuple[str, ...] | None] = lambda asked: ("view",),
        grant_more: bool = True,
        device: str = "Bob's laptop",
        name: str = "user",
        hold_consent: threading.Event | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self._grant = grant
        self._hold = hold_consent
        self._grant_more = grant_more
        self.loop = LoopThread(f"test-{name}")
        self.loop.start()
        self.client = UserClient(
            url, org.trust, self._consent, device=device, resume_timeout=1.0, limits=limits
        )
        self.capture = FakeCapture(320, 200)
        self.capture.screen[...] = text_like(200, 320)
        self.received: list[AppMessage] = []
        self.asked: list[CapabilitiesAsked] = []
        self.consent: ConsentRequest | None = None
        self.ended: SessionEnded | None = None
        self.closed: SessionClosed | None = None
        self.channel: SecureChannel | None = None
        self.session: UserSessionController | None = None
        self._waiter: concurrent.futures.Future[None] | None = None
        self._lock = threading.Lock()
        self._ended_event = threading.Event()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.submit(coro).result(WAIT)

    async def _consent(self, request: ConsentRequest) -> tuple[str, ...] | None:
        self.consent = request
        if self._hold is not None:
            await asyncio.to_thread(self._hold.wait, WAIT)
        return self._grant(request.requested)

    # --- asking for help ---

    def post(
        self,
        name: str = "Bob",
        description: str = "My printer prints blank pages",
        category: str = "Printing",
        summary: str = "Operating system: Debian 13\nMemory: 16.0 GiB, 9.1 GiB available",
    ) -> str:
        """Put a request in the queue and wait for a technician; returns the request id."""
        status = self._run(
            self.client.post_request(HelpRequest(name, description, category, summary))
        )
        self._waiter = self.loop.submit(self._wait())
        return status.request_id

    def request_code(self) -> str:
        """Make a code and wait for a technician; returns the code to read out."""
        code = self._run(self.client.request_help())
        self._waiter = self.loop.submit(self._wait())
        return code.display

    async def _wait(self) -> None:
        channel = await self.client.wait_for_technician()
        self.channel = channel
        self.ended = None
        self.closed = None
        self._ended_event.clear()
        channel.add_listener(self._on_channel_event)
        session = UserSessionController(channel, self._on_session_event, sharer_factory=self._share)
        self.session = session
        session.start()

    def _share(self, port: ScreenPort) -> SharerPort:
        # The screen is shared while "view" is allowed (the controller decides).
        return ScreenSharer(
            port,
            SharerConfig(use_damage=False, cursor=False, poll_active=0.02, poll_idle=0.05),
            capture_factory=lambda: self.capture,
            events_factory=lambda *_: None,
        )

    def wait_connected(self) -> None:
        assert self._waiter is not None
        self._waiter.result(WAIT)

    def wait_not_connected(self) -> BaseException | None:
        """The pairing's outcome when it failed (declined, refused...)."""
        assert self._waiter is not None
        try:
            self._waiter.result(WAIT)
        except Exception as exc:
            return exc
        return None

    def _on_channel_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self.ended = event
        elif isinstance(event, MessageReceived):
            with self._lock:
                self.received.append(event.message)

    def _on_session_event(self, event: UserSessionEvent) -> None:
        if isinstance(event, CapabilitiesAsked):
            self.asked.append(event)
            if self._grant_more and self.session is not None:
                self.session.answer_request(event.capabilities)
        elif isinstance(event, SessionClosed):
            self.closed = event
            self._ended_event.set()

    def messages(self, kind: type[T]) -> list[T]:
        with self._lock:
            return [m for m in self.received if isinstance(m, kind)]

    # --- the user's intents (run in the loop thread) ---

    def call(self, action: Callable[[], object]) -> None:
        async def run() -> None:
            action()

        self._run(run())

    def set_capability(self, capability: str, on: bool) -> None:
        self.call(lambda: self._session().set_capability(Capability(capability), on))

    def chat(self, text: str) -> None:
        self.call(lambda: self._session().send_chat(text))

    def send(self, msg: AppMessage) -> None:
        self.call(lambda: self._channel().send_nowait(msg))

    def stop(self) -> None:
        self._run(self._session().stop())

    def _session(self) -> UserSessionController:
        assert self.session is not None, "not connected"
        return self.session

    def _channel(self) -> SecureChannel:
        assert self.channel is not None, "not connected"
        return self.channel

    def wait_ended(self) -> SessionClosed:
        """How the user's session ended, as its controller reported it."""
        assert self._ended_event.wait(WAIT), "the session did not end"
        assert self.closed is not None
        return self.closed

    def close(self) -> None:
        async def shutdown() -> None:
            session = self.session
            if session is not None and session.state is not SessionState.ENDED:
                await session.stop(EndReason.USER_QUIT)
            await self.client.cancel()

        try:
            self.loop.submit(shutdown()).result(WAIT)
        except (Exception, asyncio.CancelledError):
            pass
        self.loop.stop()
