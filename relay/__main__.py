"""``python -m relay`` / ``deskhand-relay``: run the relay, or its admin commands.

Usage::

    python -m relay [--host HOST] [--port PORT] [--idle-timeout S] ...
    python -m relay org ...     (organisation admin, see relay.admin)
    python -m relay cert ...

The relay logs one JSON object per line on stderr. The first is::

    {"event": "listening", "host": "127.0.0.1", "port": 8765, "url": "ws://...", ...}

Tests start ``python -m relay --port 0`` and read the port from that line.
SIGINT or SIGTERM shut the relay down gracefully (exit status 0). Bad
arguments, or an address that cannot be bound, print one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
from typing import NoReturn

from relay.config import RelayConfig


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
    """Run the relay (or an admin command) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _ADMIN_COMMANDS:
        # relay.admin pulls in crypto and storage the relay itself does not need.
        from relay import admin

        return admin.main(args)
    try:
        config = _config(_parser().parse_args(args))
    except (_UsageError, ValueError) as exc:
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
        epilog="Admin commands: 'org ...' and 'cert ...' (see '<command> --help').",
    )
    defaults = RelayConfig()
    for field in dataclasses.fields(RelayConfig):
        default = getattr(defaults, field.name)
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=_number(type(default)),
            default=default,
            metavar=field.name.upper(),
            help=f"(default: {default})",
        )
    return parser


def _number(kind: type) -> type:
    # Accept "10" for float options; argparse reports a bad value by itself.
    return float if kind is float else kind


def _config(namespace: argparse.Namespace) -> RelayConfig:
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(RelayConfig)}
    return RelayConfig(**values)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # websockets logs every handshake at INFO, and asyncio's debug mode logs
    # its own chatter: keep only their problems.
    for noisy in ("websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _run(config: RelayConfig) -> int:
    # Imported here so that "--help" and argument errors stay fast.
    from relay.server import serve

    try:
        server = await serve(config)
    except OSError as exc:
        detail = exc.strerror or str(exc)
        print(
            f"{PROG}: error: cannot listen on {config.host}:{config.port}: {detail}",
            file=sys.stderr,
        )
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
        logger.info(
            "listening",
            extra={"fields": {"host": server.host, "port": server.port, "url": server.url}},
        )
        if not config.is_loopback:
            logger.warning(
                "insecure_transport",
                extra={"fields": {"detail": "plain ws:// is only for loopback until TLS lands"}},
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
