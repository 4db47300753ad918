"""ClientBridge: the only place where Qt meets the user client's core.

The core runs in a :class:`~common.net.runner.LoopThread`. Calls from the
GUI thread become coroutines submitted to that loop; core events come back as
signals emitted from the loop thread, which Qt queues to the GUI thread
because the bridge lives there. Widgets connect to the signals and call the
public methods; they never see the loop, the client or the channel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot

from client.core.session import UserClient
from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, ConsentRequest, PairingDeclined
from common.net.runner import LoopThread
from common.protocol.messages import ChatText
from common.session import MessageReceived, SessionEnded, SessionEvent


__all__ = ["ClientBridge", "ClientFactory", "ConnectedSession"]

logger = logging.getLogger(__name__)

# The bridge makes the consent callback, the composition root the client.
ClientFactory = Callable[[ConsentCallback], UserClient]


@dataclasses.dataclass(frozen=True)
class ConnectedSession:
    """What the user sees about an open session.

    Attributes:
        name, org, fingerprint: the verified technician.
        granted: the capabilities the user allowed.
        sas: the verification number both sides showed.
    """

    name: str
    org: str
    fingerprint: str
    granted: tuple[str, ...]
    sas: str


class ClientBridge(QObject):
    """Adapts :class:`~client.core.session.UserClient` to Qt signals.

    Signals:
        code_ready: the code to read to the technician, "NNN-SSS-SSS" (str).
        consent_requested: a technician was verified and asks to connect
            (a ConsentRequest); answer with :meth:`answer_consent`.
        consent_withdrawn: the pending consent question is moot (it timed
            out, or the request was cancelled); close the dialog.
        connected: the session is open (a ConnectedSession).
        chat_received: a chat line from the technician (str).
        chat_sent: a chat line of ours is on its way (str).
        ended: the request or the session is over; why, user-presentable (str).
        failed: an action failed, the state is unchanged; why (str).
    """

    code_ready = Signal(str)
    consent_requested = Signal(object)
    consent_withdrawn = Signal()
    connected = Signal(object)
    chat_received = Signal(str)
    chat_sent = Signal(str)
    ended = Signal(str)
    failed = Signal(str)

    def __init__(
        self, loop: LoopThread, make_client: ClientFactory, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._loop = loop
        self._client = make_client(self._ask_consent)
        # Everything below is touched only in the loop thread.
        self._task: asyncio.Task[None] | None = None
        self._consent: asyncio.Future[tuple[str, ...] | None] | None = None
        self._consent_lapsed = False
        self._request: ConsentRequest | None = None
        self._channel: SecureChannel | None = None
        self._chat_id = 0

    # --- GUI thread -> loop thread ---

    @Slot()
    def request_help(self) -> None:
        """Get a code from the relay and wait for a technician to use it."""
        self._loop.submit(self._request_help())

    @Slot()
    def stop(self) -> None:
        """Withdraw the request or end the session, whichever is under way."""
        self._loop.submit(self._stop())

    @Slot(object)
    def answer_consent(self, granted: tuple[str, ...] | None) -> None:
        """Answer the pending consent question: the capabilities allowed, or None."""
        answer = None if granted is None else tuple(granted)
        self._loop.call_soon(lambda: self._resolve_consent(answer))

    @Slot(str)
    def send_chat(self, text: str) -> None:
        """Send a chat line to the technician (ignored when blank)."""
        text = text.strip()
        if text:
            self._loop.call_soon(lambda: self._send_chat(text))

    def shutdown(self, timeout: float = 3.0) -> None:
        """End everything, waiting at most timeout seconds (for quitting)."""
        coro = self._stop(quiet=True)
        try:
            future = self._loop.submit(coro)
        except RuntimeError:  # the loop is already closed
            coro.close()
            return
        try:
            future.result(timeout)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            logger.warning("the session did not close within %.1f s", timeout)

    # --- loop thread ---

    async def _request_help(self) -> None:
        if self._task is not None and not self._task.done():
            self.failed.emit("A request for help is already under way.")
            return
        self._task = asyncio.current_task()
        try:
            code = await self._client.request_help()
            self.code_ready.emit(code.display)
            channel = await self._client.wait_for_technician()
        except asyncio.CancelledError:
            self.ended.emit("You cancelled the request.")
            raise
        except PairingDeclined:
            if self._consent_lapsed:
                self.ended.emit("Nobody answered in time, so the technician was turned away.")
            else:
                self.ended.emit("You declined the request.")
            return
        except DeskhandError as exc:
            self.ended.emit(str(exc))
            return
        except Exception as exc:
            logger.exception("request for help failed")
            self.ended.emit(f"Something went wrong: {exc}")
            return
        finally:
            self._task = None
        self._channel = channel
        self._chat_id = 0
        channel.add_listener(self._on_channel_event)
        request = self._request
        assert request is not None  # pairing asked for consent first
        identity = request.technician
        self.connected.emit(
            ConnectedSession(
                identity.name, identity.org, identity.fingerprint, channel.granted, channel.sas
            )
        )

    async def _ask_consent(self, request: ConsentRequest) -> tuple[str, ...] | None:
        # The core's ConsentCallback: park a future until the GUI answers.
        future: asyncio.Future[tuple[str, ...] | None] = asyncio.get_running_loop().create_future()
        self._consent = future
        self._consent_lapsed = False
        self._request = request
        self.consent_requested.emit(request)
        try:
            return await future
        finally:
            self._consent = None
            if future.cancelled() or not future.done():
                self._consent_lapsed = True
                self.consent_withdrawn.emit()

    def _resolve_consent(self, answer: tuple[str, ...] | None) -> None:
        if self._consent is not None and not self._consent.done():
            self._consent.set_result(answer)

    def _on_channel_event(self, event: SessionEvent) -> None:
        # Called by the channel in the loop thread: only emit.
        if isinstance(event, MessageReceived) and isinstance(event.message, ChatText):
            self.chat_received.emit(event.message.text)
        elif isinstance(event, SessionEnded):
            self._channel = None
            if event.by_peer:
                self.ended.emit(f"The session ended: {event.reason}")
            else:
                self.ended.emit("You ended the session.")

    def _send_chat(self, text: str) -> None:
        channel = self._channel
        if channel is None:
            self.failed.emit("Not connected: the message was not sent.")
            return
        self._chat_id += 1
        try:
            channel.send_nowait(ChatText(self._chat_id, text, int(time.time() * 1000)))
        except DeskhandError as exc:
            self.failed.emit(f"The message was not sent: {exc}")
            return
        self.chat_sent.emit(text)

    async def _stop(self, *, quiet: bool = False) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        try:
            await self._client.cancel()
        except DeskhandError as exc:
            if not quiet:
                self.failed.emit(str(exc))
