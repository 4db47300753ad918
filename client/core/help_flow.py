"""HelpFlow: the user's whole journey, from asking for help to the end of the session.

Qt-free; it runs in the app's loop thread (:class:`~common.net.runner.LoopThread`)
and reports everything as events to its listeners, which the Qt bridge turns
into signals::

    IDLE --request_code()--> CodeShown --technician joins--+
    IDLE --post_request()--> QueueChanged... --claimed-----+--> ConsentAsked
                                                                 | answer_consent()
           VerificationFailed (the technician's certificate      v
           was refused: nothing is asked, nothing shared)     Connected --> LiveSession
      any time: stop() -> Ended                                  ... --> Ended(had_session)

The anti-scam gate is the UI's: the flow only starts when the user has
confirmed it (the widgets do not offer the buttons before that).

Consent: the core asks through a callback; the flow parks a future and
emits :class:`ConsentAsked`; :meth:`HelpFlow.answer_consent` resolves it. If
the question lapses (timeout, the technician left, the request was
cancelled) the flow emits :class:`ConsentWithdrawn` so the dialog closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from client.core.live_session import (
    ChatSent,
    ClipboardWrite,
    ControlFactory,
    LiveEvent,
    LiveSession,
    Notice,
    SessionFinished,
    SharerFactory,
)
from client.core.presence import Presence, PresenceState
from client.core.session import HelpRequest, QueueStatus, UserClient
from client.core.system_summary import SystemSummary, collect_summary
from client.core.user_session import (
    CapabilitiesAsked,
    ChatReceived,
    PresenceChanged,
)
from common.errors import ConnectionLost, DeskhandError, IdentityError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, ConsentRequest, PairingDeclined
from common.protocol.relay_wire import CloseCode


__all__ = [
    "SCREENSHOT_NOTE",
    "CapabilitiesAsked",
    "ChatReceived",
    "ChatSent",
    "ClientFactory",
    "ClipboardWrite",
    "CodeShown",
    "Connected",
    "ConsentAsked",
    "ConsentWithdrawn",
    "Ended",
    "Failed",
    "FlowEvent",
    "HelpFlow",
    "Notice",
    "PresenceChanged",
    "QueueChanged",
    "SummaryReady",
    "VerificationFailed",
]

logger = logging.getLogger(__name__)

# The composition root makes the client; the flow supplies its callbacks.
ClientFactory = Callable[[ConsentCallback, Callable[[QueueStatus], None]], UserClient]

SCREENSHOT_NOTE = (
    "[Deskhand] The user attached a screenshot to this request. It stays on their "
    "computer: ask them to click “Show my screenshot” in their chat window, and it "
    "will open on their screen."
)


@dataclasses.dataclass(frozen=True)
class CodeShown:
    """The one-time code to read to the technician, "NNN-SSS-SSS"."""

    code: str


@dataclasses.dataclass(frozen=True)
class QueueChanged:
    status: QueueStatus


@dataclasses.dataclass(frozen=True)
class ConsentAsked:
    """A verified technician asks to connect; answer with :meth:`HelpFlow.answer_consent`."""

    request: ConsentRequest


@dataclasses.dataclass(frozen=True)
class ConsentWithdrawn:
    """The pending consent question is moot: close the dialog."""


@dataclasses.dataclass(frozen=True)
class VerificationFailed:
    """The technician's certificate or signature was refused; nothing was shared.

    Attributes:
        reason: the core's explanation (safe to show).
    """

    reason: str


@dataclasses.dataclass(frozen=True)
class Connected:
    """The session is open.

    Attributes:
        name, org, fingerprint: the verified technician.
        granted: what the user allowed at consent.
        sas: the verification number both sides showed.
    """

    name: str
    org: str
    fingerprint: str
    granted: tuple[str, ...]
    sas: str

    @property
    def technician(self) -> str:
        return f"{self.name} ({self.org})"


@dataclasses.dataclass(frozen=True)
class Ended:
    """The request or the session is over; back to idle.

    Attributes:
        reason: what to tell the user.
        had_session: a session had been open (the technician has left).
    """

    reason: str
    had_session: bool = False


@dataclasses.dataclass(frozen=True)
class Failed:
    """An action failed; nothing changed. ``reason`` can be shown as it is."""

    reason: str


@dataclasses.dataclass(frozen=True)
class SummaryReady:
    """The system summary, exactly as it would be sent."""

    text: str


FlowEvent = (
    CodeShown
    | QueueChanged
    | ConsentAsked
    | ConsentWithdrawn
    | VerificationFailed
    | Connected
    | Ended
    | Failed
    | SummaryReady
    | LiveEvent
)
Listener = Callable[[FlowEvent], None]


class HelpFlow:
    """The user client's session logic (see the module docstring).

    Args:
        make_client: builds the :class:`UserClient` from the flow's consent
            and queue callbacks.
        sharer_factory, control_factory: passed to each :class:`LiveSession`.
        summary: reads the system summary (in a worker thread).

    Every method must be called in the loop thread.
    """

    def __init__(
        self,
        make_client: ClientFactory,
        *,
        sharer_factory: SharerFactory | None = None,
        control_factory: ControlFactory | None = None,
        summary: Callable[[], SystemSummary] = collect_summary,
    ) -> None:
        self._client = make_client(self._ask_consent, self._on_queue)
        self._sharer_factory = sharer_factory
        self._control_factory = control_factory
        self._summary = summary
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._generation = 0  # one per request, so a late stop() spares a new one
        self._consent: asyncio.Future[tuple[str, ...] | None] | None = None
        self._consent_lapsed = False
        self._request: ConsentRequest | None = None
        self._live: LiveSession | None = None
        self._finishing: LiveSession | None = None
        self._dialogs: set[str] = set()
        self._screenshot = False

    # --- state ---

    @property
    def client(self) -> UserClient:
        return self._client

    @property
    def live(self) -> LiveSession | None:
        """The open session, if any."""
        return self._live

    @property
    def busy(self) -> bool:
        """A request or a session is under way."""
        return self._live is not None or (self._task is not None and not self._task.done())

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: FlowEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("a help-flow listener failed")

    # --- asking for help ---

    async def request_code(self) -> None:
        """Code flow: show a one-time code, wait for the technician, consent, connect."""

        async def start() -> None:
            code = await self._client.request_help()
            self._emit(PresenceChanged(Presence(PresenceState.WAITING)))
            self._emit(CodeShown(code.display))

        self._screenshot = False
        await self._run(start)

    async def post_request(self, request: HelpRequest, *, screenshot: bool = False) -> None:
        """Queue flow: post the request, report the place in the queue, consent, connect.

        Args:
            request: what the user typed (the summary only if they agreed).
            screenshot: a screenshot is attached locally; once connected the
                technician is told it can be shown.
        """

        async def start() -> None:
            await self._client.post_request(request)

        self._screenshot = screenshot
        await self._run(start)

    async def _run(self, start: Callable[[], Awaitable[None]]) -> None:
        if self.busy:
            self._emit(Failed("A request for help is already under way."))
            return
        self._generation += 1
        self._task = asyncio.current_task()
        try:
            await start()
            channel = await self._client.wait_for_technician()
        except asyncio.CancelledError:
            self._end("You cancelled the request.")
            raise
        except PairingDeclined:
            if self._consent_lapsed:
                self._end("Nobody answered in time, so the technician was turned away.")
            else:
                self._end("You declined the request.")
            return
        except IdentityError as exc:
            self._emit(VerificationFailed(str(exc)))
            self._end("The technician could not be verified. Nothing was shared.")
            return
        except ConnectionLost as exc:
            if exc.code == CloseCode.REQUEST_CANCELLED:
                self._end("You cancelled the request.")
            else:
                self._end(str(exc))
            return
        except DeskhandError as exc:
            self._end(str(exc))
            return
        except Exception as exc:
            logger.exception("the request for help failed")
            self._end(f"Something went wrong: {exc}")
            return
        finally:
            self._task = None
        self._open_session(channel)

    def _end(self, reason: str, *, had_session: bool = False) -> None:
        self._emit(PresenceChanged(Presence()))
        self._emit(Ended(reason, had_session))

    def _on_queue(self, status: QueueStatus) -> None:
        # The core's queue callback (loop thread).
        presence = Presence(PresenceState.WAITING, queue_position=status.position or 0)
        self._emit(PresenceChanged(presence))
        self._emit(QueueChanged(status))

    # --- consent ---

    async def _ask_consent(self, request: ConsentRequest) -> tuple[str, ...] | None:
        # The core's ConsentCallback: park a future until the user answers.
        future: asyncio.Future[tuple[str, ...] | None] = asyncio.get_running_loop().create_future()
        self._consent = future
        self._consent_lapsed = False
        self._request = request
        self._emit(ConsentAsked(request))
        try:
            return await future
        finally:
            self._consent = None
            if future.cancelled() or not future.done():
                self._consent_lapsed = True
                self._emit(ConsentWithdrawn())

    def answer_consent(self, granted: tuple[str, ...] | None) -> None:
        """The user's answer: the capabilities allowed, or None to decline."""
        if self._consent is not None and not self._consent.done():
            self._consent.set_result(None if granted is None else tuple(granted))

    # --- the open session ---

    def _open_session(self, channel: SecureChannel) -> None:
        live = LiveSession(
            channel,
            self._on_live_event,
            sharer_factory=self._sharer_factory,
            control_factory=self._control_factory,
            dialog_open=bool(self._dialogs),
        )
        self._live = live
        # The user's side always knows who it verified (the consent showed it).
        tech = channel.technician
        if tech is None and self._request is not None:
            tech = self._request.technician
        if tech is not None:
            connected = Connected(
                tech.name, tech.org, tech.fingerprint, channel.granted, channel.sas
            )
        else:
            connected = Connected("Technician", "unknown", "", channel.granted, channel.sas)
        self._emit(connected)
        self._emit(PresenceChanged(live.presence))
        live.start()
        if self._screenshot and channel.ended is None:
            live.send_chat(SCREENSHOT_NOTE, echo=False)  # the window says it its own way

    def _on_live_event(self, event: LiveEvent) -> None:
        if isinstance(event, SessionFinished):
            # Sharing and control let go of the display shortly after; stop() waits.
            self._finishing, self._live = self._live, None
            self._end(event.message, had_session=True)
            return
        self._emit(event)

    def set_capability(self, capability: str, on: bool) -> None:
        """Grant or revoke one capability (revoking takes effect at once)."""
        if self._live is None:
            self._emit(Failed("No session is open."))
            return
        self._live.set_capability(capability, on)

    def grant(self, capabilities: tuple[str, ...]) -> None:
        """Add capabilities (the answer to a mid-session request)."""
        if self._live is not None and capabilities:
            self._live.grant(capabilities)

    def set_paused(self, paused: bool) -> None:
        if self._live is not None:
            self._live.set_paused(paused)

    def send_chat(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self._live is None:
            self._emit(Failed("Not connected: the message was not sent."))
            return
        self._live.send_chat(text)

    def set_dialog_open(self, name: str, is_open: bool) -> None:
        """A Deskhand dialog or menu (by name) opened or closed.

        Remote input is paused while any is open, so that the technician can
        never click a consent button or a menu entry.
        """
        if is_open:
            self._dialogs.add(name)
        else:
            self._dialogs.discard(name)
        if self._live is not None:
            self._live.set_dialog_open(bool(self._dialogs))

    @property
    def dialogs_open(self) -> frozenset[str]:
        return frozenset(self._dialogs)

    def clipboard_changed(self, text: str) -> None:
        if self._live is not None:
            self._live.clipboard_changed(text)

    # --- the system summary ---

    async def collect_summary(self) -> None:
        """Read the system summary (in a worker thread) and emit it as :class:`SummaryReady`."""
        try:
            summary = await asyncio.to_thread(self._summary)
        except Exception as exc:
            logger.exception("reading the system summary failed")
            self._emit(Failed(f"The summary of this computer could not be read: {exc}"))
            return
        self._emit(SummaryReady(summary.as_text()))

    # --- ending ---

    async def stop(self, *, quiet: bool = False) -> None:
        """Withdraw the request or end the session (everything at once)."""
        generation = self._generation
        live, task = self._live, self._task
        if live is not None:
            await live.stop()
        finishing, self._finishing = self._finishing, None
        if finishing is not None:
            await finishing.wait_finished()
        if self._generation != generation:
            return  # the user asked for help again meanwhile: that request stays
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        try:
            await self._client.cancel()
        except DeskhandError as exc:
            if not quiet:
                self._emit(Failed(str(exc)))
