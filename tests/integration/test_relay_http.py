"""The relay's HTTP surface on 127.0.0.1: /healthz, other paths, no compression."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from relay.server import RelayServer
from tests.integration.relay_peers import health, http_get, paired, peer, register, settled


# --- HTTP surface ---------------------------------------------------------------


async def test_healthz_reports_counts(relay_server: RelayServer) -> None:
    assert await health(relay_server) == {
        "status": "ok",
        "connections": 0,
        "waiting_codes": 0,
        "active_pairs": 0,
    }
    async with paired(relay_server.url), peer(relay_server.url) as waiting:
        await register(waiting)
        assert await health(relay_server) == {
            "status": "ok",
            "connections": 3,
            "waiting_codes": 1,
            "active_pairs": 1,
        }
    await settled(relay_server, connections=0)
    assert (await health(relay_server))["active_pairs"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/V1/peer",
        "/v1/peer/",
        "/v1/%70eer",
        "/v1//peer",
        "//v1/peer",
        "/v1/peer?x=1",
        "/v1/peer;x",
        "/v1/peer/../peer",
        "/admin/..;/",
        "/healthz/",
        "/HEALTHZ",
        "/v2/peer",
    ],
)
async def test_other_paths_are_404(relay_server: RelayServer, path: str) -> None:
    status, _, _ = await http_get(relay_server.host, relay_server.port, path)
    assert status == 404
    with pytest.raises(InvalidStatus) as info:
        async with peer(f"ws://{relay_server.host}:{relay_server.port}{path}"):
            pass
    assert info.value.response.status_code == 404


async def test_plain_get_on_the_websocket_path_is_not_served(relay_server: RelayServer) -> None:
    status, _, _ = await http_get(relay_server.host, relay_server.port, "/v1/peer")
    assert status == 426


async def test_permessage_deflate_is_not_negotiated(relay_server: RelayServer) -> None:
    async with peer(relay_server.url, compression="deflate") as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
