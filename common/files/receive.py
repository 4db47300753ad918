"""Receiving one file: a pure state machine that says what to write, and when to stop.

No I/O. The caller feeds it the offer, the user's decision, the chunks and the
end of the stream; it answers with actions (:class:`CreatePartial`,
:class:`WriteAt`, :class:`Finalise`, :class:`DeletePartial`) that
:mod:`common.files.writer` carries out. It keeps a running SHA-256 of what it
accepted, enforces the declared size (one byte more fails at once, before it
is written), and finalises only when the digest matches the offer
(security.md 5.5, 9 cases 39 and 40).

::

    OFFERED --accept--> ACCEPTED --chunk--> RECEIVING --end, size and hash ok--> VERIFYING
       |                   |                   |                                    |
       +--decline/cancel---+----any refusal----+-----------------------------+  finalised
                                                                              v      v
                                                                           FAILED   DONE

VERIFYING means the digest matched and the writer is flushing and renaming;
only :meth:`FileReceiver.finalised` makes it DONE.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac

from common.errors import InvalidState
from common.files.names import SafeName, sanitise_name
from common.files.refusal import Refusal, TransferRefused


__all__ = [
    "MAX_DECLARED_NAME_CHARS",
    "MAX_FILE_SIZE",
    "Action",
    "CreatePartial",
    "DeletePartial",
    "FileReceiver",
    "Finalise",
    "Offer",
    "ReceiveState",
    "WriteAt",
]

# Offsets are 64-bit on the wire; anything larger is a hostile or broken peer.
MAX_FILE_SIZE = (1 << 63) - 1
MAX_DECLARED_NAME_CHARS = 1024


class ReceiveState(enum.Enum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    RECEIVING = "receiving"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"


_TERMINAL = frozenset({ReceiveState.DONE, ReceiveState.FAILED})
# States in which a partial file exists on disk (the writer created it on accept).
_HAS_PARTIAL = frozenset({ReceiveState.ACCEPTED, ReceiveState.RECEIVING, ReceiveState.VERIFYING})


@dataclasses.dataclass(frozen=True, slots=True)
class Offer:
    """A file the peer offers: what the receiver must check before asking the user."""

    transfer_id: bytes
    name: str
    size: int
    sha256: bytes

    def check(self, max_file_bytes: int = MAX_FILE_SIZE) -> None:
        """Refuse an offer that is malformed or larger than the per-file quota.

        Raises:
            TransferRefused: BAD_OFFER or FILE_TOO_LARGE.
        """
        if len(self.transfer_id) != 16 or len(self.sha256) != 32:
            raise TransferRefused(Refusal.BAD_OFFER, "transfer id or digest has the wrong length")
        if not 0 <= self.size <= MAX_FILE_SIZE:
            raise TransferRefused(Refusal.BAD_OFFER, "size out of range")
        if len(self.name) > MAX_DECLARED_NAME_CHARS:
            raise TransferRefused(Refusal.BAD_OFFER, "name too long")
        if self.size > max_file_bytes:
            raise TransferRefused(Refusal.FILE_TOO_LARGE, f"{self.size} > {max_file_bytes}")


@dataclasses.dataclass(frozen=True, slots=True)
class CreatePartial:
    """Create the partial file for this transfer (exclusively, never following links)."""

    name: str
    transfer_id: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class WriteAt:
    """Write data at offset in the partial file."""

    offset: int
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Finalise:
    """Flush the partial file and give it its final name (never replacing a file)."""

    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeletePartial:
    """Remove the partial file: the transfer failed and must leave nothing behind."""


Action = CreatePartial | WriteAt | Finalise | DeletePartial


class FileReceiver:
    """The receiving side of one file transfer.

    Construction checks the offer (so a malformed or over-quota offer never
    reaches the user) and sanitises its name. Every method returns the
    actions to carry out, in order. After a failure, ``reason`` says why;
    later chunks (already in flight) are ignored, not errors.
    """

    def __init__(self, offer: Offer, *, max_file_bytes: int = MAX_FILE_SIZE) -> None:
        offer.check(max_file_bytes)
        self.offer = offer
        self.safe_name: SafeName = sanitise_name(offer.name)
        self._state = ReceiveState.OFFERED
        self._hash = hashlib.sha256()
        self._received = 0
        self._reason: Refusal | None = None
        self._final_name: str | None = None

    @property
    def state(self) -> ReceiveState:
        return self._state

    @property
    def received(self) -> int:
        """Bytes accepted so far (all of them hashed and handed to the writer)."""
        return self._received

    @property
    def reason(self) -> Refusal | None:
        return self._reason

    @property
    def final_name(self) -> str | None:
        """The name the file got on disk (after any ``name (1).ext`` renaming), once DONE."""
        return self._final_name

    def accept(self) -> list[Action]:
        """The user accepted: create the partial file."""
        self._expect(ReceiveState.OFFERED, "accept")
        self._state = ReceiveState.ACCEPTED
        return [CreatePartial(self.safe_name.name, self.offer.transfer_id)]

    def decline(self) -> list[Action]:
        """The user declined: nothing was written, nothing to delete."""
        self._expect(ReceiveState.OFFERED, "decline")
        return self._fail(Refusal.DECLINED)

    def on_chunk(self, offset: int, data: bytes) -> list[Action]:
        """A chunk from the peer. It must start where the last one ended."""
        if self._state in _TERMINAL:
            return []
        if self._state is ReceiveState.OFFERED:
            # Data before the user said yes: the peer ignores consent.
            return self._fail(Refusal.DATA_BEFORE_ACCEPT)
        if self._state is ReceiveState.VERIFYING:
            return self._fail(Refusal.SIZE_EXCEEDED)
        if offset != self._received:
            # The record layer delivers in order, so a gap or overlap is a
            # broken or hostile sender, never a network effect.
            return self._fail(Refusal.OUT_OF_ORDER)
        if len(data) > self.offer.size - self._received:
            # Checked before writing: not one byte beyond the declared size
            # reaches the disk.
            return self._fail(Refusal.SIZE_EXCEEDED)
        if not data:
            return []
        self._state = ReceiveState.RECEIVING
        self._hash.update(data)
        self._received += len(data)
        return [WriteAt(offset, data)]

    def on_end(self) -> list[Action]:
        """The sender says the file is complete: check size and SHA-256, then finalise."""
        if self._state in _TERMINAL or self._state is ReceiveState.VERIFYING:
            return []  # a repeated end changes nothing
        if self._state is ReceiveState.OFFERED:
            return self._fail(Refusal.DATA_BEFORE_ACCEPT)
        self._expect_any((ReceiveState.ACCEPTED, ReceiveState.RECEIVING), "end")
        if self._received != self.offer.size:
            return self._fail(Refusal.TRUNCATED)
        if not hmac.compare_digest(self._hash.digest(), self.offer.sha256):
            return self._fail(Refusal.HASH_MISMATCH)
        self._state = ReceiveState.VERIFYING
        return [Finalise(self.safe_name.name)]

    def finalised(self, final_name: str) -> None:
        """The writer renamed the partial file to final_name."""
        self._expect(ReceiveState.VERIFYING, "finalised")
        self._final_name = final_name
        self._state = ReceiveState.DONE

    def cancel(self) -> list[Action]:
        """Either side cancelled: the partial file (if any) goes."""
        if self._state in _TERMINAL:
            return []
        return self._fail(Refusal.CANCELLED)

    def io_failed(self, reason: Refusal = Refusal.WRITE_FAILED) -> list[Action]:
        """Creating, writing or finalising failed locally (disk full, a name taken...)."""
        if self._state in _TERMINAL:
            return []
        return self._fail(reason)

    def sha256(self) -> bytes:
        """The digest of what was received so far (the offer's, once DONE)."""
        return self._hash.digest()

    def _fail(self, reason: Refusal) -> list[Action]:
        had_partial = self._state in _HAS_PARTIAL
        self._state = ReceiveState.FAILED
        self._reason = reason
        return [DeletePartial()] if had_partial else []

    def _expect(self, state: ReceiveState, what: str) -> None:
        self._expect_any((state,), what)

    def _expect_any(self, states: tuple[ReceiveState, ...], what: str) -> None:
        if self._state not in states:
            raise InvalidState(f"cannot {what} a transfer in state {self._state.value}")
