"""HelpFlow: the user's whole journey, from asking for help to the end of the session.

Qt-free; it runs in the app's loop thread (:class:`~common.net.runner.LoopThread`)
and reports everything as typed events to its listeners, which the Qt
bridge turns into signals and words. Its state is explicit
(:class:`FlowState`)::

    IDLE --request_code()--> REQUESTING --> SHOWING_CODE --technician joins--+
    IDLE --post_request()--> REQUESTING --> QUEUED --claimed-----------------+
                                                                              v
        ENDED <--declined, not verified, timed out-- AWAITING_CONSENT (PAIRING before it)
          ^                                            | answer_consent(allowed)
          |                                            v
          +-------- the session ends --------------- IN_SESSION --> UserSessionController
      any state: stop() --> ENDED; from ENDED a new request may start

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
import enum
import logging
from collections.abc import Awaitable, Callable

from client.core.features import SharerFactory
from client.core.presence import Presence, PresenceState
from client.core.session import HelpRequest, QueueStatus, UserClient
from client.core.session_controller import (
    ControlFactory,
    PresenceChanged,
    SessionClosed,
    SessionState,
    UserSessionController,
    UserSessionEvent,
)
from client.core.system_summary import SystemSummary, collect_summary
from common.capability import Capability, ordered
from common.errors import CodeError, ConnectionLost, DeskhandError, IdentityError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, ConsentRequest, PairingDeclined
from common.protocol.relay_wire import CloseCode


__all__ = [
    "ClientFactory",
    "CodeShown",
    "Connected",
    "ConsentAsked",
    "ConsentWithdrawn",
    "Ended",
    "Failed",
    "FlowEnd",
    "FlowEvent",
    "FlowState",
    "HelpFlow",
    "Problem",
    "QueueChanged",
    "SummaryReady",
    "VerificationFailed",
]

logger = logging.getLogger(__name__)

# The composition root makes the client; the flow supplies its callbacks.
ClientFactory = Callable[[ConsentCallback, Callable[[QueueStatus], None]], UserClient]


class FlowState(enum.Enum):
    IDLE = "idle"
    REQUESTING = "requesting"  # talking to the relay for a code or a queue place
    SHOWING_CODE = "showing code"
    QUEUED = "queued"
    PAIRING = "pairing"  # verifying the technician
    AWAITING_CONSENT = "awaiting consent"
    IN_SESSION = "in session"
    ENDED = "ended"


class FlowEnd(enum.Enum):
    """Why a request (or the session after it) ended."""

    CANCELLED = "cancelled"  # the user withdrew the request
    DECLINED = "declined"  # the user said no at consent
    CONSENT_TIMED_OUT = "consent-timed-out"  # nobody answered the consent question
    NOT_VERIFIED = "not-verified"  # the technician's certificate was refused
    CODE_EXPIRED = "code-expired"
    RELAY_ENDED = "relay-ended"  # the relay refused or ended the request (detail says why)
    FAILED = "failed"  # anything else; detail says what
    SESSION_ENDED = "session-ended"  # see Ended.session


class Problem(enum.Enum):
    """What an action that failed (with nothing changed) was about."""

    BUSY = "busy"  # a request is already under way
    NOT_CONNECTED = "not-connected"
    SUMMARY_UNREADABLE = "summary-unreadable"
    STOP_FAILED = "stop-failed"


@dataclasses.dataclass(frozen=True)
class CodeShown:
    """The one-time code to read to the technician, "NNN-SSS-SSS" (or longer).

    Attributes:
        code: the code as shown.
        longer: codes are longer for a while, because pairings kept failing
            (someone may be guessing codes).
        expires_at: when the code stops working (monotonic seconds; 0: unknown).
    """

    code: str
    longer: bool = False
    expires_at: float = 0.0


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
        detail: the core's technical explanation.
    """

    detail: str


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
    granted: tuple[Capability, ...]
    sas: str

    @property
    def technician(self) -> str:
        return f"{self.name} ({self.org})"


