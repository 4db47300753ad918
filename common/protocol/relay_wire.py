"""Messages between a peer (user client or technician app) and the relay.

These travel in plain binary websocket frames (inside TLS once the relay
serves ``wss://``). The relay reads only these; everything the two peers say
to each other is inside :class:`Forward` payloads that it cannot read.

The first message on a connection picks one of these conversations::

    code flow (a user reads a code to a technician):
    user  -> relay   Register            relay -> user   Registered(nameplate, sid)
    tech  -> relay   Claim(nameplate)    relay -> tech   Paired(sid)
                                         relay -> user   PeerJoined
    either -> relay  Forward(payload)    relay -> other  the same frame, unchanged
                                         relay -> other  PeerLeft(reason) when one side goes

    sign in (then the connection closes):
    tech  -> relay   Login(account, password)   relay -> tech   LoggedIn(token, ...)

    help-request queue, user side:
    user  -> relay   PostRequest(...) or ResumeRequest(id, resume token)
                                         relay -> user   Queued(id, resume token, position)
                                         relay -> user   QueuePosition(n) whenever n changes
                                         relay -> user   Assigned(sid): a technician claimed it
                                         relay -> user   Requeued(n, reason): they left before
                                                         the pairing finished
    user  -> relay   CancelRequest, or SessionStarted once RA1 succeeded

    help-request queue, technician side (Authorization: Bearer token):
    tech  -> relay   WatchQueue          relay -> tech   QueueEntry..., QueueSynced, then
                                                         QueueEntry / QueueRemoved as it changes
    tech  -> relay   RenewToken          relay -> tech   LoggedIn(new token)
    tech  -> relay   ClaimRequest(id)    relay -> tech   Paired(sid); then Forward both ways

    resuming a session after a dropped link (relay.resume):
    either -> relay  Resumable(ids)      while paired: keep us for a resume under these ids
    either -> relay  Resume(ids, role)   first message on a new connection
                                         relay -> both   Resumed once both are back
                                         relay -> other  closes PEER_SUSPENDED when one drops

Rejections close the websocket with a code from :class:`CloseCode` and a
short reason. Relay control messages are hints only: no security decision is
made on them.
"""

from __future__ import annotations

import dataclasses
import enum

from common.errors import ProtocolError
from common.protocol.codec import PROTOCOL_VERSION, Message, message


__all__ = [
    "FORWARD_PREFIX",
    "MAX_ACCOUNT_NAME",
    "MAX_CATEGORY",
    "MAX_DESCRIPTION",
    "MAX_FRAME",
    "MAX_PASSWORD",
    "MAX_REQUEST_NAME",
    "MAX_SYSTEM_SUMMARY",
    "MAX_TOKEN",
    "NAMEPLATE_MAX",
    "NAMEPLATE_MIN",
    "REQUEST_ID_BYTES",
    "RESUME_TOKEN_BYTES",
    "SID_BYTES",
    "Assigned",
    "CancelRequest",
    "Claim",
    "ClaimRequest",
    "CloseCode",
    "Forward",
    "LoggedIn",
    "Login",
    "Paired",
    "PeerJoined",
    "PeerLeft",
    "PeerRole",
    "PostRequest",
    "QueueEntry",
    "QueuePosition",
    "QueueRemoved",
    "QueueSynced",
    "Queued",
    "Register",
    "Registered",
    "RemovalReason",
    "RenewToken",
    "RequestState",
    "Requeued",
    "Resumable",
    "Resume",
    "ResumeRequest",
    "Resumed",
    "SessionStarted",
    "WatchQueue",
    "forward_frame",
    "forward_payload",
]

SID_BYTES = 16
# The largest websocket message on any hop: one record (1 MiB plaintext) plus
# the record header, AEAD tag and Forward framing.
MAX_FRAME = (1 << 20) + 256
# Three digits first; four once most three-digit ones are in use (relay.registry).
NAMEPLATE_MIN, NAMEPLATE_MAX = 100, 9999
REQUEST_ID_BYTES = 16
RESUME_TOKEN_BYTES = 32
# Upper bounds of the wire format; the relay's configured limits are lower or equal.
MAX_ACCOUNT_NAME = 128
MAX_PASSWORD = 1024
MAX_TOKEN = 128
MAX_REQUEST_NAME = 200
MAX_CATEGORY = 64
MAX_DESCRIPTION = 16 * 1024
MAX_SYSTEM_SUMMARY = 32 * 1024
# A signed revocation list of up to 100 000 serials fits comfortably.
_MAX_REVOCATIONS = (1 << 20) - 4096


