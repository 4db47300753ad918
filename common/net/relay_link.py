"""A websocket connection to the relay, speaking relay_wire.

:class:`RelayLink` hides websockets from the rest of the code: every failure
becomes :class:`~common.errors.ConnectionLost` with the relay's close code
and reason, so callers handle one error type.

Security of the transport (security.md 3):

* ``wss://`` is TLS 1.3 only. With a :class:`~common.net.tls.RelayPin` the
  relay's certificate is checked against the pin right after the TLS
  handshake, before the upgrade request (and its token) is sent.
* Plain ``ws://`` is refused unless the relay is on loopback.
* A bearer token travels in the ``Authorization`` header of the upgrade
  request, never in the URL.
"""

from __future__ import annotations

import asyncio
import ssl
from types import TracebackType
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from common.errors import ConnectionLost, ProtocolError
from common.net.tls import PinMismatch, RelayPin, check_plain_allowed, default_client_context
from common.protocol.codec import Message, decode, encode
from common.protocol.relay_wire import (
    MAX_FRAME,
    Assigned,
    Claim,
    ClaimRequest,
    CloseCode,
    Forward,
    LoggedIn,
    Login,
    Paired,
    PeerJoined,
    PeerLeft,
    PeerRole,
    PostRequest,
    Queued,
    QueuePosition,
    Register,
    Registered,
    RenewToken,
    Requeued,
    Resumable,
    Resume,
    Resumed,
    ResumeRequest,
    WatchQueue,
    forward_frame,
    forward_payload,
)


__all__ = ["CLIENT_NAME", "RelayLink", "RequestRequeued"]

CLIENT_NAME = "deskhand/0.1"

M = TypeVar("M", bound=Message)


class RequestRequeued(ConnectionLost):
    """The technician left before pairing finished; the request is waiting again.

    Attributes:
        position: the request's new place in the queue (1 = next).
    """

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason or "The technician left; you are back in the queue.")
        self.position = position


def _describe_close(exc: ConnectionClosed) -> ConnectionLost:
    frame = exc.rcvd
    if frame is None:
        return ConnectionLost("The connection to the relay was lost.")
    try:
        name = CloseCode(frame.code).name.replace("_", " ").lower()
    except ValueError:
        name = f"code {frame.code}"
    reason = frame.reason or name
    return ConnectionLost(f"The relay closed the connection: {reason}.", frame.code)


