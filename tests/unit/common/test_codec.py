"""The codec: exact round trips, and ProtocolError for every bad input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from common.crypto import handshake, identity  # noqa: F401  (registers their types)
from common.errors import ProtocolError
from common.protocol import messages as m, relay_wire as rw
from common.protocol.channels import Channel
from common.protocol.codec import (
    PROTOCOL_VERSION,
    Message,
    decode,
    decode_as,
    encode,
    registered_types,
)


EXAMPLES: list[Message] = [
    rw.Register("deskhand/0.1"),
    rw.Registered(123, bytes(range(16)), 600),
    rw.Claim(999, "x"),
    rw.Paired(b"\x01" * 16),
    rw.PeerJoined(),
    rw.PeerLeft("gone"),
    rw.Forward(b"\x00\xff" * 100),
    rw.Login("jane", "correct horse", "deskhand/0.1"),
    rw.LoggedIn("dh1.abc.def", 3600, "jane", "Jane Doe", "technician", b"crl"),
    rw.RenewToken(),
    rw.PostRequest("Sam", "Printer offline", "Printing", "OS: Debian", "deskhand/0.1"),
    rw.Queued(b"r" * 16, b"t" * 32, 3, 600),
    rw.ResumeRequest(b"r" * 16, b"t" * 32, "deskhand/0.1"),
    rw.QueuePosition(2),
    rw.Assigned(b"s" * 16),
    rw.Requeued(1, "technician left"),
    rw.CancelRequest(),
    rw.SessionStarted(),
    rw.WatchQueue("deskhand/0.1"),
    rw.QueueEntry(
        b"r" * 16,
        rw.RequestState.WAITING,
        True,
        1_700_000_000.5,
        "Sam",
        "d",
        "Email",
        "",
        "",
        False,
    ),
    rw.QueueRemoved(b"r" * 16, rw.RemovalReason.CANCELLED),
    rw.QueueSynced(4),
    rw.ClaimRequest(b"r" * 16, "deskhand/0.1"),
    m.CapabilityRequest(("view", "control")),
    m.CapabilityGrant(()),
    m.CapabilityDeclined(("control",), 30),
    m.WindowUpdate(Channel.SCREEN, 65536),
    m.PointerMove(-5, 1080),
    m.PointerButton(1, True),
    m.Wheel(0, -3),
    m.KeyEvent(0xFFE3, True, 4),
    m.TextInput("é ß €"),
    m.ChatText(7, "hello\nworld", 1_700_000_000_000),
    m.ClipboardText("x" * 1000),
    m.AuditEvent(1, 2, "chat", "{}"),
    m.ScreenFrame(1, True, 1920, 1080, 0, (10, 20, 30, 40, m.ScreenEncoding.JPEG, 4), b"jpeg"),
    m.FrameAck(99, 1500),
    m.KeyframeRequest("viewer joined"),
    m.MonitorList((0, 0, 1920, 1080, 1920, 0, 1280, 1024), 2),
    m.SelectMonitor(0),
    m.CursorShape(1, 16, 16, 0, 0, b"zstd"),
    m.CursorPosition(10, -20, 1, True),
    m.ScreenStopped("paused"),
    m.ControlStatus(m.ControlState.USER_ACTIVE, 3),
    m.ReleaseAll(),
    m.ClipboardPolicy(True, False, 1024),
    m.FileOffer(b"t" * 16, "report.pdf", 1234, b"h" * 32),
    m.FileChunk(b"t" * 16, 0, b"data"),
    m.FileEnd(b"t" * 16, True),
    rw.Resumable(b"r" * 32, b"", rw.PeerRole.TECHNICIAN),
    rw.Resume(b"r" * 32, b"p" * 32, rw.PeerRole.USER, "deskhand/0.1"),
    rw.Resumed(),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda msg: type(msg).__name__)
def test_round_trip_is_exact(msg: Message) -> None:
    data = encode(msg)
    assert data[0] == PROTOCOL_VERSION
    assert decode(data) == msg
    assert encode(decode(data)) == data


def test_every_app_and_relay_type_has_an_example() -> None:
    covered = {type(msg) for msg in EXAMPLES}
    for cls in registered_types().values():
        # Every module of common.protocol: relay_wire and the messages.py feature modules.
        if cls.__module__.startswith("common.protocol."):
            assert cls in covered, f"{cls.__name__} has no round-trip example"


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda msg: type(msg).__name__)
def test_every_truncation_is_refused(msg: Message) -> None:
    data = encode(msg)
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode(data[:cut])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ProtocolError, match="trailing"):
        decode(encode(m.FrameAck(1)) + b"\x00")


def test_unknown_version_and_type() -> None:
    data = encode(m.FrameAck(1))
    with pytest.raises(ProtocolError, match="version"):
        decode(bytes([PROTOCOL_VERSION + 1]) + data[1:])
    with pytest.raises(ProtocolError, match="unknown message type"):
        decode(bytes([PROTOCOL_VERSION, 0x7F]))


def test_limits() -> None:
    with pytest.raises(ProtocolError):
        encode(m.ChatText(1, "x" * 9000))
    with pytest.raises(ProtocolError):
        encode(m.PointerMove(1 << 63, 0))
    # A length prefix larger than the field's limit is refused before reading.
    # ChatText (type 96), msg_id 1, then a text length of 2 MiB.
    data = bytes([PROTOCOL_VERSION, 96, 2, 0xFF, 0xFF, 0x7F])
    with pytest.raises(ProtocolError, match="longer than 8192"):
        decode(data)
    with pytest.raises(ProtocolError, match="larger"):
        decode(encode(m.FrameAck(1)), max_size=2)


def test_validation_runs_on_decode() -> None:
    frame = m.ScreenFrame(1, True, 100, 100, 0, (0, 0, 10, 10, m.ScreenEncoding.FILL, 4), b"\0" * 4)
    data = encode(frame)
    # Re-encode with x=95 (without the encoder's check): the rectangle leaves the screen.
    moved = dataclasses.replace(frame, rects=(95, 0, 10, 10, m.ScreenEncoding.FILL, 4))
    with pytest.raises(ProtocolError, match="outside the screen"):
        decode(_encode_unchecked(moved))
    assert decode(data) == frame


def _encode_unchecked(msg: Message) -> bytes:
    check = type(msg).check
    try:
        type(msg).check = lambda self: None  # type: ignore[method-assign]
        return encode(msg)
    finally:
        type(msg).check = check  # type: ignore[method-assign]


def test_strict_text_and_bool_and_float() -> None:
    good = encode(m.TextInput("ab"))
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode(good[:-2] + b"\xff\xfe")
    press = bytearray(encode(m.PointerButton(1, True)))
    press[-1] = 2
    with pytest.raises(ProtocolError, match="boolean"):
        decode(bytes(press))


def test_non_canonical_varint_is_refused() -> None:
    data = encode(m.FrameAck(1))
    with pytest.raises(ProtocolError):
        decode(data[:-1] + b"\x82\x00")


def test_decode_as_checks_type() -> None:
    with pytest.raises(ProtocolError, match="expected"):
        decode_as(m.ChatText, encode(m.FrameAck(1)))


def test_enum_values_are_checked() -> None:
    data = bytearray(encode(m.WindowUpdate(Channel.FILE, 10)))  # channel is the 3rd byte
    data[2] = 0x7E  # channel 63
    with pytest.raises(ProtocolError):
        decode(bytes(data))


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        msg = decode(data)
    except ProtocolError:
        return
    # Whatever decodes is canonical: it encodes back to the same bytes.
    assert encode(msg) == data


@settings(max_examples=300)
@given(st.sampled_from(EXAMPLES), st.integers(min_value=0, max_value=10_000), st.integers(0, 255))
def test_mutated_messages_raise_only_protocol_error(msg: Message, pos: int, value: int) -> None:
    data = bytearray(encode(msg))
    data[pos % len(data)] = value
    try:
        decoded = decode(bytes(data))
    except ProtocolError:
        return
    assert encode(decoded) == bytes(data)


@given(st.text(max_size=200), st.integers(-(1 << 63), (1 << 63) - 1))
def test_text_and_integers_round_trip(text: str, number: int) -> None:
    msg = m.ChatText(number, text, 0)
    assert decode(encode(msg)) == msg


@given(st.binary(max_size=3000))
def test_forward_fast_path_matches_the_codec(payload: bytes) -> None:
    frame = rw.forward_frame(payload)
    assert frame == encode(rw.Forward(payload))
    assert rw.forward_payload(frame) == payload


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_forward_fast_path_refuses_what_the_codec_refuses(tail: bytes) -> None:
    frame = rw.FORWARD_PREFIX + tail
    try:
        expected = decode(frame)
    except ProtocolError:
        with pytest.raises(ProtocolError):
            rw.forward_payload(frame)
        return
    assert isinstance(expected, rw.Forward)
    assert rw.forward_payload(frame) == expected.payload


def test_forward_payload_ignores_other_messages() -> None:
    assert rw.forward_payload(encode(rw.PeerJoined())) is None