@dataclasses.dataclass(frozen=True)
class Ended:
    """The request or the session is over; back to idle.

    Attributes:
        reason: why.
        had_session: a session had been open.
        detail: a technical explanation where there is one (relay refusals, errors).
        session: how the session ended, when one had been open.
    """

    reason: FlowEnd
    had_session: bool = False
    detail: str = ""
    session: SessionClosed | None = None


@dataclasses.dataclass(frozen=True)
class Failed:
    """An action failed; nothing changed."""

    problem: Problem
    detail: str = ""


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
    | UserSessionEvent
)
Listener = Callable[[FlowEvent], None]


class HelpFlow:
    """The user client's session logic (see the module docstring).

    Args:
        make_client: builds the :class:`UserClient` from the flow's consent
            and queue callbacks.
        sharer_factory, control_factory: passed to each session controller.
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
        self._state = FlowState.IDLE
        self._task: asyncio.Task[None] | None = None
        self._generation = 0  # one per request, so a late stop() spares a new one
        self._consent: asyncio.Future[tuple[str, ...] | None] | None = None
        self._consent_lapsed = False
        self._request: ConsentRequest | None = None
        self._live: UserSessionController | None = None
        self._finishing: UserSessionController | None = None
        self._dialogs: set[str] = set()
        self._screenshot_note = ""

    # --- state ---

    @property
    def state(self) -> FlowState:
        return self._state

    @property
    def client(self) -> UserClient:
        return self._client

    @property
    def live(self) -> UserSessionController | None:
        """The open session, if any."""
        return self._live

    @property
    def busy(self) -> bool:
        """A request or a session is under way."""
        return self._state not in (FlowState.IDLE, FlowState.ENDED)

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
            self._state = FlowState.SHOWING_CODE
            self._emit(PresenceChanged(Presence(PresenceState.WAITING)))
            longer = self._client.code_warning is not None
            self._emit(CodeShown(code.display, longer, code.issued_at + code.lifetime))

        self._screenshot_note = ""
        await self._run(start)

    async def post_request(self, request: HelpRequest, *, screenshot_note: str = "") -> None:
        """Queue flow: post the request, report the place in the queue, consent, connect.

        Args:
            request: what the user typed (the summary only if they agreed).
            screenshot_note: a screenshot is attached locally; once connected
                this chat line (the UI's words) tells the technician about it.
        """

        async def start() -> None:
            await self._client.post_request(request)
            if self._state is FlowState.REQUESTING:
                self._state = FlowState.QUEUED

        self._screenshot_note = screenshot_note
        await self._run(start)

    async def _run(self, start: Callable[[], Awaitable[None]]) -> None:
        if self.busy:
            self._emit(Failed(Problem.BUSY))
            return
        self._generation += 1
        self._state = FlowState.REQUESTING
        self._task = asyncio.current_task()
        try:
            await start()
            channel = await self._client.wait_for_technician()
        except asyncio.CancelledError:
            self._end(FlowEnd.CANCELLED)
            raise
        except PairingDeclined:
            self._end(FlowEnd.CONSENT_TIMED_OUT if self._consent_lapsed else FlowEnd.DECLINED)
            return
        except IdentityError as exc:
            self._emit(VerificationFailed(str(exc)))
            self._end(FlowEnd.NOT_VERIFIED, detail=str(exc))
            return
        except CodeError as exc:
            self._end(FlowEnd.CODE_EXPIRED, detail=str(exc))
            return
        except ConnectionLost as exc:
            if exc.code == CloseCode.REQUEST_CANCELLED:
                self._end(FlowEnd.CANCELLED)
            else:
                self._end(FlowEnd.RELAY_ENDED, detail=str(exc))
            return
        except DeskhandError as exc:
            self._end(FlowEnd.FAILED, detail=str(exc))
            return
        except Exception as exc:
            logger.exception("the request for help failed")
            self._end(FlowEnd.FAILED, detail=str(exc))
            return
        finally:
            self._task = None
        self._open_session(channel)

    def _end(
        self,
        reason: FlowEnd,
        *,
        detail: str = "",
        session: SessionClosed | None = None,
    ) -> None:
        self._state = FlowState.ENDED
        self._emit(PresenceChanged(Presence()))
        self._emit(Ended(reason, session is not None, detail, session))

    def _on_queue(self, status: QueueStatus) -> None:
        # The core's queue callback (loop thread).
        if self._state in (FlowState.REQUESTING, FlowState.PAIRING, FlowState.AWAITING_CONSENT):
            self._state = FlowState.QUEUED  # back in the queue (the technician left)
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
        previous, self._state = self._state, FlowState.AWAITING_CONSENT
        self._emit(ConsentAsked(request))
        try:
            return await future
        finally:
            self._consent = None
            if self._state is FlowState.AWAITING_CONSENT:
                self._state = FlowState.PAIRING if future.done() else previous
            if future.cancelled() or not future.done():
                self._consent_lapsed = True
                self._emit(ConsentWithdrawn())

    def answer_consent(self, granted: tuple[str, ...] | None) -> None:
        """The user's answer: the capabilities allowed, or None to decline."""
        if self._consent is not None and not self._consent.done():
            self._consent.set_result(None if granted is None else tuple(granted))

    # --- the open session ---

    def _open_session(self, channel: SecureChannel) -> None:
        live = UserSessionController(
            channel,
            self._on_session_event,
            sharer_factory=self._sharer_factory,
            control_factory=self._control_factory,
            dialog_open=bool(self._dialogs),
        )
        self._live = live
        self._state = FlowState.IN_SESSION
        # The user's side always knows who it verified (the consent showed it).
        tech = channel.technician
        if tech is None and self._request is not None:
            tech = self._request.technician
        granted = ordered(channel.granted)
        if tech is not None:
            connected = Connected(tech.name, tech.org, tech.fingerprint, granted, channel.sas)
        else:
            connected = Connected("", "", "", granted, channel.sas)
        self._emit(connected)
        live.start()
        if self._screenshot_note and live.state is not SessionState.ENDED:
            live.send_chat(self._screenshot_note, echo=False)  # the window says it its own way

    def _on_session_event(self, event: UserSessionEvent) -> None:
        if isinstance(event, SessionClosed):
            # Sharing and control let go of the display shortly after; stop() waits.
            self._finishing, self._live = self._live, None
            self._end(FlowEnd.SESSION_ENDED, detail=event.detail, session=event)
            return
        self._emit(event)

    def set_capability(self, capability: Capability, on: bool) -> None:
        """Grant or revoke one capability (revoking takes effect at once)."""
        if self._live is None:
            self._emit(Failed(Problem.NOT_CONNECTED))
            return
        self._live.set_capability(capability, on)

    def answer_request(self, capabilities: tuple[Capability, ...] | None) -> None:
        """The answer to a mid-session request: what was allowed (None: declined)."""
        if self._live is not None:
            self._live.answer_request(capabilities)

    def set_paused(self, paused: bool) -> None:
        if self._live is not None:
            self._live.set_paused(paused)

    def send_chat(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self._live is None or not self._live.send_chat(text):
            self._emit(Failed(Problem.NOT_CONNECTED))

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

    def set_clipboard_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        if self._live is not None:
            self._live.set_clipboard_directions(
                to_technician=to_technician, from_technician=from_technician
            )

    # --- the system summary ---

    async def collect_summary(self) -> None:
        """Read the system summary (in a worker thread) and emit it as :class:`SummaryReady`."""
        try:
            summary = await asyncio.to_thread(self._summary)
        except Exception as exc:
            logger.exception("reading the system summary failed")
            self._emit(Failed(Problem.SUMMARY_UNREADABLE, str(exc)))
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
                self._emit(Failed(Problem.STOP_FAILED, str(exc)))
        if self._state is not FlowState.IDLE:
            self._state = FlowState.ENDED
