"""Sign-in on the relay's connections: Login, bearer tokens, renewals, claim limits.

:class:`SignIn` owns what the relay knows about signed-in connections: which
are open per account (so that disabling an account cuts them all off) and
the per-account claim rate and lockout. Passwords and tokens themselves are
:class:`relay.services.Authenticator`'s.
"""

from __future__ import annotations

import asyncio

from common.protocol.codec import encode
from common.protocol.relay_wire import CloseCode, LoggedIn, Login
from relay.context import RelayContext
from relay.forwarding import send
from relay.limits import Lockout, RateLimiter
from relay.logs import event, log
from relay.peer import Peer
from relay.registry import RelayRejection
from relay.services import Principal, SignedIn, locked_out


__all__ = ["SignIn"]


class SignIn:
    """Authentication for one relay's connections.

    Attributes:
        claim_rate: claims per account and window (saved by :mod:`relay.counters`).
        claim_lockout: accounts locked out after failed claims (saved likewise).
    """

    def __init__(self, relay: RelayContext) -> None:
        self._relay = relay
        config = relay.config
        self.claim_rate = RateLimiter(config.account_claims_per_window, config.account_claim_window)
        self.claim_lockout = Lockout(
            config.claim_failures_before_lockout, config.failure_window, config.lockout_duration
        )
        # account id -> its technicians' open, authenticated connections
        self._live: dict[int, set[Peer]] = {}

    def code_claims_need_login(self) -> bool:
        relay = self._relay
        mode = relay.config.code_claims
        return mode == "login" or (mode == "auto" and relay.has_accounts)

    async def authenticate(self, peer: Peer) -> Principal:
        """The account behind the connection's bearer token; tracked for cut-off."""
        headers = peer.ws.request.headers.get_all("Authorization") if peer.ws.request else []
        if len(headers) > 1:
            raise RelayRejection(CloseCode.UNAUTHORIZED, "send one Authorization header")
        header = headers[0] if headers else None
        try:
            async with asyncio.timeout(self._relay.config.hello_timeout):
                principal = await self._relay.auth.authenticate(header)
        except TimeoutError:
            raise RelayRejection(CloseCode.INTERNAL_ERROR, "the relay is too busy") from None
        peer.principal = principal
        self._live.setdefault(principal.account_id, set()).add(peer)
        log("authenticated", peer, account=principal.name)
        return principal

    def forget(self, peer: Peer) -> None:
        """``peer``'s connection ended: stop tracking it for its account."""
        if peer.principal is None:
            return
        live = self._live.get(peer.principal.account_id)
        if live is not None:
            live.discard(peer)
            if not live:
                del self._live[peer.principal.account_id]

    async def cut_off_disabled(self) -> None:
        """End every connection of an account that was disabled or deleted."""
        if not self._live:
            return
        relay = self._relay
        enabled = await relay.db.run(relay.db.store.enabled_among, list(self._live))
        for account_id in [a for a in self._live if a not in enabled]:
            peers = self._live.pop(account_id)
            for peer in peers:
                relay.metrics.inc("accounts_cut_off_total")
                peer.end_soon(CloseCode.ACCOUNT_DISABLED, "this account was disabled")
            event("account_cut_off", account=account_id, connections=len(peers))

    # --- claims -----------------------------------------------------------------

    def claim_allowed(self, principal: Principal) -> None:
        """Refuse a claim from an account that is locked out or over its rate."""
        now = self._relay.wall_clock()
        key = str(principal.account_id)
        locked = self.claim_lockout.locked_for(key, now)
        if locked > 0:
            raise locked_out("claims", locked)
        if not self.claim_rate.allow(key, now):
            raise RelayRejection(
                CloseCode.RATE_LIMITED, "this account made too many claims; wait a few minutes"
            )

    def claim_failed(self, principal: Principal | None, exc: RelayRejection) -> RelayRejection:
        """The refusal to send for a failed claim: a lockout once there were too many."""
        if principal is None or exc.code is CloseCode.RATE_LIMITED:
            return exc
        key = str(principal.account_id)
        now = self._relay.wall_clock()
        if self.claim_lockout.failure(key, now):
            return locked_out("claims", self.claim_lockout.locked_for(key, now))
        return exc

    # --- Login and RenewToken ---------------------------------------------------

    async def login(self, peer: Peer, hello: Login) -> None:
        """Sign in, send LoggedIn, and end the connection (NORMAL)."""
        relay = self._relay
        try:
            async with asyncio.timeout(relay.config.hello_timeout):
                signed: SignedIn = await relay.auth.login(hello.account, hello.password, peer.key)
        except TimeoutError:
            raise RelayRejection(CloseCode.INTERNAL_ERROR, "the relay is too busy") from None
        except RelayRejection as exc:
            relay.metrics.inc("logins_total", result=exc.code.name.lower())
            # Not the typed name: people type passwords into name fields.
            log("login_refused", peer, code=exc.code.name)
            raise
        relay.metrics.inc("logins_total", result="ok")
        relay.has_accounts = True
        account = signed.account
        log("logged_in", peer, account=account.name, role=account.role)
        await send(relay, peer, peer, _logged_in(signed))
        raise RelayRejection(CloseCode.NORMAL, "signed in")

    async def renew(self, peer: Peer) -> None:
        """A queue watch's RenewToken: a new token, the old one retired."""
        assert peer.principal is not None and peer.outbox is not None
        signed = await self._relay.auth.renew(peer.principal)
        # The old token is gone; the next renewal must retire this one.
        peer.principal = signed.renews(peer.principal)
        peer.outbox.push(_logged_in(signed))


def _logged_in(signed: SignedIn) -> bytes:
    account = signed.account
    return encode(
        LoggedIn(
            signed.token.text,
            signed.expires_in,
            account.name,
            account.display_name,
            account.role,
            signed.revocations,
        )
    )
