"""TechnicianClient: sign in, watch the help-request queue, claim; or connect by code.

::

    client = TechnicianClient(url, credential, pin=RelayPin.parse("sha256:..."))
    account = await client.login("jane", password)       # a token, kept in memory
    watch = await client.watch_queue()                    # live QueueItems
    channel = await client.claim(watch.items[0].request_id, on_sas=show)
    # or, as before:
    channel = await client.connect("512-417-382", on_sas=show)

Once signed in, every connection carries the token in its Authorization
header (never in the URL), including code claims. The relay may require
that (``code_claims = "login"``). An expired token shows as a
:class:`~common.errors.ConnectionLost` with code TOKEN_EXPIRED: sign in
again. While a queue watch runs, it renews the token by itself.

At sign-in the relay hands over the organisation's latest revocation list;
the technician's credential then sends that fresher list to users.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import time
from collections.abc import Callable

from common.crypto.code import read_code
from common.crypto.identity import (
    Certificate,
    RevocationList,
    SignedCertificate,
    SignedRevocationList,
    TechnicianCredential,
)
from common.errors import InvalidState, ProtocolError
from common.net.channel import SecureChannel
from common.net.pairing import PairingTimeouts, pair_technician
from common.net.queue_pairing import pair_technician_queued
from common.net.reconnect import RelayReconnector
from common.net.relay_link import RelayLink
from common.net.tls import RelayPin
from common.protocol.codec import decode_as
from common.protocol.relay_wire import REQUEST_ID_BYTES, LoggedIn
from common.session import SessionLimits
from technician.core.queue import QueueChange, QueueItem, QueueWatch


__all__ = ["QueueChange", "QueueItem", "QueueWatch", "SignedInAccount", "TechnicianClient"]


@dataclasses.dataclass(frozen=True)
class SignedInAccount:
    """Who the relay says we are.

    Attributes:
        name: the account name.
        display_name: the name supervisors see.
        role: technician, supervisor or admin.
        expires_at: when the current token expires (the client's monotonic clock).
    """

    name: str
    display_name: str
    role: str
    expires_at: float


def _parse_request_id(request_id: str | bytes) -> bytes:
    if isinstance(request_id, bytes):
        raw = request_id
    else:
        try:
            raw = bytes.fromhex(request_id)
        except ValueError:
            raise ValueError("a request id is 32 hexadecimal digits") from None
    if len(raw) != REQUEST_ID_BYTES:
        raise ValueError("a request id is 32 hexadecimal digits")
    return raw


class TechnicianClient:
    """The technician side's session core.

    Args:
        relay_url: ``wss://host:port/v1/peer`` (``ws://`` on loopback only).
        credential: the technician's key, certificate and revocation list.
        pin: the relay's pinned certificate or public key (``wss://``).
        ssl_context: a TLS context made by the caller (tests); overrides ``pin``'s.
    """

    def __init__(
        self,
        relay_url: str,
        credential: TechnicianCredential,
        *,
        clock: Callable[[], float] = time.monotonic,
        entropy: Callable[[int], bytes] = os.urandom,
        timeouts: PairingTimeouts | None = None,
        limits: SessionLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        pin: RelayPin | None = None,
    ) -> None:
        self._url = relay_url
        self._credential = credential
        self._clock = clock
        self._entropy = entropy
        self._timeouts = timeouts
        self._limits = limits
        self._ssl = ssl_context
        self._pin = pin
        self._token: str | None = None
        self.account: SignedInAccount | None = None

    @property
    def signed_in(self) -> bool:
        """True while a token is held and not known to be expired."""
        return self.account is not None and self._clock() < self.account.expires_at

    async def _open(self, *, token: bool = True) -> RelayLink:
        return await RelayLink.open(
            self._url,
            ssl_context=self._ssl,
            pin=self._pin,
            token=self._token if token else None,
        )

    # --- signing in -----------------------------------------------------------------

    def _reconnector(self) -> RelayReconnector:
        """Reopens the link after a drop, signed in as now (the token may have been renewed)."""
        return RelayReconnector(
            self._url, ssl_context=self._ssl, pin=self._pin, token=lambda: self._token
        )

    async def login(self, account: str, password: str) -> SignedInAccount:
        """Sign in; later connections carry the token.

        Raises:
            ConnectionLost: wrong name or password (LOGIN_FAILED), LOCKED_OUT,
                ACCOUNT_DISABLED, RATE_LIMITED, or the relay is unreachable.
        """
        link = await self._open(token=False)
        try:
            logged_in = await link.login(account, password)
        finally:
            await link.close()
        self._adopt(logged_in)
        assert self.account is not None
        return self.account

    def logout(self) -> None:
        """Forget the token (the relay lets it expire)."""
        self._token = None
        self.account = None

    def _adopt(self, logged_in: LoggedIn) -> None:
        self._token = logged_in.token
        self.account = SignedInAccount(
            logged_in.account,
            logged_in.display_name,
            logged_in.role,
            self._clock() + logged_in.expires_in,
        )
        if logged_in.revocations:
            self._adopt_revocations(logged_in.revocations)

    def _adopt_revocations(self, revocations: bytes) -> None:
        """Use the relay's revocation list if it is the organisation's and fresher."""
        try:
            offered = decode_as(RevocationList, decode_as(SignedRevocationList, revocations).body)
            current = decode_as(
                RevocationList, decode_as(SignedRevocationList, self._credential.revocations).body
            )
            cert = decode_as(
                Certificate, decode_as(SignedCertificate, self._credential.certificate).body
            )
        except ProtocolError:
            return
        # Users verify the signature; here only pick the newer list of our own org.
        if offered.org_key_id == cert.org_key_id and offered.issued_at > current.issued_at:
            self._credential.revocations = bytes(revocations)

    # --- the queue ------------------------------------------------------------------

    async def watch_queue(
        self, on_change: Callable[[QueueChange], None] | None = None
    ) -> QueueWatch:
        """Open a live view of the queue (signed in only).

        Args:
            on_change: called for every change, in the loop thread.

        Raises:
            InvalidState: not signed in.
            ConnectionLost: refused (TOKEN_EXPIRED, ACCOUNT_DISABLED...) or unreachable.
        """
        if self.account is None:
            raise InvalidState("sign in before watching the queue")
        link = await self._open()
        try:
            await link.watch_queue()
        except BaseException:
            await link.close()
            raise
        watch = QueueWatch(
            link,
            token_expires_in=max(1.0, self.account.expires_at - self._clock()),
            on_token=self._adopt,
            clock=self._clock,
        )
        if on_change is not None:
            watch.add_listener(on_change)
        watch.start()
        return watch

    async def claim(
        self,
        request_id: str | bytes,
        *,
        requested: tuple[str, ...] = ("view",),
        on_sas: Callable[[str], None] | None = None,
    ) -> SecureChannel:
        """Take a request from the queue and pair with its user (queue-mode RA1).

        Raises:
            InvalidState: not signed in.
            ValueError: not a request id.
            ConnectionLost: the relay refused the claim (taken, user away,
                unknown, locked out, token expired...).
            PairingError: the user declined, or the pairing failed.
        """
        raw = _parse_request_id(request_id)
        if self.account is None:
            raise InvalidState("sign in before claiming a request")
        link = await self._open()
        try:
            paired = await link.claim_request(raw)
        except BaseException:
            await link.close()
            raise
        return await pair_technician_queued(
            link,
            raw,
            paired.sid,
            self._credential,
            requested=requested,
            on_sas=on_sas,
            clock=self._clock,
            entropy=self._entropy,
            timeouts=self._timeouts,
            limits=self._limits,
            reconnector=self._reconnector(),
        )

    # --- the code flow --------------------------------------------------------------

    async def connect(
        self,
        code_text: str,
        *,
        requested: tuple[str, ...] = ("view",),
        on_sas: Callable[[str], None] | None = None,
    ) -> SecureChannel:
        """Claim the user's code and pair.

        Raises:
            CodeError: the text is not a code.
            ConnectionLost: the relay refused the claim (unknown, expired,
                taken, sign-in required...).
            PairingError: wrong code, tampering, or the user declined.
        """
        nameplate, password = read_code(code_text)
        link = await self._open()
        try:
            paired = await link.claim(nameplate)
        except BaseException:
            await link.close()
            raise
        return await pair_technician(
            link,
            password,
            paired.sid,
            self._credential,
            requested=requested,
            on_sas=on_sas,
            clock=self._clock,
            entropy=self._entropy,
            timeouts=self._timeouts,
            limits=self._limits,
            reconnector=self._reconnector(),
        )
