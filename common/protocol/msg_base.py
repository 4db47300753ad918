"""The base class of application messages (see :mod:`common.protocol.messages`).

Every application message names the channel it may travel on; the session
refuses a message that arrives on another channel.
"""

from __future__ import annotations

from typing import ClassVar

from common.protocol.channels import Channel
from common.protocol.codec import Message


__all__ = ["AppMessage"]


class AppMessage(Message):
    """A message that travels on one application channel."""

    __slots__ = ()
    CHANNEL: ClassVar[Channel]
