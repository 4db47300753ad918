"""Issue 14, the relay part: denial of service, code sniping, tokens, counters, proxies, metrics.

Every test drives a real relay on 127.0.0.1 (in process, or ``python -m
relay`` where a restart or the process's memory is the point). Other hosts
are other loopback addresses (127.0.0.2...): Linux routes all of 127/8 to
the loopback interface, so a client can bind any of them as its source.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.relay_process import RelayProcess
from bench.relay_stall import rss_mib
from common.crypto.code import PairingCode, parse_code
from common.protocol.codec import decode_as, encode
from common.protocol.relay_wire import (
    MAX_FRAME,
    Claim,
    CloseCode,
    LoggedIn,
    Login,
    Paired,
    PeerJoined,
    Register,
    Registered,
    RenewToken,
    WatchQueue,
    forward_frame,
)
from relay import account_admin
from relay.server import RelayServer
from tests.integration.conftest import RelayFactory
from tests.integration.relay_helpers import (
    PASSWORD,
    closed_with,
    create_account,
    login,
    recv,
    watch,
)


T = 5.0
BIG = forward_frame(b"\x00" * (MAX_FRAME - 1024))


def host(n: int) -> str:
    """Another machine, as far as the relay can tell: 127.0.0.n."""
    return f"127.0.0.{n}"


@contextlib.asynccontextmanager
async def peer(
    url: str, source: str = "127.0.0.1", **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    kwargs.setdefault("max_size", None)
    async with connect(
        url,
        compression=None,
        open_timeout=T,
        close_timeout=1,
        local_addr=(source, 0),
        **kwargs,
    ) as ws:
        yield ws


async def register(ws: ClientConnection) -> Registered:
    await ws.send(encode(Register("test")))
    return decode_as(Registered, await recv(ws))


async def refusal(ws: ClientConnection, hello: Any) -> tuple[int, str]:
    await ws.send(encode(hello))
    code, reason, _ = await closed_with(ws)
    return code, reason


@contextlib.asynccontextmanager
async def paired(
    url: str, user_from: str = "127.0.0.1", tech_from: str = "127.0.0.1", **tech_kw: Any
) -> AsyncIterator[tuple[ClientConnection, ClientConnection]]:
    async with peer(url, user_from) as user, peer(url, tech_from, **tech_kw) as tech:
        registered = await register(user)
        await tech.send(encode(Claim(registered.nameplate)))
        decode_as(Paired, await recv(tech))
        decode_as(PeerJoined, await recv(user))
        yield user, tech


async def round_trip(user: ClientConnection, tech: ClientConnection) -> None:
    frame = forward_frame(b"ping")
    await user.send(frame)
    assert await recv(tech) == frame
    await tech.send(frame)
    assert await recv(user) == frame


# --- nameplates -------------------------------------------------------------------


async def test_forty_five_addresses_cannot_hold_every_nameplate(
    relay_factory: RelayFactory,
) -> None:
    # The review's attack, scaled down: 10 addresses x 20 connections against a
    # relay with room for 60 codes. Each address now holds at most 5 codes.
    server = await relay_factory(max_waiting=60, max_connections=400)
    async with contextlib.AsyncExitStack() as stack:
        held = refused = 0
        for n in range(2, 12):
            for _ in range(20):
                ws = await stack.enter_async_context(peer(server.url, host(n)))
                await ws.send(encode(Register()))
                try:
                    decode_as(Registered, await recv(ws))
                    held += 1
                except ConnectionClosed as exc:
                    assert exc.rcvd is not None and exc.rcvd.code == CloseCode.RATE_LIMITED
                    refused += 1
        assert (held, refused) == (50, 150)
        # A real user elsewhere still gets a code, and a technician can use it.
        async with paired(server.url, user_from=host(100), tech_from=host(101)) as pair:
            await round_trip(*pair)


async def test_registering_is_rate_limited_per_address(relay_factory: RelayFactory) -> None:
    server = await relay_factory(registrations_per_window=3)
    for _ in range(3):
        async with peer(server.url, host(2)) as ws:
            await register(ws)
    async with peer(server.url, host(2)) as ws:
        assert await refusal(ws, Register()) == (
            CloseCode.RATE_LIMITED,
            "too many codes asked from this address; wait",
        )
    async with peer(server.url, host(3)) as ws:
        await register(ws)


async def test_a_busy_relay_hands_out_four_digit_codes_that_technicians_can_type(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory()
    registry = server.relay.registry
    # 675 users waiting (three quarters of the three-digit nameplates), put
    # straight into the registry: the handles are placeholders.
    now = asyncio.get_running_loop().time()
    for i in range(675):
        registry.connect(f"held{i}", f"10.{i // 200}.{i % 200}.1")  # type: ignore[arg-type]
        registry.register(f"held{i}", now)  # type: ignore[arg-type]
    async with peer(server.url, host(2)) as user, peer(server.url, host(3)) as tech:
        registered = await register(user)
        assert 1000 <= registered.nameplate <= 9999
        code = PairingCode.generate(registered.nameplate, 0.0)
        assert code.display.count("-") == 2 and len(code.display) == 12
        # What the technician's code entry does with what the user reads out.
        nameplate, secret = parse_code(code.display)
        assert (nameplate, secret) == (registered.nameplate, code.secret)
        await tech.send(encode(Claim(nameplate)))
        decode_as(Paired, await recv(tech))
        decode_as(PeerJoined, await recv(user))


# --- half-open handshakes -----------------------------------------------------------


async def _hold_half_open(port: int, n: int) -> list[socket.socket]:
    """Open ``n`` TCP connections from 127.0.0.1 that never finish their upgrade."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        socks.append(s)
        if len(socks) % 50 == 0:
            await asyncio.sleep(0.05)  # let the relay accept (listen backlog)
    return socks


