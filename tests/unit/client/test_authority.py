"""The capability authority and the consent limiter (pure)."""

from __future__ import annotations

from client.core.authority import CapabilityAuthority, Refusal
from client.core.consent_limiter import ConsentLimiter
from common.capability import Capability
from common.protocol import messages as m


V, C, CB, F = Capability.VIEW, Capability.CONTROL, Capability.CLIPBOARD, Capability.FILES


def test_effective_grants_are_granted_minus_pause() -> None:
    auth = CapabilityAuthority(("view", "clipboard"))
    assert auth.effective == (V, CB) and auth.allows(V)
    assert auth.set_paused(True)
    assert auth.effective == () and not auth.allows(V) and auth.granted == (V, CB)
    assert not auth.set_paused(True)  # no change
    auth.set_paused(False)
    assert auth.grant((C,)) and not auth.grant((C,))
    assert auth.effective == (V, C, CB)
    auth.close()
    assert auth.effective == () and not auth.grant((V,))


def test_the_inbound_gate_maps_each_type_to_what_it_needs() -> None:
    auth = CapabilityAuthority(("view",))
    assert auth.admit(m.ChatText(1, "hi", 0)).admitted
    assert auth.admit(m.CapabilityRequest(("control",))).admitted
    assert auth.admit(m.FrameAck(1, 0)).admitted
    refused = auth.admit(m.KeyEvent(0x61, True))
    assert (refused.refusal, refused.needs) == (Refusal.NOT_GRANTED, C)
    assert auth.admit(m.ClipboardText("x")).refusal is Refusal.NOT_GRANTED
    assert auth.admit(m.ClipboardPolicy(True, True, 10)).admitted  # a policy is no content
    # Types the technician never sends are never admitted.
    assert auth.admit(m.CapabilityGrant(("view",))).refusal is Refusal.NOT_EXPECTED
    assert auth.admit(m.ScreenStopped("paused")).refusal is Refusal.NOT_EXPECTED
    auth.grant((C, CB))
    auth.set_paused(True)
    assert auth.admit(m.PointerMove(1, 1)).refusal is Refusal.PAUSED
    assert auth.admit(m.ClipboardText("x")).refusal is Refusal.PAUSED
    assert auth.admit(m.FrameAck(2, 0)).refusal is Refusal.PAUSED
    assert auth.admit(m.ChatText(2, "still talking", 0)).admitted


def test_requests_merge_into_one_prompt_and_a_decline_cools_down() -> None:
    limiter = ConsentLimiter(cooldown=30.0, notify_interval=10.0)
    first = limiter.ask((C,), 0.0)
    assert (first.prompt, first.opened, first.notify) == ((C,), True, True)
    # Fifty more while it is open: one prompt, growing, and no more notifications.
    for i in range(50):
        asked = limiter.ask((C, CB), 0.1 + i * 0.01)
        assert not asked.opened
        assert not asked.notify
    assert limiter.pending == (C, CB)
    assert limiter.answer((CB,), 1.0) == (C,)
    again = limiter.ask((C,), 5.0)
    assert again.prompt == () and again.refused == (C,) and again.retry_after == 26
    later = limiter.ask((C,), 31.5)
    assert later.prompt == (C,) and later.opened and later.notify
