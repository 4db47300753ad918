"""``python -m technician`` / ``deskhand-technician``: the technician's console.

Usage::

    deskhand-technician --config technician.toml [--account NAME] [--password-stdin]
    deskhand-technician --relay URL --credential TECHDIR [--pin sha256:...]
                        [--account NAME] [--data-dir DIR] [--password-stdin]

The settings file (see :mod:`technician.core.settings`) names the relay, its
pin, the credential directory (technician.key, technician.cert and
revocations.crl, as written by ``deskhand-relay cert issue``), the account
to sign in with and the data directory for session reports. Flags override
it. ``--password-stdin`` reads one line and signs in at start.

Bad arguments, an unreadable settings file or credential, or a missing
display print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO


if TYPE_CHECKING:
    from technician.qt.app import TechnicianOptions


__all__ = ["main", "options_from"]

PROG = "deskhand-technician"
_EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, without argparse's usage dump.
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Work the help-request queue and help users.")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="your settings (relay, pin, credential)"
    )
    parser.add_argument("--relay", metavar="URL", help="the relay, e.g. wss://host:port/v1/peer")
    parser.add_argument(
        "--credential",
        type=Path,
        metavar="DIR",
        help="your credential directory (technician.key, technician.cert, revocations.crl)",
    )
    parser.add_argument("--pin", metavar="PIN", help="the relay's pin, sha256:<hex>")
    parser.add_argument("--account", metavar="NAME", help="your account on the relay")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where session reports are saved"
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (one line) from standard input and sign in at start",
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


def options_from(argv: list[str] | None, stdin: TextIO | None = None) -> TechnicianOptions:
    """The console's options from the command line and the settings file.

    Raises:
        _UsageError: with the one line to print.
    """
    from common.config import ConfigError
    from common.keyfiles import load_technician_credential
    from common.net.tls import RelayPin
    from technician.core.settings import (
        TechnicianSettings,
        default_data_dir,
        load_technician_settings,
    )
    from technician.qt.app import TechnicianOptions

    args = _parser().parse_args(argv)
    settings: TechnicianSettings | None = None
    if args.config is not None:
        try:
            settings = load_technician_settings(args.config)
        except ConfigError as exc:
            raise _UsageError(str(exc)) from None
    relay_url = args.relay or (settings.relay_url if settings else "")
    credential_dir = args.credential or (settings.credential_dir if settings else None)
    if not relay_url or credential_dir is None:
        raise _UsageError("give --config FILE, or both --relay URL and --credential DIR")
    check_relay_url(relay_url)
    pin = settings.pin if settings else None
    if args.pin:
        try:
            pin = RelayPin.parse(args.pin)
        except ValueError as exc:
            raise _UsageError(f"--pin: {exc}") from None
    try:
        credential = load_technician_credential(credential_dir)
    except OSError as exc:
        where = exc.filename or credential_dir
        raise _UsageError(f"cannot read the credential {where}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _UsageError(f"{credential_dir}: {exc}") from None
    account = args.account or (settings.account if settings else "")
    password = None
    if args.password_stdin:
        if not account:
            raise _UsageError("--password-stdin needs an account (--account or the settings)")
        line = (stdin or sys.stdin).readline()
        if not line.strip():
            raise _UsageError("no password on standard input")
        password = line.rstrip("\r\n")
    data_dir = args.data_dir or (settings.data_dir if settings else default_data_dir())
    return TechnicianOptions(
        relay_url=relay_url,
        credential=credential,
        data_dir=data_dir,
        pin=pin,
        account=account,
        password=password,
    )


def _show_on_screen(error: str) -> None:
    from common.qt.startup_error import should_show_startup_error, show_startup_error

    if should_show_startup_error():
        show_startup_error(
            "Deskhand technician cannot start",
            f"The console could not start: {error}",
            "Start it with --config technician.toml (your relay's address, its pin and your "
            "credential folder; your relay's administrator makes them with deskhand-relay "
            "init and cert issue), or with --relay URL and --credential DIR.",
        )


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the console; returns the exit status."""
    try:
        options = options_from(argv)
        check_display()
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        _show_on_screen(str(exc))
        return _EXIT_USAGE

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from technician.qt.app import run

    return run(options)


if __name__ == "__main__":
    sys.exit(main())
