"""Replace a file all-or-nothing: write a temporary file beside it, then rename.

The one atomic-write helper: key files (:mod:`common.keyfiles`), the relay's
organisation directory (``relay.admin``) and the user client's stored
revocation lists (``client.core.revocation_store``) all write through it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


__all__ = ["write_file_atomically"]


def write_file_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace path with data, giving it mode; a crash never leaves half a file.

    The temporary file is created in path's directory with mode 0600 (so a
    secret is never readable by others, even for a moment), flushed to disk,
    given ``mode`` and renamed over path. On any failure it is removed and
    the error re-raised. The directory must exist.

    Raises:
        OSError: the file could not be written or renamed.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
