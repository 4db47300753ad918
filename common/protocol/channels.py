"""Application channels multiplexed inside the encrypted stream.

Interactive channels (control, input, chat) go first; bulk channels (screen,
file) are fragmented and flow controlled so that they never hold up a
keystroke. See :mod:`common.session` for the scheduler.
"""

from __future__ import annotations

import dataclasses
import enum


__all__ = ["CHANNEL_SPECS", "Channel", "ChannelSpec"]


class Channel(enum.IntEnum):
    CONTROL = 0
    INPUT = 1
    CHAT = 2
    CLIPBOARD = 3
    RECORD = 4
    SCREEN = 5
    FILE = 6


@dataclasses.dataclass(frozen=True)
class ChannelSpec:
    """How the session treats one channel.

    Attributes:
        priority: 0 is served first; equal priorities take turns.
        bulk: flow controlled by the receiver's window credits.
        max_message: the largest reassembled message accepted, in bytes.
    """

    priority: int
    bulk: bool
    max_message: int


CHANNEL_SPECS: dict[Channel, ChannelSpec] = {
    Channel.CONTROL: ChannelSpec(0, False, 64 * 1024),
    Channel.INPUT: ChannelSpec(0, False, 16 * 1024),
    Channel.CHAT: ChannelSpec(1, False, 64 * 1024),
    Channel.CLIPBOARD: ChannelSpec(1, False, 2 * 1024 * 1024),
    Channel.RECORD: ChannelSpec(2, False, 256 * 1024),
    Channel.SCREEN: ChannelSpec(3, True, 48 * 1024 * 1024),
    Channel.FILE: ChannelSpec(3, True, 2 * 1024 * 1024),
}
