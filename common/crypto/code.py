"""Pairing codes ``NNN-SSS-SSS``: a public routing number and a secret.

``NNN`` is the nameplate the relay assigned (public: it only routes; four
digits, ``NNNN``, when a relay is busy).
``SSS-SSS`` are six secret digits drawn with :mod:`secrets` on the user's
side; the relay never sees them. A code is single use and expires (10
minutes by default): the user side refuses a second pairing attempt with the
same code whatever the outcome of the first (security.md 2.7).
"""

from __future__ import annotations

import dataclasses
import secrets
import unicodedata
from collections.abc import Callable

from common.errors import CodeError


__all__ = [
    "CODE_LIFETIME",
    "STRONG_SECRET_DIGITS",
    "PairingCode",
    "parse_code",
    "read_code",
]

CODE_LIFETIME = 600.0
SECRET_DIGITS = 6
# After repeated failed pairings the user side issues longer codes
# (client.core.code_policy; security.md 2.7): 10^-9 per guess instead of 10^-6.
STRONG_SECRET_DIGITS = 9


def _digits(text: str) -> str:
    # NFKC maps full-width and other compatibility digits to ASCII.
    normal = unicodedata.normalize("NFKC", text)
    kept = []
    for ch in normal:
        if ch in "0123456789":
            kept.append(ch)
        elif ch in " -\t.":
            continue
        else:
            raise CodeError("A code has digits only, like 123-456-789.")
    return "".join(kept)


def parse_code(text: str, *, secret_digits: int = SECRET_DIGITS) -> tuple[int, str]:
    """Split a typed code into its nameplate and secret.

    Spaces, dashes and full-width digits are accepted.

    Raises:
        CodeError: the text is not a code.
    """
    digits = _digits(text)
    # A busy relay hands out four-digit nameplates (NNNN-SSS-SSS); the length tells.
    plate = len(digits) - secret_digits
    if plate not in (3, 4) or digits[0] == "0":
        raise CodeError(f"A code has {3 + secret_digits} digits, like 123-456-789.")
    return int(digits[:plate]), digits[plate:]


def _group(digits: str) -> str:
    return "-".join(digits[i : i + 3] for i in range(0, len(digits), 3))


@dataclasses.dataclass
class PairingCode:
    """A code issued on the user's side, tracking its single use.

    Attributes:
        nameplate: the relay's routing number (100-999, 1000-9999 when busy).
        secret: the secret digits (never sent to the relay).
        issued_at: when the code was made (clock seconds).
        lifetime: seconds until it expires.
    """

    nameplate: int
    secret: str
    issued_at: float
    lifetime: float = CODE_LIFETIME
    used: bool = False

    @classmethod
    def generate(
        cls,
        nameplate: int,
        now: float,
        *,
        digits: int = SECRET_DIGITS,
        randbelow: Callable[[int], int] = secrets.randbelow,
        lifetime: float = CODE_LIFETIME,
    ) -> PairingCode:
        secret = "".join(str(randbelow(10)) for _ in range(digits))
        return cls(nameplate, secret, now, lifetime)

    @property
    def display(self) -> str:
        """The code as the user reads it out: ``123-456-789``."""
        return f"{self.nameplate:03d}-{_group(self.secret)}"

    def expired(self, now: float) -> bool:
        return now - self.issued_at >= self.lifetime

    def consume(self, now: float) -> str:
        """Burn the code for one pairing attempt and return the PAKE password.

        Raises:
            CodeError: the code was used already, or has expired.
        """
        if self.used:
            raise CodeError(
                "This code was already used once. For your safety it cannot be used "
                "again: request a new code."
            )
        if self.expired(now):
            raise CodeError("This code has expired. Request a new code.")
        self.used = True
        return self.secret


def read_code(text: str) -> tuple[int, str]:
    """Split a code as the technician typed it: six secret digits, or nine.

    ``123-456-789`` and ``123-456-789-012`` (after repeated failed pairings
    the user's side issues the longer kind); the number of digits tells
    which.

    Raises:
        CodeError: the text is not a code.
    """
    long = len(_digits(text)) >= 3 + STRONG_SECRET_DIGITS
    return parse_code(text, secret_digits=STRONG_SECRET_DIGITS if long else SECRET_DIGITS)
