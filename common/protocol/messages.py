"""Application messages, one frozen dataclass per type, grouped by channel.

Every class names the channel it may travel on; the session refuses a
message that arrives on another channel. Type ids 64 and up are application
messages (1-31 relay, 32-63 pairing and identity).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar

from common.errors import ProtocolError
from common.protocol.channels import CHANNEL_SPECS, Channel
from common.protocol.codec import Message, message


__all__ = [
    "CAPABILITIES",
    "AppMessage",
    "AuditEvent",
    "CapabilityGrant",
    "CapabilityRequest",
    "ChatText",
    "ClipboardText",
    "FileChunk",
    "FileEnd",
    "FileOffer",
    "FrameAck",
    "KeyEvent",
    "PointerButton",
    "PointerMove",
    "ScreenEncoding",
    "ScreenFrame",
    "TextInput",
    "Wheel",
    "WindowUpdate",
]

# What a user may grant, each separately (security.md 4.1).
CAPABILITIES = ("view", "control", "clipboard", "files")


class AppMessage(Message):
    """A message that travels on one application channel."""

    __slots__ = ()
    CHANNEL: ClassVar[Channel]


def _check_caps(caps: tuple[str, ...]) -> None:
    unknown = set(caps) - set(CAPABILITIES)
    if unknown:
        raise ProtocolError(f"unknown capability {sorted(unknown)[0]!r}")


# --- control ---


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


# --- input ---


@message(80)
class PointerMove(AppMessage):
    CHANNEL = Channel.INPUT
    x: int
    y: int


@message(81)
class PointerButton(AppMessage):
    CHANNEL = Channel.INPUT
    button: int
    pressed: bool

    def check(self) -> None:
        if not 1 <= self.button <= 32:
            raise ProtocolError("button out of range")


@message(82)
class Wheel(AppMessage):
    CHANNEL = Channel.INPUT
    dx: int
    dy: int

    def check(self) -> None:
        if abs(self.dx) > 10_000 or abs(self.dy) > 10_000:
            raise ProtocolError("wheel step out of range")


@message(83)
class KeyEvent(AppMessage):
    """An X11 keysym pressed or released, with the modifier mask at that time."""

    CHANNEL = Channel.INPUT
    keysym: int
    pressed: bool
    modifiers: int = 0

    def check(self) -> None:
        if not 0 <= self.keysym <= 0x1FFFFFFF or not 0 <= self.modifiers <= 0xFFFF:
            raise ProtocolError("key out of range")


@message(84)
class TextInput(AppMessage):
    CHANNEL = Channel.INPUT
    text: str = dataclasses.field(metadata={"max": 4096})


# --- chat, clipboard, record ---


@message(96)
class ChatText(AppMessage):
    CHANNEL = Channel.CHAT
    msg_id: int
    text: str = dataclasses.field(metadata={"max": 8192})
    sent_at_ms: int = 0


@message(104)
class ClipboardText(AppMessage):
    CHANNEL = Channel.CLIPBOARD
    MAX_SIZE = 2 * 1024 * 1024
    text: str = dataclasses.field(metadata={"max": 2 * 1024 * 1024 - 64})


@message(112)
class AuditEvent(AppMessage):
    """One event for the session record (signed records come with the audit issue)."""

    CHANNEL = Channel.RECORD
    MAX_SIZE = 256 * 1024
    seq: int
    ts_ms: int
    event: str = dataclasses.field(metadata={"max": 64})
    data: str = dataclasses.field(default="", metadata={"max": 200 * 1024})


# --- screen ---


class ScreenEncoding(enum.IntEnum):
    RAW_BGRA = 0
    ZSTD = 1
    JPEG = 2
    H264 = 3


@message(128)
class ScreenFrame(AppMessage):
    """One rectangle of the user's screen (the screen issue builds on this)."""

    CHANNEL = Channel.SCREEN
    MAX_SIZE = 48 * 1024 * 1024
    seq: int
    screen_width: int
    screen_height: int
    x: int
    y: int
    width: int
    height: int
    encoding: ScreenEncoding
    data: bytes = dataclasses.field(metadata={"max": 48 * 1024 * 1024 - 128})

    def check(self) -> None:
        if not (0 < self.screen_width <= 16384 and 0 < self.screen_height <= 16384):
            raise ProtocolError("screen size out of range")
        if not (0 <= self.x and 0 <= self.y and 0 < self.width and 0 < self.height):
            raise ProtocolError("rectangle out of range")
        if self.x + self.width > self.screen_width or self.y + self.height > self.screen_height:
            raise ProtocolError("rectangle outside the screen")


@message(129)
class FrameAck(AppMessage):
    """Viewer to sharer: frame seq was painted (paces the sender)."""

    CHANNEL = Channel.SCREEN
    seq: int


# --- files ---


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
