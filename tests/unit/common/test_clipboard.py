"""The shared ClipboardSync: permission readers, size limits, events, no echo."""

from __future__ import annotations

import pytest

from common.clipboard import ClipboardSync, ClipboardTransfer, Flow, Outcome
from common.protocol.messages import ClipboardPolicy, ClipboardText


class FakeClipboard:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def set_text(self, text: str) -> None:
        self.texts.append(text)


class Switches:
    def __init__(self, send: bool = True, receive: bool = True) -> None:
        self.send = send
        self.receive = receive


PEER_ON = ClipboardPolicy(send=True, receive=True, max_bytes=1000)


def started(switches: Switches, max_bytes: int = 1 << 20) -> tuple[ClipboardSync, FakeClipboard]:
    port = FakeClipboard()
    sync = ClipboardSync(
        port,
        may_send=lambda: switches.send,
        may_receive=lambda: switches.receive,
        max_bytes=max_bytes,
    )
    sync.refresh()
    return sync, port


def test_nothing_moves_while_this_side_does_not_allow_it() -> None:
    sync, port = started(Switches(False, False))
    assert sync.messages_to_send() == [ClipboardPolicy(False, False, 1 << 20)]
    sync.receive(PEER_ON)
    sync.local_changed("secret")
    assert sync.messages_to_send() == []
    assert sync.events_received() == []  # our own clipboard is none of the session's business
    sync.receive(ClipboardText("pushed"))
    assert port.texts == []
    assert sync.events_received() == [ClipboardTransfer(Flow.INBOUND, 6, Outcome.NOT_ALLOWED)]


def test_both_directions_and_no_echo() -> None:
    sync, port = started(Switches(), max_bytes=100)
    assert sync.messages_to_send() == [ClipboardPolicy(True, True, 100)]
    sync.local_changed("before the peer is ready")
    assert sync.messages_to_send() == []
    assert sync.events_received()[0].outcome is Outcome.PEER_REFUSES
    sync.receive(PEER_ON)
    sync.local_changed("héllo")
    assert sync.messages_to_send() == [ClipboardText("héllo")]
    sync.receive(ClipboardText("from peer €"))
    assert port.texts == ["from peer €"]
    sync.local_changed("from peer €")  # our own write, reported back by the clipboard
    assert sync.messages_to_send() == []
    assert sync.events_received() == [
        ClipboardTransfer(Flow.OUTBOUND, 6, Outcome.SENT),
        ClipboardTransfer(Flow.INBOUND, 13, Outcome.APPLIED),
    ]


def test_size_limits_both_ways() -> None:
    sync, port = started(Switches(), max_bytes=10)
    sync.receive(ClipboardPolicy(send=True, receive=True, max_bytes=5))
    sync.local_changed("123456")  # fits ours, not the peer's
    sync.local_changed("12345678901")  # fits neither
    sync.receive(ClipboardText("x" * 11))
    assert sync.messages_to_send()[1:] == []
    assert port.texts == []
    assert [e.outcome for e in sync.events_received()] == [Outcome.TOO_LARGE] * 3


def test_a_change_of_permission_is_announced_once_and_enforced_at_once() -> None:
    switches = Switches()
    sync, port = started(switches)
    sync.messages_to_send()
    sync.receive(PEER_ON)
    switches.send = False
    sync.refresh()
    assert sync.messages_to_send() == [ClipboardPolicy(False, True, 1 << 20)]
    sync.refresh()  # no change, no announcement
    assert sync.messages_to_send() == []
    sync.local_changed("private")
    assert sync.messages_to_send() == []
    switches.receive = False  # e.g. the user paused: enforced before any announcement
    sync.receive(ClipboardText("pushed anyway"))
    assert port.texts == []
    assert sync.events_received()[-1].outcome is Outcome.NOT_ALLOWED


def test_invalid_limit() -> None:
    with pytest.raises(ValueError):
        ClipboardSync(FakeClipboard(), may_send=lambda: True, may_receive=lambda: True, max_bytes=0)
