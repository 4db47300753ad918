"""Relay settings: one frozen, validated dataclass, and where its values come from.

Precedence, lowest first: the defaults below, a TOML file (``--config FILE``
or ``DESKHAND_RELAY_CONFIG``), environment variables ``DESKHAND_RELAY_<NAME>``
(e.g. ``DESKHAND_RELAY_MAX_QUEUED=50``), then command-line flags
(``--max-queued 50``). Every setting has all three spellings. Unknown keys,
unknown ``DESKHAND_RELAY_*`` variables, wrong types and out-of-range values
are errors that name their source.

Relative paths in the TOML file (``tls_certificate``, ``tls_key``,
``org_dir``, and an SQLite ``database_url``) are relative to the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.config import ConfigError, coerce, parse_text, read_toml
from common.protocol.relay_wire import (
    MAX_CATEGORY,
    MAX_DESCRIPTION,
    MAX_FRAME,
    MAX_REQUEST_NAME,
    MAX_SYSTEM_SUMMARY,
    NAMEPLATE_MAX,
    NAMEPLATE_MIN,
)
from relay.proxy import parse_networks


__all__ = [
    "CODE_CLAIM_MODES",
    "CONFIG_ENV",
    "ENV_PREFIX",
    "PATH_SETTINGS",
    "ConfigError",
    "RelayConfig",
    "env_name",
    "flag_name",
    "load_config",
    "setting_type",
]

ENV_PREFIX = "DESKHAND_RELAY_"
CONFIG_ENV = "DESKHAND_RELAY_CONFIG"
CODE_CLAIM_MODES = ("auto", "login", "anyone")
PATH_SETTINGS = ("tls_certificate", "tls_key", "org_dir")

_NAMEPLATES = NAMEPLATE_MAX - NAMEPLATE_MIN + 1
# Hello messages are a few bytes; a relay that cannot take one is misconfigured.
_MIN_MESSAGE = 1024
# Refuse settings that would let one peer make the relay buffer absurd amounts.
_MAX_MESSAGE = 64 << 20
_MAX_TEXT = MAX_REQUEST_NAME + MAX_DESCRIPTION + MAX_CATEGORY


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
        hello_timeout: the first message must arrive within this (HELLO_TIMEOUT).
        code_ttl: how long a nameplate stays claimable (CODE_EXPIRED).
        address_claims_per_window: code claims one address may make in a
            burst before it gets RATE_LIMITED, successful or not (issue 14:
            it counted failed claims only, and was named for that).
        address_claim_window: seconds for that allowance to refill completely.
        max_waiting: the most users waiting with a code at once.
        ping_interval: seconds between websocket keepalive pings.
        ping_timeout: a ping unanswered for this long closes the connection.
        open_timeout: the opening HTTP handshake (and TLS) must finish within
            this; short, because an unfinished upgrade holds a socket.
        max_handshakes_per_address: unfinished upgrades one address (IPv6:
            /64) may hold at once; more are dropped at accept (relay.guard).
        max_buffered_per_connection: bytes the relay may buffer for one
            connection (received and not yet forwarded, plus being sent to
            it); past it the relay stops reading from it (back-pressure).
        max_buffered_total: bytes buffered for all connections together;
            past it the biggest holder is closed with OVERLOADED.
        max_waiting_per_address: users one address (IPv6: /64) may have
            waiting behind a code at once (RATE_LIMITED).
        registrations_per_window: codes one address may register per
            registration_window (RATE_LIMITED): holding many nameplates
            then needs many addresses.
        registration_window: see registrations_per_window.
        trusted_proxies: comma-separated addresses or networks of reverse
            proxies whose X-Forwarded-For is believed (relay.proxy); empty:
            only the TCP peer's address counts.
        metrics_token: when set, ``/metrics`` on the relay port answers to
            ``Authorization: Bearer <token>`` from anywhere; when empty it
            answers only to direct loopback clients.
        metrics_host, metrics_port: a separate plain-HTTP listener for
            ``/metrics`` only (port 0: none).
        close_timeout: how long a closing handshake may take before the TCP
            connection is dropped.
        tls_certificate: PEM certificate (chain) to serve ``wss://``; with tls_key.
        tls_key: its PEM private key. Without both, the relay serves plain
            ``ws://`` and only on a loopback address.
        database_url: SQLAlchemy URL of the account and queue database; ""
            keeps everything in memory (nothing survives a restart).
        org_dir: the organisation directory (``deskhand-relay org create``):
            its ``revocations.crl`` is handed to technicians at sign-in, and
            disabling an account revokes its certificates there.
        code_claims: who may claim a code: "login" (signed-in accounts, the
            default), "anyone", or "auto" (login once any account exists).
        token_ttl: lifetime of a sign-in token.
        max_queued: the most help requests in the queue (QUEUE_FULL).
        max_requests_per_address: the most queued requests from one address.
        max_request_text: the most UTF-8 bytes of name, description and
            category of one request (REQUEST_TOO_LARGE).
        max_system_summary: the most UTF-8 bytes of a request's system summary.
        request_ttl: a request nobody claimed expires after this.
        resume_window: a request whose user went away (dropped connection,
            relay restart) is kept this long for them to come back.
        resume_grace: a paired session whose link dropped is kept this long
            (at most 600 s) for both sides to resume it (relay.resume).
        rate_window: the window of the two rates below.
        address_rate: conversations one address may start per rate_window.
        account_rate: authenticated actions one account may take per rate_window.
        account_claims_per_window: claims (codes and requests) one account
            may make per account_claim_window.
        account_claim_window: see account_claims_per_window.
        login_failures_before_lockout: failed sign-ins, within
            failure_window, that lock an account out for lockout_duration.
        claim_failures_before_lockout: failed claims, within failure_window,
            that lock an account out of claiming for lockout_duration.
        login_failures_per_address: failed sign-ins one address may make per
            failure_window, whatever the accounts.
        failure_window: see the three settings above.
        lockout_duration: how long a lockout lasts.
        check_interval: how often the relay looks for disabled accounts,
            expired requests and expired tokens.
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
    address_claims_per_window: int = 20
    address_claim_window: float = 600.0
    max_waiting: int = _NAMEPLATES
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    open_timeout: float = 5.0
    max_handshakes_per_address: int = 8
    max_buffered_per_connection: int = 2 * MAX_FRAME
    max_buffered_total: int = 256 << 20
    max_waiting_per_address: int = 5
    registrations_per_window: int = 10
    registration_window: float = 600.0
    trusted_proxies: str = ""
    metrics_token: str = ""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    close_timeout: float = 10.0
    tls_certificate: str = ""
    tls_key: str = ""
    database_url: str = ""
    org_dir: str = ""
    code_claims: str = "login"
    token_ttl: float = 3600.0
    max_queued: int = 200
    max_requests_per_address: int = 3
    max_request_text: int = 4000
    max_system_summary: int = 16 * 1024
    request_ttl: float = 4 * 3600.0
    resume_window: float = 600.0
    resume_grace: float = 120.0
    rate_window: float = 60.0
    address_rate: int = 60
    account_rate: int = 120
    account_claims_per_window: int = 10
    account_claim_window: float = 600.0
    login_failures_before_lockout: int = 5
    claim_failures_before_lockout: int = 10
    login_failures_per_address: int = 20
    failure_window: float = 900.0
    lockout_duration: float = 900.0
    check_interval: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if not _MIN_MESSAGE <= self.max_message <= _MAX_MESSAGE:
            raise ValueError(f"max_message must be between {_MIN_MESSAGE} and {_MAX_MESSAGE} bytes")
        for name in (
            "max_connections",
            "max_connections_per_address",
            "address_claims_per_window",
            "max_queued",
            "max_requests_per_address",
            "max_request_text",
            "max_system_summary",
            "address_rate",
            "account_rate",
            "account_claims_per_window",
            "login_failures_before_lockout",
            "claim_failures_before_lockout",
            "login_failures_per_address",
            "max_handshakes_per_address",
            "max_buffered_per_connection",
            "max_buffered_total",
            "max_waiting_per_address",
            "registrations_per_window",
        ):
            _positive_int(name, getattr(self, name))
        if self.max_buffered_per_connection < self.max_message:
            raise ValueError("max_buffered_per_connection must be at least max_message")
        if self.max_buffered_total < self.max_buffered_per_connection:
            raise ValueError("max_buffered_total must be at least max_buffered_per_connection")
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be between 0 and 65535, not {self.metrics_port}")
        parse_networks(self.trusted_proxies)
        if self.max_connections_per_address > self.max_connections:
            raise ValueError("max_connections_per_address cannot exceed max_connections")
        if not 1 <= self.max_waiting <= _NAMEPLATES:
            raise ValueError(f"max_waiting must be between 1 and {_NAMEPLATES}")
        for name in (
            "idle_timeout",
            "absolute_timeout",
            "hello_timeout",
            "address_claim_window",
            "ping_interval",
            "ping_timeout",
            "open_timeout",
            "close_timeout",
            "request_ttl",
            "resume_window",
            "rate_window",
            "account_claim_window",
            "failure_window",
            "lockout_duration",
            "registration_window",
            "check_interval",
        ):
            _positive_seconds(name, getattr(self, name))
        # Registered.expires_in is an int in (0, 86400].
        if not 0 < self.code_ttl <= 24 * 3600:
            raise ValueError("code_ttl must be more than 0 and at most 86400 seconds")
        if not 0 < self.resume_grace <= 600:
            raise ValueError("resume_grace must be more than 0 and at most 600 seconds")
        if not 0 < self.token_ttl <= 7 * 24 * 3600:
            raise ValueError("token_ttl must be more than 0 and at most 604800 seconds (7 days)")
        if self.max_request_text > _MAX_TEXT:
            raise ValueError(f"max_request_text must be at most {_MAX_TEXT} bytes")
        if self.max_system_summary > MAX_SYSTEM_SUMMARY:
            raise ValueError(f"max_system_summary must be at most {MAX_SYSTEM_SUMMARY} bytes")
        if self.code_claims not in CODE_CLAIM_MODES:
            raise ValueError(
                f"code_claims must be one of {', '.join(CODE_CLAIM_MODES)},"
                f" not {self.code_claims!r}"
            )
        if bool(self.tls_certificate) != bool(self.tls_key):
            raise ValueError("tls_certificate and tls_key go together: set both or neither")

    @property
    def is_loopback(self) -> bool:
        """True when the relay only listens on the loopback interface."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def tls(self) -> bool:
        """True when the relay serves ``wss://``."""
        return bool(self.tls_certificate)

    def check_transport(self) -> None:
        """Refuse plain ``ws://`` on anything but loopback.

        Raises:
            ValueError: no TLS and a non-loopback host.
        """
        if not self.tls and not self.is_loopback:
            raise ValueError(
                f"plain ws:// is only allowed on loopback, not on {self.host or 'all addresses'};"
                " set tls_certificate and tls_key ('deskhand-relay init DIR' makes them)"
            )


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _positive_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


