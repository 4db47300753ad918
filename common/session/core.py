"""SecureSession, the sans-I/O session (the design is in :mod:`common.session`)."""

from __future__ import annotations

import enum
import struct

from common.crypto.handshake import CloseNotice, Established, HandshakeRole
from common.crypto.record import RecordOpener, RecordSealer, RecordType
from common.crypto.resume import ResumeHandshake, ResumeSecrets
from common.errors import CryptoError, InvalidState, ProtocolError
from common.protocol.channels import CHANNEL_SPECS, Channel
from common.protocol.codec import decode, decode_as, encode
from common.protocol.messages import AppMessage, WindowUpdate
from common.session.outgoing import FINAL, Outgoing, next_fragment
from common.session.reliable import ABORT, RetransmitBuffer
from common.session.types import (
    DATA_HEADER,
    EndCause,
    LinkLost,
    LinkRestored,
    MessageReceived,
    SessionEnded,
    SessionEvent,
    SessionLimits,
)


__all__ = ["SecureSession"]

_FINAL = FINAL
_ABORT = ABORT
# Not numbered, not kept for re-sending: screen data and its window grants.
_UNRELIABLE = 0x04
_FLAGS = _FINAL | _ABORT | _UNRELIABLE
_DATA_HEADER = DATA_HEADER
_ACK = struct.Struct(">Q")
# Never re-sent after a resume: stale frames are worthless, the next keyframe is not.
_UNRELIABLE_CHANNELS = frozenset({Channel.SCREEN})


class _State(enum.Enum):
    OPEN = "open"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    CLOSING = "closing"
    CLOSED = "closed"


_LIVE = frozenset({_State.OPEN, _State.SUSPENDED, _State.RESUMING})


