"""Messages between a peer (user client or technician app) and the relay.

These travel in plain binary websocket frames (inside TLS once the relay
serves ``wss://``). The relay reads only these; everything the two peers say
to each other is inside :class:`Forward` payloads that it cannot read.

Flow::

    user  -> relay   Register            relay -> user   Registered(nameplate, sid)
    tech  -> relay   Claim(nameplate)    relay -> tech   Paired(sid)
                                         relay -> user   PeerJoined
    either -> relay  Forward(payload)    relay -> other  the same frame, unchanged
                                         relay -> other  PeerLeft(reason) when one side goes

Rejections close the websocket with a code from :class:`CloseCode` and a
short reason. Relay control messages are hints only: no security decision is
made on them.
"""

from __future__ import annotations

import dataclasses
import enum

from common.errors import ProtocolError
from common.protocol.codec import PROTOCOL_VERSION, Message, decode_as, encode, message


__all__ = [
    "FORWARD_PREFIX",
    "MAX_FRAME",
    "NAMEPLATE_MAX",
    "NAMEPLATE_MIN",
    "SID_BYTES",
    "Claim",
    "CloseCode",
    "Forward",
    "Paired",
    "PeerJoined",
    "PeerLeft",
    "PeerRole",
    "Register",
    "Registered",
    "forward_frame",
    "forward_payload",
]

SID_BYTES = 16
# The largest websocket message on any hop: one record (1 MiB plaintext) plus
# the record header, AEAD tag and Forward framing.
MAX_FRAME = (1 << 20) + 256
NAMEPLATE_MIN, NAMEPLATE_MAX = 100, 999


class CloseCode(enum.IntEnum):
    """Websocket close codes the relay uses (RFC 6455 private range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009
    BAD_MESSAGE = 4000
    UNKNOWN_CODE = 4001
    ALREADY_CLAIMED = 4002
    RATE_LIMITED = 4003
    TOO_MANY_CONNECTIONS = 4004
    IDLE_TIMEOUT = 4005
    SESSION_TOO_LONG = 4006
    CODE_EXPIRED = 4007
    RELAY_FULL = 4008
    PEER_LEFT = 4009
    HELLO_TIMEOUT = 4010
    BAD_PATH = 4011


class PeerRole(enum.IntEnum):
    USER = 1
    TECHNICIAN = 2


def _check_nameplate(nameplate: int) -> None:
    if not NAMEPLATE_MIN <= nameplate <= NAMEPLATE_MAX:
        raise ProtocolError("nameplate out of range")


@message(1)
class Register(Message):
    """User side: ask for a nameplate to put in the pairing code."""

    client: str = dataclasses.field(default="", metadata={"max": 64})


@message(2)
class Registered(Message):
    """Relay: your nameplate and session id; the code expires after expires_in s."""

    nameplate: int
    sid: bytes = dataclasses.field(metadata={"max": SID_BYTES})
    expires_in: int

    def check(self) -> None:
        _check_nameplate(self.nameplate)
        if len(self.sid) != SID_BYTES:
            raise ProtocolError("session id must be 16 bytes")
        if not 0 < self.expires_in <= 24 * 3600:
            raise ProtocolError("expiry out of range")


@message(3)
class Claim(Message):
    """Technician side: join the user waiting behind this nameplate."""

    nameplate: int
    client: str = dataclasses.field(default="", metadata={"max": 64})

    def check(self) -> None:
        _check_nameplate(self.nameplate)


@message(4)
class Paired(Message):
    """Relay to the technician: the claim worked; this is the session id."""

    sid: bytes = dataclasses.field(metadata={"max": SID_BYTES})

    def check(self) -> None:
        if len(self.sid) != SID_BYTES:
            raise ProtocolError("session id must be 16 bytes")


@message(5)
class PeerJoined(Message):
    """Relay to the user: a technician claimed your nameplate."""


@message(6)
class PeerLeft(Message):
    """Relay: the other side's connection ended (an unauthenticated hint)."""

    reason: str = dataclasses.field(default="", metadata={"max": 200})


@message(7)
class Forward(Message):
    """Opaque bytes for the other peer. The relay passes the frame on unchanged."""

    MAX_SIZE = MAX_FRAME
    payload: bytes = dataclasses.field(metadata={"max": MAX_FRAME - 16})


FORWARD_PREFIX = bytes((PROTOCOL_VERSION, Forward.TYPE_ID))


def forward_frame(payload: bytes) -> bytes:
    """Encode a Forward message."""
    return encode(Forward(payload))


def forward_payload(frame: bytes) -> bytes | None:
    """The payload if frame is a Forward message, else None (not validated further)."""
    if frame[:2] != FORWARD_PREFIX:
        return None
    return decode_as(Forward, frame).payload
