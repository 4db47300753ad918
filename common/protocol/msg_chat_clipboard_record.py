"""Chat, clipboard and session-record messages.

Registered by importing :mod:`common.protocol.messages`.
"""

from __future__ import annotations

import dataclasses

from common.errors import ProtocolError
from common.protocol.channels import Channel
from common.protocol.codec import message
from common.protocol.msg_base import AppMessage


__all__ = ["CLIPBOARD_MAX_TEXT", "AuditEvent", "ChatText", "ClipboardPolicy", "ClipboardText"]


@message(96)
class ChatText(AppMessage):
    CHANNEL = Channel.CHAT
    msg_id: int
    text: str = dataclasses.field(metadata={"max": 8192})
    sent_at_ms: int = 0


CLIPBOARD_MAX_TEXT = 2 * 1024 * 1024 - 64


@message(104)
class ClipboardText(AppMessage):
    """The sender's clipboard text (sent only where both ClipboardPolicy allow it)."""

    CHANNEL = Channel.CLIPBOARD
    MAX_SIZE = 2 * 1024 * 1024
    text: str = dataclasses.field(metadata={"max": CLIPBOARD_MAX_TEXT})


@message(105)
class ClipboardPolicy(AppMessage):
    """What the sender's side will do with clipboard text, sent on every change.

    Attributes:
        send: the sender will send its clipboard text.
        receive: the sender accepts the peer's clipboard text.
        max_bytes: the largest text (UTF-8 bytes) the sender accepts.
    """

    CHANNEL = Channel.CLIPBOARD
    send: bool
    receive: bool
    max_bytes: int

    def check(self) -> None:
        if not 0 <= self.max_bytes <= CLIPBOARD_MAX_TEXT:
            raise ProtocolError("clipboard size limit out of range")


@message(112)
class AuditEvent(AppMessage):
    """One event for the session record (signed records come with the audit issue)."""

    CHANNEL = Channel.RECORD
    MAX_SIZE = 256 * 1024
    seq: int
    ts_ms: int
    event: str = dataclasses.field(metadata={"max": 64})
    data: str = dataclasses.field(default="", metadata={"max": 200 * 1024})
