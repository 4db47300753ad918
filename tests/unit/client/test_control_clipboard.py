"""ClipboardSync on the user's side: consent, directions, size limit, events, no echo."""

from __future__ import annotations

import pytest

from client.core.control.clipboard import (
    ClipboardSync,
    ClipboardTransfer,
    Direction,
    Outcome,
)
from common.protocol.messages import ClipboardPolicy, ClipboardText


class FakeClipboard:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def set_text(self, text: str) -> None:
        self.texts.append(text)


TECH_ON = ClipboardPolicy(send=True, receive=True, max_bytes=1000)


def started(**kwargs: object) -> tuple[ClipboardSync, FakeClipboard]:
    port = FakeClipboard()
    sync = ClipboardSync(port, **kwargs)  # type: ignore[arg-type]
    sync.start()
    return sync, port


def test_nothing_moves_without_the_capability() -> None:
    sync, port = started(granted=("view",))
    assert sync.messages_to_send() == [ClipboardPolicy(False, False, 1 << 20)]
    sync.receive(TECH_ON)
    sync.local_changed("secret")
    assert sync.messages_to_send() == []
    assert sync.events_received() == []  # the user's own clipboard is none of our business
    sync.receive(ClipboardText("from tech"))
    assert port.texts == []
    assert sync.events_received() == [
        ClipboardTransfer(Direction.FROM_TECHNICIAN, 9, Outcome.NOT_GRANTED)
    ]


def test_both_directions_when_granted() -> None:
    sync, port = started(granted=("clipboard",), max_bytes=100)
    assert sync.messages_to_send() == [ClipboardPolicy(send=True, receive=True, max_bytes=100)]
    sync.local_changed("before the technician is ready")
    assert sync.messages_to_send() == []
    assert sync.events_received()[0].outcome is Outcome.PEER_REFUSES
    sync.receive(TECH_ON)
    sync.local_changed("héllo")
    assert sync.messages_to_send() == [ClipboardText("héllo")]
    sync.receive(ClipboardText("from tech €"))
    assert port.texts == ["from tech €"]
    # Our own write comes back through the clipboard's change signal: not sent back.
    sync.local_changed("from tech €")
    assert sync.messages_to_send() == []
    assert sync.events_received() == [
        ClipboardTransfer(Direction.TO_TECHNICIAN, 6, Outcome.SENT),
        ClipboardTransfer(Direction.FROM_TECHNICIAN, 13, Outcome.APPLIED),
    ]


def test_size_limits_both_ways() -> None:
    sync, port = started(granted=("clipboard",), max_bytes=10)
    sync.receive(ClipboardPolicy(send=True, receive=True, max_bytes=5))
    sync.local_changed("123456")  # fits ours, not the technician's
    sync.local_changed("12345678901")  # fits neither
    sync.receive(ClipboardText("x" * 11))
    assert sync.messages_to_send()[1:] == []
    assert port.texts == []
    assert [e.outcome for e in sync.events_received()] == [Outcome.TOO_LARGE] * 3


def test_direction_toggles_are_announced_and_enforced() -> None:
    sync, port = started(granted=("clipboard",))
    sync.messages_to_send()
    sync.receive(TECH_ON)
    sync.set_directions(to_technician=False, from_technician=True)
    assert sync.messages_to_send() == [ClipboardPolicy(send=False, receive=True, max_bytes=1 << 20)]
    sync.local_changed("private")
    assert sync.messages_to_send() == []
    sync.set_directions(to_technician=True, from_technician=False)
    sync.receive(ClipboardText("pushed anyway"))  # the technician ignored our policy
    assert port.texts == []
    assert sync.events_received()[-1].outcome is Outcome.DIRECTION_OFF
    sync.set_granted(())
    assert sync.messages_to_send()[-1] == ClipboardPolicy(
        send=False, receive=False, max_bytes=1 << 20
    )
    sync.set_granted(())  # no change, no announcement
    assert sync.messages_to_send() == []


def test_invalid_limit() -> None:
    with pytest.raises(ValueError):
        ClipboardSync(FakeClipboard(), max_bytes=0)
