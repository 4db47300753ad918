"""``python -m client`` / ``deskhand-client``: the user's remote-help window.

Usage::

    deskhand-client --relay ws://127.0.0.1:8765/v1/peer --org-key ORGDIR/org.pub
                    [--device NAME]

Bad arguments, an unreadable org key or a missing display print one line
and exit 2.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import NoReturn


__all__ = ["main"]

PROG = "deskhand-client"
_EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, without argparse's usage dump.
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Ask your IT support for remote help.")
    parser.add_argument(
        "--relay", required=True, metavar="URL", help="the relay, e.g. ws://host:port/v1/peer"
    )
    parser.add_argument(
        "--org-key",
        required=True,
        type=Path,
        metavar="PATH",
        help="your organisation's public key file (org.pub)",
    )
    parser.add_argument(
        "--device",
        default=socket.gethostname(),
        metavar="NAME",
        help="this computer's name, as the technician will see it (default: host name)",
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
    """Parse the arguments and run the window; returns the exit status."""
    # Imported here: the org key check needs no Qt, so errors stay fast.
    from common.crypto.identity import load_org_public_key

    try:
        args = _parser().parse_args(argv)
        relay_url = check_relay_url(args.relay)
        try:
            org_key = load_org_public_key(args.org_key)
        except OSError as exc:
            raise _UsageError(
                f"cannot read the organisation key {args.org_key}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise _UsageError(f"{args.org_key}: {exc}") from None
        device = args.device.strip()
        if not device:
            raise _UsageError("--device must not be empty")
        check_display()
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE

    from client.qt.app import ClientOptions, run

    return run(ClientOptions(relay_url=relay_url, org_public_key=org_key, device=device))


if __name__ == "__main__":
    sys.exit(main())
