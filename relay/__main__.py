"""``python -m relay`` / ``deskhand-relay``: run the relay, or one of its commands.

Usage::

    deskhand-relay [--config FILE] [--host HOST] [--port PORT] [--max-queued N] ...
    deskhand-relay init DIR [--hostname NAME] ...     a ready relay directory (relay.provision)
    deskhand-relay account create|list|disable|enable|delete|reset-password ...
    deskhand-relay org ...                            organisation key (relay.admin)
    deskhand-relay cert ...                           technician certificates (relay.admin)

Settings come from the defaults, the TOML file, ``DESKHAND_RELAY_*``
environment variables and flags, each overriding the previous one (see
:mod:`relay.config`; every setting has a flag).

The relay logs one JSON object per line on stderr. The first is::

    {"event": "listening", "host": "127.0.0.1", "port": 8765, "url": "ws://...",
     "tls": false, "database": "sqlite://", "persistent": false, ...}

followed, for plain ``ws://``, by a ``plain_ws_loopback_only`` notice. Tests
start ``python -m relay --port 0`` and read the port from the first line.
SIGINT or SIGTERM shut the relay down gracefully (exit status 0): it stops
accepting, tells every peer (GOING_AWAY) and drains. Bad settings, an
unusable database, or an address that cannot be bound print one line and
exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from common.config import ConfigError
from relay.config import RelayConfig, flag_name, load_config, setting_type


__all__ = ["JsonFormatter", "main"]

PROG = "deskhand-relay"
_ADMIN_COMMANDS = ("org", "cert")
_EXIT_USAGE = 2

logger = logging.getLogger("relay")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the caller prints it and exits 2.
        raise _UsageError(message)


class JsonFormatter(logging.Formatter):
    """Render a log record as one JSON object: event, structured fields, level, time.

    Structured fields come from ``extra={"fields": {...}}``. Exception
    details are reduced to their type, so that no payload ever reaches a log.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {"event": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        entry["level"] = record.levelname.lower()
        entry["logger"] = record.name
        entry["ts"] = round(record.created, 3)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
        return json.dumps(entry, default=str)


def main(argv: list[str] | None = None) -> int:
    """Run the relay (or a command) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _ADMIN_COMMANDS:
        # relay.admin pulls in crypto and storage the relay itself does not need.
        from relay import admin

        return admin.main(args)
    if args and args[0] == "account":
        from relay import account_admin

        return account_admin.main(args[1:])
    if args and args[0] == "init":
        from relay import provision

        return provision.main(args[1:])
    try:
        namespace = _parser().parse_args(args)
        config = _config(namespace)
    except (_UsageError, ConfigError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    _setup_logging()
    try:
        return asyncio.run(_run(config))
    except KeyboardInterrupt:
        # Only reachable where signal handlers cannot be installed (Windows).
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Relay that pairs Deskhand users with technicians.",
        epilog=(
            "Commands: 'init DIR', 'account ...', 'org ...' and 'cert ...'"
            " (see '<command> --help'). Every flag is also a TOML key"
            " and a DESKHAND_RELAY_<NAME> variable."
        ),
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings (or DESKHAND_RELAY_CONFIG)"
    )
    defaults = RelayConfig()
    for field in dataclasses.fields(RelayConfig):
        default = getattr(defaults, field.name)
        kind = setting_type(field.name)
        parser.add_argument(
            flag_name(field.name),
            dest=field.name,
            type=kind,
            default=None,
            metavar=field.name.upper(),
            help=f"(default: {default!r})" if kind is str else f"(default: {default})",
        )
    return parser


def _config(namespace: argparse.Namespace) -> RelayConfig:
    flags: dict[str, Any] = {
        f.name: getattr(namespace, f.name)
        for f in dataclasses.fields(RelayConfig)
        if getattr(namespace, f.name) is not None
    }
    return load_config(flags=flags, env=dict(os.environ), config_file=namespace.config)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # websockets logs every handshake at INFO, asyncio's debug mode logs its
    # own chatter, and alembic narrates migrations: keep only their problems.
    for noisy in ("websockets", "asyncio", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _run(config: RelayConfig) -> int:
    # Imported here so that "--help" and argument errors stay fast.
    from relay.server import serve
    from relay.store import StoreError

    try:
        server = await serve(config)
    except OSError as exc:
        detail = exc.strerror or str(exc)
        print(
            f"{PROG}: error: cannot listen on {config.host}:{config.port}: {detail}",
            file=sys.stderr,
        )
        return _EXIT_USAGE
    except (StoreError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        store = server.relay.db.store
        logger.info(
            "listening",
            extra={
                "fields": {
                    "host": server.host,
                    "port": server.port,
                    "url": server.url,
                    "tls": server.url.startswith("wss://"),
                    "database": store.description,
                    "persistent": store.persistent,
                    "requests_restored": server.relay.restored,
                    "code_claims": config.code_claims,
                }
            },
        )
        if not server.url.startswith("wss://"):
            logger.warning(
                "plain_ws_loopback_only",
                extra={
                    "fields": {
                        "detail": "serving plain ws:// on loopback only; set tls_certificate"
                        " and tls_key (deskhand-relay init) to serve other machines"
                    }
                },
            )
        if not store.persistent:
            logger.warning(
                "database_in_memory",
                extra={
                    "fields": {
                        "detail": "no database_url: accounts and the queue are lost on restart"
                    }
                },
            )
        await stop.wait()
        logger.info("shutting_down", extra={"fields": dataclasses.asdict(server.counts())})
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.close()
    logger.info("stopped", extra={"fields": {}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
