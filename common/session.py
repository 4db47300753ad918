"""The secure session: channels multiplexed over the RA1 record layer (sans-I/O).

After the handshake, both sides run one :class:`SecureSession`. The adapter
feeds it records with :meth:`~SecureSession.receive_record`, sends whatever
:meth:`~SecureSession.next_record` returns, calls :meth:`~SecureSession.tick`
by :meth:`~SecureSession.next_deadline`, and reads
:meth:`~SecureSession.events_received`. Time is passed in; nothing here does
I/O.

Scheduling. Each channel has a queue. :meth:`next_record` serves the lowest
priority number first (control and input, then chat and clipboard, then the
record channel, then screen and file), taking turns within a priority.
Messages are cut into fragments of ``fragment_size`` so that a keystroke
waits for at most one bulk fragment, never for a whole frame.

Flow control. Bulk channels (screen, file) may only send as many bytes as
the receiver has granted; the receiver grants more with
:class:`~common.protocol.messages.WindowUpdate` as it takes data in. A peer
that overruns its window is a protocol violation. Senders see the backlog
with :meth:`queued_bytes` and are expected to wait or drop stale data.

Liveness and keys. A HEARTBEAT goes out when nothing else has for
``heartbeat_interval``; a peer silent for ``peer_timeout`` ends the session
(this is also how a dropped last record is caught). Each direction rekeys
after ``rekey_records`` records, ``rekey_bytes`` bytes or ``rekey_interval``
seconds. An authenticated CLOSE ends the session cleanly; a transport that
ends without one is reported as an abnormal end.
"""

from __future__ import annotations

import collections
import dataclasses
import enum

from common.crypto.handshake import CloseNotice, Established
from common.crypto.record import MAX_PLAINTEXT, RecordType
from common.errors import CryptoError, InvalidState, ProtocolError
from common.protocol.channels import CHANNEL_SPECS, Channel
from common.protocol.codec import decode, decode_as, encode
from common.protocol.messages import AppMessage, WindowUpdate


__all__ = [
    "MessageReceived",
    "SecureSession",
    "SessionEnded",
    "SessionEvent",
    "SessionLimits",
]

_FINAL = 0x01
_DATA_HEADER = 2


@dataclasses.dataclass(frozen=True)
class SessionLimits:
    heartbeat_interval: float = 5.0
    peer_timeout: float = 15.0
    rekey_records: int = 1 << 20
    rekey_bytes: int = 16 << 30
    rekey_interval: float = 900.0
    fragment_size: int = 64 * 1024
    initial_window: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.fragment_size <= MAX_PLAINTEXT - _DATA_HEADER:
            raise ValueError("fragment_size must fit in one record")
        if self.initial_window < self.fragment_size:
            raise ValueError("initial_window must hold at least one fragment")
        if self.peer_timeout <= self.heartbeat_interval:
            raise ValueError("peer_timeout must exceed heartbeat_interval")


@dataclasses.dataclass(frozen=True)
class MessageReceived:
    channel: Channel
    message: AppMessage


@dataclasses.dataclass(frozen=True)
class SessionEnded:
    """The session is over.

    Attributes:
        reason: user-presentable.
        clean: an authenticated CLOSE was exchanged.
        by_peer: the other side (or the network) ended it, not us.
    """

    reason: str
    clean: bool
    by_peer: bool


SessionEvent = MessageReceived | SessionEnded


class _State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class _Outgoing:
    """One channel's queue of encoded messages, sent fragment by fragment."""

    __slots__ = ("credit", "offset", "pending", "queued")

    def __init__(self, credit: int) -> None:
        self.pending: collections.deque[bytes] = collections.deque()
        self.offset = 0
        self.queued = 0
        self.credit = credit


