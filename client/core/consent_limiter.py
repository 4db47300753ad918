"""Mid-session consent prompts, rate-limited (pure; time is passed in).

A technician must not be able to flood the user with questions:

- while a prompt is open, further requests are merged into it (one dialog);
- after the user declines a capability, asking for it again is refused
  automatically for ``cooldown`` seconds, and the technician is told how long;
- notifications about requests are capped at one per ``notify_interval``.
"""

from __future__ import annotations

import dataclasses
import math

from common.capability import Capability, ordered


__all__ = ["Asked", "ConsentLimiter"]


@dataclasses.dataclass(frozen=True)
class Asked:
    """What to do with one request from the technician.

    Attributes:
        prompt: the capabilities the open prompt should now ask for (empty:
            no prompt to open or update).
        opened: the prompt is new (else it was already open and grew, or nothing).
        refused: capabilities refused automatically (declined too recently).
        retry_after: whole seconds until the refused ones may be asked again.
        notify: show a notification for this request.
    """

    prompt: tuple[Capability, ...]
    opened: bool
    refused: tuple[Capability, ...]
    retry_after: int
    notify: bool


class ConsentLimiter:
    """One session's mid-session prompts (see the module docstring)."""

    def __init__(self, *, cooldown: float = 30.0, notify_interval: float = 10.0) -> None:
        self._cooldown = cooldown
        self._notify_interval = notify_interval
        self._pending: tuple[Capability, ...] = ()
        self._declined_at: dict[Capability, float] = {}
        self._notified_at = -math.inf

    @property
    def pending(self) -> tuple[Capability, ...]:
        """What the open prompt asks for (empty: no prompt open)."""
        return self._pending

    def ask(self, missing: tuple[Capability, ...], now: float) -> Asked:
        """The technician asks for capabilities the user has not granted."""
        cooling = tuple(
            c for c in missing if now - self._declined_at.get(c, -math.inf) < self._cooldown
        )
        wanted = tuple(c for c in missing if c not in cooling and c not in self._pending)
        retry_after = 0
        if cooling:
            latest = max(self._declined_at[c] for c in cooling)
            retry_after = max(1, math.ceil(self._cooldown - (now - latest)))
        if not wanted:
            return Asked((), False, cooling, retry_after, False)
        opened = not self._pending
        self._pending = ordered((*self._pending, *wanted))
        notify = now - self._notified_at >= self._notify_interval
        if notify:
            self._notified_at = now
        return Asked(self._pending, opened, cooling, retry_after, notify)

    def answer(self, granted: tuple[Capability, ...], now: float) -> tuple[Capability, ...]:
        """The user answered the prompt; returns what was declined (now cooling down)."""
        declined = tuple(c for c in self._pending if c not in granted)
        for capability in declined:
            self._declined_at[capability] = now
        self._pending = ()
        return declined

    @property
    def cooldown(self) -> float:
        return self._cooldown

    def withdraw(self) -> None:
        """The prompt is moot (the session ended)."""
        self._pending = ()
