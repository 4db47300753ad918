"""Who may read ``/metrics``, and where it is served.

The metrics tell an outsider how busy the relay is and which limits bite,
so they are not public by default:

* on the relay port, ``/metrics`` answers only to a direct loopback client
  (no ``X-Forwarded-For`` or ``Forwarded`` header: a reverse proxy on the
  same machine must not make it public), unless ``metrics_token`` is set;
  then it answers to ``Authorization: Bearer <metrics_token>`` from
  anywhere, and to nothing else;
* with ``metrics_port`` set, ``/metrics`` moves to its own plain-HTTP
  listener on ``metrics_host`` (loopback by default) and the relay port
  answers 404. The token, when set, is required there too.

Tokens are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import http
import ipaddress

from websockets.asyncio.server import Server, ServerConnection, serve as ws_serve
from websockets.http11 import Request, Response

from relay.config import RelayConfig
from relay.handler import Relay
from relay.metrics import CONTENT_TYPE, Gauges


__all__ = ["gauges", "metrics_response", "serve_metrics"]

METRICS_PATH = "/metrics"


def gauges(relay: Relay) -> Gauges:
    """The gauges of ``/metrics``, read at scrape time."""
    counts = relay.counts()
    waiting, claimed = relay.hub.queue.counts()
    guards = relay.guards
    return {
        "connections": ("Open websocket connections.", counts.connections),
        "waiting_codes": ("Users waiting behind a pairing code.", counts.waiting_codes),
        "active_pairs": ("Paired connections forwarding to each other.", counts.active_pairs),
        "queued_requests": (
            "Help requests in the queue, by state.",
            {(("state", "waiting"),): waiting, (("state", "claimed"),): claimed},
        ),
        "queue_consoles": ("Technicians watching the queue.", counts.consoles),
        "handshakes_pending": (
            "Sockets accepted whose websocket upgrade has not finished.",
            guards.handshakes.total if guards else 0,
        ),
        "buffered_bytes": (
            "Bytes the relay holds for connections (received, or being sent).",
            guards.budget.total if guards else 0,
        ),
        "uptime_seconds": (
            "Seconds since the relay started.",
            round(relay.wall_clock() - relay.started_at, 3),
        ),
    }


def _is_loopback(connection: ServerConnection) -> bool:
    address = connection.remote_address
    try:
        return ipaddress.ip_address(str(address[0])).is_loopback
    except (ValueError, TypeError, IndexError):
        return False


def _allowed(connection: ServerConnection, request: Request, token: str, *, own: bool) -> bool:
    if token:
        presented = request.headers.get("Authorization", "")
        return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())
    if own:
        return True
    proxied = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    return _is_loopback(connection) and not proxied


def metrics_response(
    connection: ServerConnection, request: Request, relay: Relay, *, own: bool = False
) -> Response:
    """The answer to ``GET /metrics`` (``own``: on the metrics listener)."""
    config = relay.config
    if not own and config.metrics_port:
        return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
    if not _allowed(connection, request, config.metrics_token, own=own):
        if config.metrics_token:
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "metrics token needed\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return connection.respond(
            http.HTTPStatus.FORBIDDEN, "metrics are served to loopback clients only\n"
        )
    body = relay.metrics.render()
    response = connection.respond(http.HTTPStatus.OK, "")
    response.body = body
    # Headers.__setitem__ appends, so drop the generated values first.
    for name, value in (
        ("Content-Type", CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ):
        if name in response.headers:
            del response.headers[name]
        response.headers[name] = value
    return response


async def serve_metrics(relay: Relay, config: RelayConfig) -> Server | None:
    """The separate metrics listener, when ``metrics_port`` is set."""
    if not config.metrics_port:
        return None

    def process_request(connection: ServerConnection, request: Request) -> Response:
        if request.path != METRICS_PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        return metrics_response(connection, request, relay, own=True)

    async def never(connection: ServerConnection) -> None:  # every request gets a response
        await connection.close()

    return await ws_serve(
        never,
        config.metrics_host,
        config.metrics_port,
        process_request=process_request,
        server_header="deskhand-relay",
        open_timeout=config.open_timeout,
        compression=None,
    )
