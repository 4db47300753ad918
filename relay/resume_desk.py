"""The handler's side of resuming sessions: offers, suspensions and Resume hellos.

The decisions are in :class:`relay.resume.ResumeTable`; this module does the
asyncio part for :class:`relay.handler.Relay`: it authenticates a
technician's Resume as a claim would be, waits (bounded by the grace
period) for the partner, joins the two connections in the registry and
sends both ``Resumed``. Forwarding then goes on as before
(:func:`relay.forwarding.forward`).
"""

from __future__ import annotations

import asyncio
import logging

from websockets.protocol import State

from common.errors import ProtocolError
from common.protocol.codec import decode, encode
from common.protocol.relay_wire import CloseCode, PeerRole, Resumable, Resume, Resumed
from relay.context import RelayContext
from relay.forwarding import send
from relay.peer import Peer
from relay.registry import RelayRejection
from relay.resume import ResumeTable


__all__ = ["RESUMABLE_PREFIX", "SUSPENDABLE", "ResumeDesk"]

logger = logging.getLogger("relay")

_RESUMED = encode(Resumed())
RESUMABLE_PREFIX = encode(Resumable(bytes(32)))[:2]
# How a connection may end and still leave its pair suspended: the link
# dropped (1006), the peer said it reconnects, or the relay timed it out.
SUSPENDABLE = frozenset(
    {1006, CloseCode.RECONNECTING, CloseCode.IDLE_TIMEOUT, CloseCode.INTERNAL_ERROR}
)


class ResumeDesk:
    """Resumption for one relay: the table and the waits."""

    def __init__(self, relay: RelayContext) -> None:
        self._relay = relay
        config = relay.config
        self.table: ResumeTable[Peer] = ResumeTable(
            relay.config.resume_grace, relay.started_at, max_entries=config.max_connections
        )
        self._waiters: dict[Peer, asyncio.Future[None]] = {}

    # --- while paired -----------------------------------------------------------

    def offer(self, peer: Peer, data: bytes) -> bool:
        """A ``Resumable`` from a paired peer; False if ``data`` is something else."""
        if not data.startswith(RESUMABLE_PREFIX):
            return False
        try:
            msg = decode(data)
        except ProtocolError as exc:
            raise RelayRejection(CloseCode.BAD_MESSAGE, "malformed Resumable") from exc
        if not isinstance(msg, Resumable):
            return False
        account = peer.principal.account_id if peer.principal is not None else None
        self.table.offer(peer, msg.role, msg.resume_id, msg.previous_id, account)
        return True

    def suspend(self, peer: Peer, partner: Peer, code: int) -> bool:
        """``peer``'s connection ended with ``code``: True if the pair is kept for a resume."""
        if code not in SUSPENDABLE:
            self.table.forget(peer)
            return False
        suspended = self.table.suspend(peer, partner, self._relay.wall_clock())
        if suspended:
            _log("suspended", peer, partner=partner.id)
        return suspended

    def forget(self, peer: Peer) -> None:
        self.table.forget(peer)
        self._waiters.pop(peer, None)

    # --- coming back ------------------------------------------------------------

    async def serve(self, peer: Peer, hello: Resume) -> None:
        """A ``Resume`` hello: return once paired again (the handler then forwards).

        Raises:
            RelayRejection: refused (unknown ticket, sign-in, grace period over).
        """
        relay = self._relay
        account = None
        if hello.role is PeerRole.TECHNICIAN:
            request = peer.ws.request
            sent_token = request is not None and bool(request.headers.get_all("Authorization"))
            # The same sign-in as a claim: an account that was cut off cannot resume.
            if sent_token or relay.signin.code_claims_need_login():
                account = (await relay.signin.authenticate(peer)).account_id
        now = relay.wall_clock()
        for waiting in [w for w in self._waiters if w.ws.state is not State.OPEN]:
            self.table.forget(waiting)  # gone already: never join a dead connection
        arrival = self.table.arrive(
            peer, hello.role, hello.resume_id, hello.previous_id, account, now
        )
        for stale, code in arrival.stale:
            stale.end_soon(code, "the other side's connection dropped; reconnect to resume")
        partner = arrival.partner
        if partner is None:
            await self._wait(peer, arrival.expires_at - now)
            return
        user, tech = (peer, partner) if hello.role is PeerRole.USER else (partner, peer)
        relay.registry.rejoin(user, tech)
        loop = asyncio.get_running_loop()
        peer.partner, partner.partner = partner, peer
        peer.last_frame = partner.last_frame = loop.time()
        _log("resumed", peer, partner=partner.id)
        # Ours first, then the partner's: neither side sends before its own
        # Resumed, so no forwarded frame can overtake one.
        await send(relay, peer, peer, _RESUMED)
        await send(relay, peer, partner, _RESUMED)
        waiter = self._waiters.get(partner)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, peer: Peer, remaining: float) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters[peer] = waiter
        closed = asyncio.ensure_future(peer.ws.wait_closed())
        try:
            async with asyncio.timeout(max(0.0, remaining)) as scope:
                peer.scope = scope  # end_soon() wakes us (shutdown, account cut off)
                await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            if peer.ending is not None:
                raise peer.ending from None
            raise RelayRejection(
                CloseCode.RESUME_EXPIRED, "the other side did not come back in time"
            ) from None
        finally:
            peer.scope = None
            closed.cancel()
            self._waiters.pop(peer, None)
        if peer.ending is not None:
            raise peer.ending
        # Joined, or our connection closed: the handler's next read tells.


def _log(event: str, peer: Peer, **fields: object) -> None:
    logger.info(event, extra={"fields": {"conn": peer.id, **fields}})
