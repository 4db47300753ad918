"""The pure parts of injection: keymap planning, wheel, keysyms, the ledger, raw events."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from client.core.control.activity import (
    RAW_BUTTON_PRESS,
    RAW_KEY_PRESS,
    RAW_MOTION,
    InjectionLedger,
    parse_raw_event,
)
from client.core.control.injector import (
    BindKey,
    FakeKey,
    KeyboardModel,
    Keymap,
    WheelAccumulator,
    is_character_keysym,
    keysym_for_char,
)


SHIFT_L, RETURN, PRINT, SYS_REQ, TAB, LEFT_TAB = 0xFFE1, 0xFF0D, 0xFF61, 0xFF15, 0xFF09, 0xFE20

# A small US-like keymap: keycode 8 + row index.
ROWS: list[tuple[int, ...]] = [
    (0, 0),  # 8: spare
    (ord("a"), ord("A")),  # 9
    (ord("1"), ord("!")),  # 10
    (SHIFT_L, 0),  # 11
    (RETURN, 0),  # 12
    (PRINT, SYS_REQ),  # 13
    (ord("/"), ord("?")),  # 14
    (0, 0),  # 15: spare
    (0, 0),  # 16: spare
    (TAB, LEFT_TAB),  # 17
]
A, ONE, SHIFT, ENTER, PRT, SLASH, KEY_TAB = 9, 10, 11, 12, 13, 14, 17


def model(guard: float = 0.25) -> KeyboardModel:
    return KeyboardModel(Keymap(8, ROWS), rebind_guard=guard)


def test_keysym_for_char() -> None:
    assert keysym_for_char("a") == 0x61
    assert keysym_for_char("é") == 0xE9
    assert keysym_for_char("ß") == 0xDF
    assert keysym_for_char("€") == 0x010020AC
    assert keysym_for_char("\n") == RETURN
    assert keysym_for_char("😀") == 0x0101F600
    with pytest.raises(ValueError):
        keysym_for_char("ab")
    assert is_character_keysym(0x61) and is_character_keysym(0x010020AC)
    assert not is_character_keysym(RETURN) and not is_character_keysym(SHIFT_L)


def test_keymap_lookup_and_spares() -> None:
    keymap = Keymap(8, ROWS)
    assert keymap.lookup(ord("A")) == [(A, 1)]
    assert keymap.lookup(0xE9) == []
    assert keymap.empty_keycodes() == [16, 15, 8]
    keymap.set_row(16, (0xE9, 0xE9))
    assert keymap.lookup(0xE9) == [(16, 0), (16, 1)]
    assert keymap.row(16)[:2] == (0xE9, 0xE9)


def test_plain_and_shifted_characters() -> None:
    kb = model()
    assert kb.press(ord("a"), 0) == [FakeKey(A, True)]
    assert kb.release(ord("a")) == [FakeKey(A, False)]
    # "A" without Shift held: Shift goes down and up around the key.
    assert kb.press(ord("A"), 0) == [FakeKey(SHIFT, True), FakeKey(A, True), FakeKey(SHIFT, False)]
    assert kb.release(ord("A")) == [FakeKey(A, False)]
    # With the technician's Shift held, "!" is pressed as it is.
    kb.press(SHIFT_L, 0)
    assert kb.press(ord("!"), 0) == [FakeKey(ONE, True)]
    # "/" is on the first level: Shift is lifted around it, then restored.
    assert kb.press(ord("/"), 0) == [
        FakeKey(SHIFT, False),
        FakeKey(SLASH, True),
        FakeKey(SHIFT, True),
    ]


def test_function_keys_keep_the_technicians_modifiers() -> None:
    kb = model()
    kb.press(SHIFT_L, 0)
    assert kb.press(PRINT, 0) == [FakeKey(PRT, True)]  # not turned into Sys_Req or unshifted
    assert kb.press(RETURN, 0) == [FakeKey(ENTER, True)]
    assert kb.press(LEFT_TAB, 0) == [FakeKey(KEY_TAB, True)]


def test_release_goes_to_the_key_that_was_pressed() -> None:
    kb = model()
    kb.press(ord("a"), 0)
    assert kb.held == {ord("a"): A}
    assert kb.press(ord("a"), 0) == [FakeKey(A, True)]  # repeat
    assert kb.release(ord("a")) == [FakeKey(A, False)]
    assert kb.release(ord("a")) == []


def test_unmapped_characters_bind_spare_keycodes_and_restore() -> None:
    kb = model(guard=0.25)
    assert kb.type_char("é", 0.0) == [BindKey(16, 0xE9), FakeKey(16, True), FakeKey(16, False)]
    assert kb.type_char("ß", 0.0) == [BindKey(15, 0xDF), FakeKey(15, True), FakeKey(15, False)]
    assert kb.type_char("é", 0.1) == [FakeKey(16, True), FakeKey(16, False)]  # still bound
    assert kb.type_char("€", 0.1) == [BindKey(8, 0x010020AC), FakeKey(8, True), FakeKey(8, False)]
    # All three spares are taken and were used just now: the fourth must wait.
    assert kb.type_char("ñ", 0.2) is None
    assert kb.retry_at == pytest.approx(0.25)  # "ß" was used least recently
    assert kb.type_char("ñ", 0.25) == [BindKey(15, 0xF1), FakeKey(15, True), FakeKey(15, False)]
    assert kb.bound == {16: 0xE9, 15: 0xF1, 8: 0x010020AC}
    assert kb.restore() == [BindKey(8, 0), BindKey(15, 0), BindKey(16, 0)]
    assert kb.bound == {}
    assert kb.keymap.empty_keycodes() == [16, 15, 8]


def test_a_held_spare_is_never_rebound() -> None:
    kb = model(guard=0.0)
    for keysym in (0xE9, 0xDF, 0xF1):
        assert kb.press(keysym, 0.0) is not None
    assert kb.press(0xFC, 1.0) is None  # every spare is held down
    kb.release(0xDF)
    assert kb.press(0xFC, 1.0) == [BindKey(15, 0xFC), FakeKey(15, True)]
    assert kb.restore() == []  # all held: nothing to restore yet


def test_typing_a_shifted_character_releases_inside_the_shift() -> None:
    kb = model()
    assert kb.type_char("A", 0) == [
        FakeKey(SHIFT, True),
        FakeKey(A, True),
        FakeKey(A, False),
        FakeKey(SHIFT, False),
    ]
    kb.press(ord("a"), 0)
    assert kb.type_char("a", 0) == [FakeKey(A, False), FakeKey(A, True), FakeKey(A, False)]
    assert kb.held == {}


def test_reload_keeps_our_bindings_that_survived() -> None:
    kb = model()
    kb.type_char("é", 0)
    rows = list(ROWS)
    rows[16 - 8] = (0xE9, 0xE9)
    kb.reload(Keymap(8, rows))
    assert kb.bound == {16: 0xE9}
    kb.reload(Keymap(8, ROWS))  # someone reset the layout
    assert kb.bound == {}


@given(st.text(min_size=1, max_size=40))
def test_typing_any_text_leaves_nothing_held(text: str) -> None:
    kb = model(guard=0.0)
    now = 0.0
    down: set[int] = set()
    for char in text:
        ops = kb.type_char(char, now)
        if ops is None:  # only when a spare is cooling down
            now = kb.retry_at
            ops = kb.type_char(char, now)
        assert ops is not None
        for op in ops:
            if isinstance(op, FakeKey):
                if op.pressed:
                    down.add(op.keycode)
                else:
                    down.discard(op.keycode)
    assert down == set()
    assert kb.held == {}


def test_wheel_accumulates_partial_notches() -> None:
    wheel = WheelAccumulator()
    assert wheel.add(0, 60) == (0, 0)
    assert wheel.add(0, 60) == (0, 1)
    assert wheel.add(0, 360) == (0, 3)
    assert wheel.add(-130, 0) == (-1, 0)
    assert wheel.add(0, 100) == (0, 0)
    assert wheel.add(0, -100) == (0, 0)  # direction changed: the remainder is dropped
    assert wheel.add(0, -20) == (0, -1)


@given(st.lists(st.integers(-1000, 1000), max_size=50))
def test_wheel_never_invents_clicks(deltas: list[int]) -> None:
    wheel = WheelAccumulator()
    total = sum(abs(wheel.add(0, d)[1]) for d in deltas)
    assert total <= sum(abs(d) for d in deltas) // 120


def test_ledger_claims_each_expected_event_once() -> None:
    ledger = InjectionLedger(ttl=1.0)
    ledger.expect(("motion", 10, 20), 0.0)
    ledger.expect(("key", 38, 1), 0.0)
    assert not ledger.claim(("key", 38, 0), 0.1)  # a release we did not send: the user's
    assert ledger.claim(("key", 38, 1), 0.1)
    assert not ledger.claim(("key", 38, 1), 0.1)
    assert ledger.claim(("motion", 10, 20), 0.2)
    ledger.expect(("button", 1, 1), 1.0)
    assert not ledger.claim(("button", 1, 1), 2.5)  # expired: taken for the user's
    assert len(ledger) == 0
    with pytest.raises(ValueError):
        InjectionLedger(ttl=0)


def _raw(evtype: int, deviceid: int, sourceid: int, detail: int, axes: dict[int, float]) -> bytes:
    mask = 0
    for axis in axes:
        mask |= 1 << axis
    data = struct.pack("=HIIHHI4x", deviceid, 1234, detail, sourceid, 1, 0)
    data += struct.pack("=I", mask)
    for value in (*axes.values(), *axes.values()):  # values, then raw values
        integral = int(value // 1)
        data += struct.pack("=iI", integral, int((value - integral) * 2**32))
    return data


def test_parse_raw_events() -> None:
    raw = parse_raw_event(RAW_MOTION, _raw(RAW_MOTION, 4, 4, 0, {0: 100.0, 1: 200.5}))
    assert raw is not None
    assert (raw.deviceid, raw.sourceid, raw.valuators) == (4, 4, {0: 100.0, 1: 200.5})
    key = parse_raw_event(RAW_KEY_PRESS, _raw(RAW_KEY_PRESS, 5, 5, 38, {}))
    assert key is not None and key.detail == 38
    assert parse_raw_event(RAW_BUTTON_PRESS, b"\x00" * 5) is None
    assert parse_raw_event(99, _raw(RAW_MOTION, 4, 4, 0, {})) is None
    truncated = _raw(RAW_MOTION, 4, 4, 0, {0: 1.0})[:-8]
    assert parse_raw_event(RAW_MOTION, truncated[:-8]) is None


@given(st.integers(13, 17), st.binary(max_size=64))
def test_parse_raw_event_never_raises(evtype: int, data: bytes) -> None:
    parse_raw_event(evtype, data)


def test_the_same_key_twice_is_spaced_so_it_does_not_look_like_auto_repeat() -> None:
    kb = model()
    assert kb.type_char("a", 1.0) is not None
    assert kb.type_char("A", 1.001) is None  # same key, same millisecond
    assert kb.retry_at == pytest.approx(1.004)
    assert kb.ready_at(ord("a")) == pytest.approx(1.004)
    assert kb.type_char("A", 1.004) is not None
    assert kb.ready_at(ord("!")) == 0.0  # another key: no wait
    kb.press(ord("1"), 2.0)
    assert kb.ready_at(ord("1")) == 0.0  # held: a press again is a repeat anyway
    kb.release(ord("1"), 2.5)
    assert kb.ready_at(ord("!")) == pytest.approx(2.504)
