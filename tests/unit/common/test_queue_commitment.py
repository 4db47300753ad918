"""Queue mode's hello commitment (issue 14): a relay can no longer grind the SAS.

Queue mode runs RA1 with a public password, so a relay in the middle holds
the keys of both legs. When both hellos went out at once, the relay could
see them both and then try hellos of its own until the two 4-digit numbers
agreed. These tests show that attack against the uncommitted flow, then
measure what is left with the commitment: one SAS value per side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from spake2 import SPAKE2_B

from common.crypto.handshake import (
    SUITES,
    HandshakeRole,
    Hello,
    HelloCommit,
    TechnicianHandshake,
    UserHandshake,
    hello_commitment,
)
from common.errors import InvalidState, PairingError
from common.net.queue_pairing import QUEUE_PASSWORD
from common.protocol.codec import decode_as, encode
from tests.pki import Org, make_org


SID = bytes(range(16))


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


def seeded(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return rng.randbytes


def user(org: Org, seed: int = 1, *, committed: bool = True) -> UserHandshake:
    return UserHandshake(QUEUE_PASSWORD, SID, org.trust, seeded(seed), committed=committed)


def technician(org: Org, seed: int = 2, name: str = "Jane Doe") -> TechnicianHandshake:
    return TechnicianHandshake(QUEUE_PASSWORD, SID, org.technician(name), entropy=seeded(seed))


def test_the_committed_flow_pairs(org: Org) -> None:
    tech, usr = technician(org), user(org)
    commit = tech.commit()
    usr.receive_commitment(commit)
    auth = tech.receive_hello(usr.hello())
    assert decode_as(HelloCommit, commit).digest == hello_commitment(tech.opening)
    usr.receive_hello(tech.opening)
    assert usr.sas == tech.sas
    assert usr.receive_auth(auth, time.time()).name == "Jane Doe"


def test_the_order_is_enforced(org: Org) -> None:
    usr = user(org)
    with pytest.raises(InvalidState, match="commitment first"):
        usr.hello()  # the user's hello never goes out before the commitment
    tech = technician(org)
    tech.commit()
    with pytest.raises(InvalidState):
        _ = tech.opening  # nor the technician's before the user's
    with pytest.raises(InvalidState, match="no commitment"):
        _ = technician(org).opening
    with pytest.raises(InvalidState, match="takes no commitment"):
        user(org, committed=False).receive_commitment(b"")


def test_an_opening_that_does_not_match_is_refused(org: Org) -> None:
    tech, other, usr = technician(org), technician(org, seed=3), user(org)
    usr.receive_commitment(tech.commit())
    tech.receive_hello(usr.hello())
    with pytest.raises(PairingError, match="does not match its commitment"):
        usr.receive_hello(other.hello())
    with pytest.raises(InvalidState):
        usr.receive_hello(tech.opening)  # a failed handshake stays failed


def test_a_malformed_commitment_is_refused(org: Org) -> None:
    usr = user(org)
    with pytest.raises(PairingError, match="malformed hello commitment"):
        usr.receive_commitment(technician(org).hello())  # a hello where M0 belongs


# --- the grinding relay -------------------------------------------------------------


def _label(prk: bytes, label: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, label).derive(prk)


class GrindingUserSide:
    """The relay's own user side toward the technician, with the key schedule inlined.

    Only the nonce changes between tries, so each try costs two hashes and an
    HKDF (tens of microseconds), not a SPAKE2 run.
    """

    def __init__(self, tech_hello: bytes) -> None:
        peer = decode_as(Hello, tech_hello)
        spake = SPAKE2_B(
            QUEUE_PASSWORD.encode(), idA=b"RA1|" + SID + b"|tech", idB=b"RA1|" + SID + b"|user"
        )
        self.pake = spake.start()
        x25519 = X25519PrivateKey.generate()
        self.public = x25519.public_key().public_bytes_raw()
        self.ikm = spake.finish(peer.pake) + x25519.exchange(
            X25519PublicKey.from_public_bytes(peer.x25519)
        )
        self.tech_digest = hashlib.sha256(tech_hello).digest()

    def hello(self, nonce: bytes) -> bytes:
        return encode(Hello("RA1", HandshakeRole.USER, self.pake, self.public, SUITES, nonce))

    def sas(self, hello: bytes) -> str:
        transcript = hashlib.sha256(
            b"RA1 transcript|" + SID + b"|" + self.tech_digest + hashlib.sha256(hello).digest()
        ).digest()
        prk = HKDF(hashes.SHA256(), 32, salt=transcript, info=b"RA1 prk").derive(self.ikm)
        return f"{int.from_bytes(_label(prk, b'RA1 sas', 4), 'big') % 10000:04d}"


def test_without_the_commitment_a_relay_grinds_both_numbers_equal(org: Org) -> None:
    """The attack the outside review found, against the old concurrent flow."""
    tech, usr = technician(org), user(org, committed=False)
    m1, m2 = tech.hello(), usr.hello()  # both at once: the relay sees both
    # Toward the user the relay plays a technician (an accomplice's certificate,
    # so the user's side gets as far as showing a number).
    accomplice = TechnicianHandshake(QUEUE_PASSWORD, SID, org.technician("Mallory"))
    usr.receive_hello(accomplice.hello())
    target = usr.sas
    # Toward the technician it plays the user, and tries nonces until the SAS agrees.
    grinder = GrindingUserSide(m1)
    found = None
    for i in range(200_000):
        candidate = grinder.hello(i.to_bytes(16, "big"))
        if grinder.sas(candidate) == target:
            found = candidate
            break
    assert found is not None
    tech.receive_hello(found)
    # The two screens agree, with the relay in the middle (and the real user's
    # hello m2 never reached the technician).
    assert tech.sas == usr.sas == grinder.sas(found)
    assert m2 != found


def test_with_the_commitment_each_side_can_be_given_one_sas_only(org: Org) -> None:
    # Toward the user: the relay commits to one hello of its accomplice before
    # it sees the user's hello. Afterwards it tries 40 different openings.
    accomplice = TechnicianHandshake(
        QUEUE_PASSWORD, SID, org.technician("Mallory"), entropy=seeded(100)
    )
    committed = accomplice.commit()
    accomplice.receive_hello(user(org, seed=7, committed=False).hello())
    candidates = [accomplice.opening]
    for i in range(39):
        hello = decode_as(Hello, candidates[0])
        candidates.append(encode(dataclasses.replace(hello, nonce=i.to_bytes(16, "big"))))

    def reachable(with_commitment: bool) -> set[str]:
        values = set()
        for candidate in candidates:
            usr = user(org, seed=7, committed=with_commitment)  # the same user each time
            if with_commitment:
                usr.receive_commitment(committed)
            usr.hello()
            try:
                usr.receive_hello(candidate)
            except PairingError:
                continue
            values.add(usr.sas)
        return values

    assert len(reachable(with_commitment=False)) >= 35  # free choice: ~40 numbers
    assert len(reachable(with_commitment=True)) == 1  # bound by the commitment
    # Toward the technician: the relay's user hello must go out before the
    # technician opens its own (the SAS depends on it), and only one is taken.
    tech = technician(org)
    commit = tech.commit()
    assert len(commit) < 64  # a digest: nothing to compute a SAS from
    first = user(org, seed=8, committed=False).hello()
    tech.receive_hello(first)
    with pytest.raises(InvalidState):
        tech.receive_hello(first)
