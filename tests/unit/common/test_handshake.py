"""RA1: a correct run, and every attack on pairing from security.md section 9."""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import given, settings, strategies as st

from common.crypto.handshake import (
    HandshakeRole,
    Hello,
    TechnicianHandshake,
    UserHandshake,
)
from common.crypto.record import RecordSealer, RecordType
from common.errors import IdentityError, InvalidState, PairingError, ProtocolError
from common.protocol.codec import decode_as, encode
from tests.pki import DAY, Org, make_org


SID = bytes(range(16))
CODE = "417382"


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


def run(
    org: Org,
    *,
    user_code: str = CODE,
    tech_code: str = CODE,
    user_sid: bytes = SID,
    tech_sid: bytes = SID,
    now: float | None = None,
) -> tuple[TechnicianHandshake, UserHandshake]:
    tech = TechnicianHandshake(tech_code, tech_sid, org.technician(), ("view", "control"))
    user = UserHandshake(user_code, user_sid, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    m3 = tech.receive_hello(m2)
    user.receive_auth(m3, time.time() if now is None else now)
    return tech, user


def test_successful_pairing(org: Org) -> None:
    tech, user = run(org)
    assert user.requested == ("view", "control")
    m4, user_side = user.accept(("view",), "laptop-42")
    tech_side = tech.receive_auth(m4)
    assert tech_side.sas == user_side.sas and len(user_side.sas) == 4
    assert tech_side.granted == ("view",) and tech_side.device == "laptop-42"
    assert user_side.technician is not None
    assert (user_side.technician.name, user_side.technician.org) == ("Jane Doe", "ACME IT")
    # Both directions work with the derived keys.
    wire = tech_side.sealer.seal(RecordType.DATA, b"ping")
    assert user_side.opener.open(wire) == (RecordType.DATA, b"ping")
    wire = user_side.sealer.seal(RecordType.DATA, b"pong")
    assert tech_side.opener.open(wire) == (RecordType.DATA, b"pong")


def test_wrong_code_fails_at_confirmation(org: Org) -> None:
    """Case 1: a wrong code gives no keys and no application data."""
    with pytest.raises(PairingError, match="did not match"):
        run(org, tech_code="417383")


def test_failed_machine_refuses_further_use(org: Org) -> None:
    tech = TechnicianHandshake(CODE, SID, org.technician())
    user = UserHandshake("000000", SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    with pytest.raises(PairingError):
        user.receive_auth(tech.receive_hello(m2), time.time())
    with pytest.raises(InvalidState):
        user.accept(("view",))


def test_replayed_hello_from_another_session(org: Org) -> None:
    """Case 4: the relay replays M1 from an old session (other SID) to a new user."""
    old_sid = b"o" * 16
    old_tech = TechnicianHandshake(CODE, old_sid, org.technician())
    old_user = UserHandshake(CODE, old_sid, org.trust)
    old_m1, old_m2 = old_tech.hello(), old_user.hello()
    old_m3 = old_tech.receive_hello(old_m2)
    user = UserHandshake(CODE, SID, org.trust)
    user.hello()
    user.receive_hello(old_m1)
    # Even with the right code, the old proof does not fit the new session.
    with pytest.raises(PairingError):
        user.receive_auth(old_m3, time.time())


def test_hellos_swapped_between_two_sessions(org: Org) -> None:
    """Case 5: the relay swaps M1 between two concurrent sessions."""
    sid_a, sid_b = b"a" * 16, b"b" * 16
    tech_a = TechnicianHandshake(CODE, sid_a, org.technician())
    tech_b = TechnicianHandshake(CODE, sid_b, org.technician())
    user_a = UserHandshake(CODE, sid_a, org.trust)
    m1_a, m1_b, m2_a = tech_a.hello(), tech_b.hello(), user_a.hello()
    user_a.receive_hello(m1_b)
    with pytest.raises(PairingError):
        user_a.receive_auth(tech_a.receive_hello(m2_a), time.time())
    assert m1_a != m1_b


def test_reflection_is_refused(org: Org) -> None:
    """Case 6: the user's own hello sent back to it."""
    user = UserHandshake(CODE, SID, org.trust)
    m2 = user.hello()
    with pytest.raises(PairingError, match="own role"):
        user.receive_hello(m2)


def test_downgrade_edit_of_the_suites_fails_confirmation(org: Org) -> None:
    """Case 7: the relay edits the suite list in M1."""
    tech = TechnicianHandshake(CODE, SID, org.technician())
    user = UserHandshake(CODE, SID, org.trust)
    m1 = decode_as(Hello, tech.hello())
    edited = encode(dataclasses.replace(m1, suites=(*m1.suites, "aes256gcm")))
    m2 = user.hello()
    user.receive_hello(edited)
    with pytest.raises(PairingError):
        user.receive_auth(tech.receive_hello(m2), time.time())


@pytest.mark.parametrize(
    "change",
    [
        {"pake": b""},
        {"pake": b"A" + b"\xff" * 32},
        {"pake": b"B" + bytes(32)},
        {"pake": b"A" * 64},
        {"pake": b"A" * 33},
        {"version": "RA0"},
        {"suites": ("rot13",)},
    ],
    ids=["empty", "off-curve", "wrong-side", "oversized", "not-on-curve", "version", "suites"],
)
def test_garbage_hello_elements(
    org: Org, change: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 8: truncated, oversized or garbage PAKE elements."""
    tech = TechnicianHandshake(CODE, SID, org.technician())
    m1 = decode_as(Hello, tech.hello())
    user = UserHandshake(CODE, SID, org.trust)
    user.hello()
    with monkeypatch.context() as patch:
        # A hostile relay is not bound by our encoder's checks.
        patch.setattr(Hello, "check", lambda self: None)
        garbage = encode(dataclasses.replace(m1, **change))  # type: ignore[arg-type]
    with pytest.raises(PairingError):
        user.receive_hello(garbage)


def test_malformed_hello_bytes(org: Org) -> None:
    user = UserHandshake(CODE, SID, org.trust)
    user.hello()
    with pytest.raises(PairingError, match="malformed"):
        user.receive_hello(b"\x01\x20garbage")


@pytest.mark.parametrize("point", [bytes(32), b"\x01" + bytes(31)], ids=["zero", "order-1"])
def test_low_order_x25519_share(org: Org, point: bytes) -> None:
    """Case 9: low-order / all-zero X25519 public keys."""
    tech = TechnicianHandshake(CODE, SID, org.technician())
    m1 = decode_as(Hello, tech.hello())
    user = UserHandshake(CODE, SID, org.trust)
    user.hello()
    with pytest.raises(PairingError, match="X25519"):
        user.receive_hello(encode(dataclasses.replace(m1, x25519=point)))


def test_technician_of_another_org(org: Org) -> None:
    """Case 10: certificate chains to a different org key."""
    other = make_org()
    tech = TechnicianHandshake(CODE, SID, other.technician())
    user = UserHandshake(CODE, SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    with pytest.raises(IdentityError):
        user.receive_auth(tech.receive_hello(m2), time.time())


@pytest.mark.parametrize("case", ["expired", "not-yet-valid", "revoked", "stale-crl"])
def test_refused_certificates(case: str) -> None:
    """Case 11: expired, not-yet-valid, revoked, stale revocation list."""
    org = make_org()
    now = time.time()
    if case == "expired":
        cred = org.technician(not_before=now - 40 * DAY, days=30)
    elif case == "not-yet-valid":
        cred = org.technician(not_before=now + DAY)
    elif case == "revoked":
        cred = org.technician()
        org.revoked.append(1)
        cred = type(cred)(cred._key, cred.certificate, org.crl())
    else:
        cred = org.technician(crl_at=now - 2 * DAY)
    tech = TechnicianHandshake(CODE, SID, cred)
    user = UserHandshake(CODE, SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    with pytest.raises(IdentityError):
        user.receive_auth(tech.receive_hello(m2), now)


def test_signature_over_another_transcript(org: Org) -> None:
    """Case 12: a valid certificate, but the signature is over other data."""
    cred = org.technician()
    real_sign = cred.sign
    cred.sign = lambda data: real_sign(data + b"x")  # type: ignore[method-assign]
    tech = TechnicianHandshake(CODE, SID, cred)
    user = UserHandshake(CODE, SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    with pytest.raises(IdentityError):
        user.receive_auth(tech.receive_hello(m2), time.time())


def test_data_record_before_confirmation(org: Org) -> None:
    """Case 13: application data before both confirmations ends the pairing."""
    tech = TechnicianHandshake(CODE, SID, org.technician())
    user = UserHandshake(CODE, SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    tech.receive_hello(m2)
    sealer = tech._sealer  # a fresh record at seq 1 would be out of order; forge seq 0
    forged = RecordSealer(sealer._key, SID).seal(RecordType.DATA, b"hi")
    with pytest.raises(PairingError, match="DATA"):
        user.receive_auth(forged, time.time())


def test_tampered_auth_record(org: Org) -> None:
    tech = TechnicianHandshake(CODE, SID, org.technician())
    user = UserHandshake(CODE, SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    m3 = bytearray(tech.receive_hello(m2))
    m3[-1] ^= 1
    with pytest.raises(PairingError):
        user.receive_auth(bytes(m3), time.time())


def test_decline_reaches_the_technician(org: Org) -> None:
    tech, user = run(org)
    with pytest.raises(PairingError, match="declined"):
        tech.receive_auth(user.decline("The user declined."))


def test_user_mac_is_checked(org: Org) -> None:
    tech, user = run(org)
    m4, _ = user.accept(("view",))
    other_tech, other_user = run(org)
    m4_other, _ = other_user.accept(("view",))
    with pytest.raises(PairingError):
        tech.receive_auth(m4_other)
    # Failure is final: even the right M4 is no longer accepted.
    with pytest.raises(InvalidState):
        tech.receive_auth(m4)
    assert other_tech.receive_auth(m4_other).granted == ("view",)


def test_capabilities_are_validated(org: Org) -> None:
    with pytest.raises(ProtocolError):
        TechnicianHandshake(CODE, SID, org.technician(), ("root",))
    _, user = run(org)
    with pytest.raises(ProtocolError):
        user.accept(("view", "view"))


def test_roles_and_states(org: Org) -> None:
    tech = TechnicianHandshake(CODE, SID, org.technician())
    assert decode_as(Hello, tech.hello()).role is HandshakeRole.TECHNICIAN
    with pytest.raises(InvalidState):
        tech.hello()
    with pytest.raises(ValueError):
        UserHandshake("12ab", SID, org.trust)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_hello_bytes_raise_only_pairing_error(data: bytes) -> None:
    """Case 47: hello parsing never leaks another exception."""
    user = UserHandshake(CODE, SID, TRUST_FOR_PROPERTIES)
    user.hello()
    with pytest.raises(PairingError):
        user.receive_hello(data)


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_guessing_relay_never_pairs(guess: str) -> None:
    """Case 46: a relay running its own SPAKE2 with guessed codes fails every time."""
    if guess == CODE:
        return
    org = make_org()
    relay_as_tech = TechnicianHandshake(guess, SID, org.technician())
    user = UserHandshake(CODE, SID, org.trust)
    m1, m2 = relay_as_tech.hello(), user.hello()
    user.receive_hello(m1)
    with pytest.raises(PairingError, match="did not match"):
        user.receive_auth(relay_as_tech.receive_hello(m2), time.time())


TRUST_FOR_PROPERTIES = make_org().trust
