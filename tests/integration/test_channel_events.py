"""SecureChannel keeps events for next_event() consumers only, and listeners can leave."""

from __future__ import annotations

import asyncio

from client.core.session import UserClient
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.session import MessageReceived, SessionEvent
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.pki import make_org


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


async def test_without_a_consumer_only_the_latest_events_are_kept(
    relay_server: RelayServer,
) -> None:
    org = make_org()
    user = UserClient(relay_server.url, org.trust, allow)
    tech = TechnicianClient(relay_server.url, org.technician())
    async with asyncio.timeout(10):
        code = await user.request_help()
        user_ch, tech_ch = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display)
        )
        seen: list[SessionEvent] = []
        user_ch.add_listener(seen.append)
        dropped: list[SessionEvent] = []
        user_ch.add_listener(dropped.append)
        user_ch.remove_listener(dropped.append)
        for i in range(200):
            tech_ch.send_nowait(m.ChatText(i, "x", 0))
        while len(seen) < 200:
            await asyncio.sleep(0.01)
        assert dropped == []
        # A late consumer gets only the latest 64; memory stays bounded.
        first = await user_ch.next_event()
        assert isinstance(first, MessageReceived)
        assert first.message == m.ChatText(136, "x", 0)
        # From then on, nothing is dropped.
        for i in range(200, 300):
            tech_ch.send_nowait(m.ChatText(i, "y", 0))
        ids = []
        while len(ids) < 163:
            event = await user_ch.next_event()
            assert isinstance(event, MessageReceived)
            ids.append(event.message.msg_id)  # type: ignore[attr-defined]
        assert ids == list(range(137, 300))
        await tech_ch.close()
        await user_ch.wait_closed()
