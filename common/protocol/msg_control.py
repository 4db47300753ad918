"""Control-channel messages: capabilities, flow-control credit, remote-control state.

Registered by importing :mod:`common.protocol.messages`.
"""

from __future__ import annotations

import dataclasses
import enum

from common.capability import Capability
from common.errors import ProtocolError
from common.protocol.channels import CHANNEL_SPECS, Channel
from common.protocol.codec import message
from common.protocol.msg_base import AppMessage


__all__ = [
    "CAPABILITIES",
    "CapabilityDeclined",
    "CapabilityGrant",
    "CapabilityRequest",
    "ControlState",
    "ControlStatus",
    "WindowUpdate",
]

# What a user may grant, each separately (security.md 4.1), as wire strings.
CAPABILITIES: tuple[str, ...] = tuple(c.value for c in Capability)


def _check_caps(caps: tuple[str, ...]) -> None:
    unknown = set(caps) - set(CAPABILITIES)
    if unknown:
        raise ProtocolError(f"unknown capability {sorted(unknown)[0]!r}")


@message(64)
class CapabilityRequest(AppMessage):
    """Technician asks the user for capabilities (the user decides)."""

    CHANNEL = Channel.CONTROL
    capabilities: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})

    def check(self) -> None:
        _check_caps(self.capabilities)


@message(65)
class CapabilityGrant(AppMessage):
    """User states the full set of capabilities now granted."""

    CHANNEL = Channel.CONTROL
    capabilities: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})

    def check(self) -> None:
        _check_caps(self.capabilities)


@message(67)
class CapabilityDeclined(AppMessage):
    """User to technician: these were not granted; asking again is refused for a while.

    ``retry_after`` is in whole seconds (0: ask again whenever).
    """

    CHANNEL = Channel.CONTROL
    capabilities: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})
    retry_after: int = 0

    def check(self) -> None:
        _check_caps(self.capabilities)
        if not 0 <= self.retry_after <= 3600:
            raise ProtocolError("retry_after out of range")


@message(66)
class WindowUpdate(AppMessage):
    """Receiver grants more bytes of credit on a bulk channel (flow control)."""

    CHANNEL = Channel.CONTROL
    channel: Channel
    credit: int

    def check(self) -> None:
        if not CHANNEL_SPECS[self.channel].bulk:
            raise ProtocolError("window update for a channel that is not flow controlled")
        if not 0 < self.credit <= 1 << 30:
            raise ProtocolError("window credit out of range")


class ControlState(enum.IntEnum):
    """Remote control as the user's side enforces it (see ControlStatus)."""

    OFF = 0  # control is not granted
    ACTIVE = 1  # input is injected
    USER_ACTIVE = 2  # the user is using their mouse or keyboard; resumes by itself
    PAUSED = 3  # the user paused the session, or a Deskhand dialog is open
    STOPPED = 4  # the user took control back (hotkey or Stop); needs a new grant
    ENDED = 5  # the session is over


@message(72)
class ControlStatus(AppMessage):
    """User to technician: the state of remote control, on every change.

    Also sent (at most about once a second) while input is being refused;
    ``refused`` counts the input messages dropped since the previous status.
    """

    CHANNEL = Channel.CONTROL
    state: ControlState
    refused: int = 0

    def check(self) -> None:
        if not 0 <= self.refused < 1 << 32:
            raise ProtocolError("refused count out of range")
