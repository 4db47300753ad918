"""Canonical JSON (RFC 8785, JCS) for the support record, integers and strings only.

The record signs and hashes the exact bytes this module produces, so two
programs that hold the same event always agree on its bytes. Only the part
of JCS that the record needs is implemented:

- ``null``, ``true``, ``false``, strings, arrays and objects as RFC 8785 says:
  object members sorted by the UTF-16 code units of their names, no
  whitespace, strings escaped as ECMAScript's ``JSON.stringify`` does and
  written as UTF-8;
- integers within I-JSON's exact range, ±(2**53 - 1), written in decimal
  (ECMAScript prints those exactly like this).

Floats are refused, NaN and infinities with them: record times are integer
milliseconds, so the number serialisation of RFC 8785 section 3.2.2.3 (the
hard part of JCS) is never needed. Lone surrogates and non-string member
names are refused too.

Why not a library: the record needs this strict subset and a refusal of
floats; a general JCS library would accept floats and leave us the checks.
The code is short and tested against the RFC's own examples.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from common.errors import ProtocolError


__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "RecordFormatError",
    "canonicalize",
    "parse_canonical",
]

MAX_SAFE_INTEGER = 2**53 - 1
# Record events nest two or three levels; the bound keeps hostile input from
# reaching the recursion limit.
MAX_DEPTH = 16

# Python's encoder escapes exactly as ECMAScript does once non-ASCII is kept
# as is: the short forms \b \t \n \f \r \" \\, other controls as lowercase
# \u00xx, everything else (DEL and above included) literally.
_encode_string = json.JSONEncoder(ensure_ascii=False).encode


class RecordFormatError(ProtocolError):
    """A value cannot be written as record JSON, or bytes are not record JSON."""


def canonicalize(value: object) -> bytes:
    """The RFC 8785 bytes of value (None, bool, int, str, list/tuple, dict).

    Raises:
        RecordFormatError: a float, an integer out of the exact range, a
            lone surrogate, a non-string member name, another type, or
            nesting deeper than MAX_DEPTH.
    """
    parts: list[str] = []
    _write(value, parts, 0)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise RecordFormatError("a string holds a lone surrogate (not valid Unicode)") from None


def _write(value: object, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise RecordFormatError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise RecordFormatError(
                "an integer is outside ±(2**53 - 1), which JSON cannot hold exactly"
            )
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise RecordFormatError("floats are not allowed in the record (times are integer ms)")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Mapping):
        names = list(value)
        for name in names:
            if not isinstance(name, str):
                raise RecordFormatError(
                    f"an object member name is a {type(name).__name__}, not a string"
                )
        # RFC 8785 3.2.3: sort by UTF-16 code units; UTF-16-BE bytes compare alike.
        try:
            names.sort(key=lambda n: n.encode("utf-16-be"))
        except UnicodeEncodeError:
            raise RecordFormatError("a member name holds a lone surrogate") from None
        out.append("{")
        for i, name in enumerate(names):
            if i:
                out.append(",")
            out.append(_encode_string(name))
            out.append(":")
            _write(value[name], out, depth + 1)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise RecordFormatError(f"a {type(value).__name__} cannot be written as record JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise RecordFormatError("an object has the same member twice")
    return result


def _no_float(text: str) -> Any:
    raise RecordFormatError("floats are not allowed in the record")


def _no_constant(text: str) -> Any:
    raise RecordFormatError(f"{text} is not JSON")


def _exact_int(text: str) -> int:
    # Checked on the digits first, so a 100,000-digit number costs nothing.
    if len(text.lstrip("-")) > 16 or abs(number := int(text)) > MAX_SAFE_INTEGER:
        raise RecordFormatError("an integer is outside ±(2**53 - 1)")
    return number


def parse_canonical(data: bytes, *, max_bytes: int = 1 << 20) -> Any:
    """Parse record JSON, and demand that data is already in canonical form.

    A verifier hashes what it was given; demanding the canonical form means
    the bytes it checks are the bytes that were signed, with no second
    spelling of the same event.

    Raises:
        RecordFormatError: not UTF-8, not JSON, a float, NaN, a duplicate
            member, an integer out of range, too deep, over max_bytes, or
            not canonical. Nothing else, whatever the bytes.
    """
    if len(data) > max_bytes:
        raise RecordFormatError(f"longer than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordFormatError("not UTF-8") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_int=_exact_int,
            parse_constant=_no_constant,
        )
    except RecordFormatError:
        raise
    except RecursionError:
        raise RecordFormatError("nested too deeply") from None
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise RecordFormatError(f"not JSON: {e}") from None
    if canonicalize(value) != data:
        raise RecordFormatError("not in canonical form (RFC 8785)")
    return value
