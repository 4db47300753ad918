"""Relay settings: one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import ipaddress

from common.protocol.relay_wire import MAX_FRAME, NAMEPLATE_MAX, NAMEPLATE_MIN


__all__ = ["RelayConfig"]

_NAMEPLATES = NAMEPLATE_MAX - NAMEPLATE_MIN + 1
# Hello messages are a few bytes; a relay that cannot take one is misconfigured.
_MIN_MESSAGE = 1024
# Refuse settings that would let one peer make the relay buffer absurd amounts.
_MAX_MESSAGE = 64 << 20


@dataclasses.dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything a relay needs to know to start.

    All durations are in seconds.

    Attributes:
        host: the address to listen on.
        port: the TCP port; 0 picks a free one.
        max_message: the largest websocket message accepted (larger: close 1009).
        max_connections: the most connections at once, in total.
        max_connections_per_address: the most connections from one address
            (IPv6: one /64).
        idle_timeout: a paired peer that sends no message for this long is
            closed (IDLE_TIMEOUT). Also the longest a forward may wait for the
            other peer to read.
        absolute_timeout: no connection lives longer (SESSION_TOO_LONG).
        hello_timeout: the first message (Register or Claim) must arrive
            within this (HELLO_TIMEOUT).
        code_ttl: how long a nameplate stays claimable (CODE_EXPIRED).
        failed_claims_per_window: failed claims one address may make in a
            burst before it gets RATE_LIMITED.
        failed_claim_window: seconds for that allowance to refill completely.
        max_waiting: the most users waiting for a technician at once.
        ping_interval: seconds between websocket keepalive pings.
        ping_timeout: a ping unanswered for this long closes the connection.
        open_timeout: the opening HTTP handshake must finish within this.
        close_timeout: how long a closing handshake may take before the TCP
            connection is dropped.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    max_message: int = MAX_FRAME
    max_connections: int = 1000
    max_connections_per_address: int = 20
    idle_timeout: float = 60.0
    absolute_timeout: float = 8 * 3600.0
    hello_timeout: float = 10.0
    code_ttl: float = 600.0
    failed_claims_per_window: int = 10
    failed_claim_window: float = 600.0
    max_waiting: int = _NAMEPLATES
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    open_timeout: float = 10.0
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if not _MIN_MESSAGE <= self.max_message <= _MAX_MESSAGE:
            raise ValueError(f"max_message must be between {_MIN_MESSAGE} and {_MAX_MESSAGE} bytes")
        _positive_int("max_connections", self.max_connections)
        _positive_int("max_connections_per_address", self.max_connections_per_address)
        _positive_int("failed_claims_per_window", self.failed_claims_per_window)
        if self.max_connections_per_address > self.max_connections:
            raise ValueError("max_connections_per_address cannot exceed max_connections")
        if not 1 <= self.max_waiting <= _NAMEPLATES:
            raise ValueError(f"max_waiting must be between 1 and {_NAMEPLATES}")
        for name in (
            "idle_timeout",
            "absolute_timeout",
            "hello_timeout",
            "failed_claim_window",
            "ping_interval",
            "ping_timeout",
            "open_timeout",
            "close_timeout",
        ):
            _positive_seconds(name, getattr(self, name))
        # Registered.expires_in is an int in (0, 86400].
        if not 0 < self.code_ttl <= 24 * 3600:
            raise ValueError("code_ttl must be more than 0 and at most 86400 seconds")

    @property
    def is_loopback(self) -> bool:
        """True when the relay only listens on the loopback interface."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _positive_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