# --- loading --------------------------------------------------------------------

_TYPES: dict[str, type] = {
    name: typing.cast(type, hint) for name, hint in typing.get_type_hints(RelayConfig).items()
}
_FIELDS = tuple(f.name for f in dataclasses.fields(RelayConfig))


def env_name(setting: str) -> str:
    """The environment variable of a setting, e.g. ``DESKHAND_RELAY_MAX_QUEUED``."""
    return ENV_PREFIX + setting.upper()


def flag_name(setting: str) -> str:
    """The command-line flag of a setting, e.g. ``--max-queued``."""
    return "--" + setting.replace("_", "-")


def setting_type(setting: str) -> type:
    """The Python type of a setting's value."""
    return _TYPES[setting]


def _from_file(path: Path) -> dict[str, tuple[Any, str]]:
    raw = read_toml(path)
    values: dict[str, tuple[Any, str]] = {}
    for key, value in raw.items():
        where = f"{path}: {key}"
        if key not in _TYPES:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        value = coerce(value, _TYPES[key], where)
        if key in PATH_SETTINGS and value:
            value = str((path.parent / value).resolve())
        elif key == "database_url":
            value = _resolve_sqlite(value, path.parent)
        values[key] = (value, where)
    return values


def _resolve_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        name = url[len(prefix) :]
        if name and name != ":memory:":
            return prefix + str((base / name).resolve())
    return url


