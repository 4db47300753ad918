"""Reopening a relay link to resume a session (the reconnector of SecureChannel).

:class:`SecureChannel` calls a :data:`Reconnector` with a :class:`ResumeTicket`
whenever its link dropped; it must return a fresh link on which the relay
has joined us with our partner again (``Resumed``), or raise:
:class:`ResumeRefused` when retrying is pointless (the relay does not know
the ticket, the grace period ran out, the sign-in was refused), any other
:class:`~common.errors.ConnectionLost` when it may work later.
:class:`RelayReconnector` is the one the apps use.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from common.errors import ConnectionLost
from common.net.relay_link import RelayLink
from common.net.tls import RelayPin
from common.protocol.relay_wire import CloseCode, PeerRole


__all__ = [
    "REFUSALS",
    "Reconnector",
    "RelayReconnector",
    "ResumeRefused",
    "ResumeTicket",
    "TicketLink",
]

# Relay answers after which another attempt cannot succeed.
REFUSALS = frozenset(
    {
        CloseCode.UNKNOWN_RESUME,
        CloseCode.RESUME_EXPIRED,
        CloseCode.UNAUTHORIZED,
        CloseCode.TOKEN_EXPIRED,
        CloseCode.FORBIDDEN,
        CloseCode.ACCOUNT_DISABLED,
        CloseCode.BAD_MESSAGE,
    }
)


@dataclasses.dataclass(frozen=True)
class ResumeTicket:
    """What the relay sees of a resume: public ids and which side we are."""

    resume_id: bytes
    previous_id: bytes
    role: PeerRole


class ResumeRefused(ConnectionLost):
    """The relay will not resume this session; do not retry."""


@runtime_checkable
class TicketLink(Protocol):
    """A link that can tell the relay the ids to keep the pair under."""

    async def offer_resume(self, resume_id: bytes, previous_id: bytes, role: PeerRole) -> None: ...


class _Link(Protocol):
    async def send_payload(self, payload: bytes) -> None: ...
    async def recv_payload(self) -> bytes: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


Reconnector = Callable[[ResumeTicket], Awaitable[_Link]]


class RelayReconnector:
    """Reopens a :class:`RelayLink` and sends ``Resume``, as the original link was opened.

    Args:
        url, ssl_context, pin: as for :meth:`RelayLink.open`.
        token: returns the technician's current bearer token (None for users):
            a resume needs the same sign-in as the claim did.
        connect_timeout: bound on one connection attempt's handshakes.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        pin: RelayPin | None = None,
        token: Callable[[], str | None] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._ssl = ssl_context
        self._pin = pin
        self._token = token
        self._timeout = connect_timeout

    async def __call__(self, ticket: ResumeTicket) -> RelayLink:
        token = self._token() if self._token is not None else None
        link = await RelayLink.open(
            self._url, timeout=self._timeout, ssl_context=self._ssl, pin=self._pin, token=token
        )
        try:
            await link.resume(ticket.resume_id, ticket.previous_id, ticket.role)
        except ConnectionLost as exc:
            link.abort()
            if exc.code in REFUSALS:
                raise ResumeRefused(exc.reason, exc.code) from None
            raise
        except BaseException:
            link.abort()
            raise
        return link
