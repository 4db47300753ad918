"""Forwarding between paired peers, and the bounded reads and writes everything uses.

:func:`forward` is the hot path: a Forward from a paired peer is checked by
its prefix and the very same bytes go to the partner. Anything else is a
control message (:func:`_control`): a queue watch's RenewToken, a paired
peer's Resumable, a queue user's CancelRequest or SessionStarted.

:func:`recv` waits no longer than the deadline of the peer's state
(:func:`relay.closing.limit`); :func:`send` no longer than ``idle_timeout``,
so a target that stops reading cannot hold the sender's task. Both wake
early when :meth:`Peer.end_soon` cancels their scope.
"""

from __future__ import annotations

import asyncio

from websockets.exceptions import ConnectionClosed

from common.errors import ProtocolError
from common.protocol.codec import Message, decode
from common.protocol.relay_wire import (
    FORWARD_PREFIX,
    CancelRequest,
    CloseCode,
    RemovalReason,
    RenewToken,
    SessionStarted,
)
from relay.closing import DISCONNECTED, limit, short
from relay.context import RelayContext
from relay.logs import log
from relay.peer import Peer
from relay.registry import PeerState, RelayRejection


__all__ = ["decode_message", "forward", "recv", "send"]


async def forward(relay: RelayContext, peer: Peer) -> None:
    """Pass ``peer``'s messages on until its connection ends (always by raising)."""
    loop = asyncio.get_running_loop()
    metrics = relay.metrics
    while True:
        data = await recv(relay, peer)
        partner = peer.partner
        # The fast path: check the prefix, pass the very same bytes on.
        if partner is not None and data.startswith(FORWARD_PREFIX):
            peer.last_frame = loop.time()
            peer.frames += 1
            peer.bytes += len(data)
            metrics.forwarded_messages += 1
            metrics.forwarded_bytes += len(data)
            await send(relay, peer, partner, data)
            metrics.observe_forward(loop.time() - peer.last_frame)
        else:
            await _control(relay, peer, data)


async def _control(relay: RelayContext, peer: Peer, data: bytes) -> None:
    """A message that is not a Forward between partners."""
    state = relay.registry.state(peer)
    if state is PeerState.CONSOLE:
        msg = decode_message(data)
        if not isinstance(msg, RenewToken):
            raise RelayRejection(CloseCode.BAD_MESSAGE, "only RenewToken on a queue watch")
        await relay.signin.renew(peer)
        return
    if state is PeerState.PAIRED and relay.resumes.offer(peer, data):
        return
    queue_user = peer.request_id is not None and peer.principal is None
    if (
        queue_user
        and state is PeerState.QUEUED
        and data.startswith(FORWARD_PREFIX)
        and asyncio.get_running_loop().time() < peer.requeued_until
    ):
        return  # meant for the technician who left; not this user's fault
    if not queue_user:
        if peer.partner is None:
            raise RelayRejection(CloseCode.BAD_MESSAGE, "not paired yet; wait for PeerJoined")
        raise RelayRejection(CloseCode.BAD_MESSAGE, "only Forward messages after pairing")
    msg = decode_message(data)
    assert peer.request_id is not None
    if isinstance(msg, CancelRequest):
        await relay.hub.finish(peer.request_id, RemovalReason.CANCELLED)
        log("request_cancelled", peer)
        raise RelayRejection(CloseCode.REQUEST_CANCELLED, "request cancelled")
    if isinstance(msg, SessionStarted) and state is PeerState.PAIRED:
        await relay.hub.finish(peer.request_id, RemovalReason.STARTED)
        log("session_started", peer)
        return
    if peer.partner is None:
        raise RelayRejection(CloseCode.BAD_MESSAGE, "not paired yet; wait for Assigned")
    raise RelayRejection(CloseCode.BAD_MESSAGE, "only Forward, CancelRequest or SessionStarted")


async def recv(relay: RelayContext, peer: Peer) -> bytes:
    """The next message from ``peer``, within the deadline of its state."""
    if peer.ending is not None:
        raise peer.ending
    try:
        async with asyncio.timeout_at(limit(relay, peer)[0]) as scope:
            peer.scope = scope
            data = await peer.ws.recv()
    except TimeoutError:
        if peer.ending is not None:
            raise peer.ending from None
        _, code, reason = limit(relay, peer)
        raise RelayRejection(code, reason) from None
    finally:
        peer.scope = None
    if peer.ending is not None:
        raise peer.ending
    if isinstance(data, str):
        raise RelayRejection(CloseCode.BAD_MESSAGE, "text frames are not accepted")
    return data


async def send(relay: RelayContext, peer: Peer, target: Peer, data: bytes) -> None:
    """Send ``data`` to ``target`` (``peer`` itself or its partner) from peer's task.

    Raises:
        RelayRejection: the target did not read for ``idle_timeout``, or
            (when it is the partner) it is gone.
        ConnectionClosed: ``peer``'s own connection closed.
    """
    if peer.ending is not None:
        raise peer.ending
    try:
        async with asyncio.timeout(relay.config.idle_timeout) as scope:
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
        if relay.resumes.suspend(target, peer, 1006):  # its link dropped under us
            raise RelayRejection(CloseCode.PEER_SUSPENDED, "partner link dropped") from None
        raise RelayRejection(CloseCode.PEER_LEFT, DISCONNECTED) from None
    finally:
        peer.scope = None


def decode_message(data: bytes) -> Message:
    """``data`` decoded; a malformed message closes the connection (BAD_MESSAGE)."""
    try:
        return decode(data)
    except ProtocolError as exc:
        raise RelayRejection(CloseCode.BAD_MESSAGE, short(f"malformed message: {exc}")) from None
