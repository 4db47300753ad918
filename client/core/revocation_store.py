"""The user client's memory of revocation lists, one file per organisation.

A revoked technician could present a list signed before the revocation, as
long as it is younger than the freshness window. The client therefore keeps
the newest list it has seen for each organisation key
(:class:`~common.crypto.identity.OrgTrust` decides with it; this module only
stores bytes) in its data folder, ``$XDG_DATA_HOME/deskhand/client`` by
default::

    revocations-<org key id, hex>.crl    the encoded SignedRevocationList

Files are written atomically with mode 0600, in a folder made with mode
0700. An unreadable file counts as none: the next good list replaces it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from common.atomic_write import write_file_atomically
from common.crypto.identity import KEY_ID_BYTES, MAX_CRL_AGE, OrgTrust


__all__ = ["RevocationFiles", "client_trust", "default_client_data_dir"]

# A signed list is at most about 1 MiB (RevocationList.MAX_SIZE + signature).
_MAX_FILE = 2 << 20


def default_client_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/deskhand/client`` (``~/.local/share/deskhand/client``)."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "deskhand" / "client"


class RevocationFiles:
    """A :class:`~common.crypto.identity.RevocationStore` in a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Kept in memory too, so a folder we cannot write still protects this run.
        self._seen: dict[bytes, bytes] = {}

    def _path(self, org_key_id: bytes) -> Path:
        if len(org_key_id) != KEY_ID_BYTES:
            raise ValueError("org key ids are 8 bytes")
        return self.directory / f"revocations-{bytes(org_key_id).hex()}.crl"

    def newest(self, org_key_id: bytes) -> bytes | None:
        seen = self._seen.get(bytes(org_key_id))
        if seen is not None:
            return seen
        try:
            with self._path(org_key_id).open("rb") as f:
                data = f.read(_MAX_FILE + 1)
        except OSError:
            return None
        return data if 0 < len(data) <= _MAX_FILE else None

    def remember(self, org_key_id: bytes, revocations: bytes) -> None:
        path = self._path(org_key_id)
        self._seen[bytes(org_key_id)] = bytes(revocations)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_file_atomically(path, revocations, 0o600)
        except OSError:
            return  # a read-only home must not stop verification: kept in memory only


def client_trust(
    org_public_key: bytes, data_dir: Path | None = None, *, max_crl_age: float = MAX_CRL_AGE
) -> OrgTrust:
    """The user client's verifier: the pinned key, the freshness window, the stored lists.

    Args:
        data_dir: the client's data folder; :func:`default_client_data_dir` if None.
    """
    directory = data_dir if data_dir is not None else default_client_data_dir()
    return OrgTrust(org_public_key, max_crl_age=max_crl_age, revocations=RevocationFiles(directory))
