"""The input, control-status and clipboard messages: round trips and refusals."""

from __future__ import annotations

import pytest

from common.errors import ProtocolError
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.protocol.codec import Message, decode, encode


EXAMPLES: list[Message] = [
    m.ControlStatus(m.ControlState.USER_ACTIVE, 3),
    m.PointerMove(-32768, 32767),
    m.PointerButton(9, False),
    m.Wheel(-120, 240),
    m.KeyEvent(0x010020AC, True, m.SHIFT_MASK | m.CONTROL_MASK),
    m.TextInput("é ß € 日本"),
    m.ReleaseAll(),
    m.ClipboardText("x"),
    m.ClipboardPolicy(send=True, receive=False, max_bytes=1024),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda msg: type(msg).__name__)
def test_round_trip(msg: Message) -> None:
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize(
    "msg",
    [
        m.PointerMove(40_000, 0),
        m.PointerButton(4, True),  # the wheel is Wheel's business
        m.PointerButton(7, False),
        m.PointerButton(0, True),
        m.KeyEvent(0, True),
        m.Wheel(0, 10_001),
        m.ControlStatus(m.ControlState.OFF, -1),
        m.ClipboardPolicy(True, True, m.CLIPBOARD_MAX_TEXT + 1),
    ],
    ids=repr,
)
def test_out_of_range_values_are_refused(msg: Message) -> None:
    with pytest.raises(ProtocolError):
        encode(msg)


def test_channels() -> None:
    assert m.ControlStatus.CHANNEL is Channel.CONTROL
    assert m.ReleaseAll.CHANNEL is Channel.INPUT
    assert m.ClipboardPolicy.CHANNEL is Channel.CLIPBOARD
