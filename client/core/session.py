"""UserClient: ask for help, by code or through the queue; pair with a verified technician.

Two ways to ask, one way to finish::

    code flow:
    IDLE --request_help()--> WAITING --technician joins--> PAIRING --consent--> CONNECTED
    queue flow:                                        ^
    IDLE --post_request()--> QUEUED --a technician claims it-+
                               ^  |                          |
                               |  +--relay restarts: reattach with the resume token
                               +--- the technician left before the session started
      any state -- cancel() / failure / decline / session end --> ENDED

Code flow: a fresh code (and relay registration) is made for every request;
a code is never offered for a second pairing attempt.

Queue flow: the request (name, description, category, and a system summary
only if the user agreed to send it) is stored by the relay, which reports
the position in the queue; when a technician claims it, RA1 runs in queue
mode (:mod:`common.net.queue_pairing`): the technician's certificate and
signature are verified exactly as in the code flow, and the SAS is shown.
If the relay restarts or the connection drops, the client re-attaches with
the request's resume token for up to ``resume_timeout`` seconds. A pairing
that fails (unverifiable technician, decline, timeout) ends the request; the
:class:`HelpRequest` is kept in :attr:`UserClient.help_request` so the user
can post it again without retyping anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
import secrets
import ssl
import time
from collections.abc import Callable, Iterator

from client.core.code_policy import CodePolicy, CodeWarning
from common.crypto.code import CODE_LIFETIME, PairingCode
from common.crypto.identity import OrgTrust
from common.errors import CodeError, ConnectionLost, IdentityError, InvalidState, PairingError
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, PairingDeclined, PairingTimeouts, pair_user
from common.net.queue_pairing import AttemptLink, pair_user_queued
from common.net.reconnect import RelayReconnector
from common.net.relay_link import RelayLink, RequestRequeued
from common.net.tls import RelayPin
from common.protocol.relay_wire import (
    Assigned,
    CancelRequest,
    CloseCode,
    PostRequest,
    Queued,
    QueuePosition,
    Requeued,
    SessionStarted,
)
from common.session import SessionEnded, SessionEvent, SessionLimits


__all__ = ["HelpRequest", "QueueStatus", "UserClient", "UserState"]

_EXPIRED = "Nobody used the code before it expired. Request a new code."
# Close codes after which re-attaching to the request makes sense.
_RETRYABLE = frozenset({None, 1006, CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR})


class UserState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting for a technician"
    QUEUED = "waiting in the queue"
    PAIRING = "verifying the technician"
    CONNECTED = "connected"
    ENDED = "ended"


@dataclasses.dataclass(frozen=True)
class HelpRequest:
    """What the user asks for help with (queue flow).

    Attributes:
        name: who is asking, as the technician will see it.
        description: the problem, in the user's words.
        category: an optional category from the organisation's list.
        system_summary: facts about the computer; leave empty unless the
            user agreed to send them.
    """

    name: str
    description: str
    category: str = ""
    system_summary: str = ""


@dataclasses.dataclass(frozen=True)
class QueueStatus:
    """Where the user's request stands.

    Attributes:
        request_id: the request's id, in hex (for support conversations).
        position: 1 when the request is next; None while reconnecting.
        reconnecting: the connection to the relay dropped and the client is
            re-attaching (the request is kept by the relay meanwhile).
    """

    request_id: str
    position: int | None
    reconnecting: bool = False


def _backoff(first: float = 0.2, factor: float = 2.0, most: float = 5.0) -> Iterator[float]:
    delay = first
    while True:
        yield delay
        delay = min(most, delay * factor)


class UserClient:
    """The user side's session core (one help request at a time).

    Args:
        relay_url: ``wss://host:port/v1/peer`` (``ws://`` on loopback only).
        trust: the pinned organisation key that technicians must chain to.
        consent: asks the user; returns the granted capabilities or None.
        pin: the relay's pinned certificate or public key (``wss://``).
        on_queue: called (in the loop thread) with every new :class:`QueueStatus`.
        resume_timeout: how long to keep re-attaching to a queued request
            after the connection dropped.
        ssl_context: a TLS context made by the caller (tests); overrides ``pin``'s.
        code_policy: decides when codes get nine secret digits (after three
            failed pairings in a row); see :attr:`code_warning`.
    """

    def __init__(
        self,
        relay_url: str,
        trust: OrgTrust,
        consent: ConsentCallback,
        *,
        device: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        randbelow: Callable[[int], int] = secrets.randbelow,
        entropy: Callable[[int], bytes] = os.urandom,
        timeouts: PairingTimeouts | None = None,
        limits: SessionLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        code_lifetime: float = CODE_LIFETIME,
        pin: RelayPin | None = None,
        on_queue: Callable[[QueueStatus], None] | None = None,
        resume_timeout: float = 120.0,
        code_policy: CodePolicy | None = None,
    ) -> None:
        self._url = relay_url
        self._trust = trust
        self._consent = consent
        self._device = device
        self._clock = clock
        self._wall_clock = wall_clock
        self._randbelow = randbelow
        self._entropy = entropy
        self._timeouts = timeouts
        self._limits = limits
        self._ssl = ssl_context
        self._pin = pin
        self._code_lifetime = code_lifetime
        self._on_queue = on_queue
        self._resume_timeout = resume_timeout
        self.code_policy = code_policy or CodePolicy()
        self._link: RelayLink | None = None
        self._code: PairingCode | None = None
        self._sid = b""
        self._request: HelpRequest | None = None
        self._ticket: Queued | None = None
        self._status: QueueStatus | None = None
        self._withdrawn = False
        self.state = UserState.IDLE
        self.channel: SecureChannel | None = None

    @property
    def code(self) -> PairingCode | None:
        return self._code

    @property
    def code_warning(self) -> CodeWarning | None:
        """Set while codes are longer after repeated failed pairings: show its message."""
        return self.code_policy.warning(self._clock())

    @property
    def help_request(self) -> HelpRequest | None:
        """The last request posted (kept after failures, to post again)."""
        return self._request

    @property
    def queue_status(self) -> QueueStatus | None:
        """The request's place in the queue, while queued."""
        return self._status

    async def _open(self) -> RelayLink:
        return await RelayLink.open(self._url, ssl_context=self._ssl, pin=self._pin)

    def _reconnector(self) -> RelayReconnector:
        """Reopens the link to the same relay when it drops mid-session (resume)."""
        return RelayReconnector(self._url, ssl_context=self._ssl, pin=self._pin)

    # --- the code flow ------------------------------------------------------------

    async def request_help(self) -> PairingCode:
        """Register with the relay and make a fresh code to give the technician."""
        if self.state not in (UserState.IDLE, UserState.ENDED):
            raise InvalidState(f"cannot request help while {self.state.value}")
        link = await self._open()
        try:
            registered = await link.register()
        except BaseException:
            await link.close()
            raise
        self._link = link
        self._sid = registered.sid
        self._ticket = None
        lifetime = min(self._code_lifetime, float(registered.expires_in))
        self._code = PairingCode.generate(
            registered.nameplate,
            self._clock(),
            digits=self.code_policy.digits(self._clock()),
            randbelow=self._randbelow,
            lifetime=lifetime,
        )
        self.state = UserState.WAITING
        return self._code

    async def wait_for_technician(self) -> SecureChannel:
        """Wait for a technician (code or queue), verify them, ask for consent.

        Raises:
            CodeError: (code flow) the code expired, or was already used.
            PairingError / IdentityError: the technician could not be verified.
            PairingDeclined: the user said no.
            ConnectionLost: the relay went away (queue flow: for longer than
                ``resume_timeout``), or ended the request (expired: its code
                is REQUEST_EXPIRED).
        """
        if self.state is UserState.QUEUED and self._ticket is not None:
            return await self._wait_in_queue()
        if self.state is not UserState.WAITING or self._link is None or self._code is None:
            raise CodeError("There is no unused code: request help again for a new one.")
        link, code = self._link, self._code
        remaining = code.issued_at + code.lifetime - self._clock()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                await link.wait_peer_joined()
        except TimeoutError:
            await self._give_up()
            raise CodeError(_EXPIRED) from None
        except ConnectionLost as exc:
            await self._give_up()
            if exc.code == CloseCode.CODE_EXPIRED:
                raise CodeError(_EXPIRED) from None
            raise
        self.state = UserState.PAIRING
        try:
            channel = await pair_user(
                link,
                code,
                self._sid,
                self._trust,
                self._consent,
                device=self._device,
                clock=self._clock,
                wall_clock=self._wall_clock,
                entropy=self._entropy,
                timeouts=self._timeouts,
                limits=self._limits,
                reconnector=self._reconnector(),
            )
        except BaseException as exc:
            self.state = UserState.ENDED
            self._link = None
            self._judge_code(exc)
            raise
        self._judge_code(None)
        return self._connected(channel)

    def _judge_code(self, exc: BaseException | None) -> None:
        """Tell the code policy how a code-flow pairing went."""
        now = self._clock()
        if isinstance(exc, PairingError):
            self.code_policy.pairing_failed(now)  # the codes did not match, or tampering
        elif exc is None or isinstance(exc, IdentityError | PairingDeclined):
            self.code_policy.code_matched(now)  # the code was right

    def _connected(self, channel: SecureChannel) -> SecureChannel:
        self.state = UserState.CONNECTED
        self.channel = channel
        channel.add_listener(self._on_event)
        return channel

    # --- the queue flow -----------------------------------------------------------

    async def post_request(self, request: HelpRequest) -> QueueStatus:
        """Put a help request in the relay's queue; then call :meth:`wait_for_technician`.

        Raises:
            ConnectionLost: the relay refused it (queue full, text too long,
                rate limited...: the reason says which) or cannot be reached.
        """
        if self.state not in (UserState.IDLE, UserState.ENDED):
            raise InvalidState(f"cannot ask for help while {self.state.value}")
        self._request = request
        link = await self._open()
        try:
            ticket = await link.post_request(
                PostRequest(
                    request.name, request.description, request.category, request.system_summary
                )
            )
        except BaseException:
            await link.close()
            raise
        self._link, self._ticket, self._code = link, ticket, None
        self._withdrawn = False
        self.channel = None
        self.state = UserState.QUEUED
        return self._report(ticket.position)

    def _report(self, position: int | None, *, reconnecting: bool = False) -> QueueStatus:
        assert self._ticket is not None
        status = QueueStatus(self._ticket.request_id.hex(), position, reconnecting)
        self._status = status
        if self._on_queue is not None:
            self._on_queue(status)
        return status

    async def _wait_in_queue(self) -> SecureChannel:
        while True:
            link = self._link
            assert link is not None and self._ticket is not None
            try:
                event = await link.next_queue_event()
            except ConnectionLost as exc:
                if self._withdrawn:
                    raise ConnectionLost(
                        "You withdrew the request.", CloseCode.REQUEST_CANCELLED
                    ) from None
                if exc.code not in _RETRYABLE or self.state is not UserState.QUEUED:
                    await self._give_up()
                    raise
                await self._reattach()
                continue
            if isinstance(event, QueuePosition | Requeued):
                self._report(event.position)
                continue
            channel = await self._pair_queued(link, event)
            if channel is not None:
                return channel

    async def _pair_queued(self, link: RelayLink, assigned: Assigned) -> SecureChannel | None:
        """One pairing attempt; None when the request went back to the queue."""
        assert self._ticket is not None
        self.state = UserState.PAIRING
        attempt = AttemptLink(link)
        try:
            channel = await pair_user_queued(
                attempt,
                self._ticket.request_id,
                assigned.sid,
                self._trust,
                self._consent,
                device=self._device,
                clock=self._clock,
                wall_clock=self._wall_clock,
                entropy=self._entropy,
                timeouts=self._timeouts,
                limits=self._limits,
                reconnector=self._reconnector(),
            )
        except RequestRequeued as exc:
            self.state = UserState.QUEUED
            self._report(exc.position)
            return None
        except ConnectionLost as exc:
            if self._withdrawn:
                raise ConnectionLost(
                    "You withdrew the request.", CloseCode.REQUEST_CANCELLED
                ) from None
            if exc.code in _RETRYABLE:
                # The relay went away mid-pairing; the request was not started.
                self.state = UserState.QUEUED
                await self._reattach()
                return None
            await self._end_request()
            raise
        except BaseException:
            # Unverifiable technician, tampering, decline, timeout: end this request.
            await self._end_request()
            raise
        self._status = None
        try:
            await link.send_control(SessionStarted())
        except ConnectionLost:
            pass  # the channel reports the lost connection itself
        return self._connected(channel)

    async def _reattach(self) -> None:
        """Reconnect and resume the request, within ``resume_timeout``.

        Raises:
            ConnectionLost: the relay stayed away, or no longer has the request.
        """
        assert self._ticket is not None
        old, self._link = self._link, None
        if old is not None:
            await old.close()
        self._report(None, reconnecting=True)
        deadline = self._clock() + self._resume_timeout
        last: ConnectionLost | None = None
        for delay in _backoff():
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            if self._withdrawn:
                # Withdrawn while the relay was away: it forgets the request
                # after its resume window.
                raise ConnectionLost("You withdrew the request.", CloseCode.REQUEST_CANCELLED)
            try:
                link = await RelayLink.open(
                    self._url,
                    ssl_context=self._ssl,
                    pin=self._pin,
                    timeout=max(0.5, min(10.0, deadline - self._clock())),
                )
            except ConnectionLost as exc:
                last = exc
                continue
            try:
                ticket = await link.resume_request(
                    self._ticket.request_id, self._ticket.resume_token
                )
            except ConnectionLost as exc:
                await link.close()
                if exc.code not in _RETRYABLE:
                    self.state = UserState.ENDED
                    raise
                last = exc
                continue
            self._link, self._ticket = link, ticket
            self._report(ticket.position)
            return
        self.state = UserState.ENDED
        reason = f" ({last.reason})" if last is not None else ""
        raise ConnectionLost(
            f"The relay could not be reached for {self._resume_timeout:g} seconds{reason}."
            " Your request is kept here: post it again when the relay is back."
        )

    async def _end_request(self) -> None:
        """Withdraw the queued request and close the link (after a failed pairing)."""
        link, self._link = self._link, None
        self.state = UserState.ENDED
        self._status = None
        if link is None:
            return
        try:
            await link.send_control(CancelRequest())
        except ConnectionLost:
            pass
        await link.close()

    # --- both -------------------------------------------------------------------

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self.state = UserState.ENDED

    async def _give_up(self) -> None:
        self.state = UserState.ENDED
        self._status = None
        if self._link is not None:
            await self._link.close()
            self._link = None

    async def cancel(self) -> None:
        """Withdraw the request (code or queue), or stop the session: everything ends at once."""
        if self.channel is not None and self.channel.ended is None:
            await self.channel.close("The user stopped the session.")
        if self._ticket is not None and self.state in (UserState.QUEUED, UserState.PAIRING):
            self._withdrawn = True
            await self._end_request()
            return
        await self._give_up()
