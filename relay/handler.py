"""The websocket connection handler: a thin adapter around the registry and the queue.

One :meth:`Relay.handle` task runs per connection. Its first message picks
the conversation (see :mod:`common.protocol.relay_wire`): a code-flow
Register or Claim, a Login, a help request (PostRequest, ResumeRequest), a
queue watch (WatchQueue) or a claim of a request (ClaimRequest). Paired
peers then forward: each task reads its peer's messages and writes them to
the other peer, so back-pressure reaches the sender through websockets'
bounded receive queue.

Every await is bounded by a deadline that depends on the peer's state:

=========  =============================================  ================
state      deadline                                       close code
=========  =============================================  ================
NEW        connection opened + ``hello_timeout``          HELLO_TIMEOUT
WAITING    registration + ``code_ttl``                    CODE_EXPIRED
QUEUED     the request's expiry (``request_ttl``)         REQUEST_EXPIRED
CONSOLE    (only the absolute limit)
PAIRED     last message from this peer + ``idle_timeout`` IDLE_TIMEOUT
any        connection opened + ``absolute_timeout``       SESSION_TOO_LONG
=========  =============================================  ================

When one side of a pair ends, its task asks the other one to end too
(:meth:`Peer.end_soon`): that task sends PeerLeft and closes with PEER_LEFT.
The exception is a claimed help request whose technician leaves before the
user sent SessionStarted: the user goes back to the queue (Requeued). Each
task only ever closes its own connection.

Authenticated conversations take the token from the upgrade request's
``Authorization: Bearer`` header. Technicians' connections are tracked by
account, so that disabling an account cuts them all off
(:meth:`Relay.check_accounts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import math
import random
import secrets
import time
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from common.errors import InvalidState, ProtocolError
from common.protocol.codec import Message, decode, encode
from common.protocol.relay_wire import (
    FORWARD_PREFIX,
    SID_BYTES,
    Assigned,
    CancelRequest,
    Claim,
    ClaimRequest,
    CloseCode,
    LoggedIn,
    Login,
    Paired,
    PeerJoined,
    PeerLeft,
    PostRequest,
    Register,
    Registered,
    RemovalReason,
    RenewToken,
    Resume,
    ResumeRequest,
    SessionStarted,
    WatchQueue,
)
from relay.config import RelayConfig
from relay.counters import relay_limits
from relay.guard import Guards, remote_address
from relay.hub import QueueHub
from relay.limits import Lockout, RateLimiter
from relay.metrics import Metrics
from relay.peer import MIN_OUTBOX, Outbox, Peer
from relay.proxy import parse_networks
from relay.queue import HelpQueue
from relay.registry import Counts, PeerState, Registry, RelayRejection
from relay.resume_desk import ResumeDesk, drain_incoming
from relay.services import Authenticator, Database, Principal, SignedIn, locked_out
from relay.store import Store


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
    CloseCode.ACCOUNT_DISABLED: "the technician's account was disabled",
}
_DISCONNECTED = "peer disconnected"
_TOKEN_GRACE = 24 * 3600.0
_HELLOS = (Register, Claim, Login, PostRequest, ResumeRequest, WatchQueue, ClaimRequest, Resume)

Hello = Register | Claim | Login | PostRequest | ResumeRequest | WatchQueue | ClaimRequest | Resume


class Relay:
    """The connection handler, the registry and the queue it drives.

    Args:
        config: limits and timeouts.
        registry: the pairing registry; one is built from ``config`` if not given.
        rng: randomness for the registry built here (default: the OS's).
        store: the database (default: one for ``config.database_url``).
        wall_clock: unix time, for tokens and requests (they outlive the process).

    Attributes:
        config: the settings in force.
        registry: pairing state for every connection.
        hub: the help-request queue, its storage and its watchers.
        restored: how many stored requests :meth:`start` took back.
        auth: sign-in and tokens.
        metrics: counters for ``/metrics``.
        closing: set by the server on shutdown; partners are then not notified
            (every connection is being closed with GOING_AWAY anyway).
    """

    def __init__(
        self,
        config: RelayConfig,
        *,
        registry: Registry[Peer] | None = None,
        rng: random.Random | None = None,
        store: Store | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.registry: Registry[Peer] = registry or Registry(
            code_ttl=config.code_ttl,
            max_waiting=config.max_waiting,
            max_connections=config.max_connections,
            max_connections_per_address=config.max_connections_per_address,
            address_claims_per_window=config.address_claims_per_window,
            address_claim_window=config.address_claim_window,
            max_waiting_per_address=config.max_waiting_per_address,
            registrations_per_window=config.registrations_per_window,
            registration_window=config.registration_window,
            rng=rng,
        )
        self.closing = False
        self.trusted = parse_networks(config.trusted_proxies)
        self.metrics = Metrics()
        self.db = Database(store if store is not None else Store(config.database_url))
        self.auth = Authenticator(config, self.db, clock=wall_clock)
        self.hub = QueueHub(
            HelpQueue(
                max_requests=config.max_queued,
                max_per_address=config.max_requests_per_address,
                max_text=config.max_request_text,
                max_summary=config.max_system_summary,
                request_ttl=config.request_ttl,
                resume_window=config.resume_window,
            ),
            self.db,
            self.metrics,
        )
        self.wall_clock = wall_clock
        self.started_at = wall_clock()
        # Sessions whose link dropped, kept for a resume (relay.resume).
        self.resumes = ResumeDesk(self)
        self.has_accounts = False
        self.guards: Guards | None = None
        self.revision = ""
        self.restored = 0
        self._ids = itertools.count(1)
        self._address_rate = RateLimiter(config.address_rate, config.rate_window)
        self._claim_rate = RateLimiter(
            config.account_claims_per_window, config.account_claim_window
        )
        self._claim_lockout = Lockout(
            config.claim_failures_before_lockout, config.failure_window, config.lockout_duration
        )
        # Every per-address and per-account limiter, kept across restarts.
        self.counters = relay_limits(self)
        # account id -> its technicians' open, authenticated connections
        self._live: dict[int, set[Peer]] = {}
        self._housekeeping: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        """Migrate the database, take back stored requests, start housekeeping.

        Raises:
            relay.store.StoreError: the database cannot be opened or migrated.
        """
        self.revision = await self.db.run(self.db.store.migrate)
        self.restored = await self.hub.load(self.wall_clock())
        self.has_accounts = await self.db.run(self.db.store.has_accounts)
        await self.counters.load()
        self._housekeeping = asyncio.create_task(self._maintain(), name="relay-housekeeping")

    async def stop(self) -> None:
        """Stop housekeeping and close the database (after every handler finished)."""
        task, self._housekeeping = self._housekeeping, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(RelayRejection):  # a database that never opened
            await self.counters.save()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.auth.close)
        await loop.run_in_executor(None, self.db.close)

    def counts(self) -> Counts:
        """Connections, waiting codes and active pairs right now."""
        return self.registry.counts()

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            try:
                await self.check_accounts()
                await self.expire_requests()
                # Expired tokens stay a day, so that they are refused as *expired*.
                await self.db.run(self.db.store.purge_tokens, self.wall_clock() - _TOKEN_GRACE)
                await self.counters.save()
                self.has_accounts = await self.db.run(self.db.store.has_accounts)
            except RelayRejection:
                logger.error("database_unavailable", extra={"fields": {}})
            except Exception as exc:  # keep housekeeping alive, whatever happened
                logger.error("housekeeping_failed", extra={"fields": {"error": type(exc).__name__}})

    async def check_accounts(self) -> None:
        """Cut off every connection of an account that was disabled or deleted."""
        if not self._live:
            return
        enabled = await self.db.run(self.db.store.enabled_among, list(self._live))
        for account_id in [a for a in self._live if a not in enabled]:
            peers = self._live.pop(account_id)
            for peer in peers:
                self.metrics.inc("accounts_cut_off_total")
                peer.end_soon(CloseCode.ACCOUNT_DISABLED, "this account was disabled")
            _event("account_cut_off", account=account_id, connections=len(peers))

    async def expire_requests(self) -> None:
        """Drop help requests past their deadline and close their users."""
        for user in await self.hub.expire(self.wall_clock()):
            user.end_soon(CloseCode.REQUEST_EXPIRED, "no technician took the request in time")

    # --- one connection -----------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one websocket connection until it closes.

        Never raises for anything a peer can do: every refusal becomes a
        close code and a short reason.
        """
        loop = asyncio.get_running_loop()
        peer = Peer(ws, next(self._ids), remote_address(ws, self.trusted), loop.time())
        self.metrics.inc("connections_total")
        try:
            self.registry.connect(peer, peer.address)
        except RelayRejection as exc:
            _log("refused", peer, code=exc.code.name)
            self.metrics.inc("closed_total", code=exc.code.name)
            self.metrics.refusal(exc.code, exc.reason)
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
        except Exception as exc:
            # A bug, not a peer's doing: close cleanly and say only its type.
            logger.error(
                "internal_error", extra={"fields": {"conn": peer.id, "error": type(exc).__name__}}
            )
            ending = RelayRejection(CloseCode.INTERNAL_ERROR, "internal error")
            code, reason = ending.code, ending.reason
        finally:
            await self._leave(peer, code)
        if ending is not None:
            if ending.code is not CloseCode.NORMAL:
                self.metrics.inc("closed_total", code=ending.code.name)
                self.metrics.refusal(ending.code, ending.reason)
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

    async def _leave(self, peer: Peer, code: int) -> None:
        """Undo what the connection held: registry, queue, live-account tracking."""
        if peer.outbox is not None:
            await peer.outbox.stop()
        if peer.principal is not None:
            live = self._live.get(peer.principal.account_id)
            if live is not None:
                live.discard(peer)
                if not live:
                    del self._live[peer.principal.account_id]
        self.hub.remove_console(peer)
        partner = self.registry.disconnect(peer)
        now = self.wall_clock()
        left = _LEFT_REASONS.get(code, _DISCONNECTED)
        if peer.principal is not None and peer.request_id is not None and not self.closing:
            # A technician that claimed a request and left before the user started.
            user = self.hub.release(peer, "the technician left before the session started")
            if user is not None and partner is user:
                self.registry.requeue(user)
                user.partner = None
                # Its hello may be on the way already: drop such frames for a while.
                user.requeued_until = asyncio.get_running_loop().time() + self.config.hello_timeout
                user.rearm(self._limit(user)[0])
                _log("requeued", user, request=_tag(peer.request_id))
                partner = None
        elif peer.request_id is not None and not peer.request_done and not self.closing:
            if code == CloseCode.REQUEST_EXPIRED:
                with contextlib.suppress(RelayRejection):
                    await self.hub.finish(peer.request_id, RemovalReason.EXPIRED)
            else:
                # A queue user that went away: the request waits for it (resume token).
                self.hub.detach(peer, now)
        if partner is not None and not self.closing and self.resumes.suspend(peer, partner, code):
            partner.end_soon(CloseCode.PEER_SUSPENDED, "the other side's link dropped; resume")
            partner = None
        self.resumes.forget(peer)
        if partner is not None and not self.closing:
            partner.end_soon(CloseCode.PEER_LEFT, left)

    # --- the conversation -------------------------------------------------------

    async def _serve(self, peer: Peer) -> None:
        hello = _parse_hello(await self._recv(peer))
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._address_rate.allow(peer.key, now):
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "too many requests from this address; wait a minute"
            )
        if isinstance(hello, Register):
            reg = self.registry.register(peer, now)
            peer.expires_at = reg.expires_at
            _log("registered", peer)
            await self._send(peer, peer, encode(Registered(reg.nameplate, reg.sid, reg.expires_in)))
        elif isinstance(hello, Claim):
            await self._claim_code(peer, hello)
        elif isinstance(hello, Login):
            await self._login(peer, hello)
        elif isinstance(hello, PostRequest | ResumeRequest):
            await self._queue_user(peer, hello)
        elif isinstance(hello, WatchQueue):
            await self._console(peer)
        elif isinstance(hello, Resume):
            await self.resumes.serve(peer, hello)
        else:
            await self._claim_request(peer, hello)
        await self._forward(peer)

    def _code_claims_need_login(self) -> bool:
        mode = self.config.code_claims
        return mode == "login" or (mode == "auto" and self.has_accounts)

    async def _authenticate(self, peer: Peer) -> Principal:
        """The account behind the connection's bearer token; tracked for cut-off."""
        headers = peer.ws.request.headers.get_all("Authorization") if peer.ws.request else []
        if len(headers) > 1:
            raise RelayRejection(CloseCode.UNAUTHORIZED, "send one Authorization header")
        header = headers[0] if headers else None
        try:
            async with asyncio.timeout(self.config.hello_timeout):
                principal = await self.auth.authenticate(header)
        except TimeoutError:
            raise RelayRejection(CloseCode.INTERNAL_ERROR, "the relay is too busy") from None
        peer.principal = principal
        self._live.setdefault(principal.account_id, set()).add(peer)
        _log("authenticated", peer, account=principal.name)
        return principal

    def _claim_allowed(self, principal: Principal) -> None:
        now = self.wall_clock()
        key = str(principal.account_id)
        locked = self._claim_lockout.locked_for(key, now)
        if locked > 0:
            raise locked_out("claims", locked)
        if not self._claim_rate.allow(key, now):
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "this account made too many claims; wait a few minutes"
            )

    def _claim_failed(self, principal: Principal | None, exc: RelayRejection) -> RelayRejection:
        if principal is None or exc.code is CloseCode.RATE_LIMITED:
            return exc
        key = str(principal.account_id)
        now = self.wall_clock()
        if self._claim_lockout.failure(key, now):
            return locked_out("claims", self._claim_lockout.locked_for(key, now))
        return exc

    async def _claim_code(self, peer: Peer, hello: Claim) -> None:
        principal = None
        if self._code_claims_need_login():
            principal = await self._authenticate(peer)
            self._claim_allowed(principal)
        now = asyncio.get_running_loop().time()
        try:
            pairing = self.registry.claim(peer, hello.nameplate, now)
        except RelayRejection as exc:
            raise self._claim_failed(principal, exc) from None
        self.metrics.inc("claims_total", kind="code")
        user = pairing.user
        if user.expires_at is not None:
            self.metrics.observe_pairing("code", now - (user.expires_at - self.config.code_ttl))
        peer.partner, user.partner = user, peer
        peer.last_frame = user.last_frame = now
        # The user's task is waiting under its code expiry; now idle rules apply.
        user.rearm(self._limit(user)[0])
        _log("paired", peer, user=user.id)
        # Paired goes out before PeerJoined so that the technician never
        # sees a forwarded frame before it knows it is paired.
        await self._send(peer, peer, encode(Paired(pairing.sid)))
        await self._send(peer, user, _PEER_JOINED)

    async def _login(self, peer: Peer, hello: Login) -> None:
        try:
            async with asyncio.timeout(self.config.hello_timeout):
                signed: SignedIn = await self.auth.login(hello.account, hello.password, peer.key)
        except TimeoutError:
            raise RelayRejection(CloseCode.INTERNAL_ERROR, "the relay is too busy") from None
        except RelayRejection as exc:
            self.metrics.inc("logins_total", result=exc.code.name.lower())
            # Not the typed name: people type passwords into name fields.
            _log("login_refused", peer, code=exc.code.name)
            raise
        self.metrics.inc("logins_total", result="ok")
        self.has_accounts = True
        account = signed.account
        _log("logged_in", peer, account=account.name, role=account.role)
        await self._send(
            peer,
            peer,
            encode(
                LoggedIn(
                    signed.token.text,
                    signed.expires_in,
                    account.name,
                    account.display_name,
                    account.role,
                    signed.revocations,
                )
            ),
        )
        raise RelayRejection(CloseCode.NORMAL, "signed in")

    def _start_outbox(self, peer: Peer) -> Outbox:
        limit = max(MIN_OUTBOX, 2 * self.config.max_queued + 64)
        outbox = Outbox(peer, self.config.idle_timeout, limit)
        peer.outbox = outbox
        outbox.start()
        return outbox

    async def _queue_user(self, peer: Peer, hello: PostRequest | ResumeRequest) -> None:
        self._start_outbox(peer)
        now = self.wall_clock()
        if isinstance(hello, PostRequest):
            request = await self.hub.post(peer, hello, now)
            _log("request_posted", peer, request=_tag(request.id))
        else:
            request, previous = self.hub.resume(peer, hello, now)
            if previous is not None:
                previous.end_soon(CloseCode.REPLACED, "replaced by a newer connection")
            _log("request_resumed", peer, request=_tag(request.id))
        self.registry.enter(peer, PeerState.QUEUED)

    async def _console(self, peer: Peer) -> None:
        principal = await self._authenticate(peer)
        self._start_outbox(peer)
        self.registry.enter(peer, PeerState.CONSOLE)
        self.hub.add_console(peer, principal)
        _log("watching", peer)

    async def _claim_request(self, peer: Peer, hello: ClaimRequest) -> None:
        principal = await self._authenticate(peer)
        self._claim_allowed(principal)
        loop = asyncio.get_running_loop()
        try:
            request, user = self.hub.claim(peer, hello.request_id, self.wall_clock())
        except RelayRejection as exc:
            raise self._claim_failed(principal, exc) from None
        self.metrics.inc("claims_total", kind="request")
        self.metrics.observe_pairing("request", self.wall_clock() - request.created_at)
        sid = secrets.token_bytes(SID_BYTES)
        try:
            self.registry.join(user, peer, sid)
        except InvalidState:
            # The user's connection is on its way out; its request stays queued.
            self.hub.release(peer, "")
            raise RelayRejection(
                CloseCode.USER_AWAY, "the user is not connected right now"
            ) from None
        peer.partner, user.partner = user, peer
        peer.last_frame = user.last_frame = loop.time()
        assert user.outbox is not None
        user.outbox.pause()
        user.rearm(self._limit(user)[0])
        _log("claimed", peer, user=user.id, request=_tag(request.id))
        await self._send(peer, peer, encode(Paired(sid)))
        async with user.send_lock:
            await self._send(peer, user, encode(Assigned(sid)))

    async def _forward(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        metrics = self.metrics
        while True:
            data = await self._recv(peer)
            partner = peer.partner
            # The fast path: check the prefix, pass the very same bytes on.
            if partner is not None and data.startswith(FORWARD_PREFIX):
                peer.last_frame = loop.time()
                peer.frames += 1
                peer.bytes += len(data)
                metrics.forwarded_messages += 1
                metrics.forwarded_bytes += len(data)
                await self._send(peer, partner, data)
                metrics.observe_forward(loop.time() - peer.last_frame)
            else:
                await self._control(peer, data)

    async def _control(self, peer: Peer, data: bytes) -> None:
        """A message that is not a Forward between partners."""
        state = self.registry.state(peer)
        if state is PeerState.CONSOLE:
            msg = _decode(data)
            if not isinstance(msg, RenewToken):
                raise RelayRejection(CloseCode.BAD_MESSAGE, "only RenewToken on a queue watch")
            await self._renew(peer)
            return
        if state is PeerState.PAIRED and self.resumes.offer(peer, data):
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
        msg = _decode(data)
        assert peer.request_id is not None
        if isinstance(msg, CancelRequest):
            await self.hub.finish(peer.request_id, RemovalReason.CANCELLED)
            _log("request_cancelled", peer)
            raise RelayRejection(CloseCode.REQUEST_CANCELLED, "request cancelled")
        if isinstance(msg, SessionStarted) and state is PeerState.PAIRED:
            await self.hub.finish(peer.request_id, RemovalReason.STARTED)
            _log("session_started", peer)
            return
        if peer.partner is None:
            raise RelayRejection(CloseCode.BAD_MESSAGE, "not paired yet; wait for Assigned")
        raise RelayRejection(CloseCode.BAD_MESSAGE, "only Forward, CancelRequest or SessionStarted")

    async def _renew(self, peer: Peer) -> None:
        assert peer.principal is not None and peer.outbox is not None
        signed = await self.auth.renew(peer.principal)
        # The old token is gone; the next renewal must retire this one.
        peer.principal = signed.renews(peer.principal)
        account = signed.account
        peer.outbox.push(
            encode(
                LoggedIn(
                    signed.token.text,
                    signed.expires_in,
                    account.name,
                    account.display_name,
                    account.role,
                    signed.revocations,
                )
            )
        )

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
            if self.resumes.suspend(target, peer, 1006):  # its link dropped under us
                raise RelayRejection(CloseCode.PEER_SUSPENDED, "partner link dropped") from None
            raise RelayRejection(CloseCode.PEER_LEFT, _DISCONNECTED) from None
        finally:
            peer.scope = None

    async def _close(self, peer: Peer, rejection: RelayRejection) -> None:
        """Close ``peer``'s connection for ``rejection``, telling it first if its partner left."""
        ws = peer.ws
        # Keep reading meanwhile: a peer still sending would otherwise have its
        # close reply stuck behind data nobody reads (until close_timeout).
        draining = asyncio.ensure_future(drain_incoming(ws))
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
        finally:
            draining.cancel()

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
        elif state is PeerState.QUEUED:
            other = (
                self._request_deadline(peer),
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
            other = (-math.inf, CloseCode.PEER_LEFT, _DISCONNECTED)
        return other if other[0] < limit[0] else limit

    def _request_deadline(self, peer: Peer) -> float:
        """Loop time at which the user's queued request expires."""
        request = self.hub.queue.get(peer.request_id) if peer.request_id else None
        if request is None:
            return -math.inf
        remaining = self.hub.queue.expires_at(request) - self.wall_clock()
        return asyncio.get_running_loop().time() + remaining


def _decode(data: bytes) -> Message:
    try:
        return decode(data)
    except ProtocolError as exc:
        raise RelayRejection(CloseCode.BAD_MESSAGE, _short(f"malformed message: {exc}")) from None


def _parse_hello(data: bytes) -> Hello:
    msg = _decode(data)
    if not isinstance(msg, _HELLOS):
        raise RelayRejection(
            CloseCode.BAD_MESSAGE, "first message must be Register, Claim, Login or a request"
        )
    return msg


def _tag(request_id: bytes) -> str:
    """A short, stable tag for a request in logs (not its id)."""
    return hashlib.sha256(b"deskhand log tag|" + request_id).hexdigest()[:12]


def _short(reason: str) -> str:
    raw = reason.encode("utf-8")
    if len(raw) <= _MAX_REASON:
        return reason
    return raw[:_MAX_REASON].decode("utf-8", "ignore")


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
    # Never log nameplates, session ids, tokens, request text or payloads.
    logger.info(event, extra={"fields": {"conn": peer.id, **fields}})


def _event(event: str, **fields: object) -> None:
    logger.info(event, extra={"fields": fields})
