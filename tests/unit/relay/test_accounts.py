"""Account names, passwords (Argon2id) and bearer tokens."""

from __future__ import annotations

import pytest

from relay.accounts import (
    check_account_name,
    check_password,
    check_role,
    dummy_verify,
    hash_password,
    issue_token,
    secret_matches,
    split_token,
    verify_password,
)


def test_argon2id_hashes_verify_and_use_the_owasp_minimum() -> None:
    phc = hash_password("correct horse battery staple")
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password("correct horse battery staple", phc)
    assert not verify_password("correct horse battery stapl", phc)
    assert hash_password("same password here") != hash_password("same password here")  # salted


def test_a_damaged_hash_never_verifies() -> None:
    assert not verify_password("x", "not a phc string")
    assert not verify_password("x", "")


def test_dummy_verify_takes_a_password_and_returns() -> None:
    dummy_verify("anything at all")


@pytest.mark.parametrize("name", ["jane", "jane.doe@acme.example", "J0", "a" * 128])
def test_good_account_names(name: str) -> None:
    check_account_name(name)


@pytest.mark.parametrize("name", ["", "-jane", "jane doe", "jané", "a" * 129, "jane\n"])
def test_bad_account_names(name: str) -> None:
    with pytest.raises(ValueError, match="account name"):
        check_account_name(name)


def test_passwords_and_roles() -> None:
    check_password("twelve chars")
    with pytest.raises(ValueError, match="at least 12"):
        check_password("eleven char")
    with pytest.raises(ValueError, match="at most 1024 bytes"):
        check_password("é" * 513)
    for role in ("technician", "supervisor", "admin"):
        check_role(role)
    with pytest.raises(ValueError, match="role must be one of"):
        check_role("root")


def test_tokens_split_into_id_and_secret_hash() -> None:
    token = issue_token()
    assert token.text.startswith("dh1.")
    assert "secret" not in repr(token) and token.text not in repr(token)
    parts = split_token(token.text)
    assert parts is not None
    token_id, secret_hash = parts
    assert token_id == token.token_id
    assert secret_matches(token.secret_hash, secret_hash)
    assert token.text.split(".")[2].encode() not in token.secret_hash


def test_token_randomness_is_injected() -> None:
    a = issue_token(lambda n: b"\x01" * n)
    b = issue_token(lambda n: b"\x01" * n)
    assert a == b
    assert issue_token() != issue_token()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dh1",
        "dh2.AAAAAAAAAAAAAAAA." + "A" * 43,
        "dh1.short." + "A" * 43,
        "dh1.AAAAAAAAAAAAAAAA.x",
    ],
)
def test_malformed_tokens(text: str) -> None:
    assert split_token(text) is None
