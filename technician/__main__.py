"""``python -m technician`` / ``deskhand-technician``: the technician's console.

Usage::

    deskhand-technician --relay ws://127.0.0.1:8765/v1/peer --credential TECHDIR

TECHDIR holds technician.key, technician.cert and revocations.crl, as written
by ``deskhand-relay cert issue``. Bad arguments, an unreadable credential or
a missing display print one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path
from typing import NoReturn


__all__ = ["main"]

PROG = "deskhand-technician"
_EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, without argparse's usage dump.
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Help a user who gave you a Deskhand code.")
    parser.add_argument(
        "--relay", required=True, metavar="URL", help="the relay, e.g. ws://host:port/v1/peer"
    )
    parser.add_argument(
        "--credential",
        required=True,
        type=Path,
        metavar="DIR",
        help="your credential directory (technician.key, technician.cert, revocations.crl)",
    )
    return parser


def check_relay_url(url: str) -> str:
    """Refuse anything that is not a websocket URL, before a window opens."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise _UsageError(f"--relay must be a ws:// or wss:// URL, not {url!r}")
    return url


def check_display() -> None:
    """Qt aborts without a display; say so in one line instead."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise _UsageError("no display: set DISPLAY (or run under Xvfb)")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the console; returns the exit status."""
    from common.crypto.identity import TechnicianCredential

    try:
        args = _parser().parse_args(argv)
        relay_url = check_relay_url(args.relay)
        try:
            credential = TechnicianCredential.load(args.credential)
        except OSError as exc:
            where = exc.filename or args.credential
            raise _UsageError(
                f"cannot read the credential {where}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise _UsageError(f"{args.credential}: {exc}") from None
        check_display()
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE

    from technician.qt.app import TechnicianOptions, run

    return run(TechnicianOptions(relay_url=relay_url, credential=credential))


if __name__ == "__main__":
    sys.exit(main())