class SecureSession:
    """Both sides' session after RA1, with channels, priorities and flow control."""

    def __init__(
        self, established: Established, now: float, limits: SessionLimits | None = None
    ) -> None:
        self._limits = limits or SessionLimits()
        self._sealer: RecordSealer = established.sealer
        self._opener: RecordOpener = established.opener
        self.sas = established.sas
        self.granted = established.granted
        self.requested = established.requested
        self.technician = established.technician
        self.device = established.device
        self.role: HandshakeRole = established.role
        self._secrets = (
            ResumeSecrets(established.resume_secret) if established.resume_secret else None
        )
        self._resume_enabled = False
        self._resume: ResumeHandshake | None = None
        self._resume_deadline = 0.0
        self._confirming = False
        self._state = _State.OPEN
        self._events: list[SessionEvent] = []
        window = self._limits.initial_window
        self._out = {
            ch: Outgoing(window, _UNRELIABLE if ch in _UNRELIABLE_CHANNELS else 0) for ch in Channel
        }
        self._order = sorted(Channel, key=lambda ch: (CHANNEL_SPECS[ch].priority, ch))
        self._turn = 0
        self._reassembly = {ch: bytearray() for ch in Channel}
        self._recv_window = dict.fromkeys(Channel, window)
        self._ungranted = dict.fromkeys(Channel, 0)
        self._close_reason = ""
        self._last_sent = now
        self._last_received = now
        self._key_since = now
        self._heartbeat_due = False
        self._retx = RetransmitBuffer(self._limits.retransmit_budget)
        self._received = 0  # reliable records from the peer
        self._acked_sent = 0  # the count we last told the peer
        self._unacked_bytes = 0
        self._unacked_since = now
        self.bytes_sent = 0
        self.bytes_received = 0
        self.resumes = 0

    # --- state ---

    @property
    def is_open(self) -> bool:
        """Messages may be sent (they wait while the link is down)."""
        return self._state in _LIVE

    @property
    def is_suspended(self) -> bool:
        """The link is down (or a resume is under way)."""
        return self._state in (_State.SUSPENDED, _State.RESUMING)

    @property
    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def resume_deadline(self) -> float:
        """While suspended: when the session gives up (session clock)."""
        return self._resume_deadline

    @property
    def resumable(self) -> bool:
        """A dropped link would suspend the session rather than end it."""
        return self._resume_enabled and self._secrets is not None and self._retx.complete

    def enable_resume(self) -> None:
        """Suspend on a dropped link or a silent peer (the adapter can reconnect)."""
        if self._secrets is None:
            raise InvalidState("this session has no resume secret")
        self._resume_enabled = True

    def resume_ids(self) -> tuple[bytes, bytes]:
        """The public ids to give the relay: (current, previous or b"")."""
        if self._secrets is None:
            raise InvalidState("this session has no resume secret")
        return self._secrets.ids()

    @property
    def unacknowledged_bytes(self) -> int:
        return self._retx.bytes

    def events_received(self) -> list[SessionEvent]:
        """Events since the last call. Call after every receive/tick/next_record."""
        events, self._events = self._events, []
        return events

    def _end(self, reason: str, cause: EndCause, *, clean: bool, by_peer: bool) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        for out in self._out.values():
            out.pending.clear()
            out.queued = 0
        self._retx.clear()
        self._resume = None
        self._secrets = None
        self._events.append(SessionEnded(reason, clean, by_peer, cause))

    # --- sending ---

    def send(self, msg: AppMessage) -> None:
        """Queue a message on its channel (also while the link is down).

        Screen messages sent while the link is down are dropped: they would
        be stale by the time it is back.

        Raises:
            InvalidState: the session is closing or closed.
            ProtocolError: the message cannot be encoded or is too large.
        """
        if self._state not in _LIVE:
            raise InvalidState("the session is closed")
        channel = msg.CHANNEL
        data = encode(msg)
        if len(data) > CHANNEL_SPECS[channel].max_message:
            raise ProtocolError(f"message too large for the {channel.name.lower()} channel")
        if channel in _UNRELIABLE_CHANNELS and self._state is not _State.OPEN:
            return
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

    def discard_unsent(self, channel: Channel) -> None:
        """Drop everything on ``channel`` that is not on the wire yet.

        A message cut mid-fragment is aborted: the peer drops what it has
        of it. Fragments of the channel that went out but are not
        acknowledged are withdrawn from the retransmit buffer, so nothing
        queued before this call reaches the peer after it, even across a
        resume. Messages sent after the call go out normally.
        """
        out = self._out[channel]
        out.clear()
        if channel not in _UNRELIABLE_CHANNELS:
            self._retx.withdraw(channel, bytes((channel, _ABORT)))

    def close(self, reason: str = "Session ended.") -> None:
        """End the session with an authenticated CLOSE.

        Interactive messages already queued (control, input, chat, clipboard,
        record) still go out first, so a last grant change or chat line is not
        lost; queued bulk data (screen, file) is dropped. Then CLOSE is sent
        and nothing after it. While the link is down the session ends here
        and now (nothing can be sent): the peer sees the link lost.
        """
        if self._state in (_State.SUSPENDED, _State.RESUMING):
            self._end(reason, EndCause.CLOSED, clean=False, by_peer=False)
            return
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
        fragment, self._turn = next_fragment(
            self._out, self._order, self._turn, self._limits.fragment_size
        )
        return fragment

    def _data(self, fragment: bytes, now: float) -> bytes:
        if not fragment[1] & _UNRELIABLE:
            self._retx.record(fragment)
        self._last_sent = now
        self._heartbeat_due = False
        self.bytes_sent += len(fragment)
        return self._seal(RecordType.DATA, fragment)

    def _resent(self, now: float) -> bytes | None:
        frame = self._retx.next_resend()
        if frame is None:
            return None
        if frame[1] & _ABORT and len(frame) > _DATA_HEADER:
            # A withdrawn fragment: send the abort, refund the bytes it held.
            channel = Channel(frame[0])
            if CHANNEL_SPECS[channel].bulk:
                self._out[channel].credit += int.from_bytes(frame[_DATA_HEADER:], "big")
            frame = frame[:_DATA_HEADER]
        self._last_sent = now
        self._heartbeat_due = False
        return self._seal(RecordType.DATA, frame)

    def _ack_record(self, now: float) -> bytes:
        self._acked_sent = self._received
        self._unacked_bytes = 0
        self._heartbeat_due = False
        self._last_sent = now
        return self._seal(RecordType.HEARTBEAT, _ACK.pack(self._received))

    def _ack_due(self, now: float) -> bool:
        if self._received == self._acked_sent:
            return False
        lim = self._limits
        return self._unacked_bytes >= lim.ack_bytes or now - self._unacked_since >= lim.ack_interval

    def next_record(self, now: float) -> bytes | None:
        """The next record to put on the wire, or None when there is nothing to send."""
        state = self._state
        if state is _State.CLOSED or state is _State.SUSPENDED or state is _State.RESUMING:
            return None
        if self._retx.resending:
            record = self._resent(now)
            if record is not None:
                return record
        if state is _State.CLOSING:
            fragment = self._next_fragment()
            if fragment is not None:
                return self._data(fragment, now)
            record = self._seal(RecordType.CLOSE, encode(CloseNotice(self._close_reason[:200])))
            self._end(self._close_reason, EndCause.CLOSED, clean=True, by_peer=False)
            return record
        if self._rekey_due(now):
            self._key_since = now
            self._last_sent = now
            return self._seal(RecordType.KEY_UPDATE, b"")
        if self._ack_due(now):
            return self._ack_record(now)
        fragment = self._next_grant() or self._next_fragment()
        if fragment is not None:
            return self._data(fragment, now)
        if self._heartbeat_due:
            return self._ack_record(now)
        return None

    # --- time ---

    def tick(self, now: float) -> None:
        """Advance timers: heartbeats, acknowledgements, a silent peer, the resume deadline."""
        state = self._state
        if state is _State.CLOSED:
            return
        if state is _State.SUSPENDED or state is _State.RESUMING:
            if now >= self._resume_deadline:
                self._end(
                    "The connection could not be restored in time.",
                    EndCause.LINK_LOST,
                    clean=False,
                    by_peer=True,
                )
            return
        if now - self._last_received >= self._limits.peer_timeout:
            if state is _State.OPEN and self.resumable:
                self._suspend(now)
            else:
                self._end(
                    "The other side stopped responding.",
                    EndCause.PEER_SILENT,
                    clean=False,
                    by_peer=True,
                )
            return
        if now - self._last_sent >= self._limits.heartbeat_interval:
            self._heartbeat_due = True

    def next_deadline(self) -> float:
        """The latest time by which tick() must be called again."""
        lim = self._limits
        if self.is_suspended:
            return self._resume_deadline
        deadline = min(
            self._last_sent + lim.heartbeat_interval,
            self._last_received + lim.peer_timeout,
            self._key_since + lim.rekey_interval,
        )
        if self._received != self._acked_sent:
            deadline = min(deadline, self._unacked_since + lim.ack_interval)
        return deadline

    # --- the link ---

    def connection_lost(self) -> None:
        """The transport ended for good. Without a CLOSE first, this is an abnormal end."""
        self._end(
            "The connection was lost without the session being closed.",
            EndCause.LINK_LOST,
            clean=False,
            by_peer=True,
        )

    def link_lost(self, now: float, reason: str = "") -> None:
        """The transport dropped: suspend if the session can resume, else end.

        Args:
            reason: why the session could not be resumed, if that happens
                (e.g. the relay's own words); a default is used when empty.
        """
        state = self._state
        if state is _State.CLOSED or state is _State.SUSPENDED:
            return
        if state is _State.RESUMING:
            self._resume = None
            self._state = _State.SUSPENDED
            return
        if state is _State.CLOSING:
            self._end(self._close_reason, EndCause.CLOSED, clean=False, by_peer=False)
            return
        if not self.resumable:
            if self._resume_enabled and not self._retx.complete:
                reason = (
                    "The connection dropped with too much unacknowledged data to resume the "
                    "session."
                )
            self._end(
                reason or "The connection was lost without the session being closed.",
                EndCause.LINK_LOST,
                clean=False,
                by_peer=True,
            )
            return
        self._suspend(now)

    def _insecure(self, detail: str) -> None:
        self._end(f"Security check failed: {detail}", EndCause.SECURITY, clean=False, by_peer=True)

    def abandon(self, reason: str) -> None:
        """We are closing but the CLOSE cannot go out (a stalled link): end here."""
        self._end(reason, EndCause.CLOSED, clean=False, by_peer=False)

    def end_link(self, reason: str, cause: EndCause) -> None:
        """The adapter gave up on the link (e.g. the relay refused the resume)."""
        self._end(reason, cause, clean=False, by_peer=True)

    def _suspend(self, now: float) -> None:
        self._state = _State.SUSPENDED
        self._resume_deadline = now + self._limits.resume_grace
        self._heartbeat_due = False
        # Screen data is never replayed; queued frames are stale already.
        self._out[Channel.SCREEN].clear()
        self._events.append(LinkLost(self._resume_deadline))

    def begin_resume(self, random: bytes) -> bytes:
        """A new link is up: our ResumeOffer to send first (``random``: 64 fresh bytes).

        Raises:
            InvalidState: the session is not suspended.
        """
        if self._state is not _State.SUSPENDED or self._secrets is None:
            raise InvalidState(f"cannot resume a session that is {self._state.value}")
        self._resume = ResumeHandshake(self._secrets, self.role, random, self._received)
        self._state = _State.RESUMING
        return self._resume.offer()

    def resume_offer(self, peer_offer: bytes) -> bytes | None:
        """The peer's ResumeOffer: our proof to send, or None (the session ended)."""
        if self._state is not _State.RESUMING or self._resume is None:
            raise InvalidState("no resume under way")
        try:
            return self._resume.receive_offer(peer_offer)
        except (CryptoError, ProtocolError) as exc:
            self._insecure(f"{exc} (resuming)")
            return None

    def resume_proof(self, peer_proof: bytes, now: float) -> bool:
        """The peer's ResumeProof: switch to the new keys and re-send what it lacks.

        Returns:
            True when the session is open again; False when it ended (wrong
            proof: a security failure; or too much was lost to resume).
        """
        if self._state is not _State.RESUMING or self._resume is None:
            raise InvalidState("no resume under way")
        try:
            keys = self._resume.receive_proof(peer_proof)
        except (CryptoError, ProtocolError) as exc:
            self._insecure(f"{exc} (resuming)")
            return False
        try:
            self._retx.start_resend(keys.peer_received)
        except ProtocolError as exc:
            if keys.peer_received < self._retx.acked or keys.peer_received > self._retx.sent:
                self._insecure(f"{exc} (resuming)")
            else:
                self._end(
                    "The connection dropped with too much unacknowledged data to resume the "
                    "session.",
                    EndCause.LINK_LOST,
                    clean=False,
                    by_peer=True,
                )
            return False
        self._resume = None
        self._secrets = ResumeSecrets(keys.next_secret, previous=keys.used)
        self._confirming = True
        self._sealer = RecordSealer(keys.send, keys.sid)
        self._opener = RecordOpener(keys.receive, keys.sid)
        self._state = _State.OPEN
        self._key_since = self._last_received = self._last_sent = now
        # The peer's ack of our records is settled; tell it ours at once.
        self._acked_sent = -1
        self._unacked_since = now - self._limits.ack_interval
        self._reset_screen()
        self.resumes += 1
        self._events.append(LinkRestored())
        return True

    def _reset_screen(self) -> None:
        # Neither screen data nor screen grants cross a resume: both sides
        # start the window afresh, and the receiver drops a partial frame.
        window = self._limits.initial_window
        out = self._out[Channel.SCREEN]
        out.pending.clear()
        out.queued = out.offset = 0
        out.abort = False
        out.credit = window
        self._recv_window[Channel.SCREEN] = window
        self._ungranted[Channel.SCREEN] = 0
        self._reassembly[Channel.SCREEN].clear()

    # --- receiving ---

    def receive_record(self, wire: bytes, now: float) -> None:
        """Process one record from the peer; results appear in events_received().

        Any error is fatal: the session ends with a clear reason, and the
        adapter should drop the connection.
        """
        state = self._state
        if state is _State.CLOSED or state is _State.SUSPENDED or state is _State.RESUMING:
            return
        try:
            self._receive(wire, now)
        except (CryptoError, ProtocolError) as exc:
            self._insecure(str(exc))

    def _receive(self, wire: bytes, now: float) -> None:
        rtype, plaintext = self._opener.open(wire)
        self._last_received = now
        self.bytes_received += len(plaintext)
        if self._confirming and self._secrets is not None:
            # A record under the new keys: the peer switched too.
            self._confirming = False
            self._secrets = ResumeSecrets(self._secrets.current)
        if rtype is RecordType.DATA:
            self._receive_fragment(plaintext, now)
        elif rtype is RecordType.CLOSE:
            notice = decode_as(CloseNotice, plaintext)
            self._end(
                notice.reason or "The other side ended the session.",
                EndCause.PEER_CLOSED,
                clean=True,
                by_peer=True,
            )
        elif rtype is RecordType.HEARTBEAT:
            if len(plaintext) == _ACK.size:
                self._retx.ack(_ACK.unpack(plaintext)[0])
            elif plaintext:
                raise ProtocolError("heartbeat records carry only an acknowledgement")
        elif rtype is RecordType.AUTH:
            raise ProtocolError("handshake record after the handshake")
        # KEY_UPDATE was handled by the opener.

    def _receive_fragment(self, plaintext: bytes, now: float) -> None:
        if len(plaintext) < _DATA_HEADER:
            raise ProtocolError("data record without a channel header")
        try:
            channel = Channel(plaintext[0])
        except ValueError:
            raise ProtocolError(f"unknown channel {plaintext[0]}") from None
        flags = plaintext[1]
        if flags & ~_FLAGS:
            raise ProtocolError("unknown fragment flags")
        if not flags & _UNRELIABLE:
            if self._received == self._acked_sent:
                self._unacked_since = now
            self._received += 1
            self._unacked_bytes += len(plaintext)
        spec = CHANNEL_SPECS[channel]
        buffer = self._reassembly[channel]
        if flags & _ABORT:
            if len(plaintext) != _DATA_HEADER or flags & _FINAL:
                raise ProtocolError("an abort fragment carries nothing")
            buffer.clear()
            return
        piece = memoryview(plaintext)[_DATA_HEADER:]
        if spec.bulk:
            self._recv_window[channel] -= len(piece)
            if self._recv_window[channel] < 0:
                raise ProtocolError(f"peer overran the {channel.name.lower()} flow-control window")
            self._ungranted[channel] += len(piece)
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
                flags = _FINAL | self._out[channel].flags  # screen grants are not replayed
                return bytes((Channel.CONTROL, flags)) + update
        return None
