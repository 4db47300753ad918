"""In-process relays on 127.0.0.1, on a free port, for integration tests.

``relay_server`` yields a running :class:`relay.server.RelayServer` with the
default limits: use ``.url`` (``ws://127.0.0.1:PORT/v1/peer``),
``.http_base``, ``.host``, ``.port``, ``.counts()`` and ``.relay`` (the
handler and its registry). ``relay_factory`` starts relays with other
settings, e.g. ``await relay_factory(idle_timeout=0.3)``. Every relay is
closed when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from relay.config import RelayConfig
from relay.server import RelayServer, serve


# Port 0: the OS picks a free port. A short close_timeout keeps teardown fast
# when a test leaves a peer that does not answer the closing handshake.
# code_claims: relays require a sign-in to claim codes by default (issue 14); the
# tests of the relay protocol claim anonymously, and those about sign-in set it.
TEST_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "close_timeout": 2.0,
    "code_claims": "anyone",
}

RelayFactory = Callable[..., Awaitable[RelayServer]]


@pytest.fixture
async def relay_factory() -> AsyncIterator[RelayFactory]:
    """Start relays with overridden :class:`RelayConfig` fields; all closed at teardown."""
    servers: list[RelayServer] = []

    async def start(**overrides: Any) -> RelayServer:
        server = await serve(RelayConfig(**{**TEST_DEFAULTS, **overrides}))
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


@pytest.fixture
async def relay_server(relay_factory: RelayFactory) -> RelayServer:
    """A relay with the default limits on 127.0.0.1 and a free port."""
    return await relay_factory()