class CloseCode(enum.IntEnum):
    """Websocket close codes the relay uses (RFC 6455 private range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009
    INTERNAL_ERROR = 1011
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
    UNAUTHORIZED = 4012
    TOKEN_EXPIRED = 4013
    LOGIN_FAILED = 4014
    LOCKED_OUT = 4015
    ACCOUNT_DISABLED = 4016
    FORBIDDEN = 4017
    QUEUE_FULL = 4018
    REQUEST_TOO_LARGE = 4019
    UNKNOWN_REQUEST = 4020
    REQUEST_TAKEN = 4021
    REQUEST_CANCELLED = 4022
    REQUEST_EXPIRED = 4023
    USER_AWAY = 4024
    REPLACED = 4025
    # Resuming a session after a dropped link (relay.resume).
    PEER_SUSPENDED = 4026  # the partner's link dropped: reconnect with Resume
    RECONNECTING = 4027  # sent by a peer that drops its link to resume on a new one
    UNKNOWN_RESUME = 4028  # no suspended session under that ticket
    RESUME_EXPIRED = 4029  # the partner did not come back within the grace period
    # Out of buffer space: the biggest holder is closed. Numbered apart from the rest.
    OVERLOADED = 4040


class PeerRole(enum.IntEnum):
    USER = 1
    TECHNICIAN = 2


class RequestState(enum.IntEnum):
    """Where a help request stands in the queue."""

    WAITING = 1
    CLAIMED = 2


class RemovalReason(enum.IntEnum):
    """Why a help request left the queue."""

    STARTED = 1
    """A technician and the user paired: the session began."""
    CANCELLED = 2
    """The user withdrew it."""
    EXPIRED = 3
    """It waited too long, or its user did not come back in time."""


def _check_nameplate(nameplate: int) -> None:
    if not NAMEPLATE_MIN <= nameplate <= NAMEPLATE_MAX:
        raise ProtocolError("nameplate out of range")


def _check_sid(sid: bytes) -> None:
    if len(sid) != SID_BYTES:
        raise ProtocolError("session id must be 16 bytes")


def _check_request_id(request_id: bytes) -> None:
    if len(request_id) != REQUEST_ID_BYTES:
        raise ProtocolError("request id must be 16 bytes")


def _check_position(position: int) -> None:
    if not 0 <= position <= 1_000_000:
        raise ProtocolError("queue position out of range")


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
        _check_sid(self.sid)
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
        _check_sid(self.sid)


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


# --- signing in -------------------------------------------------------------------


@message(8)
class Login(Message):
    """Technician: sign in with an account name and password (only over TLS or loopback)."""

    account: str = dataclasses.field(metadata={"max": MAX_ACCOUNT_NAME})
    password: str = dataclasses.field(metadata={"max": MAX_PASSWORD})
    client: str = dataclasses.field(default="", metadata={"max": 64})

    def __repr__(self) -> str:
        # Never let a password reach a log or a traceback.
        return f"Login(account={self.account!r}, password=<hidden>)"


@message(9)
class LoggedIn(Message):
    """Relay: a bearer token for the Authorization header, and who you are.

    ``revocations`` is the organisation's latest signed revocation list when
    the relay has one (empty otherwise): technician apps send it along with
    their certificate, so a fresh list reaches users.
    """

    MAX_SIZE = MAX_FRAME
    token: str = dataclasses.field(metadata={"max": MAX_TOKEN})
    expires_in: int
    account: str = dataclasses.field(metadata={"max": MAX_ACCOUNT_NAME})
    display_name: str = dataclasses.field(metadata={"max": MAX_REQUEST_NAME})
    role: str = dataclasses.field(metadata={"max": 32})
    revocations: bytes = dataclasses.field(default=b"", metadata={"max": _MAX_REVOCATIONS})

    def check(self) -> None:
        if not 0 < self.expires_in <= 7 * 24 * 3600:
            raise ProtocolError("token lifetime out of range")

    def __repr__(self) -> str:
        return f"LoggedIn(account={self.account!r}, role={self.role!r}, token=<hidden>)"


@message(10)
class RenewToken(Message):
    """Technician, on a queue connection: a fresh token before this one expires."""


# --- the help-request queue, user side --------------------------------------------


@message(11)
class PostRequest(Message):
    """User: ask for help through the queue.

    ``system_summary`` is only filled in when the user agreed to send it.
    """

    MAX_SIZE = 64 * 1024
    name: str = dataclasses.field(metadata={"max": MAX_REQUEST_NAME})
    description: str = dataclasses.field(metadata={"max": MAX_DESCRIPTION})
    category: str = dataclasses.field(default="", metadata={"max": MAX_CATEGORY})
    system_summary: str = dataclasses.field(default="", metadata={"max": MAX_SYSTEM_SUMMARY})
    client: str = dataclasses.field(default="", metadata={"max": 64})


@message(12)
class Queued(Message):
    """Relay: your request is stored; keep the resume token to come back to it."""

    request_id: bytes = dataclasses.field(metadata={"max": REQUEST_ID_BYTES})
    resume_token: bytes = dataclasses.field(metadata={"max": RESUME_TOKEN_BYTES})
    position: int
    expires_in: int

    def check(self) -> None:
        _check_request_id(self.request_id)
        if len(self.resume_token) != RESUME_TOKEN_BYTES:
            raise ProtocolError("resume token must be 32 bytes")
        _check_position(self.position)
        if not 0 <= self.expires_in <= 7 * 24 * 3600:
            raise ProtocolError("expiry out of range")

    def __repr__(self) -> str:
        return f"Queued(position={self.position}, resume_token=<hidden>)"


@message(13)
class ResumeRequest(Message):
    """User: re-attach to a stored request (after a dropped connection or a relay restart)."""

    request_id: bytes = dataclasses.field(metadata={"max": REQUEST_ID_BYTES})
    resume_token: bytes = dataclasses.field(metadata={"max": RESUME_TOKEN_BYTES})
    client: str = dataclasses.field(default="", metadata={"max": 64})

    def check(self) -> None:
        _check_request_id(self.request_id)
        if len(self.resume_token) != RESUME_TOKEN_BYTES:
            raise ProtocolError("resume token must be 32 bytes")

    def __repr__(self) -> str:
        return "ResumeRequest(resume_token=<hidden>)"


@message(14)
class QueuePosition(Message):
    """Relay: how many waiting requests are ahead of yours, plus one (1 = next)."""

    position: int

    def check(self) -> None:
        _check_position(self.position)


@message(15)
class Assigned(Message):
    """Relay: a technician claimed your request; run RA1 (queue mode) under this sid."""

    sid: bytes = dataclasses.field(metadata={"max": SID_BYTES})

    def check(self) -> None:
        _check_sid(self.sid)


@message(16)
class Requeued(Message):
    """Relay: the technician left before pairing finished; you are back in the queue."""

    position: int
    reason: str = dataclasses.field(default="", metadata={"max": 200})

    def check(self) -> None:
        _check_position(self.position)


@message(17)
class CancelRequest(Message):
    """User: withdraw the request (the relay then closes with REQUEST_CANCELLED)."""


@message(18)
class SessionStarted(Message):
    """User: RA1 succeeded; the request leaves the queue for good."""


# --- the help-request queue, technician side ---------------------------------------


@message(19)
class WatchQueue(Message):
    """Technician: stream the queue to me (needs a bearer token)."""

    client: str = dataclasses.field(default="", metadata={"max": 64})


@message(20)
class QueueEntry(Message):
    """Relay: one request as it is now (added or changed).

    The queue's order is ``waiting_since`` (unix seconds, oldest first); a
    request's position is its rank among the WAITING ones. ``claimed_by`` is
    the claiming technician's display name, shown to supervisors and admins
    and to the claimer ("" otherwise). ``user_connected`` is False while the
    user is away (dropped connection, relay restart): such a request keeps
    its place but cannot be claimed.
    """

    MAX_SIZE = 64 * 1024
    request_id: bytes = dataclasses.field(metadata={"max": REQUEST_ID_BYTES})
    state: RequestState
    user_connected: bool
    waiting_since: float
    name: str = dataclasses.field(metadata={"max": MAX_REQUEST_NAME})
    description: str = dataclasses.field(metadata={"max": MAX_DESCRIPTION})
    category: str = dataclasses.field(metadata={"max": MAX_CATEGORY})
    system_summary: str = dataclasses.field(metadata={"max": MAX_SYSTEM_SUMMARY})
    claimed_by: str = dataclasses.field(default="", metadata={"max": MAX_REQUEST_NAME})
    claimed_by_me: bool = False

    def check(self) -> None:
        _check_request_id(self.request_id)


@message(21)
class QueueRemoved(Message):
    """Relay: a request left the queue."""

    request_id: bytes = dataclasses.field(metadata={"max": REQUEST_ID_BYTES})
    reason: RemovalReason

    def check(self) -> None:
        _check_request_id(self.request_id)


@message(22)
class QueueSynced(Message):
    """Relay: the initial QueueEntry messages are all sent; updates follow."""

    count: int


@message(23)
class ClaimRequest(Message):
    """Technician: take this request; the relay answers Paired(sid) (needs a token)."""

    request_id: bytes = dataclasses.field(metadata={"max": REQUEST_ID_BYTES})
    client: str = dataclasses.field(default="", metadata={"max": 64})

    def check(self) -> None:
        _check_request_id(self.request_id)


# --- resuming a session after a dropped link (relay.resume) ---------------------------

RESUME_ID_BYTES = 32


def _check_resume_ids(current: bytes, previous: bytes) -> None:
    if len(current) != RESUME_ID_BYTES or len(previous) not in (0, RESUME_ID_BYTES):
        raise ProtocolError("resume ids are 32 bytes")


@message(24)
class Resumable(Message):
    """Peer, while paired: if my link drops, keep the pair for a resume under these ids.

    Both sides derive the ids from their session secret (common.crypto.resume);
    the relay learns nothing else from them.
    """

    resume_id: bytes = dataclasses.field(metadata={"max": RESUME_ID_BYTES})
    previous_id: bytes = dataclasses.field(default=b"", metadata={"max": RESUME_ID_BYTES})
    role: PeerRole = PeerRole.USER

    def check(self) -> None:
        _check_resume_ids(self.resume_id, self.previous_id)


@message(25)
class Resume(Message):
    """Peer, first message: join my partner again (technicians: bearer token as for claims)."""

    resume_id: bytes = dataclasses.field(metadata={"max": RESUME_ID_BYTES})
    previous_id: bytes = dataclasses.field(default=b"", metadata={"max": RESUME_ID_BYTES})
    role: PeerRole = PeerRole.USER
    client: str = dataclasses.field(default="", metadata={"max": 64})

    def check(self) -> None:
        _check_resume_ids(self.resume_id, self.previous_id)


@message(26)
class Resumed(Message):
    """Relay: your partner is back; Forward frames flow again."""


FORWARD_PREFIX = bytes((PROTOCOL_VERSION, Forward.TYPE_ID))


_FORWARD_MAX_PAYLOAD = MAX_FRAME - 16


def forward_frame(payload: bytes) -> bytes:
    """Encode a Forward message: the same bytes as ``encode(Forward(payload))``.

    This is the hot path of every session (one call per record), so it
    builds the frame with a single copy of the payload.
    """
    size = len(payload)
    if size > _FORWARD_MAX_PAYLOAD:
        raise ProtocolError(f"bytes longer than {_FORWARD_MAX_PAYLOAD}")
    length = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        if size:
            length.append(byte | 0x80)
        else:
            length.append(byte)
            break
    return b"".join((FORWARD_PREFIX, length, payload))


def forward_payload(frame: bytes) -> bytes | None:
    """The payload if frame is a Forward message, else None.

    Raises:
        ProtocolError: the frame claims to be a Forward message but is malformed.
    """
    if frame[:2] != FORWARD_PREFIX:
        return None
    size = shift = 0
    pos = 2
    while True:
        if pos >= len(frame) or pos > 6:
            raise ProtocolError("malformed Forward length")
        byte = frame[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and pos > 3:
                raise ProtocolError("non-canonical varint")
            break
    if size > _FORWARD_MAX_PAYLOAD:
        raise ProtocolError(f"bytes longer than {_FORWARD_MAX_PAYLOAD}")
    if len(frame) - pos != size:
        raise ProtocolError("Forward length does not match the frame")
    return frame[pos:]
