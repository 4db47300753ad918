"""The pairing registry as a state machine, with injected time and randomness."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from common.errors import InvalidState
from common.protocol.relay_wire import NAMEPLATE_MAX, NAMEPLATE_MIN, SID_BYTES, CloseCode
from relay.registry import Counts, PeerState, Registry, RelayRejection


TTL = 600.0
T0 = 1000.0


def make(**kwargs: Any) -> Registry[str]:
    kwargs.setdefault("rng", random.Random(1234))
    # Most tests register from one address; the per-address limits have their own tests.
    kwargs.setdefault("max_waiting_per_address", 100_000)
    kwargs.setdefault("registrations_per_window", 100_000)
    return Registry(**kwargs)


def waiting_user(reg: Registry[str], handle: str = "user", now: float = T0) -> int:
    reg.connect(handle, "192.0.2.1")
    return reg.register(handle, now).nameplate


def rejection(code: CloseCode) -> Any:
    return pytest.raises(RelayRejection, check=lambda e: e.code is code)


# --- the happy path -------------------------------------------------------------


def test_register_gives_a_nameplate_and_a_session_id() -> None:
    reg = make()
    reg.connect("user", "192.0.2.1")
    assert reg.state("user") is PeerState.NEW
    registration = reg.register("user", T0)
    assert NAMEPLATE_MIN <= registration.nameplate <= NAMEPLATE_MAX
    assert len(registration.sid) == SID_BYTES
    assert registration.expires_at == T0 + TTL
    assert registration.expires_in == 600
    assert reg.state("user") is PeerState.WAITING
    assert reg.counts() == Counts(connections=1, waiting_codes=1, active_pairs=0)


def test_claim_pairs_the_technician_with_the_waiting_user() -> None:
    reg = make()
    reg.connect("user", "192.0.2.1")
    registration = reg.register("user", T0)
    reg.connect("tech", "198.51.100.7")
    pairing = reg.claim("tech", registration.nameplate, T0 + 10)
    assert (pairing.user, pairing.technician, pairing.sid) == ("user", "tech", registration.sid)
    assert reg.state("user") is reg.state("tech") is PeerState.PAIRED
    assert (reg.partner("user"), reg.partner("tech")) == ("tech", "user")
    assert reg.counts() == Counts(connections=2, waiting_codes=0, active_pairs=1)


def test_randomness_is_injected() -> None:
    def run(seed: int) -> list[tuple[int, bytes]]:
        reg: Registry[int] = Registry(rng=random.Random(seed))
        out = []
        for i in range(5):
            reg.connect(i, "192.0.2.1")
            r = reg.register(i, T0)
            out.append((r.nameplate, r.sid))
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_default_randomness_is_the_operating_systems() -> None:
    reg: Registry[str] = Registry()
    nameplates = set()
    for i in range(20):
        reg.connect(str(i), f"192.0.2.{i}")
        nameplates.add(reg.register(str(i), T0).nameplate)
    assert len(nameplates) == 20


# --- refusals -------------------------------------------------------------------


def test_unknown_nameplate_is_refused() -> None:
    reg = make()
    nameplate = waiting_user(reg)
    reg.connect("tech", "198.51.100.7")
    other = NAMEPLATE_MIN if nameplate != NAMEPLATE_MIN else NAMEPLATE_MAX
    with rejection(CloseCode.UNKNOWN_CODE):
        reg.claim("tech", other, T0)
    assert reg.state("user") is PeerState.WAITING
    assert reg.state("tech") is PeerState.NEW


def test_second_claim_is_refused_and_the_first_pair_is_unaffected() -> None:
    reg = make()
    nameplate = waiting_user(reg)
    reg.connect("tech", "198.51.100.7")
    reg.connect("intruder", "203.0.113.5")
    reg.claim("tech", nameplate, T0)
    with rejection(CloseCode.ALREADY_CLAIMED):
        reg.claim("intruder", nameplate, T0)
    assert reg.partner("user") == "tech"
    assert reg.partner("tech") == "user"
    assert reg.state("intruder") is PeerState.NEW
    assert reg.counts().active_pairs == 1


def test_expired_code_is_refused_and_purged() -> None:
    reg = make()
    nameplate = waiting_user(reg)
    reg.connect("tech", "198.51.100.7")
    with rejection(CloseCode.CODE_EXPIRED):
        reg.claim("tech", nameplate, T0 + TTL)
    assert reg.state("user") is PeerState.CLOSED
    assert reg.counts().waiting_codes == 0
    with rejection(CloseCode.UNKNOWN_CODE):
        reg.claim("tech", nameplate, T0 + TTL)


def test_code_is_claimable_until_just_before_expiry() -> None:
    reg = make(code_ttl=30.0)
    nameplate = waiting_user(reg)
    reg.connect("tech", "198.51.100.7")
    assert reg.claim("tech", nameplate, T0 + 29.999).user == "user"


def test_purge_expired_returns_the_users_to_close() -> None:
    reg = make(code_ttl=10.0)
    waiting_user(reg, "early", now=T0)
    waiting_user(reg, "late", now=T0 + 5)
    assert reg.purge_expired(T0 + 9) == []
    assert reg.purge_expired(T0 + 10) == ["early"]
    assert reg.state("early") is PeerState.CLOSED
    assert reg.state("late") is PeerState.WAITING
    assert reg.counts().waiting_codes == 1


def test_registry_full_by_max_waiting() -> None:
    reg = make(max_waiting=2)
    waiting_user(reg, "a")
    waiting_user(reg, "b")
    reg.connect("c", "192.0.2.1")
    with rejection(CloseCode.RELAY_FULL):
        reg.register("c", T0)
    assert reg.state("c") is PeerState.NEW
    reg.disconnect("a")
    assert reg.register("c", T0).nameplate


def test_every_nameplate_can_be_handed_out_once() -> None:
    reg = make(max_connections=20_000, max_connections_per_address=20_000)
    count = NAMEPLATE_MAX - NAMEPLATE_MIN + 1
    plates = []
    for i in range(count):
        reg.connect(f"u{i}", "192.0.2.1")
        plates.append(reg.register(f"u{i}", T0).nameplate)
    assert reg.counts().waiting_codes == count == len(set(plates)) == 9900
    # Three digits while three quarters of them are free, then four.
    assert all(p <= 999 for p in plates[:675])
    assert all(p >= 1000 for p in plates[675:9675])
    reg.connect("late", "192.0.2.1")
    with rejection(CloseCode.RELAY_FULL):
        reg.register("late", T0)


def test_expired_codes_make_room_for_new_ones() -> None:
    reg = make(max_waiting=1, code_ttl=5.0)
    waiting_user(reg, "old", now=T0)
    reg.connect("new", "192.0.2.1")
    assert reg.register("new", T0 + 5).expires_at == T0 + 10
    assert reg.state("old") is PeerState.CLOSED


def test_failed_claims_are_rate_limited_per_address() -> None:
    reg = make(address_claims_per_window=3, address_claim_window=300.0)
    nameplate = waiting_user(reg)
    wrong = NAMEPLATE_MIN if nameplate != NAMEPLATE_MIN else NAMEPLATE_MAX
    reg.connect("guesser", "198.51.100.7")
    for _ in range(3):
        with rejection(CloseCode.UNKNOWN_CODE):
            reg.claim("guesser", wrong, T0)
    # Blocked even with the right code: a blocked guess must teach nothing.
    with rejection(CloseCode.RATE_LIMITED):
        reg.claim("guesser", nameplate, T0 + 1)
    # Others are not affected.
    reg.connect("tech", "198.51.100.8")
    assert reg.claim("tech", nameplate, T0 + 1).technician == "tech"
    # One attempt comes back every window / limit seconds.
    with rejection(CloseCode.RATE_LIMITED):
        reg.claim("guesser", wrong, T0 + 99)
    with rejection(CloseCode.ALREADY_CLAIMED):
        reg.claim("guesser", nameplate, T0 + 100)


def test_successful_claims_count_too() -> None:
    # Issue 14: a random claim that finds a waiting user burns that user's code.
    reg = make(address_claims_per_window=2)
    for i in range(2):
        nameplate = waiting_user(reg, f"u{i}")
        reg.connect(f"t{i}", "198.51.100.7")
        reg.claim(f"t{i}", nameplate, T0)
    nameplate = waiting_user(reg, "u2")
    reg.connect("t2", "198.51.100.7")
    with rejection(CloseCode.RATE_LIMITED):
        reg.claim("t2", nameplate, T0)
    assert reg.state("u2") is PeerState.WAITING


def test_waiting_codes_are_capped_per_address_and_per_ipv6_64() -> None:
    reg = make(max_waiting_per_address=2)
    for i, address in enumerate(("2001:db8:1:2::1", "2001:db8:1:2:ffff::9")):
        reg.connect(f"u{i}", address)
        reg.register(f"u{i}", T0)
    reg.connect("third", "2001:db8:1:2::77")
    with rejection(CloseCode.RATE_LIMITED):
        reg.register("third", T0)
    # Another /64, and another IPv4 address, are not affected.
    reg.connect("other", "2001:db8:1:3::1")
    reg.register("other", T0)
    # A code that is claimed, left or expired frees its address's place.
    reg.disconnect("u0")
    reg.register("third", T0)


def test_registrations_are_rate_limited_per_address() -> None:
    reg = make(registrations_per_window=2, registration_window=600.0)
    for i in range(2):
        waiting_user(reg, f"u{i}")
        reg.disconnect(f"u{i}")
    reg.connect("u2", "192.0.2.1")
    with rejection(CloseCode.RATE_LIMITED):
        reg.register("u2", T0)
    # One registration comes back every window / limit seconds.
    assert reg.register("u2", T0 + 300).nameplate


def test_the_space_grows_to_four_digits_before_three_run_out() -> None:
    reg = make(max_connections=5000, max_connections_per_address=5000)
    plates = [waiting_user(reg, f"u{i}") for i in range(700)]
    assert max(plates[:675]) <= 999
    assert min(plates[675:]) >= 1000
    # Once the short ones are free again, new codes are short again.
    for i in range(700):
        reg.disconnect(f"u{i}")
    assert waiting_user(reg, "again") <= 999


def test_connection_caps() -> None:
    reg = make(max_connections=4, max_connections_per_address=2)
    reg.connect("a1", "192.0.2.1")
    reg.connect("a2", "192.0.2.1")
    with rejection(CloseCode.TOO_MANY_CONNECTIONS):
        reg.connect("a3", "192.0.2.1")
    assert "a3" not in reg
    reg.connect("b1", "2001:db8::1")
    reg.connect("b2", "2001:db8::2")
    with rejection(CloseCode.TOO_MANY_CONNECTIONS):
        reg.connect("c1", "198.51.100.1")
    reg.disconnect("a1")
    reg.connect("a3", "192.0.2.1")
    assert reg.counts().connections == 4


def test_operations_out_of_order_are_invalid_state() -> None:
    reg = make()
    nameplate = waiting_user(reg)
    with pytest.raises(InvalidState):
        reg.register("user", T0)
    with pytest.raises(InvalidState):
        reg.claim("user", nameplate, T0)
    with pytest.raises(InvalidState):
        reg.register("stranger", T0)
    with pytest.raises(InvalidState):
        reg.connect("user", "192.0.2.1")


# --- disconnecting --------------------------------------------------------------


def test_a_waiting_user_that_leaves_frees_its_nameplate() -> None:
    reg = make()
    nameplate = waiting_user(reg)
    assert reg.disconnect("user") is None
    assert reg.counts() == Counts(0, 0, 0)
    reg.connect("tech", "198.51.100.7")
    with rejection(CloseCode.UNKNOWN_CODE):
        reg.claim("tech", nameplate, T0)


@pytest.mark.parametrize("leaver", ["user", "tech"])
def test_leaving_a_pair_returns_the_partner_and_closes_it(leaver: str) -> None:
    reg = make()
    nameplate = waiting_user(reg)
    reg.connect("tech", "198.51.100.7")
    reg.claim("tech", nameplate, T0)
    stayer = "tech" if leaver == "user" else "user"
    assert reg.disconnect(leaver) == stayer
    assert reg.state(stayer) is PeerState.CLOSED
    assert reg.partner(stayer) is None
    assert reg.counts() == Counts(connections=1, waiting_codes=0, active_pairs=0)
    assert reg.disconnect(stayer) is None
    assert reg.counts() == Counts(0, 0, 0)


def test_disconnecting_twice_or_an_unknown_handle_is_harmless() -> None:
    reg = make()
    waiting_user(reg)
    reg.disconnect("user")
    assert reg.disconnect("user") is None
    assert reg.disconnect("nobody") is None


class OneNameplate(random.Random):
    """Always draws 500 (while it is free)."""

    def randint(self, a: int, b: int) -> int:
        return 500


def test_a_closed_user_does_not_free_a_reused_nameplate() -> None:
    reg = make(code_ttl=5.0, rng=OneNameplate())
    assert waiting_user(reg, "old") == 500
    reg.purge_expired(T0 + 5)
    assert waiting_user(reg, "new", now=T0 + 5) == 500
    reg.disconnect("old")
    assert reg.state("new") is PeerState.WAITING
    assert reg.counts().waiting_codes == 1


# --- model-based ----------------------------------------------------------------

_ADDRESSES = {
    "192.0.2.1": "a",
    "192.0.2.2": "b",
    # The same IPv6 /64: one key.
    "2001:db8::1": "c",
    "2001:db8::2": "c",
}


class RegistryMachine(RuleBasedStateMachine):
    """Random register / claim / disconnect / time steps against a plain model."""

    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self.reg: Registry[int] = Registry(
            code_ttl=50.0,
            max_waiting=4,
            max_connections=8,
            max_connections_per_address=3,
            address_claims_per_window=10_000,
            max_waiting_per_address=10_000,
            registrations_per_window=10_000,
            rng=random.Random(0),
        )
        self.now = 0.0
        self.next_id = 0
        self.states: dict[int, PeerState] = {}
        self.keys: dict[int, str] = {}
        # nameplate -> [user, expires_at, technician or None]
        self.slots: dict[int, list[Any]] = {}

    def _waiting(self) -> int:
        return sum(1 for s in self.slots.values() if s[2] is None)

    def _expire_all(self) -> None:
        for n, (user, expires, tech) in list(self.slots.items()):
            if tech is None and self.now >= expires:
                del self.slots[n]
                self.states[user] = PeerState.CLOSED

    @rule(target=handles, address=st.sampled_from(sorted(_ADDRESSES)))
    def connect(self, address: str) -> int:
        handle, self.next_id = self.next_id, self.next_id + 1
        key = _ADDRESSES[address]
        same_key = sum(1 for k in self.keys.values() if k == key)
        if len(self.states) >= 8 or same_key >= 3:
            with rejection(CloseCode.TOO_MANY_CONNECTIONS):
                self.reg.connect(handle, address)
            return -1
        self.reg.connect(handle, address)
        self.states[handle] = PeerState.NEW
        self.keys[handle] = key
        return handle

    @rule(handle=handles)
    def register(self, handle: int) -> None:
        if self.states.get(handle) is not PeerState.NEW:
            with pytest.raises(InvalidState):
                self.reg.register(handle, self.now)
            return
        self._expire_all()
        if self._waiting() >= 4:
            with rejection(CloseCode.RELAY_FULL):
                self.reg.register(handle, self.now)
            return
        r = self.reg.register(handle, self.now)
        assert r.nameplate not in self.slots
        assert NAMEPLATE_MIN <= r.nameplate <= NAMEPLATE_MAX
        self.slots[r.nameplate] = [handle, self.now + 50.0, None]
        self.states[handle] = PeerState.WAITING

    @rule(handle=handles, data=st.data())
    def claim(self, handle: int, data: st.DataObject) -> None:
        choices = st.integers(NAMEPLATE_MIN, NAMEPLATE_MAX)
        if self.slots:
            choices = st.sampled_from(sorted(self.slots)) | choices
        nameplate = data.draw(choices)
        if self.states.get(handle) is not PeerState.NEW:
            with pytest.raises(InvalidState):
                self.reg.claim(handle, nameplate, self.now)
            return
        slot = self.slots.get(nameplate)
        if slot is None:
            with rejection(CloseCode.UNKNOWN_CODE):
                self.reg.claim(handle, nameplate, self.now)
        elif slot[2] is not None:
            with rejection(CloseCode.ALREADY_CLAIMED):
                self.reg.claim(handle, nameplate, self.now)
        elif self.now >= slot[1]:
            with rejection(CloseCode.CODE_EXPIRED):
                self.reg.claim(handle, nameplate, self.now)
            del self.slots[nameplate]
            self.states[slot[0]] = PeerState.CLOSED
        else:
            pairing = self.reg.claim(handle, nameplate, self.now)
            assert (pairing.user, pairing.technician) == (slot[0], handle)
            slot[2] = handle
            self.states[handle] = self.states[slot[0]] = PeerState.PAIRED

    @rule(handle=consumes(handles))
    def disconnect(self, handle: int) -> None:
        state = self.states.pop(handle, None)
        self.keys.pop(handle, None)
        partner = None
        for n, slot in list(self.slots.items()):
            if state is PeerState.WAITING and slot[0] == handle:
                del self.slots[n]
            elif state is PeerState.PAIRED and handle in (slot[0], slot[2]):
                del self.slots[n]
                partner = slot[2] if slot[0] == handle else slot[0]
                self.states[partner] = PeerState.CLOSED
        assert self.reg.disconnect(handle) == partner

    @precondition(lambda self: self.slots)
    @rule(dt=st.floats(0.0, 60.0))
    def advance(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def states_match(self) -> None:
        for handle, state in self.states.items():
            assert self.reg.state(handle) is state
        paired = [s for s in self.slots.values() if s[2] is not None]
        assert self.reg.counts() == Counts(len(self.states), self._waiting(), len(paired))
        for user, _, tech in paired:
            assert self.reg.partner(user) == tech
            assert self.reg.partner(tech) == user


RegistryMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_registry_model = RegistryMachine.TestCase