def _dropped(socks: list[socket.socket]) -> int:
    """How many of these sockets the relay has closed (EOF or reset)."""
    dropped = 0
    for s in socks:
        try:
            if s.recv(1) == b"":
                dropped += 1
        except BlockingIOError:
            pass
        except OSError:
            dropped += 1
    return dropped


async def test_two_hundred_half_open_handshakes_hold_few_sockets_and_pairs_go_on(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(open_timeout=5.0)
    socks = await _hold_half_open(server.port, 200)
    try:
        await asyncio.sleep(0.5)
        # Dropped at accept, not after open_timeout: only 8 are still held.
        assert _dropped(socks) >= 190
        guards = server.relay.guards
        assert guards is not None
        assert guards.handshakes.total <= 8
        # Legitimate pairs from elsewhere are served meanwhile.
        for n in range(3):
            async with paired(server.url, host(10 + n), host(20 + n)) as pair:
                await round_trip(*pair)
        metrics = server.relay.metrics
        assert metrics.value("refusals_total", reason="handshakes") >= 190
    finally:
        for s in socks:
            s.close()
    # Sockets that finish their upgrade (or give up) free their place.
    await asyncio.sleep(0.2)
    async with paired(server.url) as pair:
        await round_trip(*pair)


async def test_an_unfinished_upgrade_is_dropped_after_open_timeout(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(open_timeout=0.5)
    (s,) = await _hold_half_open(server.port, 1)
    try:
        start = time.monotonic()
        while _dropped([s]) == 0:
            assert time.monotonic() - start < 3.0, "the relay kept the socket"
            await asyncio.sleep(0.05)
        assert server.relay.guards is not None and server.relay.guards.handshakes.total == 0
    finally:
        s.close()


# --- memory per stalled pair ---------------------------------------------------------


async def _flood(ws: ClientConnection, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                await ws.send(BIG)
    except TimeoutError:
        return "blocked"
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else 1006}"
    return "flowing"


def _most_held(server: RelayServer) -> int:
    """The most bytes the relay holds for any one connection."""
    guards = server.relay.guards
    assert guards is not None
    return guards.budget.held(guards.budget.largest())


async def test_a_technician_that_never_reads_costs_a_bounded_number_of_bytes(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(max_buffered_per_connection=2 * MAX_FRAME)
    # max_queue=1: the technician's client stops reading its socket at once.
    async with paired(server.url, max_queue=1) as (user, _tech):
        assert await _flood(user, 2.0) == "blocked"  # back-pressure reached the sender
        held = _most_held(server)
        # websockets alone queued 16 frames of 1 MiB; now about two, whatever their size.
        assert held <= 3 * MAX_FRAME + (256 << 10), held
        assert server.relay.guards is not None
        assert server.relay.guards.budget.total <= 4 * MAX_FRAME + (512 << 10)


async def test_over_the_total_budget_the_biggest_holder_is_closed_with_overloaded(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(
        max_buffered_per_connection=2 * MAX_FRAME, max_buffered_total=5 * MAX_FRAME
    )
    async with (
        paired(server.url, max_queue=1) as (first, _),
        paired(server.url, max_queue=1) as (second, _),
    ):
        endings = await asyncio.gather(_flood(first, 2.0), _flood(second, 2.0))
        assert f"closed {CloseCode.OVERLOADED}" in endings, endings
        assert server.relay.metrics.value("refusals_total", reason="buffer_total") >= 1
    # The relay serves on.
    async with paired(server.url) as pair:
        await round_trip(*pair)


def test_a_stalled_pair_costs_the_relay_process_little_memory() -> None:
    # Before issue 14: about 19 MiB of RSS per pair (bench/relay_stall.py).
    async def run(relay: RelayProcess) -> float:
        assert relay.proc is not None
        before = rss_mib(relay.proc.pid)
        async with contextlib.AsyncExitStack() as stack:
            users = []
            for _ in range(3):
                user, _ = await stack.enter_async_context(paired(relay.url, max_queue=1))
                users.append(user)
            assert await asyncio.gather(*(_flood(u, 2.0) for u in users)) == ["blocked"] * 3
            await asyncio.sleep(0.3)
            return (rss_mib(relay.proc.pid) - before) / 3

    with RelayProcess("--code-claims", "anyone", "--ping-interval", "3600") as relay:
        per_pair = asyncio.run(run(relay))
    # Measured after: about 6 MiB (queue budget, the frame in flight, the one being parsed).
    assert per_pair < 10.0, f"{per_pair:.1f} MiB per stalled pair"


# --- code sniping ---------------------------------------------------------------------


def test_a_default_relay_requires_a_sign_in_to_claim_codes() -> None:
    async def run(relay: RelayProcess) -> tuple[int, str]:
        async with peer(relay.url, host(2)) as user, peer(relay.url, host(3)) as tech:
            registered = await register(user)
            return await refusal(tech, Claim(registered.nameplate))

    with RelayProcess() as relay:
        assert relay.events("listening")[0]["code_claims"] == "login"
        assert asyncio.run(run(relay)) == (
            CloseCode.UNAUTHORIZED,
            "sign in first (no token was sent)",
        )


async def test_signed_in_claims_count_against_the_address_whatever_the_outcome(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(code_claims="login", address_claims_per_window=2)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    auth = {"additional_headers": {"Authorization": f"Bearer {token}"}}
    async with paired(server.url, user_from=host(2), **auth):
        pass  # one successful claim
    async with peer(server.url, **auth) as tech:
        assert (await refusal(tech, Claim(999)))[0] == CloseCode.UNKNOWN_CODE
    async with peer(server.url, host(2)) as user, peer(server.url, **auth) as tech:
        registered = await register(user)
        assert await refusal(tech, Claim(registered.nameplate)) == (
            CloseCode.RATE_LIMITED,
            "too many claims from this address; wait",
        )


# --- tokens ----------------------------------------------------------------------------


async def test_renewing_a_token_invalidates_the_old_one(relay_factory: RelayFactory) -> None:
    server = await relay_factory()
    await create_account(server, "jane")
    first = (await login(server.url)).token
    tokens = [first]
    async with peer(server.url, additional_headers={"Authorization": f"Bearer {first}"}) as ws:
        await watch(ws)
        for _ in range(2):
            await ws.send(encode(RenewToken()))
            tokens.append(decode_as(LoggedIn, await recv(ws)).token)
    assert len(set(tokens)) == 3
    for old in tokens[:2]:
        async with peer(server.url, additional_headers={"Authorization": f"Bearer {old}"}) as ws:
            assert await refusal(ws, WatchQueue()) == (
                CloseCode.UNAUTHORIZED,
                "invalid sign-in token; sign in again",
            )
    async with peer(server.url, additional_headers={"Authorization": f"Bearer {tokens[2]}"}) as ws:
        assert await watch(ws) == []


# --- counters that survive a restart ------------------------------------------------------


def test_lockouts_and_rate_limits_survive_a_restart(tmp_path: Path, database_url: str) -> None:
    # On SQLite and on PostgreSQL (the database_url fixture, tests/conftest.py).
    config = tmp_path / "relay.toml"
    config.write_text(
        f'database_url = "{database_url}"\n'
        "login_failures_before_lockout = 2\n"
        "registrations_per_window = 2\n"
        "check_interval = 0.2\n"
    )
    create = ["create", "jane", "--password-stdin", "--config", str(config)]
    assert account_admin.main(create, env={}, stdin=io.StringIO(PASSWORD + "\n")) == 0

    async def first_run(url: str) -> list[int]:
        codes = []
        for _ in range(2):
            async with peer(url) as ws:
                codes.append((await refusal(ws, Login("jane", "wrong password!")))[0])
        for _ in range(2):
            async with peer(url, host(2)) as ws:
                await register(ws)
        return codes

    async def after_restart(url: str) -> tuple[int, int, int]:
        async with peer(url) as ws:
            locked = (await refusal(ws, Login("jane", PASSWORD)))[0]
        async with peer(url, host(2)) as ws:
            limited = (await refusal(ws, Register()))[0]
        async with peer(url, host(3)) as ws:
            await register(ws)
            other = CloseCode.NORMAL
        return locked, limited, other

    with RelayProcess(config=config) as relay:
        assert asyncio.run(first_run(relay.url)) == [CloseCode.LOGIN_FAILED, CloseCode.LOCKED_OUT]
    # SIGTERM: the relay writes its counters as it stops.
    with RelayProcess(config=config) as relay:
        assert asyncio.run(after_restart(relay.url)) == (
            CloseCode.LOCKED_OUT,
            CloseCode.RATE_LIMITED,
            CloseCode.NORMAL,
        )


# --- X-Forwarded-For ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def holding(
    url: str, headers: dict[str, str], source: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """Register a code with these headers and keep it; yields the outcome."""
    async with peer(url, source, additional_headers=headers) as ws:
        await ws.send(encode(Register()))
        outcome: int = CloseCode.NORMAL
        try:
            decode_as(Registered, await recv(ws))
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            outcome = exc.rcvd.code
        yield outcome


async def test_x_forwarded_for_is_read_only_from_trusted_proxies(
    relay_factory: RelayFactory,
) -> None:
    # One waiting code per address makes the relay's idea of the address visible.
    trusted = await relay_factory(max_waiting_per_address=1, trusted_proxies="127.0.0.1")
    untrusted = await relay_factory(max_waiting_per_address=1, trusted_proxies="127.0.0.9")
    a = {"X-Forwarded-For": "203.0.113.5"}
    b = {"X-Forwarded-For": "203.0.113.6"}
    # Behind the trusted proxy, two clients are two addresses...
    async with holding(trusted.url, a) as first, holding(trusted.url, b) as second:
        assert (first, second) == (CloseCode.NORMAL, CloseCode.NORMAL)
        # ...and the same client twice is one, even when it prepends a forged hop.
        forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}
        async with holding(trusted.url, forged) as third:
            assert third == CloseCode.RATE_LIMITED
    # From an untrusted peer the header is ignored: both count as 127.0.0.1.
    async with holding(untrusted.url, a) as first, holding(untrusted.url, b) as second:
        assert (first, second) == (CloseCode.NORMAL, CloseCode.RATE_LIMITED)
    # A client cannot dodge a limit with the header when the proxy is not trusted.
    async with holding(trusted.url, a, source=host(2)) as first:
        async with holding(trusted.url, b, source=host(2)) as second:
            assert (first, second) == (CloseCode.NORMAL, CloseCode.RATE_LIMITED)


# --- metrics ------------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=T) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_metrics_are_for_loopback_clients_unless_a_token_is_set(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory()
    url = server.http_base + "/metrics"
    status, body = await asyncio.to_thread(_get, url)
    assert status == 200 and "deskhand_relay_connections " in body
    # Through a reverse proxy on this machine: not public.
    status, _ = await asyncio.to_thread(_get, url, {"X-Forwarded-For": "203.0.113.5"})
    assert status == 403
    with_token = await relay_factory(metrics_token="s3cret-scraper-token")
    url = with_token.http_base + "/metrics"
    assert (await asyncio.to_thread(_get, url))[0] == 401
    assert (await asyncio.to_thread(_get, url, {"Authorization": "Bearer wrong"}))[0] == 401
    bearer = {"Authorization": "Bearer s3cret-scraper-token"}
    assert (await asyncio.to_thread(_get, url, bearer))[0] == 200


async def test_metrics_on_their_own_port(relay_factory: RelayFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = await relay_factory(metrics_port=port)
    assert (await asyncio.to_thread(_get, server.http_base + "/metrics"))[0] == 404
    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and "deskhand_relay_uptime_seconds" in body
    assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz"))[0] == 404


async def test_metrics_histograms_refusals_and_process(relay_factory: RelayFactory) -> None:
    server = await relay_factory(address_claims_per_window=1)
    async with paired(server.url) as pair:
        await round_trip(*pair)
    async with peer(server.url) as tech:
        await refusal(tech, Claim(999))
    _, body = await asyncio.to_thread(_get, server.http_base + "/metrics")
    lines = body.splitlines()
    assert 'deskhand_relay_pairing_seconds_count{kind="code"} 1.0' in lines
    assert "deskhand_relay_forward_delay_seconds_count 2.0" in lines
    assert 'deskhand_relay_refusals_total{reason="address_claims"} 1.0' in lines
    assert any(line.startswith("deskhand_relay_process_open_fds ") for line in lines)
    # Label values are closed sets: every refusal label is one the relay defines.
    from relay.metrics import REFUSAL_REASONS

    for line in lines:
        if line.startswith("deskhand_relay_refusals_total{"):
            assert line.split('"')[1] in REFUSAL_REASONS
    assert json.loads(await asyncio.to_thread(lambda: _get(server.http_base + "/healthz")[1]))
