"""A websocket connection to the relay, speaking relay_wire.

:class:`RelayLink` hides websockets from the rest of the code: every failure
becomes :class:`~common.errors.ConnectionLost` with the relay's close code
and reason, so callers handle one error type.
"""

from __future__ import annotations

import asyncio
import ssl
from types import TracebackType

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from common.errors import ConnectionLost, ProtocolError
from common.protocol.codec import Message, decode, encode
from common.protocol.relay_wire import (
    FORWARD_PREFIX,
    MAX_FRAME,
    Claim,
    CloseCode,
    Forward,
    Paired,
    PeerJoined,
    PeerLeft,
    Register,
    Registered,
)


__all__ = ["RelayLink"]

CLIENT_NAME = "deskhand/0.1"


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


class RelayLink:
    """One peer's connection to the relay."""

    def __init__(self, connection: ClientConnection) -> None:
        self._ws = connection

    @classmethod
    async def open(
        cls, url: str, *, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None
    ) -> RelayLink:
        """Connect to the relay's peer endpoint.

        Raises:
            ConnectionLost: the relay cannot be reached or refused us.
        """
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
                    ssl=ssl_context,
                )
        except TimeoutError:
            raise ConnectionLost("The relay did not answer in time.") from None
        except InvalidURI:
            raise ConnectionLost(
                f"{url!r} is not a relay address (ws://host:port/v1/peer)."
            ) from None
        except ConnectionClosed as exc:
            raise _describe_close(exc) from None
        except (OSError, InvalidHandshake) as exc:
            raise ConnectionLost(f"Cannot reach the relay at {url}: {exc}") from None
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

    # --- relay control ---

    async def register(self) -> Registered:
        """User side: get a nameplate and session id."""
        await self._send(encode(Register(CLIENT_NAME)))
        msg = await self._recv_control()
        if not isinstance(msg, Registered):
            raise ConnectionLost(f"The relay answered {type(msg).__name__} to Register.")
        return msg

    async def claim(self, nameplate: int) -> Paired:
        """Technician side: join the user behind a nameplate."""
        await self._send(encode(Claim(nameplate, CLIENT_NAME)))
        msg = await self._recv_control()
        if not isinstance(msg, Paired):
            raise ConnectionLost(f"The relay answered {type(msg).__name__} to Claim.")
        return msg

    async def wait_peer_joined(self) -> None:
        """User side: wait until a technician claims our nameplate."""
        msg = await self._recv_control()
        if isinstance(msg, PeerLeft):
            raise ConnectionLost(msg.reason or "The other side left.")
        if not isinstance(msg, PeerJoined):
            raise ConnectionLost(f"Expected a technician to join, got {type(msg).__name__}.")

    # --- peer payloads ---

    async def send_payload(self, payload: bytes) -> None:
        await self._send(encode(Forward(payload)))

    async def recv_payload(self) -> bytes:
        """The next payload from the peer.

        Raises:
            ConnectionLost: the peer left, the relay closed, or sent garbage.
        """
        frame = await self._recv()
        if frame[:2] == FORWARD_PREFIX:
            try:
                msg = decode(frame)
            except ProtocolError as exc:
                raise ConnectionLost(f"Malformed frame from the relay: {exc}") from None
            assert isinstance(msg, Forward)
            return msg.payload
        try:
            msg = decode(frame)
        except ProtocolError as exc:
            raise ConnectionLost(f"Malformed frame from the relay: {exc}") from None
        if isinstance(msg, PeerLeft):
            raise ConnectionLost(msg.reason or "The other side left.", CloseCode.PEER_LEFT)
        raise ConnectionLost(f"Unexpected {type(msg).__name__} from the relay.")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)
