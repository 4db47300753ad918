"""When the user's codes get longer (security.md 2.7), as a pure decision.

A failed pairing (the codes did not match: a mistyped code, or someone
guessing or tampering) burns the code. Three failures in a row within 30
minutes are unlikely to be typos only, so the user is warned that someone
may be trying to intercept, and for the next hour every code has nine
secret digits instead of six (a guess succeeds once in 10^9, not 10^6).

A pairing in which the code matched (the technician was verified, or the
user declined) ends the run of failures. Time comes in as ``now`` (any
clock, one clock per policy); nothing here does I/O.
"""

from __future__ import annotations

import dataclasses

from common.crypto.code import SECRET_DIGITS, STRONG_SECRET_DIGITS


__all__ = ["CodePolicy", "CodeWarning"]

WARNING_TEXT = (
    "Several attempts to connect with your codes failed in a row. Someone may be "
    "trying to guess or intercept your code. For the next hour your codes are "
    "longer. Only read a code to someone you contacted yourself."
)


@dataclasses.dataclass(frozen=True)
class CodeWarning:
    """Longer codes are in force.

    Attributes:
        until: when codes go back to six secret digits (the policy's clock).
        digits: how many secret digits codes have until then.
        message: the warning to show the user.
    """

    until: float
    digits: int
    message: str = WARNING_TEXT


class CodePolicy:
    """How many secret digits the next code gets.

    Args:
        failures: failed pairings in a row that switch to longer codes.
        window: those failures must fall within this many seconds.
        strong_for: how long longer codes stay in force after the switch.
    """

    def __init__(
        self,
        *,
        failures: int = 3,
        window: float = 30 * 60.0,
        strong_for: float = 60 * 60.0,
        digits: int = SECRET_DIGITS,
        strong_digits: int = STRONG_SECRET_DIGITS,
    ) -> None:
        if failures < 1 or window <= 0 or strong_for <= 0:
            raise ValueError("failures, window and strong_for must be positive")
        self.failures = failures
        self.window = window
        self.strong_for = strong_for
        self.normal_digits = digits
        self.strong_digits = strong_digits
        self._recent: list[float] = []
        self._strong_until: float | None = None

    def digits(self, now: float) -> int:
        """Secret digits for a code made now."""
        return self.strong_digits if self.warning(now) is not None else self.normal_digits

    def warning(self, now: float) -> CodeWarning | None:
        """The warning while longer codes are in force, else None."""
        if self._strong_until is None or now >= self._strong_until:
            return None
        return CodeWarning(self._strong_until, self.strong_digits)

    def pairing_failed(self, now: float) -> CodeWarning | None:
        """A pairing with one of our codes failed (the codes did not match).

        Returns:
            The warning when this failure switched to longer codes (show it
            now), else None.
        """
        self._recent = [t for t in self._recent if now - t < self.window]
        self._recent.append(now)
        if len(self._recent) < self.failures:
            return None
        self._recent.clear()
        self._strong_until = now + self.strong_for
        return self.warning(now)

    def code_matched(self, now: float) -> None:
        """A pairing got past the code (verified or declined): the run of failures ends."""
        del now  # the longer codes stay for their hour: the attacker may still be there
        self._recent.clear()
