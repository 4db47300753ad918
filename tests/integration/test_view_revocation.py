"""Pausing or revoking view is immediate, through a real relay and real secure sessions.

A sharer that keeps the screen channel full (well past the receiver's flow
control window, so most of it is still queued on the user's side) runs
under the user's session controller. When the user pauses, or takes back
view, the technician gets ScreenStopped and then not one more byte of
screen data: the queued fragments are discarded, and ScreenStopped travels
on the control channel, ahead of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from client.core.features import ScreenPort
from client.core.session import UserClient
from client.core.session_controller import UserSessionController
from common.capability import Capability
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.session import MessageReceived, SessionEvent
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.pki import make_org


TIMEOUT = 15.0
CHUNK = b"\x00" * (400 * 1024)  # one CursorShape: the biggest screen message that is easy to make


class FloodingSharer:
    """Sends screen messages as fast as the port lets it, until halted."""

    def __init__(self, port: ScreenPort) -> None:
        self.port = port
        self.sent = 0
        self._task: asyncio.Task[None] | None = None
        self._running = False

    async def start(self) -> None:
        self._running = True
        self._task = asyncio.get_running_loop().create_task(self._flood())

    async def _flood(self) -> None:
        serial = 0
        while self._running:
            serial += 1
            await self.port.send(m.CursorShape(serial, 4, 4, 0, 0, CHUNK))
            self.sent += 1

    async def stop(self, reason: str = "") -> None:
        self._running = False
        if self._task is not None:
            self._task.cancel()

    def receive(self, msg: object) -> None:
        pass

    def session_ended(self) -> None:
        self._running = False

    def request_keyframe(self) -> None:
        pass


Pair = tuple[UserSessionController, SecureChannel, list[tuple[str, int]], list[FloodingSharer]]


@pytest.fixture
async def pair(relay_server: RelayServer) -> AsyncIterator[Pair]:
    org = make_org()

    async def allow(request: ConsentRequest) -> tuple[str, ...]:
        return ("view",)

    user = UserClient(relay_server.url, org.trust, allow)
    tech = TechnicianClient(relay_server.url, org.technician("Jane Doe"))
    async with asyncio.timeout(TIMEOUT):
        code = await user.request_help()
        user_ch, tech_ch = await asyncio.gather(
            user.wait_for_technician(), tech.connect(code.display, requested=("view",))
        )
    seen: list[tuple[str, int]] = []  # (type, screen bytes so far) in arrival order
    received = [0]

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, MessageReceived):
            if event.channel is Channel.SCREEN:
                received[0] += 1
            msg = event.message
            name = f"ScreenStopped:{msg.reason}" if isinstance(msg, m.ScreenStopped) else None
            seen.append((name or type(msg).__name__, received[0]))

    tech_ch.add_listener(on_event)
    sharers: list[FloodingSharer] = []

    def make_sharer(port: ScreenPort) -> FloodingSharer:
        sharer = FloodingSharer(port)
        sharers.append(sharer)
        return sharer

    controller = UserSessionController(user_ch, lambda _e: None, sharer_factory=make_sharer)
    controller.start()
    yield controller, user_ch, seen, sharers
    await controller.stop()
    await tech_ch.close()


async def wait_flooding(user_ch: SecureChannel, seen: list[tuple[str, int]]) -> None:
    """Until screen data arrives and much more is queued behind the window."""
    async with asyncio.timeout(TIMEOUT):
        while not (
            any(name == "CursorShape" for name, _ in seen)
            and user_ch.session.queued_bytes(Channel.SCREEN) > len(CHUNK)
        ):
            await asyncio.sleep(0.01)


async def settle() -> None:
    await asyncio.sleep(1.0)  # anything still on its way would arrive by now on loopback


@pytest.mark.parametrize("how", ["pause", "revoke"])
async def test_no_screen_data_reaches_the_technician_after_view_ends(pair: Pair, how: str) -> None:
    controller, user_ch, seen, sharers = pair
    await wait_flooding(user_ch, seen)
    queued = user_ch.session.queued_bytes(Channel.SCREEN)
    if how == "pause":
        controller.set_paused(True)
    else:
        controller.set_capability(Capability.VIEW, False)
    assert user_ch.session.queued_bytes(Channel.SCREEN) == 0 < queued
    async with asyncio.timeout(TIMEOUT):
        while not any(name.startswith("ScreenStopped") for name, _ in seen):
            await asyncio.sleep(0.01)
    await settle()
    stopped_at = next(i for i, (name, _) in enumerate(seen) if name.startswith("ScreenStopped"))
    screen_before = seen[stopped_at][1]
    after = [entry for entry in seen[stopped_at:] if entry[1] != screen_before]
    assert after == [], f"screen data after ScreenStopped: {after[:3]}"
    expected = m.ScreenStopReason.PAUSED if how == "pause" else m.ScreenStopReason.VIEW_REVOKED
    assert seen[stopped_at][0] == f"ScreenStopped:{expected.value}"
    assert sharers[0].sent > 2  # it really kept the channel full