def _pinned_connection(pin: RelayPin) -> type[ClientConnection]:
    """A ClientConnection class that checks ``pin`` before sending its upgrade request."""

    class PinnedConnection(ClientConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            ssl_object = self.transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            pin.check(der)
            await super().handshake(*args, **kwargs)

    return PinnedConnection


class RelayLink:
    """One peer's connection to the relay."""

    def __init__(self, connection: ClientConnection) -> None:
        self._ws = connection

    @property
    def connection(self) -> ClientConnection:
        """The websocket underneath (for wrappers that share it)."""
        return self._ws

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        pin: RelayPin | None = None,
        token: str | None = None,
    ) -> RelayLink:
        """Connect to the relay's peer endpoint.

        Args:
            url: ``wss://host:port/v1/peer`` (or ``ws://`` on loopback).
            timeout: bound on the TCP, TLS and websocket handshakes together.
            ssl_context: a caller-made TLS context (tests); overrides the default.
            pin: the relay's pinned certificate or public key (``wss://`` only).
            token: a bearer token from :meth:`login`, for the Authorization header.

        Raises:
            ConnectionLost: the relay cannot be reached, is not the pinned
                one, or refused us.
        """
        secure = url.startswith("wss://")
        try:
            check_plain_allowed(url)
        except ValueError as exc:
            raise ConnectionLost(f"Refusing to connect to {url}: {exc}.") from None
        if pin is not None and not secure:
            raise ConnectionLost("A relay pin needs a wss:// relay address.")
        context = ssl_context
        if secure and context is None:
            context = pin.client_context() if pin is not None else default_client_context()
        kwargs: dict[str, Any] = {}
        if pin is not None:
            kwargs["create_connection"] = _pinned_connection(pin)
        if token is not None:
            kwargs["additional_headers"] = {"Authorization": f"Bearer {token}"}
        try:
            async with asyncio.timeout(timeout):
                ws = await connect(
                    url,
                    compression=None,
                    max_size=MAX_FRAME,
                    max_queue=16,
                    open_timeout=timeout,
                    ping_interval=20,
                    ping_timeout=20,
                    user_agent_header=CLIENT_NAME,
                    ssl=context if secure else None,
                    **kwargs,
                )
        except TimeoutError:
            raise ConnectionLost("The relay did not answer in time.") from None
        except InvalidURI:
            raise ConnectionLost(
                f"{url!r} is not a relay address (wss://host:port/v1/peer)."
            ) from None
        except PinMismatch as exc:
            raise ConnectionLost(str(exc)) from None
        except ssl.SSLCertVerificationError as exc:
            if pin is not None:
                raise ConnectionLost(RelayPin.mismatch_message()) from None
            detail = exc.verify_message or exc.reason or "unknown problem"
            raise ConnectionLost(
                f"The relay's certificate could not be verified ({detail}): refusing to connect."
            ) from None
        except ssl.SSLError as exc:
            raise ConnectionLost(
                f"TLS with the relay failed ({exc.reason or exc}); it must support TLS 1.3."
            ) from None
        except ConnectionClosed as exc:
            raise _describe_close(exc) from None
        except (OSError, InvalidHandshake) as exc:
            detail = str(exc) or type(exc).__name__
            if secure and isinstance(exc, ConnectionResetError):
                detail += "; the relay may have refused the TLS handshake (it needs TLS 1.3)"
            raise ConnectionLost(f"Cannot reach the relay at {url}: {detail}") from None
        return cls(ws)

    async def __aenter__(self) -> RelayLink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- raw frames ---

    async def _send(self, frame: bytes) -> None:
        try:
            await self._ws.send(frame)
        except ConnectionClosed as exc:
            raise _describe_close(exc) from None

    async def _recv(self) -> bytes:
        try:
            frame = await self._ws.recv()
        except ConnectionClosed as exc:
            raise _describe_close(exc) from None
        if isinstance(frame, str):
            await self.close()
            raise ConnectionLost("The relay sent a text frame; expected binary.")
        return frame

    async def _recv_control(self) -> Message:
        frame = await self._recv()
        try:
            return decode(frame)
        except ProtocolError as exc:
            await self.close()
            raise ConnectionLost(f"The relay sent a malformed message: {exc}") from None

    async def _expect(self, kind: type[M], request: str) -> M:
        msg = await self._recv_control()
        if not isinstance(msg, kind):
            raise ConnectionLost(f"The relay answered {type(msg).__name__} to {request}.")
        return msg

    async def send_control(self, msg: Message) -> None:
        """Send one relay control message (CancelRequest, SessionStarted, RenewToken...)."""
        await self._send(encode(msg))

    async def recv_control(self) -> Message:
        """The next relay control message, whatever it is.

        Raises:
            ConnectionLost: the relay closed (with its code and reason) or sent garbage.
        """
        return await self._recv_control()

    # --- the code flow ---

    async def register(self) -> Registered:
        """User side: get a nameplate and session id."""
        await self._send(encode(Register(CLIENT_NAME)))
        return await self._expect(Registered, "Register")

    async def claim(self, nameplate: int) -> Paired:
        """Technician side: join the user behind a nameplate."""
        await self._send(encode(Claim(nameplate, CLIENT_NAME)))
        return await self._expect(Paired, "Claim")

    async def wait_peer_joined(self) -> None:
        """User side: wait until a technician claims our nameplate."""
        msg = await self._recv_control()
        if isinstance(msg, PeerLeft):
            raise ConnectionLost(msg.reason or "The other side left.")
        if not isinstance(msg, PeerJoined):
            raise ConnectionLost(f"Expected a technician to join, got {type(msg).__name__}.")

    # --- signing in ---

    async def login(self, account: str, password: str) -> LoggedIn:
        """Technician side: sign in; the relay then closes this connection.

        Raises:
            ConnectionLost: wrong password (LOGIN_FAILED), locked out, disabled...
        """
        await self._send(encode(Login(account, password, CLIENT_NAME)))
        return await self._expect(LoggedIn, "Login")

    async def renew_token(self) -> None:
        """Technician side, on a queue connection: ask for a fresh token (LoggedIn follows)."""
        await self._send(encode(RenewToken()))

    # --- the help-request queue ---

    async def post_request(self, request: PostRequest) -> Queued:
        """User side: put a help request in the queue."""
        await self._send(encode(request))
        return await self._expect(Queued, "PostRequest")

    async def resume_request(self, request_id: bytes, resume_token: bytes) -> Queued:
        """User side: re-attach to a stored request."""
        await self._send(encode(ResumeRequest(request_id, resume_token, CLIENT_NAME)))
        return await self._expect(Queued, "ResumeRequest")

    async def next_queue_event(self) -> QueuePosition | Assigned | Requeued:
        """User side, while queued: the next position change or assignment.

        Raises:
            ConnectionLost: the relay closed (request expired, relay shutting down...).
        """
        while True:
            msg = await self._recv_control()
            if isinstance(msg, Forward):
                continue  # from a technician who left mid-pairing: stale
            if not isinstance(msg, QueuePosition | Assigned | Requeued):
                raise ConnectionLost(f"Unexpected {type(msg).__name__} while queued.")
            return msg

    async def watch_queue(self) -> None:
        """Technician side: start the queue stream (QueueEntry..., QueueSynced, updates)."""
        await self._send(encode(WatchQueue(CLIENT_NAME)))

    async def claim_request(self, request_id: bytes) -> Paired:
        """Technician side: take a queued request."""
        await self._send(encode(ClaimRequest(request_id, CLIENT_NAME)))
        return await self._expect(Paired, "ClaimRequest")

    # --- peer payloads ---

    async def send_payload(self, payload: bytes) -> None:
        await self._send(forward_frame(payload))

    async def recv_payload(self) -> bytes:
        """The next payload from the peer.

        Raises:
            RequestRequeued: (queue users) the technician left before pairing finished.
            ConnectionLost: the peer left, the relay closed, or sent garbage.
        """
        frame = await self._recv()
        try:
            payload = forward_payload(frame)
            if payload is not None:
                return payload
            msg = decode(frame)
        except ProtocolError as exc:
            raise ConnectionLost(f"Malformed frame from the relay: {exc}") from None
        if isinstance(msg, PeerLeft):
            raise ConnectionLost(msg.reason or "The other side left.", CloseCode.PEER_LEFT)
        if isinstance(msg, Requeued):
            raise RequestRequeued(msg.reason, msg.position)
        raise ConnectionLost(f"Unexpected {type(msg).__name__} from the relay.")

    # --- resuming a session ---------------------------------------------------------

    async def offer_resume(self, resume_id: bytes, previous_id: bytes, role: PeerRole) -> None:
        """While paired: ask the relay to keep the pair for a resume under these ids."""
        await self._send(encode(Resumable(resume_id, previous_id, role)))

    async def resume(self, resume_id: bytes, previous_id: bytes, role: PeerRole) -> None:
        """First message on a new connection: wait (unbounded: the caller bounds it)
        until the partner is back too.

        Raises:
            ConnectionLost: the relay refused (UNKNOWN_RESUME, RESUME_EXPIRED,
                UNAUTHORIZED...) or went away.
        """
        await self._send(encode(Resume(resume_id, previous_id, role, CLIENT_NAME)))
        await self._expect(Resumed, "Resume")

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (a stalled network)."""
        transport = self._ws.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)
