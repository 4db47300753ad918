"""TechnicianClipboard: the switch, the user's policy, size limits, events."""

from __future__ import annotations

import pytest

from common.protocol.messages import ClipboardPolicy, ClipboardText
from technician.core.clipboard import TechnicianClipboard, Transfer, TransferOutcome


class FakeClipboard:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def set_text(self, text: str) -> None:
        self.texts.append(text)


def test_off_by_default_and_announced() -> None:
    port = FakeClipboard()
    clip = TechnicianClipboard(port)
    clip.start()
    assert clip.messages_to_send() == [ClipboardPolicy(False, False, 1 << 20)]
    clip.local_changed("nothing")
    clip.receive(ClipboardText("from user"))
    assert port.texts == [] and clip.messages_to_send() == []
    assert clip.events_received() == [Transfer(False, 9, TransferOutcome.OFF)]


def test_on_both_ways_within_the_users_policy() -> None:
    port = FakeClipboard()
    clip = TechnicianClipboard(port, max_bytes=50)
    clip.set_enabled(True)
    clip.set_enabled(True)  # no change, no second announcement
    assert clip.messages_to_send() == [ClipboardPolicy(send=True, receive=True, max_bytes=50)]
    clip.local_changed("too early")  # the user's side has not said it receives
    clip.receive(ClipboardPolicy(send=True, receive=True, max_bytes=8))
    clip.local_changed("too long for the user")
    clip.local_changed("fits")
    clip.local_changed("fits")  # unchanged: not sent again
    clip.receive(ClipboardText("x" * 51))
    clip.receive(ClipboardText("from user ß"))
    clip.local_changed("from user ß")  # our own write coming back
    assert clip.messages_to_send() == [ClipboardText("fits")]
    assert port.texts == ["from user ß"]
    assert [e.outcome for e in clip.events_received()] == [
        TransferOutcome.PEER_REFUSES,
        TransferOutcome.TOO_LARGE,
        TransferOutcome.SENT,
        TransferOutcome.TOO_LARGE,
        TransferOutcome.APPLIED,
    ]
    assert clip.peer_policy.max_bytes == 8 and clip.enabled
    with pytest.raises(ValueError):
        TechnicianClipboard(port, max_bytes=0)
