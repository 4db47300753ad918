"""The help-request queue at run time: state, storage and who is told what.

:class:`QueueHub` wraps the pure :class:`~relay.queue.HelpQueue` with

* persistence: a request is in the database before its user hears
  ``Queued``, and leaves it when it is started, cancelled or expired, so a
  relay restart loses nothing a user typed;
* the connections involved: each attached request's user, and the
  technicians watching the queue (consoles);
* notifications: consoles get a :class:`QueueEntry` for every change and a
  :class:`QueueRemoved` when a request leaves; users get their new
  :class:`QueuePosition` whenever it changes. All go through the peers'
  outboxes, so nothing here waits for a slow reader.

Request text never reaches a log.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from common.protocol.codec import encode
from common.protocol.relay_wire import (
    REQUEST_ID_BYTES,
    RESUME_TOKEN_BYTES,
    PostRequest,
    Queued,
    QueueEntry,
    QueuePosition,
    QueueRemoved,
    QueueSynced,
    RemovalReason,
    Requeued,
    ResumeRequest,
)
from relay.accounts import hash_secret
from relay.metrics import Metrics
from relay.peer import Peer
from relay.queue import HelpQueue, HelpRequest
from relay.services import Database, Principal


__all__ = ["QueueHub"]

_REASON_NAMES = {
    RemovalReason.STARTED: "started",
    RemovalReason.CANCELLED: "cancelled",
    RemovalReason.EXPIRED: "expired",
}


def _resume_hash(token: bytes) -> bytes:
    return hash_secret(token.hex())


class QueueHub:
    """The queue, its database rows, its users and its watchers.

    Args:
        queue: the pure queue state.
        db: where requests are stored.
        metrics: counters to bump.
        token_bytes: randomness for request ids and resume tokens.
    """

    def __init__(
        self,
        queue: HelpQueue,
        db: Database,
        metrics: Metrics,
        *,
        token_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.queue = queue
        self.db = db
        self.metrics = metrics
        self._token_bytes = token_bytes
        self.users: dict[bytes, Peer] = {}
        self.claims: dict[bytes, Peer] = {}
        self.consoles: dict[Peer, Principal] = {}

    async def load(self, now: float) -> int:
        """Take back the stored requests (after a restart); return how many."""
        stored = await self.db.run(self.db.store.requests)
        self.queue.load(stored, now)
        return len(stored)

    # --- users ------------------------------------------------------------------

    async def post(self, peer: Peer, msg: PostRequest, now: float) -> HelpRequest:
        """Queue a new request for ``peer`` and store it; tell the consoles.

        Raises:
            RelayRejection: the queue's refusals, or 1011 when it cannot be stored.
        """
        token = self._token_bytes(RESUME_TOKEN_BYTES)
        request = self.queue.post(
            self._token_bytes(REQUEST_ID_BYTES),
            name=msg.name,
            description=msg.description,
            category=msg.category,
            system_summary=msg.system_summary,
            resume_hash=_resume_hash(token),
            address=peer.key,
            now=now,
        )
        try:
            await self.db.run(self.db.store.add_request, request)
        except BaseException:
            self.queue.finish(request.id)
            raise
        self.users[request.id] = peer
        peer.request_id = request.id
        self.metrics.inc("requests_posted_total")
        self._queued(peer, request, token, now)
        return request

    def resume(self, peer: Peer, msg: ResumeRequest, now: float) -> tuple[HelpRequest, Peer | None]:
        """Re-attach ``peer`` to its stored request.

        Returns:
            The request, and the connection that held it until now (the
            caller ends it: the newer connection wins), if any.

        Raises:
            RelayRejection: UNKNOWN_REQUEST or REQUEST_EXPIRED.
        """
        request, _ = self.queue.resume(msg.request_id, _resume_hash(msg.resume_token), now)
        previous = self.users.get(request.id)
        self.users[request.id] = peer
        peer.request_id = request.id
        if previous is not None:
            # The old connection must not put the request back or away.
            previous.request_id = None
        # A technician pairing with the old connection loses it: the request waits again.
        self.claims.pop(request.id, None)
        self.queue.release(request.id)
        self._queued(peer, request, msg.resume_token, now)
        return request, previous

    def _queued(self, peer: Peer, request: HelpRequest, token: bytes, now: float) -> None:
        assert peer.outbox is not None
        position = self.queue.position(request.id)
        peer.position = position
        expires_in = max(0, int(self.queue.expires_at(request) - now))
        peer.outbox.push(encode(Queued(request.id, token, position, expires_in)))
        self._entry_changed(request)
        self._positions_changed()

    def detach(self, peer: Peer, now: float) -> bool:
        """The user's connection ended without finishing its request.

        Returns:
            True when a claim was released by it (the caller ends the technician).
        """
        request_id = peer.request_id
        if request_id is None or self.users.get(request_id) is not peer:
            return False
        del self.users[request_id]
        was_claimed = self.claims.pop(request_id, None) is not None
        request = self.queue.detach(request_id, now)
        if request is not None:
            self._entry_changed(request)
            if was_claimed:
                self._positions_changed()
        return was_claimed

    async def finish(self, request_id: bytes, reason: RemovalReason) -> None:
        """The request is done (started, cancelled or expired): forget it everywhere."""
        request = self.queue.finish(request_id)
        self.claims.pop(request_id, None)
        user = self.users.pop(request_id, None)
        if user is not None:
            user.request_done = True
        if request is None:
            return
        self.metrics.inc("requests_finished_total", reason=_REASON_NAMES[reason])
        self._broadcast(encode(QueueRemoved(request_id, reason)))
        self._positions_changed()
        await self.db.run(self.db.store.delete_requests, [request_id])

    async def expire(self, now: float) -> list[Peer]:
        """Drop requests past their deadline; return their connected users (to close)."""
        gone = self.queue.expire(now)
        users: list[Peer] = []
        for request in gone:
            self.claims.pop(request.id, None)
            user = self.users.pop(request.id, None)
            if user is not None:
                user.request_done = True
                users.append(user)
            self.metrics.inc("requests_finished_total", reason="expired")
            self._broadcast(encode(QueueRemoved(request.id, RemovalReason.EXPIRED)))
        if gone:
            self._positions_changed()
            await self.db.run(self.db.store.delete_requests, [r.id for r in gone])
        return users

    # --- technicians --------------------------------------------------------------

    def claim(self, tech: Peer, request_id: bytes, now: float) -> tuple[HelpRequest, Peer]:
        """A signed-in technician takes a request.

        Raises:
            RelayRejection: UNKNOWN_REQUEST, REQUEST_TAKEN or USER_AWAY.
        """
        principal = tech.principal
        assert principal is not None
        request = self.queue.claim(request_id, principal.account_id, principal.display_name, now)
        user = self.users[request_id]
        self.claims[request_id] = tech
        tech.request_id = request_id
        self._entry_changed(request)
        self._positions_changed()
        return request, user

    def release(self, tech: Peer, reason: str) -> Peer | None:
        """The claiming technician left before pairing finished: back in the queue.

        Returns:
            The user (now waiting again and told so), if still connected.
        """
        request_id = tech.request_id
        if request_id is None or self.claims.get(request_id) is not tech:
            return None
        del self.claims[request_id]
        request = self.queue.release(request_id)
        if request is None:
            return None
        self._entry_changed(request)
        user = self.users.get(request_id)
        if user is not None and user.outbox is not None:
            user.outbox.resume()
            position = self.queue.position(request_id)
            user.position = position
            user.outbox.push(encode(Requeued(position, reason)))
        self._positions_changed()
        return user

    def add_console(self, peer: Peer, principal: Principal) -> None:
        """Start streaming the queue to a technician: every entry, then QueueSynced."""
        assert peer.outbox is not None
        self.consoles[peer] = principal
        count = 0
        for request in self.queue:
            peer.outbox.push(encode(self._entry(request, principal)))
            count += 1
        peer.outbox.push(encode(QueueSynced(count)))

    def remove_console(self, peer: Peer) -> None:
        self.consoles.pop(peer, None)

    # --- notifications --------------------------------------------------------------

    def _entry(self, request: HelpRequest, viewer: Principal) -> QueueEntry:
        mine = request.claimed_by is not None and request.claimed_by == viewer.account_id
        return QueueEntry(
            request_id=request.id,
            state=request.state,
            user_connected=request.attached,
            waiting_since=request.created_at,
            name=request.name,
            description=request.description,
            category=request.category,
            system_summary=request.system_summary,
            claimed_by=request.claimed_name if (viewer.sees_claimers or mine) else "",
            claimed_by_me=mine,
        )

    def _entry_changed(self, request: HelpRequest) -> None:
        for console, principal in self.consoles.items():
            assert console.outbox is not None
            console.outbox.push(encode(self._entry(request, principal)))

    def _broadcast(self, data: bytes) -> None:
        for console in self.consoles:
            assert console.outbox is not None
            console.outbox.push(data)

    def _positions_changed(self) -> None:
        """Tell every waiting, connected user whose position moved.

        Consoles need nothing: they order entries by ``waiting_since``.
        """
        for request_id, position in self.queue.positions().items():
            user = self.users.get(request_id)
            if user is not None and position and user.position != position:
                user.position = position
                assert user.outbox is not None
                user.outbox.push(encode(QueuePosition(position)))
