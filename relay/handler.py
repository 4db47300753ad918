"""The websocket connection handler: a thin adapter around the registry.

One :meth:`Relay.handle` task runs per connection. It reads that peer's
messages and writes them to the other peer, so each direction of a pair has
its own task and back-pressure reaches the sender through websockets'
bounded receive queue.

Every await is bounded by a deadline that depends on the peer's state:

=========  =============================================  ================
state      deadline                                       close code
=========  =============================================  ================
NEW        connection opened + ``hello_timeout``          HELLO_TIMEOUT
WAITING    registration + ``code_ttl``                    CODE_EXPIRED
PAIRED     last message from this peer + ``idle_timeout`` IDLE_TIMEOUT
any        connection opened + ``absolute_timeout``       SESSION_TOO_LONG
=========  =============================================  ================

When one side of a pair ends, its task asks the other one to end too
(:meth:`Peer.end_soon`): that task sends PeerLeft and closes with PEER_LEFT.
Each task only ever closes its own connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from common.errors import ProtocolError
from common.protocol.codec import decode, encode
from common.protocol.relay_wire import (
    FORWARD_PREFIX,
    Claim,
    CloseCode,
    Paired,
    PeerJoined,
    PeerLeft,
    Register,
    Registered,
)
from relay.config import RelayConfig
from relay.registry import Counts, PeerState, Registry, RelayRejection


__all__ = ["Peer", "Relay"]

logger = logging.getLogger("relay")

_PEER_JOINED = encode(PeerJoined())
# RFC 6455 caps a close reason at 123 bytes.
_MAX_REASON = 120
# What the remaining peer is told (PeerLeft) when its partner's connection ends.
_LEFT_REASONS: dict[int, str] = {
    CloseCode.TOO_BIG: "peer sent an oversized message",
    CloseCode.BAD_MESSAGE: "peer sent an invalid message",
    CloseCode.IDLE_TIMEOUT: "peer timed out",
    CloseCode.SESSION_TOO_LONG: "session time limit reached",
}
_DISCONNECTED = "peer disconnected"


class Peer:
    """One websocket connection: the handle the registry stores for it.

    Attributes:
        ws: the connection.
        id: a small number that names the connection in logs.
        address: the remote IP address.
        opened_at: loop time when the handler started.
        expires_at: loop time when its nameplate expires (users only).
        last_frame: loop time of the last message from this peer once paired.
        partner: the other side once paired.
        ending: set when another task decided this connection must close.
        scope: the asyncio.Timeout bounding this peer's await in progress.
        frames, bytes: forwarded messages and bytes received from this peer.
    """

    __slots__ = (
        "address",
        "bytes",
        "ending",
        "expires_at",
        "frames",
        "id",
        "last_frame",
        "opened_at",
        "partner",
        "scope",
        "ws",
    )

    def __init__(self, ws: ServerConnection, id: int, address: str, now: float) -> None:
        self.ws = ws
        self.id = id
        self.address = address
        self.opened_at = now
        self.expires_at: float | None = None
        self.last_frame = now
        self.partner: Peer | None = None
        self.ending: RelayRejection | None = None
        self.frames = 0
        self.bytes = 0
        self.scope: asyncio.Timeout | None = None

    def __repr__(self) -> str:
        return f"<Peer {self.id}>"

    def end_soon(self, code: CloseCode, reason: str) -> None:
        """Make this peer's task close its connection with ``code``.

        The first decision wins; the task wakes at once from whatever it
        awaits and closes the connection itself.
        """
        if self.ending is None:
            self.ending = RelayRejection(code, reason)
        self.rearm(-math.inf)

    def rearm(self, deadline: float) -> None:
        """Move the deadline of the await in progress (its state changed)."""
        scope = self.scope
        if scope is not None and not scope.expired():
            scope.reschedule(max(deadline, asyncio.get_running_loop().time()))


class Relay:
    """The connection handler and the registry it drives.

    Args:
        config: limits and timeouts.
        registry: the pairing registry; one is built from ``config`` if not given.
        rng: randomness for the registry built here (default: the OS's).

    Attributes:
        config: the settings in force.
        registry: pairing state for every connection.
        closing: set by the server on shutdown; partners are then not notified
            (every connection is being closed with GOING_AWAY anyway).
    """

    def __init__(
        self,
        config: RelayConfig,
        *,
        registry: Registry[Peer] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.registry: Registry[Peer] = registry or Registry(
            code_ttl=config.code_ttl,
            max_waiting=config.max_waiting,
            max_connections=config.max_connections,
            max_connections_per_address=config.max_connections_per_address,
            failed_claims_per_window=config.failed_claims_per_window,
            failed_claim_window=config.failed_claim_window,
            rng=rng,
        )
        self.closing = False
        self._ids = itertools.count(1)

    def counts(self) -> Counts:
        """Connections, waiting codes and active pairs right now."""
        return self.registry.counts()

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one websocket connection until it closes.

        Never raises for anything a peer can do: every refusal becomes a
        close code and a short reason.
        """
        loop = asyncio.get_running_loop()
        peer = Peer(ws, next(self._ids), _remote_ip(ws), loop.time())
        try:
            self.registry.connect(peer, peer.address)
        except RelayRejection as exc:
            _log("refused", peer, code=exc.code.name)
            await self._close(peer, exc)
            return
        _log("connected", peer, address=peer.address)
        ending: RelayRejection | None = None
        code: int = CloseCode.NORMAL
        reason = ""
        try:
            await self._serve(peer)
        except RelayRejection as exc:
            ending = exc
            code, reason = exc.code, exc.reason
        except ConnectionClosed as exc:
            code, reason = _closed_by(exc)
        finally:
            partner = self.registry.disconnect(peer)
            if partner is not None and not self.closing:
                partner.end_soon(CloseCode.PEER_LEFT, _LEFT_REASONS.get(code, _DISCONNECTED))
        if ending is not None:
            await self._close(peer, ending)
        _log(
            "closed",
            peer,
            code=_code_name(code),
            reason=reason,
            seconds=round(loop.time() - peer.opened_at, 3),
            frames=peer.frames,
            bytes=peer.bytes,
        )

    # --- the conversation -------------------------------------------------------

    async def _serve(self, peer: Peer) -> None:
        hello = _parse_hello(await self._recv(peer))
        now = asyncio.get_running_loop().time()
        if isinstance(hello, Register):
            reg = self.registry.register(peer, now)
            peer.expires_at = reg.expires_at
            _log("registered", peer)
            await self._send(peer, peer, encode(Registered(reg.nameplate, reg.sid, reg.expires_in)))
        else:
            pairing = self.registry.claim(peer, hello.nameplate, now)
            user = pairing.user
            peer.partner, user.partner = user, peer
            peer.last_frame = user.last_frame = now
            # The user's task is waiting under its code expiry; now idle rules apply.
            user.rearm(self._limit(user)[0])
            _log("paired", peer, user=user.id)
            # Paired goes out before PeerJoined so that the technician never
            # sees a forwarded frame before it knows it is paired.
            await self._send(peer, peer, encode(Paired(pairing.sid)))
            await self._send(peer, user, _PEER_JOINED)
        await self._forward(peer)

    async def _forward(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self._recv(peer)
            partner = peer.partner
            if partner is None:
                raise RelayRejection(CloseCode.BAD_MESSAGE, "not paired yet; wait for PeerJoined")
            # The fast path: check the prefix, pass the very same bytes on.
            if not data.startswith(FORWARD_PREFIX):
                raise RelayRejection(CloseCode.BAD_MESSAGE, "only Forward messages after pairing")
            peer.last_frame = loop.time()
            peer.frames += 1
            peer.bytes += len(data)
            await self._send(peer, partner, data)

    # --- bounded I/O ------------------------------------------------------------

    async def _recv(self, peer: Peer) -> bytes:
        """The next message from ``peer``, within the deadline of its state."""
        if peer.ending is not None:
            raise peer.ending
        try:
            async with asyncio.timeout_at(self._limit(peer)[0]) as scope:
                peer.scope = scope
                data = await peer.ws.recv()
        except TimeoutError:
            if peer.ending is not None:
                raise peer.ending from None
            _, code, reason = self._limit(peer)
            raise RelayRejection(code, reason) from None
        finally:
            peer.scope = None
        if peer.ending is not None:
            raise peer.ending
        if isinstance(data, str):
            raise RelayRejection(CloseCode.BAD_MESSAGE, "text frames are not accepted")
        return data

    async def _send(self, peer: Peer, target: Peer, data: bytes) -> None:
        """Send ``data`` to ``target`` (``peer`` itself or its partner) from peer's task.

        Raises:
            RelayRejection: the target did not read for ``idle_timeout``, or
                (when it is the partner) it is gone.
            ConnectionClosed: ``peer``'s own connection closed.
        """
        if peer.ending is not None:
            raise peer.ending
        try:
            async with asyncio.timeout(self.config.idle_timeout) as scope:
                peer.scope = scope
                await target.ws.send(data)
        except TimeoutError:
            if peer.ending is not None:
                raise peer.ending from None
            if target is peer:
                raise RelayRejection(CloseCode.IDLE_TIMEOUT, "not reading") from None
            target.end_soon(CloseCode.IDLE_TIMEOUT, "not reading")
            raise RelayRejection(CloseCode.PEER_LEFT, "peer stopped reading") from None
        except ConnectionClosed:
            if target is peer:
                raise
            raise RelayRejection(CloseCode.PEER_LEFT, _DISCONNECTED) from None
        finally:
            peer.scope = None

    async def _close(self, peer: Peer, rejection: RelayRejection) -> None:
        """Close ``peer``'s connection for ``rejection``, telling it first if its partner left."""
        ws = peer.ws
        try:
            async with asyncio.timeout(self.config.close_timeout + 1.0):
                if rejection.code is CloseCode.PEER_LEFT:
                    await ws.send(encode(PeerLeft(rejection.reason)))
                await ws.close(rejection.code, _short(rejection.reason))
        except ConnectionClosed:
            pass
        except TimeoutError:
            # The peer will not even read a close frame: drop it.
            ws.transport.abort()

    def _limit(self, peer: Peer) -> tuple[float, CloseCode, str]:
        """The next deadline for ``peer`` and what to close with when it passes."""
        cfg = self.config
        limit = (
            peer.opened_at + cfg.absolute_timeout,
            CloseCode.SESSION_TOO_LONG,
            "session time limit reached",
        )
        state = self.registry.state(peer)
        if state is PeerState.NEW:
            other = (
                peer.opened_at + cfg.hello_timeout,
                CloseCode.HELLO_TIMEOUT,
                "no Register or Claim in time",
            )
        elif state is PeerState.PAIRED:
            other = (
                peer.last_frame + cfg.idle_timeout,
                CloseCode.IDLE_TIMEOUT,
                "idle for too long",
            )
        elif peer.expires_at is not None and peer.partner is None:
            # WAITING, or CLOSED because a late claim found the code expired.
            other = (peer.expires_at, CloseCode.CODE_EXPIRED, "pairing code expired")
        else:
            # CLOSED after pairing: end_soon() has set peer.ending already.
            other = (-math.inf, CloseCode.PEER_LEFT, _DISCONNECTED)
        return other if other[0] < limit[0] else limit


def _parse_hello(data: bytes) -> Register | Claim:
    try:
        msg = decode(data)
    except ProtocolError as exc:
        raise RelayRejection(CloseCode.BAD_MESSAGE, _short(f"malformed message: {exc}")) from None
    if not isinstance(msg, Register | Claim):
        raise RelayRejection(CloseCode.BAD_MESSAGE, "first message must be Register or Claim")
    return msg


def _short(reason: str) -> str:
    raw = reason.encode("utf-8")
    if len(raw) <= _MAX_REASON:
        return reason
    return raw[:_MAX_REASON].decode("utf-8", "ignore")


def _remote_ip(ws: ServerConnection) -> str:
    address = ws.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "unknown"


def _closed_by(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code of a connection that websockets saw close, and who closed it."""
    if exc.sent is not None and exc.rcvd_then_sent is not True:
        # The relay's websockets layer started it: oversized message, shutdown...
        return exc.sent.code, "closed by relay"
    if exc.rcvd is not None:
        # Not the peer's own reason: that is untrusted text.
        return exc.rcvd.code, "closed by peer"
    return 1006, "connection lost"


def _code_name(code: int) -> str:
    try:
        return CloseCode(code).name
    except ValueError:
        return str(code)


def _log(event: str, peer: Peer, **fields: object) -> None:
    # Structured fields travel in ``extra``; relay.__main__ renders them as JSON.
    # Never log nameplates, session ids or payloads.
    logger.info(event, extra={"fields": {"conn": peer.id, **fields}})