def _from_env(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    values: dict[str, tuple[Any, str]] = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        key = var[len(ENV_PREFIX) :].lower()
        if key not in _TYPES:
            raise ConfigError(f"unknown environment variable {var}")
        values[key] = (parse_text(text, _TYPES[key], var), var)
    return values


def load_config(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> RelayConfig:
    """Build the settings from the defaults, a file, the environment and flags.

    Args:
        flags: values given on the command line (already typed), by setting name.
        env: the environment (``os.environ``); only ``DESKHAND_RELAY_*`` is read.
        config_file: the TOML file; if None, ``DESKHAND_RELAY_CONFIG`` names it.

    Raises:
        ConfigError: with a message naming the file, variable or flag at fault.
    """
    env = env or {}
    if config_file is None and env.get(CONFIG_ENV):
        config_file = Path(env[CONFIG_ENV])
    layers: dict[str, tuple[Any, str]] = {}
    if config_file is not None:
        layers.update(_from_file(config_file))
    layers.update(_from_env(env))
    for key, value in (flags or {}).items():
        if key not in _TYPES:
            raise ConfigError(f"unknown setting {key!r}")
        layers[key] = (coerce(value, _TYPES[key], flag_name(key)), flag_name(key))
    try:
        config = RelayConfig(**{k: v for k, (v, _) in layers.items()})
    except ValueError as exc:
        message = str(exc)
        culprit = message.split(" ", 1)[0]
        if culprit in layers:
            raise ConfigError(f"{layers[culprit][1]}: {message}") from None
        raise ConfigError(message) from None
    for key in ("tls_certificate", "tls_key"):
        path = getattr(config, key)
        if path and not Path(path).is_file():
            where = layers[key][1] if key in layers else key
            raise ConfigError(f"{where}: {path} is not a readable file")
    if config.org_dir and not Path(config.org_dir).is_dir():
        where = layers["org_dir"][1] if "org_dir" in layers else "org_dir"
        raise ConfigError(f"{where}: {config.org_dir} is not a directory")
    try:
        config.check_transport()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config
