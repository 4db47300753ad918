"""``deskhand-relay account ...``: technician accounts in the relay's database.

::

    account create NAME [--role technician|supervisor|admin] [--display-name TEXT]
    account list [--json]
    account disable NAME          signs it out, revokes its certificates, cuts it off
    account enable NAME
    account delete NAME           (revokes its certificates too)
    account reset-password NAME   signs it out everywhere

Every command takes ``--config FILE`` and/or ``--database-url URL`` (or the
``DESKHAND_RELAY_CONFIG`` / ``DESKHAND_RELAY_DATABASE_URL`` variables) to
find the database, migrating it first if needed. Passwords are read from the
terminal (twice), or one line from standard input with ``--password-stdin``.

An account's name is the ``tech_id`` of the technician certificates issued
to it (``cert issue --tech-id NAME``). When the settings name an
``org_dir``, disabling or deleting an account revokes those certificates and
re-signs the revocation list; the running relay closes the account's
connections within ``check_interval`` seconds.

Every failure prints one line to stderr and returns 2.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TextIO

from common.config import ConfigError
from relay.accounts import ROLES, check_account_name, check_password, hash_password
from relay.admin import AdminError, revoke_technician
from relay.config import RelayConfig, load_config
from relay.store import Account, Store, StoreError


__all__ = ["main"]

PROG = "deskhand-relay account"


class _Fail(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Fail(f"{message} (see '{self.prog} --help')")


def _parser() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", help="the relay's TOML settings")
    common.add_argument("--database-url", metavar="URL", help="the relay's database")
    parser = _Parser(prog=PROG, description="Manage technician accounts.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", parents=[common], help="add an account")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--role", default="technician", choices=ROLES)
    create.add_argument("--display-name", metavar="TEXT", help="(default: NAME)")
    create.add_argument("--password-stdin", action="store_true", help="read one line")

    listing = commands.add_parser("list", parents=[common], help="list the accounts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    for name, text in (
        ("disable", "sign out, revoke certificates, cut off live connections"),
        ("enable", "allow signing in again (certificates stay revoked)"),
        ("delete", "remove the account (revokes its certificates)"),
    ):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("name", metavar="NAME")

    reset = commands.add_parser("reset-password", parents=[common], help="set a new password")
    reset.add_argument("name", metavar="NAME")
    reset.add_argument("--password-stdin", action="store_true", help="read one line")
    return parser


def main(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    stdin: TextIO | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Run one account command; 0 on success, 2 after one line on stderr."""
    env = dict(os.environ) if env is None else env
    stdin = stdin or sys.stdin
    store = None
    try:
        args = _parser().parse_args(argv)
        config = _settings(args, env)
        if not config.database_url:
            raise _Fail(
                "no database configured: pass --config FILE or --database-url URL"
                " (the relay's default in-memory database cannot be managed)"
            )
        store = Store(config.database_url)
        store.migrate()
        _COMMANDS[args.command](args, store, config, stdin, now())
    except _Fail as exc:
        return _error(str(exc))
    except (ConfigError, StoreError, AdminError, ValueError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(exc.strerror or str(exc))
    finally:
        if store is not None:
            store.close()
    return 0


def _error(message: str) -> int:
    print(f"deskhand-relay: error: {message}", file=sys.stderr)
    return 2


def _settings(args: argparse.Namespace, env: dict[str, str]) -> RelayConfig:
    flags = {"database_url": args.database_url} if args.database_url else {}
    try:
        return load_config(flags=flags, env=env, config_file=args.config)
    except ConfigError as exc:
        raise _Fail(str(exc)) from None


def _password(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.password_stdin:
        line = stdin.readline()
        if not line:
            raise _Fail("no password on standard input")
        password = line.rstrip("\r\n")
    elif stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise _Fail("the two passwords differ")
    else:
        raise _Fail("no terminal to ask for a password: use --password-stdin")
    check_password(password)
    return password


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _revoke(config: RelayConfig, name: str, now: float) -> str:
    if not config.org_dir:
        return "no org_dir configured: revoke its certificates with 'cert revoke'"
    try:
        serials = revoke_technician(Path(config.org_dir), name, int(now))
    except AdminError as exc:
        # The account change stands; the organisation key may be kept offline.
        return f"its certificates were NOT revoked ({exc}); run 'cert revoke' where the org key is"
    if not serials:
        return "it held no valid certificate; the revocation list was re-signed"
    listed = ", ".join(str(s) for s in serials)
    return f"revoked certificate(s) {listed} and re-signed the revocation list"


def _create(
    args: argparse.Namespace, store: Store, config: RelayConfig, stdin: TextIO, now: float
) -> None:
    check_account_name(args.name)
    display = args.display_name or args.name
    if not display.strip() or len(display) > 200:
        raise _Fail("--display-name must be 1-200 characters")
    if store.account(args.name) is not None:
        raise _Fail(f"an account named {args.name!r} already exists")
    account = store.create_account(
        args.name, display, args.role, hash_password(_password(args, stdin)), now
    )
    print(f"created {account.role} account {account.name!r} ({account.display_name})")


def _list(
    args: argparse.Namespace, store: Store, config: RelayConfig, stdin: TextIO, now: float
) -> None:
    accounts = store.accounts()
    if args.json:
        print(json.dumps([_public(a) for a in accounts], indent=2, ensure_ascii=False))
        return
    if not accounts:
        print("no accounts yet")
        return
    table = [("NAME", "DISPLAY NAME", "ROLE", "STATUS", "CREATED")]
    table += [
        (
            a.name,
            a.display_name,
            a.role,
            "enabled" if a.enabled else "disabled",
            _when(a.created_at),
        )
        for a in accounts
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _public(account: Account) -> dict[str, object]:
    return {
        "name": account.name,
        "display_name": account.display_name,
        "role": account.role,
        "enabled": account.enabled,
        "created_at": account.created_at,
        "password_changed_at": account.password_changed_at,
        "disabled_at": account.disabled_at,
    }


def _disable(
    args: argparse.Namespace, store: Store, config: RelayConfig, stdin: TextIO, now: float
) -> None:
    account = store.set_disabled(args.name, True, now)
    print(f"disabled account {account.name!r}: signed out; {_revoke(config, account.name, now)}")
    print(f"  a running relay closes its connections within {config.check_interval:g} s")


def _enable(
    args: argparse.Namespace, store: Store, config: RelayConfig, stdin: TextIO, now: float
) -> None:
    account = store.set_disabled(args.name, False, now)
    print(f"enabled account {account.name!r} (revoked certificates stay revoked: issue new ones)")


def _delete(
    args: argparse.Namespace, store: Store, config: RelayConfig, stdin: TextIO, now: float
) -> None:
    account = store.delete_account(args.name)
    print(f"deleted account {account.name!r}; {_revoke(config, account.name, now)}")


def _reset(
    args: argparse.Namespace, store: Store, config: RelayConfig, stdin: TextIO, now: float
) -> None:
    if store.account(args.name) is None:
        raise _Fail(f"no account named {args.name!r}")
    account = store.set_password(args.name, hash_password(_password(args, stdin)), now)
    print(f"set a new password for {account.name!r}; it is signed out everywhere")


_COMMANDS: dict[str, Callable[[argparse.Namespace, Store, RelayConfig, TextIO, float], None]] = {
    "create": _create,
    "list": _list,
    "disable": _disable,
    "enable": _enable,
    "delete": _delete,
    "reset-password": _reset,
}
