"""Configuration files: TOML reading, typed values, and the clients' relay settings.

Programs layer their settings as *defaults < TOML file < environment <
command-line flags*; this module gives them the pieces: :func:`read_toml`,
:func:`coerce` and :func:`parse_text` turn raw values into the annotated type
of a setting or raise :class:`ConfigError` with a message that names where
the bad value came from.

A user client or technician app reads its relay settings from a file like::

    relay_url = "wss://relay.example.org:8443/v1/peer"
    relay_pin = "sha256:3f2a..."            # or:
    # relay_certificate = "relay.crt"       (a PEM file, relative to this file)
    org_key = "9c01..."                     # user clients: the organisation's public key
    revocation_max_age = 14400              # user clients: oldest revocation list, seconds

``deskhand-relay init`` writes such a file (``client.toml``) next to its own.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.net.tls import RelayPin


__all__ = [
    "ClientSettings",
    "ConfigError",
    "coerce",
    "load_client_settings",
    "parse_text",
    "read_toml",
]


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; the message names where it came from."""


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file.

    Raises:
        ConfigError: unreadable, or not valid TOML (with the parser's line and column).
    """
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _kind_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        kind, kind.__name__
    )


def coerce(value: object, kind: type, where: str) -> Any:
    """Check a TOML value against a setting's type (int accepted for float).

    Raises:
        ConfigError: the value has another type, or is not a finite number.
    """
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number")
        return float(value)
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be {_kind_name(kind)}, not {value!r}")
    if isinstance(value, kind):
        return value
    raise ConfigError(f"{where} must be {_kind_name(kind)}, not {value!r}")


def parse_text(text: str, kind: type, where: str) -> Any:
    """Parse a setting given as text (an environment variable or a flag).

    Raises:
        ConfigError: the text does not parse as ``kind``.
    """
    if kind is str:
        return text
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, not {text!r}")
    try:
        number = int(text) if kind is int else float(text)
    except ValueError:
        raise ConfigError(f"{where} must be {_kind_name(kind)}, not {text!r}") from None
    return coerce(number, kind, where)


@dataclasses.dataclass(frozen=True)
class ClientSettings:
    """How a user client or technician app reaches and recognises its relay.

    Attributes:
        relay_url: ``wss://host:port/v1/peer`` (``ws://`` on loopback only).
        relay_pin: ``sha256:<hex>`` of the relay's public key, or "".
        relay_certificate: path of the relay's pinned certificate (PEM), or "".
        org_key: the organisation's public key as hex (user clients), or "".
        revocation_max_age: the oldest revocation list a user client accepts,
            in seconds (4 hours by default).
    """

    relay_url: str
    relay_pin: str = ""
    relay_certificate: str = ""
    org_key: str = ""
    revocation_max_age: float = 4 * 3600.0

    def pin(self) -> RelayPin | None:
        """The relay pin these settings give, if any.

        Raises:
            ConfigError: both kinds of pin are set, or one is invalid.
        """
        if self.relay_pin and self.relay_certificate:
            raise ConfigError("set relay_pin or relay_certificate, not both")
        try:
            if self.relay_pin:
                return RelayPin.parse(self.relay_pin)
            if self.relay_certificate:
                return RelayPin.load_certificate(Path(self.relay_certificate))
        except OSError as exc:
            raise ConfigError(
                f"relay_certificate {self.relay_certificate}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return None


def load_client_settings(path: Path, *, env: Mapping[str, str] | None = None) -> ClientSettings:
    """Read :class:`ClientSettings` from a TOML file.

    ``relay_certificate`` is resolved relative to the file. Unknown keys are
    an error (a typo must not silently drop a pin). ``env`` may override the
    file with ``DESKHAND_RELAY_URL`` and ``DESKHAND_RELAY_PIN``.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type, invalid pin.
    """
    raw = read_toml(path)
    fields = {f.name for f in dataclasses.fields(ClientSettings)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    kinds = {"revocation_max_age": float}
    values = {k: coerce(v, kinds.get(k, str), f"{path}: {k}") for k, v in raw.items()}
    if values.get("revocation_max_age", 1.0) <= 0:
        raise ConfigError(f"{path}: revocation_max_age must be a positive number of seconds")
    for key, var in (("relay_url", "DESKHAND_RELAY_URL"), ("relay_pin", "DESKHAND_RELAY_PIN")):
        if env is not None and var in env:
            values[key] = env[var]
    if not values.get("relay_url"):
        raise ConfigError(f"{path}: relay_url is required")
    certificate = values.get("relay_certificate", "")
    if certificate:
        values["relay_certificate"] = str(path.parent / certificate)
    settings = ClientSettings(**values)
    settings.pin()  # validate now, not at the first connection
    return settings
