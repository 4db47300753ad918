"""UserClient: ask for help, show a code, pair with a verified technician.

::

    IDLE --request_help()--> WAITING --technician joins--> PAIRING --consent--> CONNECTED
      ^                         |                              |                   |
      +------- cancel() --------+------- failure/decline ------+---- session end --+--> ENDED

A fresh code (and relay registration) is made for every request; a code is
never offered for a second pairing attempt.
"""

from __future__ import annotations

import asyncio
import enum
import os
import secrets
import ssl
import time
from collections.abc import Callable

from common.crypto.code import CODE_LIFETIME, PairingCode
from common.crypto.identity import OrgTrust
from common.errors import CodeError, ConnectionLost, InvalidState
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, PairingTimeouts, pair_user
from common.net.relay_link import RelayLink
from common.protocol.relay_wire import CloseCode
from common.session import SessionEnded, SessionEvent, SessionLimits


__all__ = ["UserClient", "UserState"]

_EXPIRED = "Nobody used the code before it expired. Request a new code."


class UserState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting for a technician"
    PAIRING = "verifying the technician"
    CONNECTED = "connected"
    ENDED = "ended"


class UserClient:
    """The user side's session core (one help request at a time)."""

    def __init__(
        self,
        relay_url: str,
        trust: OrgTrust,
        consent: ConsentCallback,
        *,
        device: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        randbelow: Callable[[int], int] = secrets.randbelow,
        entropy: Callable[[int], bytes] = os.urandom,
        timeouts: PairingTimeouts | None = None,
        limits: SessionLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        code_lifetime: float = CODE_LIFETIME,
    ) -> None:
        self._url = relay_url
        self._trust = trust
        self._consent = consent
        self._device = device
        self._clock = clock
        self._wall_clock = wall_clock
        self._randbelow = randbelow
        self._entropy = entropy
        self._timeouts = timeouts
        self._limits = limits
        self._ssl = ssl_context
        self._code_lifetime = code_lifetime
        self._link: RelayLink | None = None
        self._code: PairingCode | None = None
        self._sid = b""
        self.state = UserState.IDLE
        self.channel: SecureChannel | None = None

    @property
    def code(self) -> PairingCode | None:
        return self._code

    async def request_help(self) -> PairingCode:
        """Register with the relay and make a fresh code to give the technician."""
        if self.state not in (UserState.IDLE, UserState.ENDED):
            raise InvalidState(f"cannot request help while {self.state.value}")
        link = await RelayLink.open(self._url, ssl_context=self._ssl)
        try:
            registered = await link.register()
        except BaseException:
            await link.close()
            raise
        self._link = link
        self._sid = registered.sid
        lifetime = min(self._code_lifetime, float(registered.expires_in))
        self._code = PairingCode.generate(
            registered.nameplate, self._clock(), randbelow=self._randbelow, lifetime=lifetime
        )
        self.state = UserState.WAITING
        return self._code

    async def wait_for_technician(self) -> SecureChannel:
        """Wait for a technician to claim the code, verify them, ask for consent.

        Raises:
            CodeError: the code expired, or was already used.
            PairingError / IdentityError: the technician could not be verified.
            PairingDeclined: the user said no.
            ConnectionLost: the relay went away.
        """
        if self.state is not UserState.WAITING or self._link is None or self._code is None:
            raise CodeError("There is no unused code: request help again for a new one.")
        link, code = self._link, self._code
        remaining = code.issued_at + code.lifetime - self._clock()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                await link.wait_peer_joined()
        except TimeoutError:
            await self._give_up()
            raise CodeError(_EXPIRED) from None
        except ConnectionLost as exc:
            await self._give_up()
            if exc.code == CloseCode.CODE_EXPIRED:
                raise CodeError(_EXPIRED) from None
            raise
        self.state = UserState.PAIRING
        try:
            channel = await pair_user(
                link,
                code,
                self._sid,
                self._trust,
                self._consent,
                device=self._device,
                clock=self._clock,
                wall_clock=self._wall_clock,
                entropy=self._entropy,
                timeouts=self._timeouts,
                limits=self._limits,
            )
        except BaseException:
            self.state = UserState.ENDED
            self._link = None
            raise
        self.state = UserState.CONNECTED
        self.channel = channel
        channel.add_listener(self._on_event)
        return channel

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self.state = UserState.ENDED

    async def _give_up(self) -> None:
        self.state = UserState.ENDED
        if self._link is not None:
            await self._link.close()
            self._link = None

    async def cancel(self) -> None:
        """Withdraw the request, or stop the session: everything ends at once."""
        if self.channel is not None and self.channel.ended is None:
            await self.channel.close("The user stopped the session.")
        await self._give_up()
