"""Technician certificates and revocation lists (security.md 2.7; section 9 cases 10-12)."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st

from common.crypto.identity import (
    CERT_SIGNATURE_CONTEXT,
    CRL_SIGNATURE_CONTEXT,
    MAX_CERT_VALIDITY,
    MAX_REVOKED,
    Certificate,
    MemoryRevocationStore,
    OrgKey,
    OrgTrust,
    RevocationList,
    SignedCertificate,
    SignedRevocationList,
    TechnicianCredential,
    TechnicianIdentity,
    check_display_name,
    key_fingerprint,
    key_id,
    parse_org_public_key,
)
from common.errors import IdentityError, ProtocolError
from common.keyfiles import (
    CERT_FILE,
    CRL_FILE,
    TECH_KEY_FILE,
    load_org_key,
    load_org_public_key,
    load_technician_credential,
    save_org_key,
    save_org_public_key,
    save_technician_credential,
)
from common.protocol.codec import decode, decode_as, encode


NOW = 1_750_000_000
DAY = 24 * 3600
SKEW = 300

# Generated once: key generation is cheap, but hypothesis runs many examples.
ORG = OrgKey.generate()
OTHER_ORG = OrgKey.generate()
TECH_KEY = Ed25519PrivateKey.generate()
TECH_PUB = TECH_KEY.public_key().public_bytes_raw()
TRUST = OrgTrust(ORG.public_bytes)


def issue(signer: OrgKey = ORG, **overrides: object) -> bytes:
    fields: dict[str, object] = {
        "serial": 7,
        "tech_id": "jane@acme",
        "name": "Jane Doe",
        "org": "ACME IT",
        "public_key": TECH_PUB,
        "roles": ["technician"],
        "not_before": NOW - DAY,
        "not_after": NOW + 29 * DAY,
    }
    fields.update(overrides)
    return signer.issue(**fields)  # type: ignore[arg-type]


CERT = issue()
CRL = ORG.sign_revocations([], NOW - 3600)


def sign_raw(org: OrgKey, context: bytes, body: bytes) -> bytes:
    """Sign like the org does, but with any body: to build certificates issue() refuses."""
    return Ed25519PrivateKey.from_private_bytes(org.private_bytes()).sign(context + body)


def hand_made_cert(signer: OrgKey, **overrides: object) -> bytes:
    cert = decode_as(Certificate, decode_as(SignedCertificate, CERT).body)
    cert = dataclasses.replace(cert, **overrides)  # type: ignore[arg-type]
    body = encode(cert)
    return encode(SignedCertificate(body, sign_raw(signer, CERT_SIGNATURE_CONTEXT, body)))


def hand_made_crl(
    signer: OrgKey, context: bytes = CRL_SIGNATURE_CONTEXT, **fields: object
) -> bytes:
    values: dict[str, object] = {"org_key_id": ORG.key_id, "issued_at": NOW, "serials": ()}
    values.update(fields)
    body = encode(RevocationList(**values))  # type: ignore[arg-type]
    return encode(SignedRevocationList(body, sign_raw(signer, context, body)))


def refused(certificate: bytes, revocations: bytes = CRL, now: float = NOW) -> str:
    with pytest.raises(IdentityError) as info:
        TRUST.verify(certificate, revocations, now)
    return str(info.value)


# --- the happy path ----------------------------------------------------------------


def test_verify_returns_the_certified_identity() -> None:
    identity = TRUST.verify(CERT, CRL, NOW)
    assert identity == TechnicianIdentity(
        tech_id="jane@acme",
        name="Jane Doe",
        org="ACME IT",
        serial=7,
        roles=("technician",),
        public_key=TECH_PUB,
        not_after=NOW + 29 * DAY,
    )


def test_fingerprint_is_short_grouped_hex_of_the_key_hash() -> None:
    identity = TRUST.verify(CERT, CRL, NOW)
    digest = hashlib.sha256(TECH_PUB).hexdigest()
    assert identity.fingerprint == f"{digest[0:4]} {digest[4:8]} {digest[8:12]} {digest[12:16]}"
    assert key_fingerprint(TECH_PUB) == identity.fingerprint


def test_messages_round_trip_through_the_codec() -> None:
    signed = decode_as(SignedCertificate, CERT)
    cert = decode_as(Certificate, signed.body)
    assert encode(signed) == CERT
    assert encode(cert) == signed.body
    assert cert.org_key_id == hashlib.sha256(ORG.public_bytes).digest()[:8] == ORG.key_id
    assert len(signed.signature) == 64
    signed_crl = decode(CRL)
    assert isinstance(signed_crl, SignedRevocationList)
    crl = decode_as(RevocationList, signed_crl.body)
    assert crl == RevocationList(org_key_id=ORG.key_id, issued_at=NOW - 3600, serials=())


def test_type_ids_are_in_the_identity_range() -> None:
    ids = [Certificate.TYPE_ID, SignedCertificate.TYPE_ID]
    ids += [RevocationList.TYPE_ID, SignedRevocationList.TYPE_ID]
    assert ids == [40, 41, 42, 43]


def test_org_key_round_trips_through_private_bytes() -> None:
    again = OrgKey.from_private_bytes(ORG.private_bytes())
    assert again.public_bytes == ORG.public_bytes
    assert again.key_id == key_id(ORG.public_bytes)
    with pytest.raises(ValueError):
        OrgKey.from_private_bytes(b"\x00" * 31)


# --- case 10: a certificate that does not chain to the pinned org key ----------------


def test_certificate_from_another_org_is_refused() -> None:
    assert "different organisation" in refused(issue(OTHER_ORG))


def test_forged_certificate_naming_our_key_id_is_refused() -> None:
    forged = hand_made_cert(OTHER_ORG, org_key_id=ORG.key_id)
    assert "not signed by your organisation" in refused(forged)


def test_certificate_with_another_key_id_is_refused_even_if_signed_by_our_key() -> None:
    mislabelled = hand_made_cert(ORG, org_key_id=OTHER_ORG.key_id)
    assert "different organisation" in refused(mislabelled)


def test_certificate_signature_does_not_validate_a_revocation_list() -> None:
    # The same key signs both kinds, so the contexts must keep them apart.
    crl_signed_as_cert = hand_made_crl(ORG, context=CERT_SIGNATURE_CONTEXT)
    assert "revocation list is not signed" in refused(CERT, crl_signed_as_cert)
    cert_body = decode_as(SignedCertificate, CERT).body
    cert_signed_as_crl = encode(
        SignedCertificate(cert_body, sign_raw(ORG, CRL_SIGNATURE_CONTEXT, cert_body))
    )
    assert "not signed by your organisation" in refused(cert_signed_as_crl)


def test_a_tampered_certificate_is_refused_for_every_single_bit_flip() -> None:
    for position in range(len(CERT)):
        for bit in range(8):
            tampered = bytearray(CERT)
            tampered[position] ^= 1 << bit
            with pytest.raises(IdentityError):
                TRUST.verify(bytes(tampered), CRL, NOW)


def test_a_tampered_revocation_list_is_refused_for_every_single_bit_flip() -> None:
    crl = ORG.sign_revocations([3, 9], NOW)
    for position in range(len(crl)):
        for bit in range(8):
            tampered = bytearray(crl)
            tampered[position] ^= 1 << bit
            with pytest.raises(IdentityError):
                TRUST.verify(CERT, bytes(tampered), NOW)


@pytest.mark.parametrize("data", [b"", b"\x01", CRL, CERT[:-1], CERT + b"\x00", b"\xff" * 200])
def test_undecodable_certificate_is_an_identity_error(data: bytes) -> None:
    assert "malformed" in refused(data)


@pytest.mark.parametrize("data", [b"", CERT, CRL[:-1], CRL + b"\x00"])
def test_undecodable_revocation_list_is_an_identity_error(data: bytes) -> None:
    assert "revocation list is malformed" in refused(CERT, data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_verify_raises_only_identity_error_on_arbitrary_certificates(data: bytes) -> None:
    with pytest.raises(IdentityError):
        TRUST.verify(data, CRL, NOW)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_verify_raises_only_identity_error_on_arbitrary_revocation_lists(data: bytes) -> None:
    with pytest.raises(IdentityError):
        TRUST.verify(CERT, data, NOW)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CERT)), st.binary(max_size=40), st.integers(0, 40))
def test_verify_raises_only_identity_error_on_spliced_certificates(
    at: int, insert: bytes, cut: int
) -> None:
    data = CERT[:at] + insert + CERT[at + cut :]
    if data == CERT:
        return
    with pytest.raises(IdentityError):
        TRUST.verify(data, CRL, NOW)


# --- case 11: validity, revocation, freshness --------------------------------------


def test_expired_certificate_is_refused_at_once_without_grace() -> None:
    # Issue 14: there used to be a clock-skew grace of 5 minutes after expiry.
    not_after = NOW + 29 * DAY
    TRUST.verify(CERT, ORG.sign_revocations([], not_after), not_after - 1)
    message = refused(CERT, ORG.sign_revocations([], not_after), not_after)
    assert "expired" in message
    assert "expired" in refused(CERT, ORG.sign_revocations([], not_after), not_after + SKEW - 1)


def test_only_a_technician_certificate_pairs_as_a_technician() -> None:
    auditor = issue(roles=["auditor"])
    message = refused(auditor)
    assert "does not allow the technician role" in message and "auditor" in message
    TRUST.verify(issue(roles=["supervisor", "technician"]), CRL, NOW)
    # Other uses may ask for another role.
    TRUST.verify(auditor, CRL, NOW, role="auditor")


def test_default_freshness_window_is_four_hours() -> None:
    TRUST.verify(CERT, ORG.sign_revocations([], NOW - 4 * 3600), NOW)
    assert "out of date" in refused(CERT, ORG.sign_revocations([], NOW - 4 * 3600 - 1))


def test_an_older_list_cannot_override_a_newer_one_seen_before() -> None:
    """Issue 14: a revoked technician replays a list signed before the revocation."""
    store = MemoryRevocationStore()
    trust = OrgTrust(ORG.public_bytes, revocations=store)
    before = ORG.sign_revocations([], NOW - 3600)
    after = ORG.sign_revocations([7], NOW - 60)
    trust.verify(CERT, before, NOW - 1800)  # fine then
    # Another technician's session shows this computer the newer list.
    other = issue(serial=8)
    trust.verify(other, after, NOW - 30)
    assert store.newest(ORG.key_id) == after
    # Without the store the old list still clears the revoked certificate...
    OrgTrust(ORG.public_bytes).verify(CERT, before, NOW)
    # ...with it, the newest list seen decides.
    with pytest.raises(IdentityError, match="revoked"):
        trust.verify(CERT, before, NOW)
    # An older list that does not matter is fine (technicians sign in at different times).
    trust.verify(other, before, NOW)
    assert store.newest(ORG.key_id) == after


def test_the_newest_list_is_kept_and_must_itself_be_fresh() -> None:
    store = MemoryRevocationStore()
    trust = OrgTrust(ORG.public_bytes, revocations=store)
    older, newer = ORG.sign_revocations([], NOW - 600), ORG.sign_revocations([], NOW - 60)
    trust.verify(CERT, newer, NOW)
    trust.verify(CERT, older, NOW)
    assert store.newest(ORG.key_id) == newer
    newest = ORG.sign_revocations([], NOW)
    trust.verify(CERT, newest, NOW)
    assert store.newest(ORG.key_id) == newest
    # Hours later the stored list has gone stale like any other.
    with pytest.raises(IdentityError, match="out of date"):
        trust.verify(CERT, older, NOW + 5 * 3600)


def test_a_damaged_or_foreign_stored_list_is_ignored() -> None:
    store = MemoryRevocationStore()
    store.remember(ORG.key_id, OTHER_ORG.sign_revocations([7], NOW))
    trust = OrgTrust(ORG.public_bytes, revocations=store)
    trust.verify(CERT, CRL, NOW)
    assert store.newest(ORG.key_id) == CRL
    store.remember(ORG.key_id, b"junk")
    trust.verify(CERT, CRL, NOW)


def test_not_yet_valid_certificate_is_refused() -> None:
    future = issue(not_before=NOW + 3600, not_after=NOW + 10 * DAY)
    assert "not valid before" in refused(future)
    TRUST.verify(future, ORG.sign_revocations([], NOW + 3600), NOW + 3600 - SKEW)


def test_revoked_certificate_is_refused() -> None:
    message = refused(CERT, ORG.sign_revocations([1, 7, 12], NOW))
    assert "revoked" in message
    assert "Jane Doe" in message


def test_list_revoking_other_serials_accepts_the_certificate() -> None:
    TRUST.verify(CERT, ORG.sign_revocations([1, 6, 8, 1000], NOW), NOW)


def test_stale_revocation_list_is_refused() -> None:
    lenient = OrgTrust(ORG.public_bytes, max_crl_age=DAY)
    lenient.verify(CERT, ORG.sign_revocations([], NOW - DAY), NOW)
    with pytest.raises(IdentityError, match="out of date"):
        lenient.verify(CERT, ORG.sign_revocations([], NOW - DAY - 1), NOW)


def test_freshness_limit_is_configurable() -> None:
    strict = OrgTrust(ORG.public_bytes, max_crl_age=3600)
    with pytest.raises(IdentityError, match="out of date"):
        strict.verify(CERT, ORG.sign_revocations([], NOW - 3601), NOW)


def test_revocation_list_dated_in_the_future_is_refused() -> None:
    TRUST.verify(CERT, ORG.sign_revocations([], NOW + SKEW), NOW)
    assert "future" in refused(CERT, ORG.sign_revocations([], NOW + SKEW + 1))


def test_revocation_list_signed_by_another_key_is_refused() -> None:
    forged = hand_made_crl(OTHER_ORG)  # names our key id, signed by another key
    assert "revocation list is not signed by your organisation" in refused(CERT, forged)


def test_revocation_list_of_another_org_is_refused() -> None:
    assert "different organisation" in refused(CERT, OTHER_ORG.sign_revocations([], NOW))


def test_unsorted_revocation_list_is_malformed_even_when_signed() -> None:
    body = encode(RevocationList(ORG.key_id, NOW, (7, 9)))
    assert body.endswith(b"\x02\x0e\x12")  # count 2, zigzag varints of 7 and 9
    body = body[:-2] + b"\x12\x0e"
    unsorted = encode(SignedRevocationList(body, sign_raw(ORG, CRL_SIGNATURE_CONTEXT, body)))
    assert "malformed" in refused(CERT, unsorted)


def test_sign_revocations_sorts_and_deduplicates() -> None:
    crl = decode_as(
        RevocationList, decode_as(SignedRevocationList, ORG.sign_revocations([9, 3, 9], NOW)).body
    )
    assert crl.serials == (3, 9)
    with pytest.raises(ValueError):
        ORG.sign_revocations([0], NOW)


def test_a_full_revocation_list_works_and_one_more_is_refused() -> None:
    serials = range(2, 2 * MAX_REVOKED + 1, 2)  # MAX_REVOKED even serials, not 7
    full = ORG.sign_revocations(serials, NOW)
    TRUST.verify(CERT, full, NOW)
    assert "revoked" in refused(issue(serial=2 * MAX_REVOKED), full)
    with pytest.raises(ValueError):
        ORG.sign_revocations(range(1, MAX_REVOKED + 2), NOW)


def test_validity_over_30_days_is_refused_when_issuing_and_when_verifying() -> None:
    issue(not_before=NOW, not_after=NOW + MAX_CERT_VALIDITY)
    with pytest.raises(ValueError, match="30 days"):
        issue(not_before=NOW, not_after=NOW + MAX_CERT_VALIDITY + 1)
    too_long = hand_made_cert(ORG, not_before=NOW - DAY, not_after=NOW + MAX_CERT_VALIDITY)
    assert "longer than 30 days" in refused(too_long)


@pytest.mark.parametrize(
    "overrides",
    [
        {"not_before": NOW, "not_after": NOW},
        {"not_before": NOW, "not_after": NOW - 1},
        {"public_key": TECH_PUB[:31]},
        {"serial": 0},
        {"roles": []},
        {"roles": ["technician", "technician"]},
        {"roles": ["Admin"]},
        {"tech_id": ""},
        {"tech_id": "jane doe"},
        {"name": ""},
        {"name": " Jane"},
        {"name": "Jane\nDoe"},
        {"name": "Jane \u202eeoD"},
        {"org": "ACME\u2066 IT"},
        {"name": "x" * 300},
    ],
)
def test_issue_refuses_invalid_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        issue(**overrides)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_name_is_either_refused_at_issue_or_shown_exactly(name: str) -> None:
    try:
        cert = issue(name=name)
    except ValueError:
        with pytest.raises(ValueError):
            check_display_name(name)
        return
    check_display_name(name)
    assert TRUST.verify(cert, CRL, NOW).name == name


@pytest.mark.parametrize(
    "replace",
    [
        {"public_key": b"k" * 31},
        {"org_key_id": b"i" * 7},
    ],
)
def test_certificate_check_enforces_sizes(replace: dict[str, bytes]) -> None:
    cert = decode_as(Certificate, decode_as(SignedCertificate, CERT).body)
    with pytest.raises(ProtocolError):
        encode(dataclasses.replace(cert, **replace))  # type: ignore[arg-type]


def test_signed_wrappers_require_a_64_byte_signature() -> None:
    with pytest.raises(ProtocolError):
        encode(SignedCertificate(b"body", b"s" * 63))
    with pytest.raises(ProtocolError):
        encode(SignedRevocationList(b"body", b"s" * 65))


def test_trust_requires_a_32_byte_key() -> None:
    with pytest.raises(ValueError):
        OrgTrust(ORG.public_bytes[:31])


# --- case 12: signatures by the technician -------------------------------------------


def test_technician_signature_is_verified_against_the_certified_key() -> None:
    identity = TRUST.verify(CERT, CRL, NOW)
    transcript = b"RA1 tech-auth|" + bytes(32)
    TRUST.verify_signature(identity, transcript, TECH_KEY.sign(transcript))


def test_signature_over_other_data_is_refused() -> None:
    identity = TRUST.verify(CERT, CRL, NOW)
    signature = TECH_KEY.sign(b"RA1 tech-auth|" + bytes(32))
    with pytest.raises(IdentityError, match="Jane Doe"):
        TRUST.verify_signature(identity, b"RA1 tech-auth|" + bytes(31) + b"\x01", signature)


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 64, b"\x00" * 63, Ed25519PrivateKey.generate().sign(b"data")],
)
def test_bad_technician_signatures_are_refused(signature: bytes) -> None:
    identity = TRUST.verify(CERT, CRL, NOW)
    with pytest.raises(IdentityError):
        TRUST.verify_signature(identity, b"data", signature)


# --- files ---------------------------------------------------------------------------


def test_technician_credential_saves_and_loads(tmp_path: Path) -> None:
    credential = TechnicianCredential(TECH_KEY, CERT, CRL)
    save_technician_credential(tmp_path, credential)
    assert stat.S_IMODE((tmp_path / TECH_KEY_FILE).stat().st_mode) == 0o600
    assert (tmp_path / CERT_FILE).read_bytes() == CERT
    assert (tmp_path / CRL_FILE).read_bytes() == CRL
    assert (tmp_path / TECH_KEY_FILE).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_technician_credential(tmp_path)
    assert loaded.public_bytes == TECH_PUB
    assert loaded.details.serial == 7
    identity = TRUST.verify(loaded.certificate, loaded.revocations, NOW)
    TRUST.verify_signature(identity, b"hello", loaded.sign(b"hello"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_credential_refuses_a_certificate_for_another_key() -> None:
    with pytest.raises(ValueError, match="different technician key"):
        TechnicianCredential(TechnicianCredential.generate_key(), CERT, CRL)
    with pytest.raises(ValueError, match="malformed"):
        TechnicianCredential(TECH_KEY, CERT[:-1], CRL)


def test_loading_a_damaged_technician_key_is_a_value_error(tmp_path: Path) -> None:
    save_technician_credential(tmp_path, TechnicianCredential(TECH_KEY, CERT, CRL))
    (tmp_path / TECH_KEY_FILE).write_bytes(b"not a key")
    with pytest.raises(ValueError, match="PEM"):
        load_technician_credential(tmp_path)


def test_org_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "org.key"
    save_org_key(path, ORG)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_org_key(path, OTHER_ORG)
    assert path.read_bytes() == before
    assert load_org_key(path).public_bytes == ORG.public_bytes


def test_org_public_key_file_is_one_line_of_hex(tmp_path: Path) -> None:
    path = tmp_path / "org.pub"
    save_org_public_key(path, ORG.public_bytes)
    assert path.read_text() == ORG.public_bytes.hex() + "\n"
    assert load_org_public_key(path) == ORG.public_bytes
    spaced = " ".join(ORG.public_bytes.hex()[i : i + 8] for i in range(0, 64, 8))
    assert parse_org_public_key(spaced) == ORG.public_bytes


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 31, "ab" * 33])
def test_bad_org_public_key_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_org_public_key(text)
