"""TechnicianBridge: the only place where Qt meets the technician's core.

The core runs in a :class:`~common.net.runner.LoopThread`. Calls from the
GUI thread become coroutines submitted to that loop; core events come back as
signals emitted from the loop thread, which Qt queues to the GUI thread
because the bridge lives there. Widgets never see the loop or the channel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time

from PySide6.QtCore import QObject, Signal, Slot

from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.net.runner import LoopThread
from common.protocol.messages import CAPABILITIES, ChatText
from common.session import MessageReceived, SessionEnded, SessionEvent
from technician.core.session import TechnicianClient


__all__ = ["OpenSession", "TechnicianBridge"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OpenSession:
    """What the technician sees about an open session.

    Attributes:
        granted: the capabilities the user allowed.
        sas: the verification number both sides showed.
    """

    granted: tuple[str, ...]
    sas: str


class TechnicianBridge(QObject):
    """Adapts :class:`~technician.core.session.TechnicianClient` to Qt signals.

    Signals:
        sas_known: the verification number to read to the user (str).
        connected: the user allowed the session (an OpenSession).
        chat_received: a chat line from the user (str).
        chat_sent: a chat line of ours is on its way (str).
        ended: the attempt or the session is over; why, user-presentable (str).
        failed: an action failed, the state is unchanged; why (str).
    """

    sas_known = Signal(str)
    connected = Signal(object)
    chat_received = Signal(str)
    chat_sent = Signal(str)
    ended = Signal(str)
    failed = Signal(str)

    def __init__(
        self, loop: LoopThread, client: TechnicianClient, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._loop = loop
        self._client = client
        # Touched only in the loop thread.
        self._task: asyncio.Task[None] | None = None
        self._channel: SecureChannel | None = None
        self._chat_id = 0

    # --- GUI thread -> loop thread ---

    @Slot(str, object)
    def connect_to(self, code_text: str, requested: tuple[str, ...] = ("view",)) -> None:
        """Claim the user's code and pair, asking for the given capabilities."""
        self._loop.submit(self._connect(code_text, tuple(requested)))

    @Slot()
    def end_session(self) -> None:
        """Abandon the attempt or end the session, whichever is under way."""
        self._loop.submit(self._end())

    @Slot(str)
    def send_chat(self, text: str) -> None:
        """Send a chat line to the user (ignored when blank)."""
        text = text.strip()
        if text:
            self._loop.call_soon(lambda: self._send_chat(text))

    def shutdown(self, timeout: float = 3.0) -> None:
        """End everything, waiting at most timeout seconds (for quitting)."""
        coro = self._end()
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

    async def _connect(self, code_text: str, requested: tuple[str, ...]) -> None:
        if self._task is not None or self._channel is not None:
            self.failed.emit("Already connecting or connected: end that session first.")
            return
        unknown = sorted(set(requested) - set(CAPABILITIES))
        if unknown or not requested:
            self.failed.emit(f"Cannot ask for {', '.join(unknown) or 'nothing'}.")
            return
        self._task = asyncio.current_task()
        try:
            channel = await self._client.connect(
                code_text, requested=requested, on_sas=self.sas_known.emit
            )
        except asyncio.CancelledError:
            self.ended.emit("Connection attempt abandoned.")
            raise
        except DeskhandError as exc:
            self.ended.emit(f"Could not connect: {exc}")
            return
        except Exception as exc:
            logger.exception("connecting failed")
            self.ended.emit(f"Could not connect: something went wrong: {exc}")
            return
        finally:
            self._task = None
        self._channel = channel
        self._chat_id = 0
        channel.add_listener(self._on_channel_event)
        self.connected.emit(OpenSession(channel.granted, channel.sas))

    def _on_channel_event(self, event: SessionEvent) -> None:
        # Called by the channel in the loop thread: only emit.
        if isinstance(event, MessageReceived) and isinstance(event.message, ChatText):
            self.chat_received.emit(event.message.text)
        elif isinstance(event, SessionEnded):
            self._channel = None
            if event.by_peer:
                self.ended.emit(f"Session ended: {event.reason}")
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

    async def _end(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        channel = self._channel
        if channel is not None and channel.ended is None:
            await channel.close("The technician ended the session.")
