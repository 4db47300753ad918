"""Binary encoding of typed messages: pure, bounded, and strict.

A message is a frozen dataclass that subclasses :class:`Message` and is
registered with :func:`message`. Its wire form is::

    version (1 byte) | type id (varint) | field 1 | field 2 | ...

Fields are encoded in declaration order, by their annotated type:

=====================  ==================================================
``int``                zigzag LEB128 varint, 64-bit signed range
``bool``               one byte, 0 or 1
``float``              IEEE 754 double, big-endian; NaN and inf refused
``str``                varint length + UTF-8 (strict), at most ``max`` bytes
``bytes``              varint length + raw bytes, at most ``max`` bytes
``tuple[str, ...]``    varint count + items (count at most ``max_items``)
``tuple[int, ...]``    varint count + items
``IntEnum`` subclass   varint of the value; unknown values refused
=====================  ==================================================

Length limits come from the dataclass field's metadata (``max``,
``max_items``) with conservative defaults, and every message type has a
``MAX_SIZE`` checked before anything is parsed. :func:`decode` raises
:class:`~common.errors.ProtocolError` and nothing else, whatever the input.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import struct
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from common.errors import ProtocolError


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_STR",
    "PROTOCOL_VERSION",
    "Message",
    "decode",
    "decode_as",
    "encode",
    "message",
    "registered_types",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_STR = 64 * 1024
DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_ITEMS = 256
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1
_MAX_VARINT_BYTES = 10
_DOUBLE = struct.Struct(">d")

M = TypeVar("M", bound="Message")


class Message:
    """Base of every wire message. Subclasses are frozen dataclasses.

    Attributes:
        TYPE_ID: the number that names this type on the wire.
        MAX_SIZE: the largest encoded size accepted, in bytes.
    """

    __slots__ = ()

    TYPE_ID: ClassVar[int]
    MAX_SIZE: ClassVar[int] = 64 * 1024

    def check(self) -> None:
        """Validate field values beyond their types; raise ProtocolError."""


# --- field codecs ------------------------------------------------------------

Writer = Callable[[bytearray, Any], None]
Reader = Callable[["_Cursor"], Any]


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise ProtocolError("message truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def varuint(self) -> int:
        result = 0
        for i in range(_MAX_VARINT_BYTES):
            if self.pos >= len(self.data):
                raise ProtocolError("message truncated")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i and byte == 0:
                    raise ProtocolError("non-canonical varint")
                return result
        raise ProtocolError("varint too long")


def _write_varuint(out: bytearray, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _write_int(out: bytearray, value: int) -> None:
    if not _INT_MIN <= value <= _INT_MAX:
        raise ProtocolError("integer out of range")
    _write_varuint(out, (value << 1) ^ (value >> 63))


def _read_int(cur: _Cursor) -> int:
    raw = cur.varuint()
    if raw >= 1 << 64:
        raise ProtocolError("integer out of range")
    return (raw >> 1) ^ -(raw & 1)


def _write_bool(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def _read_bool(cur: _Cursor) -> bool:
    byte = cur.take(1)[0]
    if byte > 1:
        raise ProtocolError("invalid boolean")
    return byte == 1


def _write_float(out: bytearray, value: float) -> None:
    if not math.isfinite(value):
        raise ProtocolError("float must be finite")
    out += _DOUBLE.pack(value)


def _read_float(cur: _Cursor) -> float:
    (value,) = _DOUBLE.unpack(cur.take(8))
    if not math.isfinite(value):
        raise ProtocolError("float must be finite")
    return float(value)


def _length(cur: _Cursor, limit: int, what: str) -> int:
    n = cur.varuint()
    if n > limit:
        raise ProtocolError(f"{what} longer than {limit}")
    return n


def _str_codec(limit: int) -> tuple[Writer, Reader]:
    def write(out: bytearray, value: str) -> None:
        raw = value.encode("utf-8")
        if len(raw) > limit:
            raise ProtocolError(f"text longer than {limit} bytes")
        _write_varuint(out, len(raw))
        out += raw

    def read(cur: _Cursor) -> str:
        raw = cur.take(_length(cur, limit, "text"))
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("text is not valid UTF-8") from None

    return write, read


def _bytes_codec(limit: int) -> tuple[Writer, Reader]:
    def write(out: bytearray, value: bytes) -> None:
        if len(value) > limit:
            raise ProtocolError(f"bytes longer than {limit}")
        _write_varuint(out, len(value))
        out += value

    def read(cur: _Cursor) -> bytes:
        return bytes(cur.take(_length(cur, limit, "bytes")))

    return write, read


def _enum_codec(enum_type: type[enum.IntEnum]) -> tuple[Writer, Reader]:
    def write(out: bytearray, value: enum.IntEnum) -> None:
        _write_int(out, int(enum_type(value)))

    def read(cur: _Cursor) -> enum.IntEnum:
        raw = _read_int(cur)
        try:
            return enum_type(raw)
        except ValueError:
            raise ProtocolError(f"unknown {enum_type.__name__} value") from None

    return write, read


def _tuple_codec(item: tuple[Writer, Reader], limit: int) -> tuple[Writer, Reader]:
    write_item, read_item = item

    def write(out: bytearray, value: tuple[Any, ...]) -> None:
        if len(value) > limit:
            raise ProtocolError(f"more than {limit} items")
        _write_varuint(out, len(value))
        for v in value:
            write_item(out, v)

    def read(cur: _Cursor) -> tuple[Any, ...]:
        n = _length(cur, limit, "list")
        return tuple(read_item(cur) for _ in range(n))

    return write, read


def _field_codec(hint: Any, meta: typing.Mapping[str, Any]) -> tuple[Writer, Reader]:
    origin = typing.get_origin(hint)
    if hint is bool:
        return _write_bool, _read_bool
    if hint is int:
        return _write_int, _read_int
    if hint is float:
        return _write_float, _read_float
    if hint is str:
        return _str_codec(meta.get("max", DEFAULT_MAX_STR))
    if hint is bytes:
        return _bytes_codec(meta.get("max", DEFAULT_MAX_BYTES))
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return _enum_codec(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item_meta = {"max": meta.get("item_max", DEFAULT_MAX_STR)}
            return _tuple_codec(
                _field_codec(args[0], item_meta), meta.get("max_items", DEFAULT_MAX_ITEMS)
            )
    if origin in (typing.Union, types.UnionType):
        raise TypeError("optional fields are not supported; use a sentinel value")
    raise TypeError(f"unsupported field type {hint!r}")


# --- registry ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Layout:
    cls: type[Message]
    names: tuple[str, ...]
    writers: tuple[Writer, ...]
    readers: tuple[Reader, ...]


_BY_ID: dict[int, _Layout] = {}
_BY_CLASS: dict[type[Message], _Layout] = {}


@typing.dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def message(type_id: int) -> Callable[[type[M]], type[M]]:
    """Class decorator: make a frozen dataclass and register it under type_id."""

    def register(cls: type[M]) -> type[M]:
        if type_id in _BY_ID:
            raise TypeError(f"type id {type_id} already used by {_BY_ID[type_id].cls.__name__}")
        data_cls: Any = dataclasses.dataclass(frozen=True, slots=True)(cls)
        hints = typing.get_type_hints(data_cls)
        fields = dataclasses.fields(data_cls)
        codecs = [_field_codec(hints[f.name], f.metadata) for f in fields]
        data_cls.TYPE_ID = type_id
        layout = _Layout(
            data_cls,
            tuple(f.name for f in fields),
            tuple(c[0] for c in codecs),
            tuple(c[1] for c in codecs),
        )
        _BY_ID[type_id] = layout
        _BY_CLASS[data_cls] = layout
        return typing.cast(type[M], data_cls)

    return register


def registered_types() -> dict[int, type[Message]]:
    """Every registered message type by its id (for tests and docs)."""
    return {k: v.cls for k, v in _BY_ID.items()}


def encode(msg: Message) -> bytes:
    """Encode a message. Raises ProtocolError when a value cannot be sent."""
    layout = _BY_CLASS.get(type(msg))
    if layout is None:
        raise ProtocolError(f"{type(msg).__name__} is not a registered message")
    msg.check()
    out = bytearray((PROTOCOL_VERSION,))
    _write_varuint(out, layout.cls.TYPE_ID)
    for name, write in zip(layout.names, layout.writers, strict=True):
        write(out, getattr(msg, name))
    if len(out) > layout.cls.MAX_SIZE:
        raise ProtocolError(f"{layout.cls.__name__} larger than {layout.cls.MAX_SIZE} bytes")
    return bytes(out)


def decode(data: bytes | memoryview, *, max_size: int | None = None) -> Message:
    """Decode one message.

    Args:
        data: the whole encoded message; trailing bytes are an error.
        max_size: an extra, caller-side limit on len(data).

    Raises:
        ProtocolError: for any input that is not exactly one valid message.
    """
    if max_size is not None and len(data) > max_size:
        raise ProtocolError(f"message larger than {max_size} bytes")
    cur = _Cursor(data)
    if len(data) < 2:
        raise ProtocolError("message truncated")
    if data[0] != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {data[0]}")
    cur.pos = 1
    type_id = cur.varuint()
    layout = _BY_ID.get(type_id)
    if layout is None:
        raise ProtocolError(f"unknown message type {type_id}")
    if len(data) > layout.cls.MAX_SIZE:
        raise ProtocolError(f"{layout.cls.__name__} larger than {layout.cls.MAX_SIZE} bytes")
    values = [read(cur) for read in layout.readers]
    if cur.pos != len(data):
        raise ProtocolError("trailing bytes after message")
    try:
        msg = layout.cls(*values)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"invalid {layout.cls.__name__}: {exc}") from None
    msg.check()
    return msg


def decode_as(cls: type[M], data: bytes | memoryview, *, max_size: int | None = None) -> M:
    """Decode and insist on one message type."""
    msg = decode(data, max_size=max_size)
    if not isinstance(msg, cls):
        raise ProtocolError(f"expected {cls.__name__}, got {type(msg).__name__}")
    return msg
