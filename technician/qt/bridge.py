"""TechnicianBridge: the only place where Qt meets the technician's core.

The core runs in a :class:`~common.net.runner.LoopThread`. Calls from the
GUI thread become coroutines or callbacks run in that loop; core events come
back as signals emitted from the loop thread, which Qt queues to the GUI
thread because the bridge lives there. Widgets never see the loop, the
client, the queue watch or a channel.

Several sessions run at once. Each has a key (an int the GUI takes from
:meth:`TechnicianBridge.new_key` before connecting), and every per-session
signal carries it. State below is touched only in the loop thread, except
the key counter (GUI thread only).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QObject, Signal, Slot

from common.capability import parse_capabilities
from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.net.runner import LoopThread
from common.net.session_events import EndReason
from common.protocol.messages import AppMessage
from common.protocol.relay_wire import CloseCode
from technician.core.input import describe_control_status
from technician.core.queue import QueueChange, QueueWatch
from technician.core.screen.receiver import ScreenReceiver
from technician.core.session import TechnicianClient
from technician.core.session_controller import (
    ChatReceived,
    ClipboardMoved,
    ClipboardWrite,
    ControlStatusChanged,
    GrantsChanged,
    Reconnected,
    Reconnecting,
    RequestDeclined,
    SessionClosed,
    TechnicianSessionController,
    TechnicianSessionEvent,
)
from technician.qt.texts import clipboard_text, session_end_text


__all__ = ["OpenSession", "QueueClosed", "SessionEnd", "TechnicianBridge"]

logger = logging.getLogger(__name__)

# A closed queue watch with one of these needs a new sign-in, not a retry.
_SIGN_IN_AGAIN = frozenset(
    {CloseCode.TOKEN_EXPIRED, CloseCode.ACCOUNT_DISABLED, CloseCode.UNAUTHORIZED}
)


@dataclasses.dataclass(frozen=True)
class OpenSession:
    """A session the user allowed.

    Attributes:
        granted: what the user allowed at the start.
        sas: the verification number both sides showed.
        device: what the user told about their device ("" if nothing).
        receiver: the screen receiver for the viewer (attach the panel, then
            call :meth:`TechnicianBridge.start_screen`).
    """

    granted: tuple[str, ...]
    sas: str
    device: str
    receiver: ScreenReceiver


@dataclasses.dataclass(frozen=True)
class SessionEnd:
    """How a session ended: reason (user-presentable), clean (authenticated CLOSE), by_peer."""

    reason: str
    clean: bool
    by_peer: bool


@dataclasses.dataclass(frozen=True)
class QueueClosed:
    """The queue watch ended: why, and whether signing in again is the way back."""

    reason: str
    sign_in_again: bool


@dataclasses.dataclass
class _Live:
    """One session's core objects (loop thread only)."""

    task: asyncio.Task[None] | None = None
    controller: TechnicianSessionController | None = None


Pairing = Callable[[Callable[[str], None]], Awaitable[SecureChannel]]


