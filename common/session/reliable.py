"""The retransmit buffer behind session resumption (pure: no I/O, no clock).

Reliable data records are numbered implicitly: the n-th reliable DATA
record a side sends is number n on both sides, whatever the record keys
(they change on every resume). Each side acknowledges how many it received
(in heartbeats); the sender keeps what is not acknowledged yet, up to a
byte budget, and re-sends it after a resume from the count the peer proves
it has. Unreliable records (the screen) are never numbered nor kept.

Over the budget the oldest unacknowledged fragments are dropped: memory
stays bounded, and the session is not resumable until the peer has
acknowledged past the gap.
"""

from __future__ import annotations

import collections

from common.errors import ProtocolError


__all__ = ["ABORT", "RetransmitBuffer"]

# DATA flag: drop the partial message on this channel (see common.session).
ABORT = 0x02


class RetransmitBuffer:
    """Sent, unacknowledged reliable fragments of one direction.

    Attributes:
        sent: reliable fragments sent so far (the next one's number).
        acked: fragments the peer acknowledged.
        base: the number of the oldest fragment still kept.
        bytes: bytes kept.
    """

    def __init__(self, budget: int) -> None:
        if budget <= 0:
            raise ValueError("the retransmit budget must be positive")
        self._budget = budget
        self._frames: collections.deque[bytes] = collections.deque()
        self.sent = 0
        self.acked = 0
        self.base = 0
        self.bytes = 0
        self._resend = 0
        self._resend_end = 0

    @property
    def complete(self) -> bool:
        """Everything the peer may lack is still here (the session can resume)."""
        return self.acked >= self.base

    def record(self, fragment: bytes) -> None:
        """Keep a reliable fragment that just went on the wire."""
        self.sent += 1
        self._frames.append(fragment)
        self.bytes += len(fragment)
        while self.bytes > self._budget and self._frames:
            self.bytes -= len(self._frames.popleft())
            self.base += 1

    def ack(self, count: int) -> None:
        """The peer has the first ``count`` fragments.

        Raises:
            ProtocolError: it acknowledges less than before or more than was sent.
        """
        if count < self.acked or count > self.sent:
            raise ProtocolError("acknowledgement out of range")
        self.acked = count
        frames = self._frames
        while self.base < count and frames:
            self.bytes -= len(frames.popleft())
            self.base += 1
        self.base = max(self.base, count)

    def start_resend(self, peer_received: int) -> None:
        """After a resume: acknowledge ``peer_received`` and re-send the rest.

        Raises:
            ProtocolError: the count is out of range, or fragments the peer
                lacks were dropped (over the budget).
        """
        self.ack(peer_received)
        if not self.complete:
            raise ProtocolError("unacknowledged data beyond the retransmit budget")
        self._resend = peer_received
        self._resend_end = self.sent

    def next_resend(self) -> bytes | None:
        """The next fragment to re-send, or None when caught up."""
        if self._resend >= self._resend_end:
            return None
        index = self._resend - self.base
        self._resend += 1
        if index < 0:  # acknowledged meanwhile
            return self.next_resend()
        return self._frames[index]

    @property
    def resending(self) -> bool:
        return self._resend < self._resend_end

    def withdraw(self, channel: int, placeholder: bytes) -> None:
        """Replace every kept fragment of ``channel`` with ``placeholder`` plus its size.

        The peer may lack them; if they are re-sent, it gets an abort
        instead (see :meth:`SecureSession.discard_unsent`). The size lets
        the sender refund flow-control credit for bytes never delivered.
        """
        frames = self._frames
        for i, frame in enumerate(frames):
            if frame[0] == channel and not frame[1] & ABORT:
                size = len(frame) - 2
                replacement = placeholder + size.to_bytes(4, "big")
                self.bytes += len(replacement) - len(frame)
                frames[i] = replacement

    def clear(self) -> None:
        self._frames.clear()
        self.bytes = 0
        self._resend = self._resend_end = 0
