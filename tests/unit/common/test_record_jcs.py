"""Canonical JSON (RFC 8785) for the support record: the RFC's examples, and refusals."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

from common.record.jcs import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    RecordFormatError,
    canonicalize,
    parse_canonical,
)


def test_rfc8785_sorting_example() -> None:
    # RFC 8785 section 3.2.3: members sorted by UTF-16 code units, so the
    # emoji (a surrogate pair, D83D...) sorts before U+FB33.
    data = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    values = list(json.loads(canonicalize(data)).values())
    assert values == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_rfc8785_primitive_example_without_its_numbers() -> None:
    # RFC 8785 section 3.2.2 (its "numbers" member left out: floats are refused).
    data = json.loads(
        r'{"string": "\u20ac$\u000F\u000aA\u0027\u0042\u0022\u005c\\\"\/",'
        r' "literals": [null, true, false]}'
    )
    expected = '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonicalize(data) == expected.encode("utf-8")
    # The RFC's bytes for the string's start (3.2.4): € is e2 82 ac, \u000f stays escaped.
    assert canonicalize("\u20ac$\u000f") == b'"\xe2\x82\xac$\\u000f"'


def test_rfc8785_numbers_example_is_refused() -> None:
    with pytest.raises(RecordFormatError, match="floats"):
        canonicalize({"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 1e-27]})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"0"),
        (-1, b"-1"),
        (MAX_SAFE_INTEGER, b"9007199254740991"),  # RFC 8785 appendix B
        (-MAX_SAFE_INTEGER, b"-9007199254740991"),
        ("\b\t\n\f\r\x01\x1f\x7f", b'"\\b\\t\\n\\f\\r\\u0001\\u001f\x7f"'),
        ([], b"[]"),
        ({}, b"{}"),
        ((1, "a"), b'[1,"a"]'),
        ({"b": [True, None], "a": {"d": 1, "c": 2}}, b'{"a":{"c":2,"d":1},"b":[true,null]}'),
    ],
)
def test_canonical_bytes(value: object, expected: bytes) -> None:
    assert canonicalize(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.0, "floats"),
        (math.nan, "floats"),
        (math.inf, "floats"),
        ({"t": -0.0}, "floats"),
        (MAX_SAFE_INTEGER + 1, "outside"),
        (-MAX_SAFE_INTEGER - 1, "outside"),
        ({1: "a"}, "member name is a int"),
        ({None: "a"}, "member name is a NoneType"),
        ("\ud800", "lone surrogate"),
        ({"\udc00": 1}, "lone surrogate"),
        (b"bytes", "bytes cannot"),
        ({1, 2}, "set cannot"),
    ],
)
def test_refusals(value: object, message: str) -> None:
    with pytest.raises(RecordFormatError, match=message):
        canonicalize(value)


def test_nesting_is_bounded() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    canonicalize(deep)
    with pytest.raises(RecordFormatError, match="nested"):
        canonicalize([deep])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=["Cs"]), max_size=5), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_round_trip_and_idempotence(value: object) -> None:
    data = canonicalize(value)
    assert parse_canonical(data) == value
    assert canonicalize(json.loads(data)) == data


@given(json_values)
def test_other_spellings_are_refused(value: object) -> None:
    spaced = json.dumps(value, indent=1).encode()
    if spaced != canonicalize(value):
        with pytest.raises(RecordFormatError, match="canonical"):
            parse_canonical(spaced)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1,"a":2}', "same member twice"),
        (b'{"a":1.5}', "floats"),
        (b"[1e3]", "floats"),
        (b"[NaN]", "not JSON"),
        (b"[Infinity]", "not JSON"),
        (b"[-0]", "canonical"),
        (b"[9007199254740992]", "outside"),
        (b"[" + b"9" * 100_000 + b"]", "outside"),
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[" * 10_000 + b"]" * 10_000, "nested"),
        (b'{"b":1,"a":2}', "canonical"),
        (b'"\\u00e9"', "canonical"),
    ],
)
def test_parse_refusals(data: bytes, message: str) -> None:
    with pytest.raises(RecordFormatError, match=message):
        parse_canonical(data)


def test_parse_size_limit() -> None:
    with pytest.raises(RecordFormatError, match="longer than"):
        parse_canonical(b'"' + b"a" * 100 + b'"', max_bytes=50)


@given(st.binary(max_size=200))
def test_parse_raises_only_record_format_error(data: bytes) -> None:
    try:
        parse_canonical(data)
    except RecordFormatError:
        pass
