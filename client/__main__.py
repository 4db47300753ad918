"""``python -m client`` / ``deskhand-client``: ask your IT support for remote help.

Usage::

    deskhand-client --config client.toml            # as written by deskhand-relay init
    deskhand-client --relay ws://127.0.0.1:8765/v1/peer --org-key ORGDIR/org.pub
                    [--pin sha256:...] [--device NAME] [--hidden] [--no-tray]
                    [--data-dir DIR]

Flags override the file. Without ``--config`` and ``--relay``, the file
``$XDG_CONFIG_HOME/deskhand/client.toml`` (``~/.config/...``) is used if it
exists. Bad arguments, an unreadable config or org key, or a missing display
print one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import NoReturn

from client.core.options import ClientOptions


__all__ = ["default_config_path", "main", "parse_options"]

PROG = "deskhand-client"
_EXIT_USAGE = 2


class UsageError(Exception):
    """A one-line error about the command line or the files it names."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, without argparse's usage dump.
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Ask your IT support for remote help.")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="client settings (relay_url, relay_pin, org_key) as written by deskhand-relay init",
    )
    parser.add_argument(
        "--relay", metavar="URL", help="the relay, wss://host:port/v1/peer (overrides --config)"
    )
    parser.add_argument(
        "--org-key",
        type=Path,
        metavar="PATH",
        help="your organisation's public key file, org.pub (overrides --config)",
    )
    parser.add_argument(
        "--pin",
        metavar="sha256:HEX",
        help="the relay's pinned public key, as in relay.pin (overrides --config)",
    )
    parser.add_argument(
        "--device",
        default=socket.gethostname(),
        metavar="NAME",
        help="this computer's name, as the technician will see it (default: host name)",
    )
    parser.add_argument(
        "--hidden", action="store_true", help="start in the system tray, without the window"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the client keeps its state (default: $XDG_DATA_HOME/deskhand/client)",
    )
    parser.add_argument(
        "--no-tray", action="store_true", help="use a normal window even if there is a tray"
    )
    return parser


def default_config_path(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "deskhand" / "client.toml"


def check_relay_url(url: str) -> str:
    """Refuse anything that is not a websocket URL, before a window opens."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--relay must be a ws:// or wss:// URL, not {url!r}")
    return url


def check_display() -> None:
    """Qt aborts without a display; say so in one line instead."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UsageError("no display: set DISPLAY (or run under Xvfb)")


def parse_options(argv: list[str] | None = None) -> ClientOptions:
    """The options the command line and the config file give.

    Raises:
        UsageError: with a one-line message.
    """
    # Imported here: no Qt is loaded for these checks, so errors stay fast.
    from common.config import ConfigError, load_client_settings
    from common.crypto.identity import MAX_CRL_AGE, parse_org_public_key
    from common.keyfiles import load_org_public_key
    from common.net.tls import RelayPin

    args = _parser().parse_args(argv)
    config_path: Path | None = args.config
    if config_path is None and args.relay is None and default_config_path().is_file():
        config_path = default_config_path()
    relay_url, org_key_hex, pin = "", "", None
    max_crl_age: float = MAX_CRL_AGE
    if config_path is not None:
        try:
            settings = load_client_settings(config_path, env=dict(os.environ))
            pin = settings.pin()
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        relay_url, org_key_hex = settings.relay_url, settings.org_key
        max_crl_age = settings.revocation_max_age

    if args.relay is not None:
        relay_url = args.relay
    if not relay_url:
        raise UsageError("give --config client.toml (from deskhand-relay init) or --relay URL")
    relay_url = check_relay_url(relay_url)

    if args.pin is not None:
        try:
            pin = RelayPin.parse(args.pin)
        except ValueError as exc:
            raise UsageError(f"--pin: {exc}") from None

    if args.org_key is not None:
        try:
            org_key = load_org_public_key(args.org_key)
        except OSError as exc:
            raise UsageError(
                f"cannot read the organisation key {args.org_key}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise UsageError(f"{args.org_key}: {exc}") from None
    elif org_key_hex:
        try:
            org_key = parse_org_public_key(org_key_hex)
        except ValueError as exc:
            raise UsageError(f"{config_path}: org_key: {exc}") from None
    else:
        raise UsageError("the organisation key is required: --org-key PATH, or org_key in --config")

    device = args.device.strip()
    if not device:
        raise UsageError("--device must not be empty")
    return ClientOptions(
        relay_url=relay_url,
        org_public_key=org_key,
        device=device,
        pin=pin,
        hidden=args.hidden,
        no_tray=args.no_tray,
        data_dir=args.data_dir,
        revocation_max_age=max_crl_age,
    )


def _show_on_screen(error: str) -> None:
    from common.qt.startup_error import should_show_startup_error, show_startup_error

    if should_show_startup_error():
        show_startup_error(
            "Deskhand cannot start",
            f"Deskhand could not start: {error}",
            f"Deskhand reads its settings from {default_config_path()} unless it is started "
            "with --config FILE. Ask your IT support for that file (client.toml), or for a "
            "new installer, then start Deskhand again.",
        )


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the app; returns the exit status."""
    try:
        options = parse_options(argv)
        check_display()
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        _show_on_screen(str(exc))
        return _EXIT_USAGE

    from client.qt.app import run

    return run(options)


if __name__ == "__main__":
    sys.exit(main())
