"""The one exception tree shared by every Deskhand program.

::

    DeskhandError
     ├── ProtocolError          malformed, unknown, truncated or oversized input
     ├── CryptoError            a handshake, record or signature check failed
     │    ├── PairingError      RA1 did not complete (wrong code, tampering...)
     │    └── IdentityError     a technician certificate was refused
     ├── CodeError              a pairing code is malformed, expired or reused
     ├── SessionClosed          the session ended (cleanly or not); carries why
     ├── ConnectionLost         the relay connection failed or was refused
     └── InvalidState           an operation that the current state forbids

Every message text is safe to show a user or write to a log: it never holds
key material, codes or session content.
"""

from __future__ import annotations


__all__ = [
    "CodeError",
    "ConnectionLost",
    "CryptoError",
    "DeskhandError",
    "IdentityError",
    "InvalidState",
    "PairingError",
    "ProtocolError",
    "SessionClosed",
]


class DeskhandError(Exception):
    """Base of every error Deskhand raises on purpose."""


class ProtocolError(DeskhandError):
    """Input from the network (or a file) is not a valid Deskhand message.

    This is the only error that decoding raises, whatever the bytes.
    """


class CryptoError(DeskhandError):
    """A cryptographic check failed: the peer or the relay is not trustworthy."""


class PairingError(CryptoError):
    """The RA1 handshake failed: wrong code, tampering, or a protocol violation."""


class IdentityError(CryptoError):
    """A technician's certificate or signature was refused."""


class CodeError(DeskhandError):
    """A pairing code is malformed, expired or was already used."""


class InvalidState(DeskhandError):
    """The operation is not allowed in the current state."""


class SessionClosed(DeskhandError):
    """The secure session ended.

    Attributes:
        reason: a short, user-presentable reason.
        clean: True when the peer closed with an authenticated CLOSE record.
    """

    def __init__(self, reason: str, *, clean: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.clean = clean


class ConnectionLost(DeskhandError):
    """The connection to the relay failed, was refused or dropped.

    Attributes:
        code: the websocket close code when there was one (see relay_wire.CloseCode).
        reason: a short, user-presentable reason.
    """

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
