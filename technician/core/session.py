"""TechnicianClient: connect to a user by code and open the secure channel."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable

from common.crypto.code import parse_code
from common.crypto.identity import TechnicianCredential
from common.net.channel import SecureChannel
from common.net.pairing import PairingTimeouts, pair_technician
from common.net.relay_link import RelayLink
from common.session import SessionLimits


__all__ = ["TechnicianClient"]


class TechnicianClient:
    """The technician side's session core."""

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
    ) -> None:
        self._url = relay_url
        self._credential = credential
        self._clock = clock
        self._entropy = entropy
        self._timeouts = timeouts
        self._limits = limits
        self._ssl = ssl_context

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
            ConnectionLost: the relay refused the claim (unknown, expired, taken...).
            PairingError: wrong code, tampering, or the user declined.
        """
        nameplate, password = parse_code(code_text)
        link = await RelayLink.open(self._url, ssl_context=self._ssl)
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
        )
