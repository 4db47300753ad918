"""ControlGate and HotkeyDetector: consent, refusal, user activity, release of held input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from client.core.authority import CapabilityAuthority
from client.core.control.gate import (
    DEFAULT_STOP_HOTKEY,
    ControlGate,
    GateConfig,
    GateEvent,
    HotkeyDetector,
    InputMessage,
)
from common.capability import Capability, parse_capabilities
from common.errors import InvalidState
from common.protocol import messages as m
from common.protocol.messages import ControlState, ControlStatus


SHIFT_L, CONTROL_L, ALT_L, END = 0xFFE1, 0xFFE3, 0xFFE9, 0xFF57
CONFIG = GateConfig(user_pause=1.0, notice_interval=1.0, max_held=4)


class GateUnderTest(ControlGate):
    """The gate with its own authority, changed the way the session controller does."""

    def __init__(
        self, config: GateConfig, *, granted: tuple[str, ...] = (), now: float = 0.0
    ) -> None:
        self.authority = CapabilityAuthority(parse_capabilities(granted))
        super().__init__(config, grants=self.authority, now=now)

    def set_granted(self, capabilities: tuple[str, ...], now: float) -> None:
        self.authority.revoke(tuple(Capability))
        self.authority.grant(parse_capabilities(capabilities))
        self.sync(now)

    def set_paused(self, paused: bool, now: float) -> None:
        self.authority.set_paused(paused)
        self.sync(now)

    def stop(self, now: float) -> None:
        self.authority.revoke((Capability.CONTROL,))
        super().stop(now)


def active_gate(now: float = 0.0) -> ControlGate:
    gate = GateUnderTest(CONFIG, granted=("view", "control"), now=now)
    assert gate.state is ControlState.ACTIVE
    return gate


def test_without_control_input_is_refused_and_the_technician_is_told_why() -> None:
    gate = GateUnderTest(CONFIG, granted=("view",))
    assert gate.state is ControlState.OFF
    assert not gate.receive_input(m.PointerMove(10, 10), 5.0)
    assert not gate.receive_input(m.KeyEvent(ord("a"), True), 5.1)
    assert gate.actions_to_inject() == []
    # The first refusal is reported at once, later ones are batched.
    assert gate.messages_to_send() == [ControlStatus(ControlState.OFF, 1)]
    assert gate.next_deadline() == pytest.approx(6.0)
    gate.tick(6.0)
    assert gate.messages_to_send() == [ControlStatus(ControlState.OFF, 1)]
    assert gate.next_deadline() is None


def test_granting_control_lets_input_through_in_order() -> None:
    gate = GateUnderTest(CONFIG, granted=("view",))
    gate.set_granted(("view", "control"), 1.0)
    assert gate.state is ControlState.ACTIVE
    assert gate.messages_to_send() == [ControlStatus(ControlState.ACTIVE, 0)]
    assert gate.events_received() == [GateEvent(ControlState.ACTIVE, ControlState.OFF, "granted")]
    msgs: list[InputMessage] = [
        m.PointerMove(1, 2),
        m.PointerButton(1, True),
        m.PointerMove(3, 4),
        m.PointerButton(1, False),
        m.Wheel(0, 120),
        m.TextInput("é"),
    ]
    for msg in msgs:
        assert gate.receive_input(msg, 1.5)
    assert gate.actions_to_inject() == msgs


def test_user_activity_pauses_releases_and_resumes() -> None:
    gate = active_gate()
    gate.receive_input(m.KeyEvent(SHIFT_L, True, 0), 0.1)
    gate.receive_input(m.PointerButton(1, True), 0.2)
    gate.actions_to_inject()
    gate.receive_local_input(0.5)
    assert gate.state is ControlState.USER_ACTIVE
    # The user wins: everything the technician held is released, newest first.
    assert gate.actions_to_inject() == [m.KeyEvent(SHIFT_L, False, 0), m.PointerButton(1, False)]
    assert gate.messages_to_send() == [ControlStatus(ControlState.USER_ACTIVE, 0)]
    assert gate.events_received()[0].released == 2
    assert not gate.receive_input(m.PointerMove(5, 5), 0.8)
    # More local input extends the pause; the refusal is reported a second after the last notice.
    gate.receive_local_input(1.2)
    assert gate.next_deadline() == pytest.approx(1.5)
    gate.tick(1.5)
    assert gate.messages_to_send() == [ControlStatus(ControlState.USER_ACTIVE, 1)]
    assert gate.next_deadline() == pytest.approx(2.2)
    gate.tick(2.0)
    assert gate.state is ControlState.USER_ACTIVE
    gate.tick(2.2)
    assert gate.state is ControlState.ACTIVE
    status = gate.messages_to_send()
    assert status[-1] == ControlStatus(ControlState.ACTIVE, 0)
    assert gate.receive_input(m.PointerMove(6, 6), 2.3)


def test_input_arriving_after_the_pause_resumes_without_a_tick() -> None:
    gate = active_gate()
    gate.receive_local_input(0.0)
    assert gate.receive_input(m.PointerMove(1, 1), 1.0)
    assert gate.state is ControlState.ACTIVE


def test_a_dialog_pauses_control_until_it_closes() -> None:
    gate = active_gate()
    gate.receive_input(m.KeyEvent(CONTROL_L, True, 0), 0.0)
    gate.set_dialog_open(True, 0.1)
    assert gate.state is ControlState.PAUSED
    assert gate.actions_to_inject()[-1] == m.KeyEvent(CONTROL_L, False, 0)
    assert not gate.receive_input(m.PointerButton(1, True), 0.2)
    gate.set_dialog_open(False, 0.3)
    assert gate.state is ControlState.ACTIVE


def test_stop_revokes_until_a_new_grant() -> None:
    gate = active_gate()
    gate.receive_input(m.PointerButton(3, True), 0.0)
    gate.stop(0.5)
    assert gate.state is ControlState.STOPPED
    assert gate.actions_to_inject()[-1] == m.PointerButton(3, False)
    assert not gate.receive_input(m.PointerMove(1, 1), 0.6)
    gate.set_granted(("control",), 1.0)
    assert gate.state is ControlState.ACTIVE


def test_revoking_control_releases_held_input() -> None:
    gate = active_gate()
    gate.receive_input(m.KeyEvent(ord("x"), True), 0.0)
    gate.actions_to_inject()
    gate.set_granted(("view",), 0.1)
    assert gate.state is ControlState.OFF
    assert gate.actions_to_inject() == [m.KeyEvent(ord("x"), False, 0)]


def test_close_releases_everything_for_good() -> None:
    gate = active_gate()
    gate.receive_input(m.KeyEvent(SHIFT_L, True), 0.0)
    gate.receive_input(m.KeyEvent(ord("A"), True, m.SHIFT_MASK), 0.0)
    gate.receive_input(m.PointerButton(1, True), 0.0)
    gate.actions_to_inject()
    gate.close(1.0)
    assert gate.state is ControlState.ENDED
    assert gate.actions_to_inject() == [
        m.KeyEvent(ord("A"), False, 0),
        m.KeyEvent(SHIFT_L, False, 0),
        m.PointerButton(1, False),
    ]
    assert gate.held_keys == () and gate.held_buttons == ()
    with pytest.raises(InvalidState):
        gate.set_granted(("control",), 2.0)
    gate.close(2.0)  # idempotent
    gate.receive_local_input(2.0)  # ignored
    assert gate.state is ControlState.ENDED


def test_releases_of_what_is_not_held_are_dropped_silently() -> None:
    gate = GateUnderTest(CONFIG)
    assert gate.receive_input(m.KeyEvent(ord("a"), False), 0.0)
    assert gate.receive_input(m.PointerButton(1, False), 0.0)
    assert gate.receive_input(m.ReleaseAll(), 0.0)
    assert gate.actions_to_inject() == []
    assert gate.messages_to_send() == []


def test_stale_modifier_is_released_before_the_next_key() -> None:
    gate = active_gate()
    gate.receive_input(m.KeyEvent(CONTROL_L, True, 0), 0.0)
    gate.receive_input(m.KeyEvent(SHIFT_L, True, m.CONTROL_MASK), 0.0)
    gate.actions_to_inject()
    # The technician no longer holds Control (its release was lost): release it first.
    gate.receive_input(m.KeyEvent(ord("B"), True, m.SHIFT_MASK), 0.1)
    assert gate.actions_to_inject() == [
        m.KeyEvent(CONTROL_L, False, 0),
        m.KeyEvent(ord("B"), True, m.SHIFT_MASK),
    ]
    assert gate.held_keys == (SHIFT_L, ord("B"))


def test_held_input_is_bounded() -> None:
    gate = active_gate()
    for keysym in range(0x61, 0x65):
        assert gate.receive_input(m.KeyEvent(keysym, True), 0.0)
    assert not gate.receive_input(m.KeyEvent(0x65, True), 0.0)
    assert not gate.receive_input(m.PointerButton(1, True), 0.0)
    assert gate.receive_input(m.KeyEvent(0x61, True), 0.0)  # a repeat of a held key is fine
    assert gate.messages_to_send() == [ControlStatus(ControlState.ACTIVE, 1)]


def test_release_all_from_the_technician() -> None:
    gate = active_gate()
    gate.receive_input(m.PointerButton(2, True), 0.0)
    gate.receive_input(m.KeyEvent(ALT_L, True), 0.0)
    gate.actions_to_inject()
    gate.receive_input(m.ReleaseAll(), 0.1)
    assert gate.actions_to_inject() == [m.KeyEvent(ALT_L, False, 0), m.PointerButton(2, False)]
    assert gate.state is ControlState.ACTIVE


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        GateConfig(max_held=0)


def test_hotkey_needs_exactly_its_modifiers() -> None:
    detector = HotkeyDetector(DEFAULT_STOP_HOTKEY)
    assert not detector.feed(END, True)
    for keysym in (CONTROL_L, ALT_L):
        assert not detector.feed(keysym, True)
    assert not detector.feed(END, True)  # Shift missing
    assert not detector.feed(SHIFT_L, True)
    assert not detector.feed(END, False)
    assert detector.feed(END, True)
    detector.feed(0xFFEB, True)  # Super too: not the hotkey
    assert not detector.feed(END, True)


# --- properties ---

INPUTS = st.one_of(
    st.builds(m.PointerMove, st.integers(0, 3000), st.integers(0, 2000)),
    st.builds(m.PointerButton, st.sampled_from([1, 2, 3, 8]), st.booleans()),
    st.builds(
        m.KeyEvent,
        st.sampled_from([SHIFT_L, CONTROL_L, ALT_L, 0x61, 0x62, 0xFF0D]),
        st.booleans(),
        st.sampled_from([0, m.SHIFT_MASK, m.CONTROL_MASK | m.ALT_MASK]),
    ),
    st.builds(m.Wheel, st.integers(-500, 500), st.integers(-500, 500)),
    st.just(m.ReleaseAll()),
)
OPERATIONS = st.one_of(
    st.tuples(st.just("input"), INPUTS),
    st.tuples(st.just("local"), st.none()),
    st.tuples(st.just("grant"), st.sampled_from([("control",), ("view",), ()])),
    st.tuples(st.just("dialog"), st.booleans()),
    st.tuples(st.just("stop"), st.none()),
    st.tuples(st.just("tick"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(OPERATIONS, st.floats(0, 2, allow_nan=False)), max_size=60),
    st.booleans(),
)
def test_the_gate_never_leaves_anything_held_and_never_injects_without_consent(
    steps: list[tuple[tuple[str, object], float]], granted: bool
) -> None:
    gate = GateUnderTest(CONFIG, granted=("control",) if granted else ())
    now = 0.0
    down_keys: set[int] = set()
    down_buttons: set[int] = set()

    def check_actions(state_before: ControlState) -> None:
        for action in gate.actions_to_inject():
            # Presses and moves only ever happen while control is active.
            is_release = isinstance(action, (m.KeyEvent, m.PointerButton)) and not action.pressed
            if not is_release and not isinstance(action, m.ReleaseAll):
                assert state_before is ControlState.ACTIVE, action
            if isinstance(action, m.KeyEvent):
                if action.pressed:
                    down_keys.add(action.keysym)
                else:
                    assert action.keysym in down_keys, "release of a key never pressed"
                    down_keys.discard(action.keysym)
            elif isinstance(action, m.PointerButton):
                if action.pressed:
                    assert action.button not in down_buttons
                    down_buttons.add(action.button)
                else:
                    assert action.button in down_buttons
                    down_buttons.discard(action.button)
        assert set(gate.held_keys) == down_keys
        assert set(gate.held_buttons) == down_buttons
        assert len(down_keys) + len(down_buttons) <= CONFIG.max_held

    for (op, arg), dt in steps:
        now += dt
        before = gate.state
        if op == "input":
            assert isinstance(arg, m.AppMessage)
            gate.tick(now)
            before = gate.state
            gate.receive_input(arg, now)  # type: ignore[arg-type]
        elif op == "local":
            gate.receive_local_input(now)
        elif op == "grant":
            gate.set_granted(arg, now)  # type: ignore[arg-type]
        elif op == "dialog":
            gate.set_dialog_open(bool(arg), now)
        elif op == "stop":
            gate.stop(now)
        else:
            gate.tick(now)
        check_actions(before)
        if gate.state is not ControlState.ACTIVE:
            assert not down_keys and not down_buttons
        for status in gate.messages_to_send():
            assert isinstance(status, ControlStatus)
            assert status.refused >= 0
    gate.close(now + 1)
    check_actions(ControlState.ENDED)
    assert not down_keys and not down_buttons


def test_the_users_pause_and_a_dialog_overlap() -> None:
    gate = active_gate()
    gate.set_paused(True, 1.0)
    gate.set_dialog_open(True, 1.1)
    assert gate.state is ControlState.PAUSED
    gate.set_paused(False, 1.2)
    assert gate.state is ControlState.PAUSED  # the dialog is still open
    gate.set_dialog_open(False, 1.3)
    assert gate.state is ControlState.ACTIVE
    assert [e.cause for e in gate.events_received()] == ["paused", "dialog_closed"]
    gate.set_paused(False, 1.4)  # no change
    assert gate.events_received() == []


def test_a_dropped_link_releases_everything_until_it_is_back() -> None:
    gate = active_gate()
    assert gate.receive_input(m.KeyEvent(SHIFT_L, True), 0.5)
    gate.actions_to_inject()
    gate.set_link_down(True, 1.0)
    assert gate.state is ControlState.PAUSED
    assert gate.actions_to_inject() == [m.KeyEvent(SHIFT_L, False, 0)]
    assert not gate.receive_input(m.KeyEvent(ord("a"), True), 1.1)
    gate.set_link_down(False, 2.0)
    assert gate.state is ControlState.ACTIVE
    assert [e.cause for e in gate.events_received()][-2:] == ["link_lost", "link_restored"]


def test_input_dropped_before_the_gate_is_still_reported() -> None:
    gate = GateUnderTest(CONFIG, granted=("view",))
    gate.messages_to_send()
    gate.refuse(5.0)
    gate.refuse(5.1)
    assert gate.messages_to_send() == [ControlStatus(ControlState.OFF, 1)]
    gate.tick(6.0)
    assert gate.messages_to_send() == [ControlStatus(ControlState.OFF, 1)]