class TechnicianBridge(QObject):
    """Adapts :class:`~technician.core.session.TechnicianClient` and its sessions to Qt.

    Signals:
        signed_in: the relay accepted the sign-in (a SignedInAccount).
        sign_in_failed: why signing in failed (str).
        signed_out: the account is signed out; why (str).
        queue_changed: the whole queue, oldest first (a tuple of QueueItem).
        queue_closed: the queue watch ended (a QueueClosed).
        session_sas: the verification number of a pairing (int key, str).
        session_opened: the user allowed the session (int key, an OpenSession).
        session_failed: the pairing did not complete; why (int key, str).
        grants_changed: what the user allows now (int key, a tuple of str).
        control_status: the user side's control state in words (int key, str).
        chat_received: a chat line from the user (int key, str).
        chat_sent: a chat line of ours is on its way (int key, str).
        session_ended: an open session is over (int key, a SessionEnd).
        clipboard_write: put the user's text on this clipboard (int key, str).
        clipboard_moved: clipboard text crossed or was refused, in words (int key, str).
        request_declined: the user declined; in words (int key, str).
        reconnecting: the link dropped; the monotonic deadline (int key, float).
        reconnected: the link is back (int key).
        failed: an action failed and nothing changed; why (str).
    """

    signed_in = Signal(object)
    sign_in_failed = Signal(str)
    signed_out = Signal(str)
    queue_changed = Signal(object)
    queue_closed = Signal(object)
    session_sas = Signal(int, str)
    session_opened = Signal(int, object)
    session_failed = Signal(int, str)
    grants_changed = Signal(int, object)
    control_status = Signal(int, str)
    chat_received = Signal(int, str)
    chat_sent = Signal(int, str)
    session_ended = Signal(int, object)
    clipboard_write = Signal(int, str)
    clipboard_moved = Signal(int, str)
    request_declined = Signal(int, str)
    reconnecting = Signal(int, float)
    reconnected = Signal(int)
    failed = Signal(str)

    def __init__(
        self, loop: LoopThread, client: TechnicianClient, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._loop = loop
        self._client = client
        self._next_key = 0  # GUI thread only
        # Loop thread only.
        self._watch: QueueWatch | None = None
        self._live: dict[int, _Live] = {}

    # --- GUI thread -> loop thread: the account and the queue ---

    def new_key(self) -> int:
        """A fresh session key (GUI thread)."""
        self._next_key += 1
        return self._next_key

    @Slot(str, str)
    def sign_in(self, account: str, password: str) -> None:
        """Sign in, then watch the queue."""
        self._loop.submit(self._sign_in(account, password))

    @Slot()
    def sign_out(self) -> None:
        """Stop watching the queue and forget the token (open sessions go on)."""
        self._loop.submit(self._sign_out())

    @Slot()
    def watch_queue(self) -> None:
        """Watch the queue again (after it closed), with the current sign-in."""
        self._loop.submit(self._start_watch())

    # --- GUI thread -> loop thread: sessions ---

    def connect_code(self, key: int, code: str, requested: tuple[str, ...]) -> None:
        """Claim the user's code and pair, as session ``key``."""
        self._start_pairing(
            key,
            requested,
            lambda on_sas: self._client.connect(code, requested=requested, on_sas=on_sas),
        )

    def claim(self, key: int, request_id: str, requested: tuple[str, ...]) -> None:
        """Claim a queued request and pair with its user, as session ``key``."""
        self._start_pairing(
            key,
            requested,
            lambda on_sas: self._client.claim(request_id, requested=requested, on_sas=on_sas),
        )

    def start_screen(self, key: int) -> None:
        """Start receiving the screen (after the viewer attached to the receiver)."""
        self._loop.call_soon(lambda: self._start_screen(key))

    def end_session(self, key: int) -> None:
        """Abandon the pairing or end the session ``key``, whichever is under way."""
        self._loop.submit(self._end(key))

    def request_capabilities(self, key: int, capabilities: tuple[str, ...]) -> None:
        """Ask the user for more (the user decides)."""
        self._loop.call_soon(lambda: self._request(key, capabilities))

    def send_chat(self, key: int, text: str) -> None:
        """Send a chat line (ignored when blank)."""
        text = text.strip()
        if text:
            self._loop.call_soon(lambda: self._send_chat(key, text))

    def send_input(self, key: int, msg: AppMessage) -> None:
        """Send one input message (the user's side decides whether it applies)."""
        self._loop.call_soon(lambda: self._send_input(key, msg))

    def request_keyframe(self, key: int) -> None:
        """Ask the user's side for a full picture."""
        self._loop.call_soon(lambda: self._with(key, lambda c: c.request_keyframe()))

    def set_clipboard_enabled(self, key: int, enabled: bool) -> None:
        """The technician's clipboard switch for session ``key``."""
        self._loop.call_soon(lambda: self._with(key, lambda c: c.set_clipboard_enabled(enabled)))

    def clipboard_changed(self, key: int, text: str) -> None:
        """The technician's clipboard holds new text (sent if the session allows it)."""
        self._loop.call_soon(lambda: self._with(key, lambda c: c.clipboard_changed(text)))

    def shutdown(self, timeout: float = 3.0) -> None:
        """End every session and the queue watch, waiting at most timeout seconds."""
        coro = self._shutdown()
        try:
            future = self._loop.submit(coro)
        except RuntimeError:  # the loop is already closed
            coro.close()
            return
        try:
            future.result(timeout)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            logger.warning("the sessions did not close within %.1f s", timeout)

    # --- loop thread: the account and the queue ---

    async def _sign_in(self, account: str, password: str) -> None:
        try:
            signed_in = await self._client.login(account, password)
        except DeskhandError as exc:
            self.sign_in_failed.emit(_sentence(exc))
            return
        except Exception as exc:
            logger.exception("signing in failed")
            self.sign_in_failed.emit(f"Signing in failed: something went wrong: {exc}")
            return
        logger.info("signed in as %s (%s)", signed_in.name, signed_in.role)
        self.signed_in.emit(signed_in)
        await self._start_watch()

    async def _start_watch(self) -> None:
        await self._stop_watch()
        try:
            watch = await self._client.watch_queue()
        except DeskhandError as exc:
            self._queue_ended(_sentence(exc), getattr(exc, "code", None))
            return
        # No await since watch_queue started it: nothing was read yet.
        self._watch = watch
        watch.add_listener(lambda change: self._on_queue_change(watch, change))

    def _on_queue_change(self, watch: QueueWatch, change: QueueChange) -> None:
        if watch is not self._watch:
            return  # an older watch, replaced
        if change.kind == "closed":
            self._watch = None
            self._queue_ended(change.reason, watch.closed.code if watch.closed else None)
        elif watch.synced:
            self.queue_changed.emit(tuple(watch.items))

    def _queue_ended(self, reason: str, code: int | None) -> None:
        sign_in_again = code in _SIGN_IN_AGAIN
        if sign_in_again:
            self._client.logout()  # a dead token must not go with code claims either
        self.queue_closed.emit(QueueClosed(reason, sign_in_again))

    async def _stop_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.close()

    async def _sign_out(self) -> None:
        await self._stop_watch()
        self._client.logout()
        self.signed_out.emit("You signed out.")

    # --- loop thread: sessions ---

    def _start_pairing(self, key: int, requested: tuple[str, ...], pairing: Pairing) -> None:
        try:
            caps = parse_capabilities(requested)
        except ValueError:
            caps = ()
        if not caps:
            self.session_failed.emit(key, "Choose at least one thing to ask the user for.")
            return
        self._loop.submit(self._pair(key, pairing))

    async def _pair(self, key: int, pairing: Pairing) -> None:
        if key in self._live:
            self.session_failed.emit(key, "This tab is already connecting or connected.")
            return
        live = _Live(task=asyncio.current_task())
        self._live[key] = live
        try:
            channel = await pairing(lambda sas: self.session_sas.emit(key, sas))
        except asyncio.CancelledError:
            self._live.pop(key, None)
            self.session_failed.emit(key, "You abandoned the connection attempt.")
            raise
        except (DeskhandError, ValueError) as exc:
            self._live.pop(key, None)
            self.session_failed.emit(key, f"Could not connect: {_sentence(exc)}")
            return
        except Exception as exc:
            self._live.pop(key, None)
            logger.exception("connecting failed")
            self.session_failed.emit(key, f"Could not connect: something went wrong: {exc}")
            return
        live.task = None
        receiver = ScreenReceiver()
        opened = OpenSession(tuple(channel.granted), channel.sas, channel.device, receiver)
        self.session_opened.emit(key, opened)
        live.controller = TechnicianSessionController(
            channel,
            lambda event: self._on_session_event(key, event),
            receiver=receiver,
        )

    def _on_session_event(self, key: int, event: TechnicianSessionEvent) -> None:
        # Called in the loop thread: only emit.
        match event:
            case GrantsChanged(granted):
                self.grants_changed.emit(key, tuple(str(c) for c in granted))
            case ControlStatusChanged(status):
                self.control_status.emit(key, describe_control_status(status))
            case ChatReceived(text):
                self.chat_received.emit(key, text)
            case ClipboardWrite(text):
                self.clipboard_write.emit(key, text)
            case ClipboardMoved(transfer):
                self.clipboard_moved.emit(key, clipboard_text(transfer))
            case RequestDeclined(capabilities, retry_after):
                names = ", ".join(str(c) for c in capabilities)
                wait = f" You can ask again in {retry_after} s." if retry_after else ""
                self.request_declined.emit(key, f"The user declined: {names}.{wait}")
            case Reconnecting(deadline):
                self.reconnecting.emit(key, deadline)
            case Reconnected():
                self.reconnected.emit(key)
            case SessionClosed():
                live = self._live.pop(key, None)
                if live is not None and live.controller is not None:
                    live.controller.receiver.close()
                clean = event.reason not in (EndReason.CONNECTION_LOST, EndReason.SECURITY)
                self.session_ended.emit(
                    key, SessionEnd(session_end_text(event), clean, event.by_peer)
                )

    def _with(self, key: int, action: Callable[[TechnicianSessionController], None]) -> None:
        live = self._live.get(key)
        if live is not None and live.controller is not None:
            action(live.controller)

    def _start_screen(self, key: int) -> None:
        self._with(key, lambda c: c.start_screen())

    async def _end(self, key: int, reason: EndReason = EndReason.TECHNICIAN_ENDED) -> None:
        live = self._live.get(key)
        if live is None:
            return
        task = live.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        elif live.controller is not None:
            await live.controller.end(reason)

    def _request(self, key: int, capabilities: tuple[str, ...]) -> None:
        live = self._live.get(key)
        if live is None or live.controller is None:
            self.failed.emit("Not connected: nothing was asked.")
            return
        try:
            live.controller.request(parse_capabilities(capabilities))
        except (DeskhandError, ValueError) as exc:
            self.failed.emit(f"Could not ask the user: {_sentence(exc)}")

    def _send_chat(self, key: int, text: str) -> None:
        live = self._live.get(key)
        if live is None or live.controller is None or not live.controller.send_chat(text):
            self.failed.emit("Not connected: the message was not sent.")
            return
        self.chat_sent.emit(key, text)

    def _send_input(self, key: int, msg: AppMessage) -> None:
        self._with(key, lambda c: c.send_input(msg))

    async def _shutdown(self) -> None:
        await self._stop_watch()
        ending = [self._end(key, EndReason.TECHNICIAN_QUIT) for key in list(self._live)]
        await asyncio.gather(*ending, return_exceptions=True)
        for live in self._live.values():
            if live.controller is not None:
                live.controller.receiver.close()


def _sentence(exc: BaseException) -> str:
    """An exception's text as a sentence (they are user-presentable by contract)."""
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."
