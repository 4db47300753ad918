"""ClientOptions: what the user client's command line and config file decided (no Qt)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from common.crypto.identity import MAX_CRL_AGE
from common.net.tls import RelayPin


__all__ = ["ClientOptions"]


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """How the user client runs.

    Attributes:
        relay_url: the relay's peer endpoint, wss://host:port/v1/peer.
        org_public_key: the pinned organisation key (32 raw bytes).
        device: this computer's name, shown to the technician.
        pin: the relay's pinned certificate or public key (wss://), if any.
        hidden: start in the tray without showing the window (autostart).
        no_tray: use the window even if there is a system tray.
        data_dir: where the client keeps state (the newest revocation list
            per organisation); None for ``$XDG_DATA_HOME/deskhand/client``.
        revocation_max_age: the oldest revocation list accepted, in seconds.
    """

    relay_url: str
    org_public_key: bytes
    device: str
    pin: RelayPin | None = None
    hidden: bool = False
    no_tray: bool = False
    data_dir: Path | None = None
    revocation_max_age: float = MAX_CRL_AGE
