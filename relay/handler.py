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

The pieces live beside this module; the state they share stays here, on
:class:`Relay` (sign-in state on :class:`relay.auth_handlers.SignIn`):

* :mod:`relay.pairing_handlers`: Register, Claim, the queue user, the
  console and ClaimRequest;
* :mod:`relay.auth_handlers`: Login, bearer tokens, RenewToken, claim limits;
* :mod:`relay.forwarding`: the forwarding loop and bounded reads and writes;
* :mod:`relay.closing`: deadlines, closing and what a connection leaves behind;
* :mod:`relay.resume_desk`: Resume hellos and suspended pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from common.protocol.relay_wire import (
    Claim,
    ClaimRequest,
    CloseCode,
    Login,
    PostRequest,
    Register,
    Resume,
    ResumeRequest,
    WatchQueue,
)
from relay import pairing_handlers
from relay.auth_handlers import SignIn
from relay.closing import close, closed_by, code_name, leave
from relay.config import RelayConfig
from relay.counters import relay_limits
from relay.forwarding import decode_message, forward, recv
from relay.guard import Guards, remote_address
from relay.hub import QueueHub
from relay.limits import RateLimiter
from relay.logs import log, logger
from relay.metrics import Metrics
from relay.peer import Peer
from relay.proxy import parse_networks
from relay.queue import HelpQueue
from relay.registry import Counts, Registry, RelayRejection
from relay.resume_desk import ResumeDesk
from relay.services import Authenticator, Database
from relay.store import Store


__all__ = ["Peer", "Relay"]

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
        signin: signed-in connections per account, claim limits.
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
        self.address_rate = RateLimiter(config.address_rate, config.rate_window)
        self.signin = SignIn(self)
        # Every per-address and per-account limiter, kept across restarts.
        self.counters = relay_limits(self)
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
        await self.signin.cut_off_disabled()

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
            log("refused", peer, code=exc.code.name)
            self.metrics.inc("closed_total", code=exc.code.name)
            self.metrics.refusal(exc.code, exc.reason)
            await close(self, peer, exc)
            return
        log("connected", peer, address=peer.address)
        ending: RelayRejection | None = None
        code: int = CloseCode.NORMAL
        reason = ""
        try:
            await self._serve(peer)
        except RelayRejection as exc:
            ending = exc
            code, reason = exc.code, exc.reason
        except ConnectionClosed as exc:
            code, reason = closed_by(exc)
        except Exception as exc:
            # A bug, not a peer's doing: close cleanly and say only its type.
            logger.error(
                "internal_error", extra={"fields": {"conn": peer.id, "error": type(exc).__name__}}
            )
            ending = RelayRejection(CloseCode.INTERNAL_ERROR, "internal error")
            code, reason = ending.code, ending.reason
        finally:
            await leave(self, peer, code)
        if ending is not None:
            if ending.code is not CloseCode.NORMAL:
                self.metrics.inc("closed_total", code=ending.code.name)
                self.metrics.refusal(ending.code, ending.reason)
            await close(self, peer, ending)
        log(
            "closed",
            peer,
            code=code_name(code),
            reason=reason,
            seconds=round(loop.time() - peer.opened_at, 3),
            frames=peer.frames,
            bytes=peer.bytes,
        )

    # --- the conversation -------------------------------------------------------

    async def _serve(self, peer: Peer) -> None:
        hello = _parse_hello(await recv(self, peer))
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self.address_rate.allow(peer.key, now):
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "too many requests from this address; wait a minute"
            )
        if isinstance(hello, Register):
            await pairing_handlers.register(self, peer, now)
        elif isinstance(hello, Claim):
            await pairing_handlers.claim_code(self, peer, hello)
        elif isinstance(hello, Login):
            await self.signin.login(peer, hello)
        elif isinstance(hello, PostRequest | ResumeRequest):
            await pairing_handlers.queue_user(self, peer, hello)
        elif isinstance(hello, WatchQueue):
            await pairing_handlers.console(self, peer)
        elif isinstance(hello, Resume):
            await self.resumes.serve(peer, hello)
        else:
            await pairing_handlers.claim_request(self, peer, hello)
        await forward(self, peer)


def _parse_hello(data: bytes) -> Hello:
    msg = decode_message(data)
    if not isinstance(msg, _HELLOS):
        raise RelayRejection(
            CloseCode.BAD_MESSAGE, "first message must be Register, Claim, Login or a request"
        )
    return msg
