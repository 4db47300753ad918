"""Outgoing queues and the fragment scheduler of a session (pure)."""

from __future__ import annotations

import collections

from common.protocol.channels import CHANNEL_SPECS, Channel
from common.session.reliable import ABORT


__all__ = ["FINAL", "Outgoing", "next_fragment"]

FINAL = 0x01


class Outgoing:
    """One channel's queue of encoded messages, sent fragment by fragment."""

    __slots__ = ("abort", "credit", "flags", "offset", "pending", "queued")

    def __init__(self, credit: int, flags: int) -> None:
        self.pending: collections.deque[bytes] = collections.deque()
        self.offset = 0
        self.queued = 0
        self.credit = credit
        self.flags = flags
        # The peer holds part of a message we withdrew: tell it to drop it.
        self.abort = False

    def clear(self) -> None:
        if self.offset:
            self.abort = True
        self.pending.clear()
        self.queued = self.offset = 0


def next_fragment(
    outs: dict[Channel, Outgoing], order: list[Channel], turn: int, fragment_size: int
) -> tuple[bytes | None, int]:
    """The next fragment in priority order (taking turns), and the next turn."""
    n = len(order)
    best: int | None = None
    for i in range(n):
        channel = order[(turn + i) % n]
        out = outs[channel]
        if not out.pending and not out.abort:
            continue
        spec = CHANNEL_SPECS[channel]
        if best is not None and spec.priority > best:
            continue
        if not out.abort:
            remaining = len(out.pending[0]) - out.offset
            size = min(remaining, fragment_size)
            if spec.bulk and out.credit < size:
                continue
        if best is None or spec.priority < best:
            best = spec.priority
            chosen = channel
    if best is None:
        return None, turn
    # Take turns among channels of the same priority.
    turn = (order.index(chosen) + 1) % n
    out = outs[chosen]
    if out.abort:
        out.abort = False
        return bytes((chosen, ABORT | out.flags)), turn
    head = out.pending[0]
    size = min(len(head) - out.offset, fragment_size)
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
    return b"".join((bytes((chosen, (FINAL if final else 0) | out.flags)), piece)), turn
