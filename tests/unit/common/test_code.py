"""Pairing codes: format, normalisation, single use and expiry."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from common.crypto.code import PairingCode, parse_code, read_code
from common.errors import CodeError


def test_generate_and_display() -> None:
    digits = itertools.cycle([4, 1, 7, 3, 8, 2])
    code = PairingCode.generate(512, now=100.0, randbelow=lambda n: next(digits))
    assert code.display == "512-417-382"
    assert parse_code(code.display) == (512, "417382")


@pytest.mark.parametrize(
    "text",
    [
        "512-417-382",
        "512 417 382",
        "512417382",
        " 512-417 382 ",
        "\uff15\uff11\uff12-\uff14\uff11\uff17-\uff13\uff18\uff12",
    ],  # full-width
)
def test_parse_accepts_what_people_type(text: str) -> None:
    assert parse_code(text) == (512, "417382")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12-345-678",
        "512-417-38",
        "51234-417-382",
        "abc-def-ghi",
        "012-345-678",
        "0512-417-382",
        "512/417/382",
    ],
)
def test_parse_refuses_non_codes(text: str) -> None:
    with pytest.raises(CodeError):
        parse_code(text)


def test_a_busy_relays_four_digit_nameplates() -> None:
    # Issue 14: the relay hands out NNNN-SSS-SSS once most 3-digit nameplates are in use.
    assert parse_code("5123-417-382") == (5123, "417382")
    assert parse_code("5123 417382") == (5123, "417382")
    code = PairingCode(5123, "417382", issued_at=0.0)
    assert code.display == "5123-417-382"
    assert parse_code(code.display) == (5123, "417382")
    assert PairingCode(512, "417382", issued_at=0.0).display == "512-417-382"


def test_single_use() -> None:
    code = PairingCode.generate(100, now=0.0)
    assert code.consume(1.0) == code.secret
    with pytest.raises(CodeError, match="already used"):
        code.consume(2.0)


def test_expiry() -> None:
    code = PairingCode.generate(100, now=0.0, lifetime=600.0)
    assert not code.expired(599.9)
    with pytest.raises(CodeError, match="expired"):
        code.consume(600.0)


def test_secret_comes_from_the_given_randomness() -> None:
    calls: list[int] = []

    def randbelow(n: int) -> int:
        calls.append(n)
        return 9

    code = PairingCode.generate(100, now=0.0, randbelow=randbelow)
    assert code.secret == "999999"
    assert calls == [10] * 6


@given(st.text(max_size=40))
def test_parse_raises_only_code_error(text: str) -> None:
    try:
        nameplate, secret = parse_code(text)
    except CodeError:
        return
    assert 100 <= nameplate <= 999 and len(secret) == 6 and secret.isdigit()


# --- nine secret digits after repeated failures (issue 14) ------------------------


def test_nine_digit_codes_display_and_read_back() -> None:
    digits = itertools.cycle([4, 1, 7, 3, 8, 2, 9, 0, 6])
    code = PairingCode.generate(512, now=0.0, digits=9, randbelow=lambda n: next(digits))
    assert code.display == "512-417-382-906"
    assert read_code(code.display) == (512, "417382906")
    assert read_code("512 417382906") == (512, "417382906")
    # The technician's side reads both kinds; the length tells.
    assert read_code("512-417-382") == (512, "417382")


@pytest.mark.parametrize("text", ["512-417-382-90", "512-417-382-906-12", "012-417-382-906", ""])
def test_read_code_refuses_other_lengths(text: str) -> None:
    with pytest.raises(CodeError):
        read_code(text)


@given(st.text(max_size=40))
def test_read_code_raises_only_code_error(text: str) -> None:
    try:
        nameplate, secret = read_code(text)
    except CodeError:
        return
    assert 100 <= nameplate <= 9999 and len(secret) in (6, 9) and secret.isdigit()
