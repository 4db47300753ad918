"""The pure parts of the global stop hotkey: grab planning and press counting."""

from __future__ import annotations

import pytest

from client.core.control.hotkey import (
    DEFAULT_MODIFIERS,
    HotkeyUnavailable,
    PressCounter,
    modifier_bits,
    plan_grabs,
)
from common.protocol.messages import ALT_MASK, CONTROL_MASK, LOCK_MASK, SUPER_MASK


SHIFT, LOCK, CONTROL, MOD1, MOD2, MOD3, MOD4, MOD5 = (1 << i for i in range(8))

# A pc105 "us" map as Xvfb has it: Alt on Mod1, Num Lock on Mod2, Super on Mod4.
KEYCODES = {0xFFE9: [64], 0xFFE7: [205], 0xFF7F: [77], 0xFFEB: [133], 0xFE03: [92], 0xFF57: [115]}
MODMAP = [[50, 62], [66], [37, 105], [64, 205], [77], [], [133], [92]]


def keycodes_of(keysym: int) -> list[int]:
    return KEYCODES.get(keysym, [])


def test_modifier_bits_come_from_the_modifier_map() -> None:
    bits = modifier_bits(MODMAP, keycodes_of)
    assert bits == {"alt": MOD1, "super": MOD4, "altgr": MOD5, "num_lock": MOD2, "scroll_lock": 0}


def test_every_lock_combination_is_grabbed() -> None:
    bits = modifier_bits(MODMAP, keycodes_of)
    plan = plan_grabs([115], DEFAULT_MODIFIERS, bits)
    base = SHIFT | CONTROL | MOD1
    assert sorted(plan) == [(115, base | extra) for extra in (0, LOCK, MOD2, LOCK | MOD2)]


def test_scroll_lock_on_a_modifier_doubles_the_grabs() -> None:
    modmap = [*MODMAP[:5], [78], *MODMAP[6:]]  # Scroll_Lock on Mod3
    bits = modifier_bits(modmap, lambda k: [78] if k == 0xFF14 else keycodes_of(k))
    plan = plan_grabs([115], DEFAULT_MODIFIERS, bits)
    assert len(plan) == 8
    assert (115, SHIFT | CONTROL | MOD1 | LOCK | MOD2 | MOD3) in plan


def test_alt_on_another_modifier_is_followed() -> None:
    modmap = [MODMAP[0], MODMAP[1], MODMAP[2], [], MODMAP[4], [64], MODMAP[6], MODMAP[7]]
    plan = plan_grabs([115], CONTROL_MASK | ALT_MASK, modifier_bits(modmap, keycodes_of))
    assert (115, CONTROL | MOD3) in plan


def test_a_lock_that_is_required_is_not_varied() -> None:
    # Super and Num Lock on the same bit: the bit is required, never dropped.
    modmap = [*MODMAP[:4], [77, 133], [], [], MODMAP[7]]
    plan = plan_grabs([115], CONTROL_MASK | SUPER_MASK, modifier_bits(modmap, keycodes_of))
    assert sorted(plan) == [(115, CONTROL | MOD2), (115, CONTROL | MOD2 | LOCK)]


def test_unusable_hotkeys_are_refused() -> None:
    bits = modifier_bits(MODMAP, keycodes_of)
    with pytest.raises(HotkeyUnavailable, match="no key"):
        plan_grabs([], DEFAULT_MODIFIERS, bits)
    with pytest.raises(HotkeyUnavailable, match="Caps Lock"):
        plan_grabs([115], CONTROL_MASK | LOCK_MASK, bits)


def test_press_counter_collapses_auto_repeat() -> None:
    counter = PressCounter()
    assert counter.take() == 0
    counter.press(115, 1000)
    # Plain auto-repeat: release + press with one timestamp.
    for t in range(1500, 2000, 40):
        counter.release(115, t)
        counter.press(115, t)
    counter.release(115, 2100)
    assert counter.take() == 1
    assert counter.take() == 0


def test_press_counter_collapses_detectable_auto_repeat() -> None:
    counter = PressCounter()
    for t in (10, 500, 540, 580):
        counter.press(115, t)
    counter.release(115, 600)
    counter.press(115, 900)  # a new press
    counter.release(115, 950)
    counter.press(115, 1000)
    assert counter.take() == 3


def test_press_counter_counts_separate_presses() -> None:
    counter = PressCounter()
    counter.press(115, 10)
    counter.release(115, 50)
    counter.press(115, 60)
    counter.release(115, 90)
    counter.press(115, 90)  # repeat pair: not counted
    assert counter.take() == 2
