"""The user client's device key: made on first use, kept with mode 0600 in its data folder.

The user client signs its own stream of the support record with this key
(:mod:`common.record`). It is not certified by anyone: what binds it to a
session is that the user's own events, uploaded directly and carried to
the technician, are signed with it. File I/O lives here, outside the pure
:mod:`common.record`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.atomic_write import write_file_atomically
from common.crypto.signing_keys import private_key_from_pem


__all__ = ["DEVICE_KEY_FILE", "load_or_create_device_key"]

DEVICE_KEY_FILE = "device.key"


def load_or_create_device_key(data_dir: Path) -> Ed25519PrivateKey:
    """The device key in data_dir/device.key, created (with data_dir) on first use.

    A key file readable by others is narrowed to mode 0600: a copied key
    could sign the user's record. A damaged file is never replaced, because
    that would silently change the device's identity in its past records.

    Raises:
        OSError: the folder or file cannot be created or read.
        ValueError: the file exists but is not an Ed25519 PEM private key.
    """
    path = data_dir / DEVICE_KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_file_atomically(path, pem, 0o600)
        return key
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return private_key_from_pem(data, "device key")
