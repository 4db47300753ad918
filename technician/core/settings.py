"""The technician console's settings file (``deskhand-technician --config FILE``).

::

    relay_url = "wss://relay.example.org:8443/v1/peer"
    relay_pin = "sha256:3f2a..."        # or: relay_certificate = "relay.crt"
    credential = "jane"                 # technician.key, technician.cert, revocations.crl
    account = "jane"                    # the sign-in name to suggest (optional)
    data_dir = "reports"                # where session reports go (optional)

Relative paths are relative to the file. ``org_key`` is accepted and ignored,
so that a ``client.toml`` written by ``deskhand-relay init`` can be extended
into a technician's file. Unknown keys are an error: a typo must not silently
drop a pin.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from common.config import ClientSettings, ConfigError, coerce, read_toml
from common.net.tls import RelayPin


__all__ = ["TechnicianSettings", "default_data_dir", "load_technician_settings"]

_KEYS = ("relay_url", "relay_pin", "relay_certificate", "credential", "account", "data_dir")
_IGNORED = ("org_key",)


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where reports go by default: ``$XDG_DATA_HOME/deskhand/technician``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "deskhand" / "technician"


@dataclasses.dataclass(frozen=True)
class TechnicianSettings:
    """What the console needs to reach its relay and to sign in.

    Attributes:
        relay_url: ``wss://host:port/v1/peer`` (``ws://`` on loopback only).
        pin: the relay's pinned key or certificate (None: no pin).
        credential_dir: the technician's key, certificate and revocation list.
        account: the account name to suggest at sign-in ("" for none).
        data_dir: where session reports are written.
    """

    relay_url: str
    pin: RelayPin | None
    credential_dir: Path
    account: str = ""
    data_dir: Path = dataclasses.field(default_factory=default_data_dir)


def load_technician_settings(
    path: Path, *, env: Mapping[str, str] | None = None
) -> TechnicianSettings:
    """Read a technician's settings file.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type, missing
            relay_url or credential, invalid pin.
    """
    raw = read_toml(path)
    unknown = sorted(set(raw) - set(_KEYS) - set(_IGNORED))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    values = {k: coerce(v, str, f"{path}: {k}") for k, v in raw.items() if k in _KEYS}
    if not values.get("relay_url"):
        raise ConfigError(f"{path}: relay_url is required")
    if not values.get("credential"):
        raise ConfigError(f"{path}: credential (the credential directory) is required")
    base = path.parent
    certificate = values.get("relay_certificate", "")
    relay = ClientSettings(
        relay_url=values["relay_url"],
        relay_pin=values.get("relay_pin", ""),
        relay_certificate=str(base / certificate) if certificate else "",
    )
    try:
        pin = relay.pin()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    data_dir = values.get("data_dir", "")
    return TechnicianSettings(
        relay_url=relay.relay_url,
        pin=pin,
        credential_dir=base / values["credential"],
        account=values.get("account", ""),
        data_dir=base / data_dir if data_dir else default_data_dir(env),
    )
