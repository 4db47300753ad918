"""Nine-digit codes after three failed pairings in a row, through the real relay (issue 14)."""

from __future__ import annotations

import asyncio

import pytest

from client.core.session import UserClient
from common.errors import PairingError
from common.net.pairing import ConsentRequest, PairingTimeouts
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.pki import make_org


TIMEOUT = 20.0
FAST = PairingTimeouts(hello=3.0, consent=3.0)


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


def mistyped(display: str) -> str:
    last = display[-1]
    return display[:-1] + ("0" if last != "0" else "1")


async def test_three_failed_pairings_switch_to_nine_digit_codes(
    relay_server: RelayServer,
) -> None:
    org = make_org()
    user = UserClient(relay_server.url, org.trust, allow, timeouts=FAST)
    tech = TechnicianClient(relay_server.url, org.technician(), timeouts=FAST)
    async with asyncio.timeout(TIMEOUT):
        for _ in range(3):
            assert user.code_warning is None
            code = await user.request_help()
            assert len(code.secret) == 6
            user_task = asyncio.create_task(user.wait_for_technician())
            with pytest.raises(PairingError):
                await tech.connect(mistyped(code.display))
            with pytest.raises(PairingError, match="did not match"):
                await user_task
        warning = user.code_warning
        assert warning is not None and "intercept" in warning.message
        code = await user.request_help()
        assert len(code.secret) == 9 and code.display.count("-") == 3
        user_task = asyncio.create_task(user.wait_for_technician())
        tech_channel = await tech.connect(code.display)
        user_channel = await user_task
        assert user_channel.sas == tech_channel.sas
        await tech_channel.close("done")
        await user_channel.wait_closed()
