"""The admin commands: org create, cert issue/list/revoke/crl."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.crypto.identity import (
    Certificate,
    OrgTrust,
    RevocationList,
    SignedCertificate,
    SignedRevocationList,
    TechnicianCredential,
)
from common.errors import IdentityError
from common.keyfiles import load_org_key, load_org_public_key, load_technician_credential
from common.protocol.codec import decode_as
from relay.admin import main


NOW = 1_750_000_000
DAY = 24 * 3600


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def org_dir(tmp_path: Path, clock: Clock) -> Path:
    directory = tmp_path / "org"
    assert main(["org", "create", str(directory), "--name", "ACME IT"], now=clock) == 0
    return directory


def run(clock: Clock, *argv: str | Path) -> int:
    return main([str(a) for a in argv], now=clock)


def issue(clock: Clock, org_dir: Path, out: Path, tech_id: str, name: str, *extra: str) -> int:
    argv: list[str | Path] = [
        "cert",
        "issue",
        "--org-dir",
        org_dir,
        "--tech-id",
        tech_id,
        "--name",
        name,
    ]
    return run(clock, *argv, "--out", out, *extra)


def serials_in(crl: bytes) -> tuple[int, ...]:
    return decode_as(RevocationList, decode_as(SignedRevocationList, crl).body).serials


def cert_of(path: Path) -> Certificate:
    return decode_as(Certificate, decode_as(SignedCertificate, path.read_bytes()).body)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deskhand-relay: error: ")
    return lines[0]


# --- end to end ----------------------------------------------------------------------


def test_create_issue_revoke_then_clients_refuse_only_the_revoked(
    tmp_path: Path, org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    jane, bob = tmp_path / "jane", tmp_path / "bob"
    assert issue(clock, org_dir, jane, "jane@acme", "Jane Doe") == 0
    assert issue(clock, org_dir, bob, "bob@acme", "Bob Roe", "--days", "7") == 0

    clock.t += 3600
    capsys.readouterr()
    assert run(clock, "cert", "list", "--org-dir", org_dir) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["SERIAL", "TECH", "ID", "NAME", "VALID", "UNTIL", "STATUS"]
    assert listing[1].split()[:2] == ["1", "jane@acme"] and listing[1].endswith("valid")
    assert listing[2].split()[:2] == ["2", "bob@acme"] and listing[2].endswith("valid")

    assert run(clock, "cert", "revoke", "--org-dir", org_dir, "2") == 0
    assert run(clock, "cert", "list", "--org-dir", org_dir) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("revoked")

    clock.t += 3600
    assert run(clock, "cert", "crl", "--org-dir", org_dir) == 0
    crl = (org_dir / "revocations.crl").read_bytes()
    assert serials_in(crl) == (2,)

    # What a user client does with the files: pin org.pub, take the relay's list.
    trust = OrgTrust(load_org_public_key(org_dir / "org.pub"))
    jane_credential = load_technician_credential(jane)
    identity = trust.verify(jane_credential.certificate, crl, clock.t)
    assert (identity.tech_id, identity.name, identity.org) == ("jane@acme", "Jane Doe", "ACME IT")
    assert identity.serial == 1
    assert identity.roles == ("technician",)
    assert identity.not_after == NOW + 30 * DAY
    trust.verify_signature(identity, b"transcript", jane_credential.sign(b"transcript"))
    bob_credential = load_technician_credential(bob)
    with pytest.raises(IdentityError, match="revoked"):
        trust.verify(bob_credential.certificate, crl, clock.t)
    # Bob's own copy predates the revocation: only a fresh list from the org counts.
    assert serials_in(bob_credential.revocations) == ()


def test_org_create_writes_the_org_directory(
    tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    org_dir = tmp_path / "new" / "org"
    assert run(clock, "org", "create", org_dir, "--name", "ACME IT") == 0
    key = load_org_key(org_dir / "org.key")
    assert stat.S_IMODE((org_dir / "org.key").stat().st_mode) == 0o600
    assert (org_dir / "org.pub").read_text() == key.public_bytes.hex() + "\n"
    info = json.loads((org_dir / "org.json").read_text())
    assert info["name"] == "ACME IT"
    assert info["key_id"] == key.key_id.hex()
    assert json.loads((org_dir / "issued.json").read_text())["certificates"] == []
    crl = (org_dir / "revocations.crl").read_bytes()
    assert OrgTrust(key.public_bytes).verify_revocations(crl, NOW).serials == ()
    assert key.public_bytes.hex() in capsys.readouterr().out


def test_org_name_defaults_to_the_directory_name(tmp_path: Path, clock: Clock) -> None:
    assert run(clock, "org", "create", tmp_path / "Contoso Help") == 0
    assert (
        json.loads((tmp_path / "Contoso Help" / "org.json").read_text())["name"] == "Contoso Help"
    )


def test_org_create_refuses_an_existing_org(
    org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (org_dir / "org.key").read_bytes()
    capsys.readouterr()
    assert run(clock, "org", "create", org_dir) == 2
    assert "org.key already exists" in one_error_line(capsys)
    assert (org_dir / "org.key").read_bytes() == before


def test_org_create_refuses_a_bad_name(
    tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(clock, "org", "create", tmp_path / "o", "--name", "ACME\u202e TI") == 2
    assert "organisation name" in one_error_line(capsys)
    assert not (tmp_path / "o" / "org.key").exists()


# --- cert issue ----------------------------------------------------------------------


def test_issue_writes_a_private_key_and_records_the_certificate(
    tmp_path: Path, org_dir: Path, clock: Clock
) -> None:
    out = tmp_path / "tech"
    assert issue(clock, org_dir, out, "jane", "Jane", "--roles", "technician,supervisor") == 0
    assert stat.S_IMODE((out / "technician.key").stat().st_mode) == 0o600
    cert = cert_of(out / "technician.cert")
    assert cert.roles == ("technician", "supervisor")
    assert (cert.not_before, cert.not_after) == (NOW, NOW + 30 * DAY)
    assert cert.public_key == load_technician_credential(out).public_bytes
    (entry,) = json.loads((org_dir / "issued.json").read_text())["certificates"]
    assert entry["serial"] == cert.serial == 1
    assert entry["public_key"] == cert.public_key.hex()
    assert entry["revoked_at"] is None


def test_issue_certifies_an_existing_public_key(
    tmp_path: Path, org_dir: Path, clock: Clock
) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    out = tmp_path / "tech"
    assert issue(clock, org_dir, out, "jane", "Jane", "--public-key", public.hex()) == 0
    assert not (out / "technician.key").exists()
    assert cert_of(out / "technician.cert").public_key == public
    trust = OrgTrust(load_org_public_key(org_dir / "org.pub"))
    credential = TechnicianCredential(
        key, (out / "technician.cert").read_bytes(), (out / "revocations.crl").read_bytes()
    )
    trust.verify(credential.certificate, credential.revocations, NOW)


def test_renewal_keeps_the_key_and_gets_a_new_serial(
    tmp_path: Path, org_dir: Path, clock: Clock
) -> None:
    out = tmp_path / "tech"
    assert issue(clock, org_dir, out, "jane", "Jane", "--days", "1") == 0
    old = load_technician_credential(out)
    clock.t += DAY
    assert issue(clock, org_dir, out, "jane", "Jane", "--public-key", old.public_bytes.hex()) == 0
    new = load_technician_credential(out)
    assert new.public_bytes == old.public_bytes
    assert (old.details.serial, new.details.serial) == (1, 2)


def test_serials_are_never_reused_after_revocation(
    tmp_path: Path, org_dir: Path, clock: Clock
) -> None:
    assert issue(clock, org_dir, tmp_path / "a", "a", "A") == 0
    assert issue(clock, org_dir, tmp_path / "b", "b", "B") == 0
    assert run(clock, "cert", "revoke", "--org-dir", org_dir, "2") == 0
    assert issue(clock, org_dir, tmp_path / "c", "c", "C") == 0
    assert cert_of(tmp_path / "c" / "technician.cert").serial == 3


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--days", "31"], "--days must be between 1 and 30"),
        (["--days", "0"], "--days must be between 1 and 30"),
        (["--days", "x"], "invalid int value"),
        (["--public-key", "zz"], "--public-key must be hexadecimal"),
        (["--public-key", "ab" * 31], "64 hex digits"),
        (["--roles", "Boss"], "role"),
        (["--roles", ","], "roles"),
    ],
)
def test_issue_refuses_bad_arguments(
    tmp_path: Path,
    org_dir: Path,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    expected: str,
) -> None:
    capsys.readouterr()
    assert issue(clock, org_dir, tmp_path / "t", "jane", "Jane", *extra) == 2
    assert expected in one_error_line(capsys)
    assert json.loads((org_dir / "issued.json").read_text())["certificates"] == []


@pytest.mark.parametrize(
    ("tech_id", "name", "expected"),
    [
        ("jane doe", "Jane", "technician id"),
        ("jane", "", "technician name"),
        ("jane", "Jane\nDoe", "technician name contains a control character"),
    ],
)
def test_issue_refuses_bad_identities(
    tmp_path: Path,
    org_dir: Path,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    tech_id: str,
    name: str,
    expected: str,
) -> None:
    capsys.readouterr()
    assert issue(clock, org_dir, tmp_path / "t", tech_id, name) == 2
    assert expected in one_error_line(capsys)


def test_issue_refuses_to_replace_a_technician_key(
    tmp_path: Path, org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tech"
    assert issue(clock, org_dir, out, "jane", "Jane") == 0
    key_before = (out / "technician.key").read_bytes()
    capsys.readouterr()
    assert issue(clock, org_dir, out, "jane", "Jane") == 2
    assert "technician.key already exists" in one_error_line(capsys)
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    assert issue(clock, org_dir, out, "jane", "Jane", "--public-key", other) == 2
    assert "different key" in one_error_line(capsys)
    assert (out / "technician.key").read_bytes() == key_before


# --- cert list / revoke / crl ----------------------------------------------------------


def test_list_json_reports_valid_expired_and_revoked(
    tmp_path: Path, org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert issue(clock, org_dir, tmp_path / "a", "a", "A", "--days", "1") == 0
    assert issue(clock, org_dir, tmp_path / "b", "b", "B", "--days", "5") == 0
    assert issue(clock, org_dir, tmp_path / "c", "c", "C", "--days", "5") == 0
    assert run(clock, "cert", "revoke", "--org-dir", org_dir, "3") == 0
    clock.t += 2 * DAY
    capsys.readouterr()
    assert run(clock, "cert", "list", "--org-dir", org_dir, "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["serial"], r["tech_id"], r["status"]) for r in rows] == [
        (1, "a", "expired"),
        (2, "b", "valid"),
        (3, "c", "revoked"),
    ]
    assert rows[2]["revoked_at"] == NOW


def test_list_of_an_empty_org_says_so(
    org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(clock, "cert", "list", "--org-dir", org_dir) == 0
    assert "no certificates" in capsys.readouterr().out


def test_revoking_twice_is_harmless(
    tmp_path: Path, org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert issue(clock, org_dir, tmp_path / "a", "a", "A") == 0
    assert run(clock, "cert", "revoke", "--org-dir", org_dir, "1") == 0
    clock.t += 60
    capsys.readouterr()
    assert run(clock, "cert", "revoke", "--org-dir", org_dir, "1") == 0
    assert "already revoked" in capsys.readouterr().out
    entry = json.loads((org_dir / "issued.json").read_text())["certificates"][0]
    assert entry["revoked_at"] == NOW


@pytest.mark.parametrize(
    ("serial", "expected"), [("9", "no certificate with serial 9"), ("x", "invalid int")]
)
def test_revoke_refuses_an_unknown_serial(
    tmp_path: Path,
    org_dir: Path,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    serial: str,
    expected: str,
) -> None:
    assert issue(clock, org_dir, tmp_path / "a", "a", "A") == 0
    crl_before = (org_dir / "revocations.crl").read_bytes()
    capsys.readouterr()
    assert run(clock, "cert", "revoke", "--org-dir", org_dir, serial) == 2
    assert expected in one_error_line(capsys)
    assert (org_dir / "revocations.crl").read_bytes() == crl_before


def test_crl_re_signs_a_fresh_list_that_clients_accept(
    tmp_path: Path, org_dir: Path, clock: Clock
) -> None:
    trust = OrgTrust(load_org_public_key(org_dir / "org.pub"))
    first = (org_dir / "revocations.crl").read_bytes()
    clock.t += DAY + 1
    with pytest.raises(IdentityError, match="out of date"):
        trust.verify_revocations(first, clock.t)
    out = tmp_path / "published.crl"
    assert run(clock, "cert", "crl", "--org-dir", org_dir, "--out", out) == 0
    fresh = (org_dir / "revocations.crl").read_bytes()
    assert out.read_bytes() == fresh
    assert trust.verify_revocations(fresh, clock.t).issued_at == clock.t


def test_revoked_serials_leave_the_list_a_week_after_expiry(
    tmp_path: Path, org_dir: Path, clock: Clock
) -> None:
    assert issue(clock, org_dir, tmp_path / "a", "a", "A", "--days", "1") == 0
    assert run(clock, "cert", "revoke", "--org-dir", org_dir, "1") == 0
    clock.t = NOW + 8 * DAY - 1
    assert run(clock, "cert", "crl", "--org-dir", org_dir) == 0
    assert serials_in((org_dir / "revocations.crl").read_bytes()) == (1,)
    clock.t = NOW + 8 * DAY
    assert run(clock, "cert", "crl", "--org-dir", org_dir) == 0
    assert serials_in((org_dir / "revocations.crl").read_bytes()) == ()


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "required"),
        (["frob"], "invalid choice"),
        (["cert"], "required"),
        (["cert", "list"], "--org-dir"),
        (["cert", "issue", "--org-dir", "x"], "required"),
        (["cert", "list", "--org-dir", "x", "--bogus"], "unrecognized arguments"),
    ],
)
def test_usage_errors_print_one_line_and_return_2(
    clock: Clock, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(argv, now=clock) == 2
    assert expected in one_error_line(capsys)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command", [["list"], ["revoke", "1"], ["crl"]])
def test_a_missing_org_directory_is_one_clear_line(
    tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert run(clock, "cert", command[0], "--org-dir", tmp_path / "nope", *command[1:]) == 2
    assert "no organisation key" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ({"issued.json": "{"}, "issued.json is not valid JSON"),
        ({"issued.json": '{"certificates": [{"serial": "1"}]}'}, "issued.json is damaged"),
        ({"org.json": "[]"}, "org.json is damaged"),
        ({"org.key": "junk"}, "org key file is not"),
    ],
)
def test_a_damaged_org_directory_is_one_clear_line(
    org_dir: Path,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    damage: dict[str, str],
    expected: str,
) -> None:
    for name, text in damage.items():
        (org_dir / name).write_text(text)
    capsys.readouterr()
    assert run(clock, "cert", "list", "--org-dir", org_dir) == 2
    assert expected in one_error_line(capsys)


def test_a_missing_registry_is_one_clear_line(
    org_dir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    (org_dir / "issued.json").unlink()
    capsys.readouterr()
    assert run(clock, "cert", "crl", "--org-dir", org_dir) == 2
    assert "issued.json is missing" in one_error_line(capsys)


def test_help_returns_0_without_exiting(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cert", "issue", "--help"], now=clock) == 0
    assert "--tech-id" in capsys.readouterr().out
