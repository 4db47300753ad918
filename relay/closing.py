"""How a connection ends: its deadlines, the close itself, and what it leaves behind.

:func:`limit` is the deadline table of :mod:`relay.handler` in code: every
bounded wait asks it. :func:`leave` undoes what a finished connection held
(registry, queue, sign-in tracking, resumes) and tells its partner;
:func:`close` closes the connection with a code and a short reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from common.protocol.codec import encode
from common.protocol.relay_wire import CloseCode, PeerLeft, RemovalReason
from relay.context import RelayContext
from relay.logs import log, tag
from relay.peer import Peer
from relay.registry import PeerState, RelayRejection


__all__ = [
    "DISCONNECTED",
    "close",
    "closed_by",
    "code_name",
    "drain_incoming",
    "leave",
    "limit",
    "short",
]

# RFC 6455 caps a close reason at 123 bytes.
_MAX_REASON = 120
# What the remaining peer is told (PeerLeft) when its partner's connection ends.
_LEFT_REASONS: dict[int, str] = {
    CloseCode.TOO_BIG: "peer sent an oversized message",
    CloseCode.BAD_MESSAGE: "peer sent an invalid message",
    CloseCode.IDLE_TIMEOUT: "peer timed out",
    CloseCode.SESSION_TOO_LONG: "session time limit reached",
    CloseCode.ACCOUNT_DISABLED: "the technician's account was disabled",
}
DISCONNECTED = "peer disconnected"


def limit(relay: RelayContext, peer: Peer) -> tuple[float, CloseCode, str]:
    """The next deadline for ``peer`` and what to close with when it passes."""
    cfg = relay.config
    absolute = (
        peer.opened_at + cfg.absolute_timeout,
        CloseCode.SESSION_TOO_LONG,
        "session time limit reached",
    )
    state = relay.registry.state(peer)
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
    elif state is PeerState.QUEUED:
        other = (
            _request_deadline(relay, peer),
            CloseCode.REQUEST_EXPIRED,
            "no technician took the request in time",
        )
    elif state is PeerState.CONSOLE:
        other = (math.inf, CloseCode.SESSION_TOO_LONG, "session time limit reached")
    elif peer.expires_at is not None and peer.partner is None:
        # WAITING, or CLOSED because a late claim found the code expired.
        other = (peer.expires_at, CloseCode.CODE_EXPIRED, "pairing code expired")
    else:
        # CLOSED after pairing: end_soon() has set peer.ending already.
        other = (-math.inf, CloseCode.PEER_LEFT, DISCONNECTED)
    return other if other[0] < absolute[0] else absolute


def _request_deadline(relay: RelayContext, peer: Peer) -> float:
    """Loop time at which the user's queued request expires."""
    request = relay.hub.queue.get(peer.request_id) if peer.request_id else None
    if request is None:
        return -math.inf
    remaining = relay.hub.queue.expires_at(request) - relay.wall_clock()
    return asyncio.get_running_loop().time() + remaining


async def leave(relay: RelayContext, peer: Peer, code: int) -> None:
    """Undo what the connection held: registry, queue, live-account tracking."""
    if peer.outbox is not None:
        await peer.outbox.stop()
    relay.signin.forget(peer)
    relay.hub.remove_console(peer)
    partner = relay.registry.disconnect(peer)
    now = relay.wall_clock()
    left = _LEFT_REASONS.get(code, DISCONNECTED)
    if peer.principal is not None and peer.request_id is not None and not relay.closing:
        # A technician that claimed a request and left before the user started.
        user = relay.hub.release(peer, "the technician left before the session started")
        if user is not None and partner is user:
            relay.registry.requeue(user)
            user.partner = None
            # Its hello may be on the way already: drop such frames for a while.
            user.requeued_until = asyncio.get_running_loop().time() + relay.config.hello_timeout
            user.rearm(limit(relay, user)[0])
            log("requeued", user, request=tag(peer.request_id))
            partner = None
    elif peer.request_id is not None and not peer.request_done and not relay.closing:
        if code == CloseCode.REQUEST_EXPIRED:
            with contextlib.suppress(RelayRejection):
                await relay.hub.finish(peer.request_id, RemovalReason.EXPIRED)
        else:
            # A queue user that went away: the request waits for it (resume token).
            relay.hub.detach(peer, now)
    if partner is not None and not relay.closing and relay.resumes.suspend(peer, partner, code):
        partner.end_soon(CloseCode.PEER_SUSPENDED, "the other side's link dropped; resume")
        partner = None
    relay.resumes.forget(peer)
    if partner is not None and not relay.closing:
        partner.end_soon(CloseCode.PEER_LEFT, left)


async def close(relay: RelayContext, peer: Peer, rejection: RelayRejection) -> None:
    """Close ``peer``'s connection for ``rejection``, telling it first if its partner left."""
    ws = peer.ws
    # Keep reading meanwhile: a peer still sending would otherwise have its
    # close reply stuck behind data nobody reads (until close_timeout).
    draining = asyncio.ensure_future(drain_incoming(ws))
    try:
        async with asyncio.timeout(relay.config.close_timeout + 1.0):
            if rejection.code is CloseCode.PEER_LEFT:
                await ws.send(encode(PeerLeft(rejection.reason)))
            await ws.close(rejection.code, short(rejection.reason))
    except ConnectionClosed:
        pass
    except TimeoutError:
        # The peer will not even read a close frame: drop it.
        ws.transport.abort()
    finally:
        draining.cancel()


async def drain_incoming(ws: ServerConnection) -> None:
    """Read and drop a closing connection's messages, so that its close reply gets through."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()


def closed_by(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code of a connection that websockets saw close, and who closed it."""
    if exc.sent is not None and exc.rcvd_then_sent is not True:
        # The relay's websockets layer started it: oversized message, shutdown...
        return exc.sent.code, "closed by relay"
    if exc.rcvd is not None:
        # Not the peer's own reason: that is untrusted text.
        return exc.rcvd.code, "closed by peer"
    return 1006, "connection lost"


def code_name(code: int) -> str:
    try:
        return CloseCode(code).name
    except ValueError:
        return str(code)


def short(reason: str) -> str:
    """``reason`` cut to what fits in a close frame."""
    raw = reason.encode("utf-8")
    if len(raw) <= _MAX_REASON:
        return reason
    return raw[:_MAX_REASON].decode("utf-8", "ignore")
