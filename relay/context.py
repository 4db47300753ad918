"""What the relay's handler modules share, as they see it: one :class:`RelayContext`.

:class:`relay.handler.Relay` owns every piece of the relay's state and is
the only implementation. The handler modules (pairing, sign-in, forwarding,
closing, resume, counters) take this protocol instead of the class, so they
depend on what they use and not on the module that assembles them: no
import runs back up to :mod:`relay.handler`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from relay.config import RelayConfig
from relay.hub import QueueHub
from relay.limits import Lockout, RateLimiter
from relay.metrics import Metrics
from relay.peer import Peer
from relay.registry import Registry, RelayRejection
from relay.services import Authenticator, Database, Principal


__all__ = ["RelayContext", "ResumePort", "SignInPort"]


class SignInPort(Protocol):
    """The sign-in part (:class:`relay.auth_handlers.SignIn`), as the others use it."""

    @property
    def claim_rate(self) -> RateLimiter: ...
    @property
    def claim_lockout(self) -> Lockout: ...
    def code_claims_need_login(self) -> bool: ...
    async def authenticate(self, peer: Peer) -> Principal: ...
    def forget(self, peer: Peer) -> None: ...
    async def renew(self, peer: Peer) -> None: ...
    def claim_allowed(self, principal: Principal) -> None: ...
    def claim_failed(self, principal: Principal | None, exc: RelayRejection) -> RelayRejection: ...


class ResumePort(Protocol):
    """The suspended pairs (:class:`relay.resume_desk.ResumeDesk`), as the others use them."""

    def offer(self, peer: Peer, data: bytes) -> bool: ...
    def suspend(self, peer: Peer, partner: Peer, code: int) -> bool: ...
    def forget(self, peer: Peer) -> None: ...


class RelayContext(Protocol):
    """The relay's state and parts (see :class:`relay.handler.Relay` for each)."""

    has_accounts: bool

    @property
    def config(self) -> RelayConfig: ...
    @property
    def registry(self) -> Registry[Peer]: ...
    @property
    def hub(self) -> QueueHub: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def db(self) -> Database: ...
    @property
    def auth(self) -> Authenticator: ...
    @property
    def wall_clock(self) -> Callable[[], float]: ...
    @property
    def started_at(self) -> float: ...
    @property
    def closing(self) -> bool: ...
    @property
    def address_rate(self) -> RateLimiter: ...
    @property
    def signin(self) -> SignInPort: ...
    @property
    def resumes(self) -> ResumePort: ...
