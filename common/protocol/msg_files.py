"""File-transfer messages.

Registered by importing :mod:`common.protocol.messages`.
"""

from __future__ import annotations

import dataclasses

from common.errors import ProtocolError
from common.protocol.channels import Channel
from common.protocol.codec import message
from common.protocol.msg_base import AppMessage


__all__ = ["FileChunk", "FileEnd", "FileOffer"]


@message(144)
class FileOffer(AppMessage):
    CHANNEL = Channel.FILE
    transfer_id: bytes = dataclasses.field(metadata={"max": 16})
    name: str = dataclasses.field(metadata={"max": 1024})
    size: int
    sha256: bytes = dataclasses.field(metadata={"max": 32})

    def check(self) -> None:
        if len(self.transfer_id) != 16 or len(self.sha256) != 32 or self.size < 0:
            raise ProtocolError("invalid file offer")


@message(145)
class FileChunk(AppMessage):
    CHANNEL = Channel.FILE
    MAX_SIZE = 2 * 1024 * 1024
    transfer_id: bytes = dataclasses.field(metadata={"max": 16})
    offset: int
    data: bytes = dataclasses.field(metadata={"max": 1 << 20})

    def check(self) -> None:
        if len(self.transfer_id) != 16 or self.offset < 0:
            raise ProtocolError("invalid file chunk")


@message(146)
class FileEnd(AppMessage):
    CHANNEL = Channel.FILE
    transfer_id: bytes = dataclasses.field(metadata={"max": 16})
    cancelled: bool = False

    def check(self) -> None:
        if len(self.transfer_id) != 16:
            raise ProtocolError("invalid file end")
