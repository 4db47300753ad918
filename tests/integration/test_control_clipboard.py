"""The shared clipboard through a real session: both ways, a size limit, the user's
directions and pause.

The set-up (Xvfb, paired cores) is in control_support.py.
"""

from __future__ import annotations

import asyncio

import pytest

from client.core.authority import Refusal
from client.core.session_controller import ClipboardMoved, ClipboardWrite, InboundRefused
from common.capability import Capability
from common.clipboard import ClipboardSync, ClipboardTransfer, Flow, Outcome
from common.protocol import messages as m
from relay.server import RelayServer
from tests.integration import control_support
from tests.integration.control_support import TIMEOUT, open_pair
from tests.pki import Org
from tests.xvfb import Xvfb


pytestmark = pytest.mark.x11

# The fixtures these tests share with the other test_control_* modules.
desktop = control_support.desktop
org = control_support.org


async def test_clipboard_both_ways_with_a_size_limit_and_pause(
    relay_server: RelayServer, org: Org, desktop: Xvfb
) -> None:
    async with open_pair(
        relay_server, org, desktop, ("view", "clipboard"), watch_local_input=False
    ) as pair:
        tech_board: list[str] = []

        class TechBoard:
            def set_text(self, text: str) -> None:
                tech_board.append(text)

        # The technician's side: the shared clipboard sync, with a small limit.
        tech_clip = ClipboardSync(
            TechBoard(), may_send=lambda: True, may_receive=lambda: True, max_bytes=64
        )
        tech_events: list[ClipboardTransfer] = []

        def tech_pump() -> None:
            for msg in tech_clip.messages_to_send():
                pair.tech.send_nowait(msg)
            tech_events.extend(tech_clip.events_received())

        def tech_takes(msg: m.AppMessage, kind: type[m.AppMessage]) -> bool:
            if isinstance(msg, (m.ClipboardText, m.ClipboardPolicy)):
                tech_clip.receive(msg)
                tech_events.extend(tech_clip.events_received())
            return isinstance(msg, kind)

        def user_board() -> list[str]:
            return [e.text for e in pair.session_events if isinstance(e, ClipboardWrite)]

        async def user_board_has(count: int) -> None:
            async with asyncio.timeout(TIMEOUT):
                while len(user_board()) < count:
                    await asyncio.sleep(0.01)

        tech_clip.refresh()
        tech_pump()
        policy = await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardPolicy))
        assert isinstance(policy, m.ClipboardPolicy) and policy.send and policy.receive
        # Technician -> user.
        tech_clip.local_changed("from the technician: café")
        tech_pump()
        await user_board_has(1)
        assert user_board() == ["from the technician: café"]
        # User -> technician; too large for the technician's limit is refused at the source.
        pair.session.clipboard_changed("x" * 65)
        pair.session.clipboard_changed("from the user: 5 €")
        await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardText))
        assert tech_board == ["from the user: 5 €"]
        # The user closes the direction to the technician: nothing more goes out.
        pair.session.set_clipboard_directions(to_technician=False, from_technician=True)
        policy = await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardPolicy))
        assert isinstance(policy, m.ClipboardPolicy) and not policy.send and policy.receive
        pair.session.clipboard_changed("private")
        tech_clip.local_changed("y" * 60)
        tech_pump()
        await user_board_has(2)
        assert tech_board == ["from the user: 5 €"]

        # Pause blocks the clipboard both ways, whatever the technician sends.
        pair.session.set_clipboard_directions(to_technician=True, from_technician=True)
        pair.session.set_paused(True)
        await pair.next_message(
            lambda msg: (
                tech_takes(msg, m.ClipboardPolicy)
                and isinstance(msg, m.ClipboardPolicy)
                and not msg.send
                and not msg.receive
            )
        )
        pair.session.clipboard_changed("while paused")
        pair.tech.send_nowait(m.ClipboardText("forced while paused"))
        pair.tech.send_nowait(m.ChatText(1, "marker", 0))
        async with asyncio.timeout(TIMEOUT):
            while not any(
                isinstance(e, InboundRefused) and e.message_type == "ClipboardText"
                for e in pair.session_events
            ):
                await asyncio.sleep(0.01)
        refused = [e for e in pair.session_events if isinstance(e, InboundRefused)]
        assert refused == [InboundRefused("ClipboardText", Refusal.PAUSED, Capability.CLIPBOARD)]
        assert user_board() == ["from the technician: café", "y" * 60]
        pair.session.set_paused(False)
        policy = await pair.next_message(lambda msg: tech_takes(msg, m.ClipboardPolicy))
        assert isinstance(policy, m.ClipboardPolicy) and policy.send and policy.receive
        assert tech_board == ["from the user: 5 €"]  # nothing from the pause leaks afterwards

        # Every transfer is an event for the record, on both sides (sizes, never text).
        outcomes = [
            (e.transfer.flow, e.transfer.size, e.transfer.outcome)
            for e in pair.session_events
            if isinstance(e, ClipboardMoved)
        ]
        assert outcomes == [
            (Flow.INBOUND, 26, Outcome.APPLIED),
            (Flow.OUTBOUND, 65, Outcome.TOO_LARGE),
            (Flow.OUTBOUND, 20, Outcome.SENT),
            (Flow.INBOUND, 60, Outcome.APPLIED),
        ]
        assert [(e.flow, e.size, e.outcome) for e in tech_events] == [
            (Flow.OUTBOUND, 26, Outcome.SENT),
            (Flow.INBOUND, 20, Outcome.APPLIED),
            (Flow.OUTBOUND, 60, Outcome.SENT),
        ]
