"""Composition root of the relay: the registry, the handler and the websockets server.

HTTP surface, deny by default (exact string match on the request target, no
decoding or normalisation, so ``/V1/peer``, ``/v1/peer/``, ``/v1/%70eer`` and
``/v1/peer?x`` are all 404):

* ``/v1/peer``: the websocket endpoint (anything but an upgrade gets 426).
* ``GET /healthz``: 200 ``{"status": "ok", "connections": N, "waiting_codes":
  N, "active_pairs": N}`` as ``application/json``.
* ``GET /metrics``: counters, histograms and gauges in the Prometheus text
  format, for loopback clients or the metrics token (:mod:`relay.metrics_http`).
* anything else: 404.

With ``tls_certificate`` and ``tls_key`` the relay serves ``wss://`` (and
``https://`` for the two GET paths) with TLS 1.3 only. Without them it
serves plain ``ws://``, and only on a loopback address.

Connection caps (total and per address) are enforced after the upgrade, by
closing with TOO_MANY_CONNECTIONS: clients then see one kind of refusal,
and the count cannot leak when a handshake fails after the check. Before
the upgrade, :mod:`relay.guard` caps unfinished handshakes per address
(dropping the excess at accept) and budgets buffered bytes.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve as ws_serve
from websockets.http11 import Request, Response

from common.protocol.relay_wire import CloseCode
from relay.budget import ByteBudget
from relay.config import RelayConfig
from relay.guard import Guards, guarded_connection
from relay.handler import Relay
from relay.limits import ConnectionLimiter
from relay.metrics_http import gauges, metrics_response, serve_metrics
from relay.registry import Counts


__all__ = ["HEALTH_PATH", "METRICS_PATH", "PEER_PATH", "RelayServer", "serve", "server_context"]

PEER_PATH = "/v1/peer"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
# No version numbers for scanners.
_SERVER_HEADER = "deskhand-relay"
# Messages waiting in a connection's receive buffer before reading pauses.
_MAX_QUEUE = 16

logger = logging.getLogger("relay")


class RelayServer:
    """A running relay.

    Use :func:`serve` to make one. It is also an async context manager that
    closes the relay on exit.

    Attributes:
        config: the settings it runs with.
        relay: the connection handler and its registry (for introspection).
        host: the address it listens on.
        port: the TCP port it actually listens on (useful with port 0).
    """

    def __init__(
        self, config: RelayConfig, relay: Relay, server: Server, *, tls: bool = False
    ) -> None:
        self.config = config
        self.relay = relay
        self._server = server
        self._tls = tls
        self._stopped = False
        self.host = config.host
        self.port: int = server.sockets[0].getsockname()[1]
        # The separate /metrics listener (metrics_port), if any.
        self.metrics_server: Server | None = None

    @property
    def url(self) -> str:
        """The websocket URL peers connect to, e.g. ``ws://127.0.0.1:8765/v1/peer``."""
        scheme = "wss" if self._tls else "ws"
        return f"{scheme}://{self._netloc}{PEER_PATH}"

    @property
    def http_base(self) -> str:
        """The HTTP base URL, e.g. ``http://127.0.0.1:8765`` (for ``/healthz``)."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self._netloc}"

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def counts(self) -> Counts:
        """Connections, waiting codes and active pairs right now."""
        return self.relay.counts()

    def is_serving(self) -> bool:
        """True until :meth:`close` is called."""
        return self._server.is_serving()

    async def close(self, timeout: float | None = None) -> None:
        """Stop accepting, close every peer with GOING_AWAY, wait for the handlers.

        Args:
            timeout: the longest to wait for peers to finish their closing
                handshakes; stragglers are then dropped. Defaults to the
                configured ``close_timeout`` plus a little.
        """
        if timeout is None:
            timeout = self.config.close_timeout + 2.0
        if self._stopped:
            return
        self._stopped = True
        self.relay.closing = True
        if self.metrics_server is not None:
            self.metrics_server.close()
        self._server.close(code=CloseCode.GOING_AWAY, reason="relay shutting down")
        try:
            async with asyncio.timeout(timeout):
                await self._server.wait_closed()
        except TimeoutError:
            logger.warning("shutdown_forced", extra={"fields": {}})
            for connection in list(self._server.all_connections):
                connection.transport.abort()
            try:
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
            except TimeoutError:
                logger.error("shutdown_incomplete", extra={"fields": {}})
        await self.relay.stop()

    async def wait_closed(self) -> None:
        """Return once the relay is closed and every handler has finished."""
        await self._server.wait_closed()

    async def __aenter__(self) -> RelayServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve(
    config: RelayConfig,
    *,
    relay: Relay | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> RelayServer:
    """Start a relay listening on ``config.host:config.port``.

    Args:
        config: limits, timeouts and where to listen.
        relay: the handler to use (tests inject one with a seeded registry).
        ssl_context: serve ``wss://`` with this context (default: one made
            from ``config.tls_certificate`` and ``config.tls_key``, if set).

    Raises:
        OSError: the address cannot be bound (for instance, port in use).
        ValueError: plain ``ws://`` on a non-loopback address; unusable TLS files.
        relay.store.StoreError: the database cannot be opened or migrated.
    """
    if ssl_context is None and config.tls:
        ssl_context = server_context(Path(config.tls_certificate), Path(config.tls_key))
    if ssl_context is None:
        config.check_transport()
    relay = relay if relay is not None else Relay(config)
    try:
        await relay.start()
    except BaseException:
        await relay.stop()
        raise

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == PEER_PATH:
            return None
        if request.path == HEALTH_PATH:
            return _health(connection, relay.counts())
        if request.path == METRICS_PATH:
            return metrics_response(connection, request, relay)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")

    guards = Guards(
        ConnectionLimiter(config.max_handshakes_per_address, config.max_connections),
        ByteBudget(config.max_buffered_per_connection, config.max_buffered_total),
        relay.trusted,
        on_refused=relay.metrics.refused,
    )
    relay.guards = guards
    relay.metrics.gauges = lambda: gauges(relay)
    try:
        server = await _listen(relay, config, process_request, ssl_context, guards)
        try:
            metrics_server = await serve_metrics(relay, config)
        except BaseException:
            server.close()
            await server.wait_closed()
            raise
    except BaseException:
        await relay.stop()
        raise
    result = RelayServer(config, relay, server, tls=ssl_context is not None)
    result.metrics_server = metrics_server
    return result


def server_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.3-only server context for a PEM certificate (chain) and key.

    Raises:
        ValueError: the files cannot be read or do not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ValueError(
            f"cannot use TLS certificate {certificate} with key {key}: {detail}"
        ) from None
    return context


async def _listen(
    relay: Relay,
    config: RelayConfig,
    process_request: Callable[[ServerConnection, Request], Response | None],
    ssl_context: ssl.SSLContext | None,
    guards: Guards,
) -> Server:
    return await ws_serve(
        relay.handle,
        config.host,
        config.port,
        # E2E ciphertext does not compress, and inflating is an amplification risk.
        compression=None,
        max_size=config.max_message,
        max_queue=_MAX_QUEUE,
        open_timeout=config.open_timeout,
        ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout,
        close_timeout=config.close_timeout,
        process_request=process_request,
        server_header=_SERVER_HEADER,
        ssl=ssl_context,
        create_connection=guarded_connection(guards),
    )


def _health(connection: ServerConnection, counts: Counts) -> Response:
    body = json.dumps(
        {
            "status": "ok",
            "connections": counts.connections,
            "waiting_codes": counts.waiting_codes,
            "active_pairs": counts.active_pairs,
        }
    )
    response = connection.respond(http.HTTPStatus.OK, body)
    # Headers.__setitem__ appends, so drop the text/plain type first.
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return response
