"""ClientBridge: the only place where Qt meets the user client's core.

The core (:class:`~client.core.help_flow.HelpFlow`) runs in a
:class:`~common.net.runner.LoopThread`. Calls from the GUI thread are handed
to that loop; the flow's events come back as signals emitted from the loop
thread, which Qt queues to the GUI thread because the bridge lives there.
Widgets connect to the signals and call the public slots; they never see
the loop, the flow, the client or the channel.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from client.core.help_flow import (
    CodeShown,
    Connected,
    ConsentAsked,
    ConsentWithdrawn,
    Ended,
    Failed,
    FlowEvent,
    HelpFlow,
    QueueChanged,
    SummaryReady,
    VerificationFailed,
)
from client.core.session import HelpRequest
from client.core.session_controller import (
    CapabilitiesAsked,
    ChatReceived,
    ChatSent,
    ClipboardWrite,
    PresenceChanged,
    Reconnected,
    Reconnecting,
)
from client.qt.texts import ended_text, failed_text, session_notice
from client.qt.wording import LONGER_CODES, SCREENSHOT_NOTE
from common.capability import Capability, parse_capabilities
from common.net.runner import LoopThread


__all__ = ["ClientBridge", "Connected"]

logger = logging.getLogger(__name__)


class ClientBridge(QObject):
    """Adapts :class:`~client.core.help_flow.HelpFlow` to Qt signals.

    Signals:
        presence_changed: who is connected and what they may do (a Presence).
        code_ready: the code to read to the technician, "NNN-SSS-SSS" (str).
        code_warning: codes are longer because pairings kept failing; what to
            tell the user (str), emitted before code_ready.
        code_expires: when the code stops working (float, monotonic seconds),
            emitted before code_ready.
        queue_changed: the request's place in the queue (a QueueStatus).
        consent_requested: a verified technician asks to connect (a
            ConsentRequest); answer with :meth:`answer_consent`.
        consent_withdrawn: the pending consent question is moot; close the dialog.
        verification_failed: the technician could not be verified; why (str).
        connected: the session is open (a Connected).
        capabilities_asked: the technician asks for more: show or grow the one
            prompt (a CapabilitiesAsked).
        reconnecting: the link dropped; the monotonic deadline for it (float).
        reconnected: the link is back, same technician and grants.
        chat_received: a chat line from the technician (str).
        chat_sent: a chat line of ours is on its way (str).
        notice: something to read: a status or a toast (str).
        clipboard_write: put this text on the clipboard (str).
        summary_ready: the system summary, exactly as it would be sent (str).
        ended: the request or the session is over; why (str), and whether a
            session had been open (bool).
        failed: an action failed, the state is unchanged; why (str).
    """

    presence_changed = Signal(object)
    code_ready = Signal(str)
    code_warning = Signal(str)
    code_expires = Signal(float)
    queue_changed = Signal(object)
    consent_requested = Signal(object)
    consent_withdrawn = Signal()
    verification_failed = Signal(str)
    connected = Signal(object)
    capabilities_asked = Signal(object)
    reconnecting = Signal(float)
    reconnected = Signal()
    chat_received = Signal(str)
    chat_sent = Signal(str)
    notice = Signal(str)
    clipboard_write = Signal(str)
    summary_ready = Signal(str)
    ended = Signal(str, bool)
    failed = Signal(str)

    def __init__(self, loop: LoopThread, flow: HelpFlow, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loop = loop
        self._flow = flow  # touched only in the loop thread
        flow.add_listener(self._on_flow_event)

    # --- GUI thread -> loop thread ---

    def _submit(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            self._loop.submit(coro)
        except RuntimeError:  # the loop has stopped (quitting)
            coro.close()

    def _call(self, action: Callable[[], object]) -> None:
        try:
            self._loop.call_soon(action)
        except RuntimeError:  # the loop has stopped (quitting)
            pass

    @Slot()
    def request_code(self) -> None:
        """Phone support: get a one-time code and wait for the technician to use it."""
        self._submit(self._flow.request_code())

    def post_request(self, request: HelpRequest, screenshot: bool = False) -> None:
        """Put a help request in the queue and wait for a technician."""
        note = SCREENSHOT_NOTE if screenshot else ""
        self._submit(self._flow.post_request(request, screenshot_note=note))

    @Slot()
    def stop(self) -> None:
        """Withdraw the request or end the session, whichever is under way."""
        self._submit(self._flow.stop())

    @Slot(object)
    def answer_consent(self, granted: tuple[str, ...] | None) -> None:
        """Answer the pending consent question: the capabilities allowed, or None."""
        answer = None if granted is None else tuple(granted)
        self._call(lambda: self._flow.answer_consent(answer))

    @Slot(str, bool)
    def set_capability(self, capability: str, on: bool) -> None:
        cap = Capability(capability)
        self._call(lambda: self._flow.set_capability(cap, on))

    @Slot(object)
    def grant(self, capabilities: tuple[str, ...]) -> None:
        """The user chose to allow more (from the session bar)."""
        caps = parse_capabilities(capabilities)

        def grant_all() -> None:
            for cap in caps:
                self._flow.set_capability(cap, True)

        self._call(grant_all)

    @Slot(object)
    def answer_request(self, capabilities: tuple[str, ...] | None) -> None:
        """The answer to the technician's request: what was allowed, or None."""
        answer = None if capabilities is None else parse_capabilities(capabilities)
        self._call(lambda: self._flow.answer_request(answer))

    @Slot(bool, bool)
    def set_clipboard_directions(self, to_technician: bool, from_technician: bool) -> None:
        self._call(
            lambda: self._flow.set_clipboard_directions(
                to_technician=to_technician, from_technician=from_technician
            )
        )

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        self._call(lambda: self._flow.set_paused(paused))

    @Slot(str)
    def send_chat(self, text: str) -> None:
        """Send a chat line to the technician (ignored when blank)."""
        if text.strip():
            self._call(lambda: self._flow.send_chat(text))

    @Slot(str, bool)
    def set_dialog_open(self, name: str, is_open: bool) -> None:
        """A Deskhand dialog or menu opened or closed (remote input waits meanwhile)."""
        self._call(lambda: self._flow.set_dialog_open(name, is_open))

    @Slot(str)
    def clipboard_changed(self, text: str) -> None:
        self._call(lambda: self._flow.clipboard_changed(text))

    @Slot()
    def collect_summary(self) -> None:
        """Read the system summary; it arrives as :attr:`summary_ready`."""
        self._submit(self._flow.collect_summary())

    def shutdown(self, timeout: float = 3.0) -> None:
        """End everything, waiting at most timeout seconds (for quitting)."""
        coro = self._flow.stop(quiet=True)
        try:
            future = self._loop.submit(coro)
        except RuntimeError:  # the loop is already closed
            coro.close()
            return
        try:
            future.result(timeout)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            logger.warning("the session did not close within %.1f s", timeout)

    # --- loop thread -> GUI thread ---

    def _on_flow_event(self, event: FlowEvent) -> None:
        # Called by the flow in the loop thread: only emit.
        match event:
            case PresenceChanged(presence):
                self.presence_changed.emit(presence)
            case CodeShown(code, longer, expires_at):
                if longer:
                    self.code_warning.emit(LONGER_CODES)
                if expires_at:
                    self.code_expires.emit(expires_at)
                self.code_ready.emit(code)
            case QueueChanged(status):
                self.queue_changed.emit(status)
            case ConsentAsked(request):
                self.consent_requested.emit(request)
            case ConsentWithdrawn():
                self.consent_withdrawn.emit()
            case VerificationFailed(detail):
                self.verification_failed.emit(detail)
            case Connected():
                self.connected.emit(event)
            case CapabilitiesAsked():
                self.capabilities_asked.emit(event)
            case ChatReceived(text):
                self.chat_received.emit(text)
            case ChatSent(text):
                self.chat_sent.emit(text)
            case ClipboardWrite(text):
                self.clipboard_write.emit(text)
            case SummaryReady(text):
                self.summary_ready.emit(text)
            case Ended():
                self.ended.emit(ended_text(event), event.had_session)
            case Failed():
                self.failed.emit(failed_text(event))
            case Reconnecting(deadline):
                self.reconnecting.emit(deadline)
                self._notice(event)
            case Reconnected():
                self.reconnected.emit()
                self._notice(event)
            case _:
                self._notice(event)

    def _notice(self, event: FlowEvent) -> None:
        text = session_notice(event)
        if text is not None:
            self.notice.emit(text)
