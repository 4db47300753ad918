"""The relay's connection log lines, shared by the handler modules.

Structured fields travel in ``extra``; :mod:`relay.__main__` renders them as
JSON. Never log nameplates, session ids, tokens, request text or payloads.
"""

from __future__ import annotations

import hashlib
import logging

from relay.peer import Peer


__all__ = ["event", "log", "logger", "tag"]

logger = logging.getLogger("relay")


def log(event: str, peer: Peer, **fields: object) -> None:
    """One line about one connection."""
    logger.info(event, extra={"fields": {"conn": peer.id, **fields}})


def event(event: str, **fields: object) -> None:
    """One line about no connection in particular."""
    logger.info(event, extra={"fields": fields})


def tag(request_id: bytes) -> str:
    """A short, stable tag for a request in logs (not its id)."""
    return hashlib.sha256(b"deskhand log tag|" + request_id).hexdigest()[:12]