class SecureSession:
    """Both sides' session after RA1, with channels, priorities and flow control."""

    def __init__(
        self, established: Established, now: float, limits: SessionLimits | None = None
    ) -> None:
        self._limits = limits or SessionLimits()
        self._sealer = established.sealer
        self._opener = established.opener
        self.sas = established.sas
        self.granted = established.granted
        self.requested = established.requested
        self.technician = established.technician
        self.device = established.device
        self._state = _State.OPEN
        self._events: list[SessionEvent] = []
        self._out = {ch: _Outgoing(self._limits.initial_window) for ch in Channel}
        self._order = sorted(Channel, key=lambda ch: (CHANNEL_SPECS[ch].priority, ch))
        self._turn = 0
        self._reassembly = {ch: bytearray() for ch in Channel}
        self._recv_window = dict.fromkeys(Channel, self._limits.initial_window)
        self._ungranted = dict.fromkeys(Channel, 0)
        self._close_reason = ""
        self._last_sent = now
        self._last_received = now
        self._key_since = now
        self._heartbeat_due = False
        self.bytes_sent = 0
        self.bytes_received = 0

    # --- state ---

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    @property
    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    def events_received(self) -> list[SessionEvent]:
        """Events since the last call. Call after every receive/tick/next_record."""
        events, self._events = self._events, []
        return events

    def _end(self, reason: str, *, clean: bool, by_peer: bool) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        for out in self._out.values():
            out.pending.clear()
            out.queued = 0
        self._events.append(SessionEnded(reason, clean, by_peer))

    # --- sending ---

    def send(self, msg: AppMessage) -> None:
        """Queue a message on its channel.

        Raises:
            InvalidState: the session is closing or closed.
            ProtocolError: the message cannot be encoded or is too large.
        """
        if self._state is not _State.OPEN:
            raise InvalidState("the session is closed")
        channel = msg.CHANNEL
        data = encode(msg)
        if len(data) > CHANNEL_SPECS[channel].max_message:
            raise ProtocolError(f"message too large for the {channel.name.lower()} channel")
        out = self._out[channel]
        out.pending.append(data)
        out.queued += len(data)

    def queued_bytes(self, channel: Channel) -> int:
        """Bytes waiting to be sent on a channel (for the producer's pacing)."""
        out = self._out[channel]
        return out.queued - out.offset

    def send_credit(self, channel: Channel) -> int:
        """Bytes the peer lets us send on a bulk channel right now."""
        return self._out[channel].credit

    def close(self, reason: str = "Session ended.") -> None:
        """End the session with an authenticated CLOSE.

        Interactive messages already queued (control, input, chat, clipboard,
        record) still go out first, so a last grant change or chat line is not
        lost; queued bulk data (screen, file) is dropped. Then CLOSE is sent
        and nothing after it.
        """
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING
        self._close_reason = reason
        for channel, out in self._out.items():
            if CHANNEL_SPECS[channel].bulk:
                out.pending.clear()
                out.queued = out.offset = 0

    def _seal(self, rtype: RecordType, plaintext: bytes) -> bytes:
        return self._sealer.seal(rtype, plaintext)

    def _rekey_due(self, now: float) -> bool:
        lim = self._limits
        return (
            self._sealer.seq >= lim.rekey_records
            or self._sealer.bytes_this_epoch >= lim.rekey_bytes
            or now - self._key_since >= lim.rekey_interval
        )

    def _next_fragment(self) -> bytes | None:
        n = len(self._order)
        best: int | None = None
        for i in range(n):
            channel = self._order[(self._turn + i) % n]
            out = self._out[channel]
            if not out.pending:
                continue
            spec = CHANNEL_SPECS[channel]
            if best is not None and spec.priority > best:
                continue
            remaining = len(out.pending[0]) - out.offset
            size = min(remaining, self._limits.fragment_size)
            if spec.bulk and out.credit < size:
                continue
            if best is None or spec.priority < best:
                best = spec.priority
                chosen = channel
        if best is None:
            return None
        # Take turns among channels of the same priority.
        self._turn = (self._order.index(chosen) + 1) % n
        out = self._out[chosen]
        head = out.pending[0]
        size = min(len(head) - out.offset, self._limits.fragment_size)
        piece = memoryview(head)[out.offset : out.offset + size]
        out.offset += size
        final = out.offset == len(head)
        if final:
            out.pending.popleft()
            out.queued -= len(head)
            out.offset = 0
        if CHANNEL_SPECS[chosen].bulk:
            out.credit -= size
        # One copy of the fragment: it is the hot path for bulk channels.
        return b"".join((bytes((chosen, _FINAL if final else 0)), piece))

    def next_record(self, now: float) -> bytes | None:
        """The next record to put on the wire, or None when there is nothing to send."""
        if self._state is _State.CLOSED:
            return None
        if self._state is _State.CLOSING:
            fragment = self._next_fragment()
            if fragment is not None:
                self._last_sent = now
                return self._seal(RecordType.DATA, fragment)
            record = self._seal(RecordType.CLOSE, encode(CloseNotice(self._close_reason[:200])))
            self._end(self._close_reason, clean=True, by_peer=False)
            return record
        if self._rekey_due(now):
            self._key_since = now
            self._last_sent = now
            return self._seal(RecordType.KEY_UPDATE, b"")
        fragment = self._next_grant() or self._next_fragment()
        if fragment is not None:
            self._last_sent = now
            self._heartbeat_due = False
            self.bytes_sent += len(fragment)
            return self._seal(RecordType.DATA, fragment)
        if self._heartbeat_due:
            self._heartbeat_due = False
            self._last_sent = now
            return self._seal(RecordType.HEARTBEAT, b"")
        return None

    # --- time ---

    def tick(self, now: float) -> None:
        """Advance timers: schedules heartbeats, notices a silent peer."""
        if self._state is _State.CLOSED:
            return
        if now - self._last_received >= self._limits.peer_timeout:
            self._end("The other side stopped responding.", clean=False, by_peer=True)
            return
        if now - self._last_sent >= self._limits.heartbeat_interval:
            self._heartbeat_due = True

    def next_deadline(self) -> float:
        """The latest time by which tick() must be called again."""
        lim = self._limits
        return min(
            self._last_sent + lim.heartbeat_interval,
            self._last_received + lim.peer_timeout,
            self._key_since + lim.rekey_interval,
        )

    # --- receiving ---

    def connection_lost(self) -> None:
        """The transport ended. Without a CLOSE first, this is an abnormal end."""
        self._end(
            "The connection was lost without the session being closed.",
            clean=False,
            by_peer=True,
        )

    def receive_record(self, wire: bytes, now: float) -> None:
        """Process one record from the peer; results appear in events_received().

        Any error is fatal: the session ends with a clear reason, and the
        adapter should drop the connection.
        """
        if self._state is _State.CLOSED:
            return
        try:
            self._receive(wire, now)
        except (CryptoError, ProtocolError) as exc:
            self._end(f"Security check failed: {exc}", clean=False, by_peer=True)

    def _receive(self, wire: bytes, now: float) -> None:
        rtype, plaintext = self._opener.open(wire)
        self._last_received = now
        self.bytes_received += len(plaintext)
        if rtype is RecordType.DATA:
            self._receive_fragment(plaintext)
        elif rtype is RecordType.CLOSE:
            notice = decode_as(CloseNotice, plaintext)
            self._end(
                notice.reason or "The other side ended the session.", clean=True, by_peer=True
            )
        elif rtype is RecordType.HEARTBEAT:
            if plaintext:
                raise ProtocolError("heartbeat records carry no payload")
        elif rtype is RecordType.AUTH:
            raise ProtocolError("handshake record after the handshake")
        # KEY_UPDATE was handled by the opener.

    def _receive_fragment(self, plaintext: bytes) -> None:
        if len(plaintext) < _DATA_HEADER:
            raise ProtocolError("data record without a channel header")
        try:
            channel = Channel(plaintext[0])
        except ValueError:
            raise ProtocolError(f"unknown channel {plaintext[0]}") from None
        flags = plaintext[1]
        if flags & ~_FINAL:
            raise ProtocolError("unknown fragment flags")
        spec = CHANNEL_SPECS[channel]
        piece = memoryview(plaintext)[_DATA_HEADER:]
        if spec.bulk:
            self._recv_window[channel] -= len(piece)
            if self._recv_window[channel] < 0:
                raise ProtocolError(f"peer overran the {channel.name.lower()} flow-control window")
            self._ungranted[channel] += len(piece)
        buffer = self._reassembly[channel]
        if len(buffer) + len(piece) > spec.max_message:
            raise ProtocolError(f"message too large for the {channel.name.lower()} channel")
        if not flags & _FINAL:
            buffer += piece
            return
        if buffer:
            buffer += piece
            with memoryview(buffer) as whole:
                msg = decode(whole, max_size=spec.max_message)
            buffer.clear()
        else:
            msg = decode(piece, max_size=spec.max_message)
        if not isinstance(msg, AppMessage) or msg.CHANNEL is not channel:
            raise ProtocolError(
                f"{type(msg).__name__} is not allowed on the {channel.name.lower()} channel"
            )
        if isinstance(msg, WindowUpdate):
            out = self._out[msg.channel]
            out.credit = min(out.credit + msg.credit, 1 << 31)
            return
        self._events.append(MessageReceived(channel, msg))

    def _next_grant(self) -> bytes | None:
        # Credit counts only once it is on the wire: a peer cannot have seen a
        # grant we have not sent, so anything beyond the sent window is an overrun.
        control = self._out[Channel.CONTROL]
        if control.offset:
            return None  # never split a control message that is mid-fragment
        threshold = self._limits.initial_window // 4
        for channel, amount in self._ungranted.items():
            if amount >= threshold:
                self._ungranted[channel] = 0
                self._recv_window[channel] += amount
                update = encode(WindowUpdate(channel, amount))
                return bytes((Channel.CONTROL, _FINAL)) + update
        return None
