"""The hellos that pair connections: codes (Register, Claim) and the queue.

A code-flow user registers and waits under its code's expiry; a technician
claims the code and both are paired. A queue user posts (or resumes) a help
request and waits in the queue; a signed-in technician watches the queue
(the console) or claims a request, which pairs it with that user. Each
function returns once its connection is in its new state; the handler then
forwards (:func:`relay.forwarding.forward`).
"""

from __future__ import annotations

import asyncio
import secrets

from common.errors import InvalidState
from common.protocol.codec import encode
from common.protocol.relay_wire import (
    SID_BYTES,
    Assigned,
    Claim,
    ClaimRequest,
    CloseCode,
    Paired,
    PeerJoined,
    PostRequest,
    Registered,
    ResumeRequest,
)
from relay.closing import limit
from relay.context import RelayContext
from relay.forwarding import send
from relay.logs import log, tag
from relay.peer import MIN_OUTBOX, Outbox, Peer
from relay.registry import PeerState, RelayRejection


__all__ = ["claim_code", "claim_request", "console", "queue_user", "register"]

_PEER_JOINED = encode(PeerJoined())


# --- pairing codes ----------------------------------------------------------------


async def register(relay: RelayContext, peer: Peer, now: float) -> None:
    """A user's Register: a code, waiting until ``code_ttl``."""
    reg = relay.registry.register(peer, now)
    peer.expires_at = reg.expires_at
    log("registered", peer)
    await send(relay, peer, peer, encode(Registered(reg.nameplate, reg.sid, reg.expires_in)))


async def claim_code(relay: RelayContext, peer: Peer, hello: Claim) -> None:
    """A technician's Claim of a code: paired with the user who registered it."""
    signin = relay.signin
    principal = None
    if signin.code_claims_need_login():
        principal = await signin.authenticate(peer)
        signin.claim_allowed(principal)
    now = asyncio.get_running_loop().time()
    try:
        pairing = relay.registry.claim(peer, hello.nameplate, now)
    except RelayRejection as exc:
        raise signin.claim_failed(principal, exc) from None
    relay.metrics.inc("claims_total", kind="code")
    user = pairing.user
    if user.expires_at is not None:
        relay.metrics.observe_pairing("code", now - (user.expires_at - relay.config.code_ttl))
    peer.partner, user.partner = user, peer
    peer.last_frame = user.last_frame = now
    # The user's task is waiting under its code expiry; now idle rules apply.
    user.rearm(limit(relay, user)[0])
    log("paired", peer, user=user.id)
    # Paired goes out before PeerJoined so that the technician never
    # sees a forwarded frame before it knows it is paired.
    await send(relay, peer, peer, encode(Paired(pairing.sid)))
    await send(relay, peer, user, _PEER_JOINED)


# --- the help-request queue -------------------------------------------------------


async def queue_user(relay: RelayContext, peer: Peer, hello: PostRequest | ResumeRequest) -> None:
    """A user's PostRequest or ResumeRequest: queued until a technician claims it."""
    _start_outbox(relay, peer)
    now = relay.wall_clock()
    if isinstance(hello, PostRequest):
        request = await relay.hub.post(peer, hello, now)
        log("request_posted", peer, request=tag(request.id))
    else:
        request, previous = relay.hub.resume(peer, hello, now)
        if previous is not None:
            previous.end_soon(CloseCode.REPLACED, "replaced by a newer connection")
        log("request_resumed", peer, request=tag(request.id))
    relay.registry.enter(peer, PeerState.QUEUED)


async def console(relay: RelayContext, peer: Peer) -> None:
    """A technician's WatchQueue: the queue's entries, then its changes."""
    principal = await relay.signin.authenticate(peer)
    _start_outbox(relay, peer)
    relay.registry.enter(peer, PeerState.CONSOLE)
    relay.hub.add_console(peer, principal)
    log("watching", peer)


async def claim_request(relay: RelayContext, peer: Peer, hello: ClaimRequest) -> None:
    """A technician's ClaimRequest: paired with the user who is waiting for help."""
    signin = relay.signin
    principal = await signin.authenticate(peer)
    signin.claim_allowed(principal)
    loop = asyncio.get_running_loop()
    try:
        request, user = relay.hub.claim(peer, hello.request_id, relay.wall_clock())
    except RelayRejection as exc:
        raise signin.claim_failed(principal, exc) from None
    relay.metrics.inc("claims_total", kind="request")
    relay.metrics.observe_pairing("request", relay.wall_clock() - request.created_at)
    sid = secrets.token_bytes(SID_BYTES)
    try:
        relay.registry.join(user, peer, sid)
    except InvalidState:
        # The user's connection is on its way out; its request stays queued.
        relay.hub.release(peer, "")
        raise RelayRejection(CloseCode.USER_AWAY, "the user is not connected right now") from None
    peer.partner, user.partner = user, peer
    peer.last_frame = user.last_frame = loop.time()
    assert user.outbox is not None
    user.outbox.pause()
    user.rearm(limit(relay, user)[0])
    log("claimed", peer, user=user.id, request=tag(request.id))
    await send(relay, peer, peer, encode(Paired(sid)))
    async with user.send_lock:
        await send(relay, peer, user, encode(Assigned(sid)))


def _start_outbox(relay: RelayContext, peer: Peer) -> Outbox:
    size = max(MIN_OUTBOX, 2 * relay.config.max_queued + 64)
    outbox = Outbox(peer, relay.config.idle_timeout, size)
    peer.outbox = outbox
    outbox.start()
    return outbox
