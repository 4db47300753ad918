"""Accounts, sign-in, tokens and their limits, through a real relay on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve as ws_serve

from common.errors import ConnectionLost, InvalidState
from common.net.relay_link import RelayLink
from common.protocol.codec import decode_as, encode
from common.protocol.relay_wire import (
    Claim,
    CloseCode,
    LoggedIn,
    Login,
    Paired,
    RenewToken,
    WatchQueue,
)
from relay import admin
from relay.__main__ import JsonFormatter
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.integration.conftest import RelayFactory
from tests.integration.relay_helpers import (
    PASSWORD,
    T,
    claim,
    closed_with,
    create_account,
    disable_account,
    login,
    peer,
    post,
    recv,
    watch,
)
from tests.pki import make_org


async def refused_login(url: str, name: str, password: str) -> tuple[int, str]:
    async with peer(url) as ws:
        await ws.send(encode(Login(name, password)))
        code, reason, _ = await closed_with(ws)
    return code, reason


@pytest.fixture
def relay_factory(relay_factory: RelayFactory, database_url: str) -> RelayFactory:
    """Every relay here stores its accounts and queue in a database: SQLite, then PostgreSQL."""

    async def start(**overrides: Any) -> RelayServer:
        return await relay_factory(**{"database_url": database_url, **overrides})

    return start


@pytest.fixture
async def relay(relay_server: RelayServer) -> RelayServer:
    await create_account(relay_server, "jane", display_name="Jane Doe")
    return relay_server


# --- signing in --------------------------------------------------------------------


async def test_login_gives_a_token_then_closes(relay: RelayServer) -> None:
    async with peer(relay.url) as ws:
        await ws.send(encode(Login("jane", PASSWORD)))
        logged_in = decode_as(LoggedIn, await recv(ws))
        code, reason, _ = await closed_with(ws)
    assert (code, reason) == (CloseCode.NORMAL, "signed in")
    assert (logged_in.account, logged_in.display_name, logged_in.role) == (
        "jane",
        "Jane Doe",
        "technician",
    )
    assert logged_in.expires_in == 3600
    assert logged_in.token.startswith("dh1.")
    # Only the token id and a hash of its secret are stored.
    token_id, secret = logged_in.token.split(".")[1:]
    stored = await relay.relay.db.run(relay.relay.db.store.token, token_id)
    assert stored is not None
    assert secret.encode() not in stored[0].secret_hash


@pytest.mark.parametrize(("name", "password"), [("jane", "wrong password!!"), ("nobody", PASSWORD)])
async def test_wrong_name_or_password_is_one_message(
    relay: RelayServer, name: str, password: str
) -> None:
    assert await refused_login(relay.url, name, password) == (
        CloseCode.LOGIN_FAILED,
        "wrong account name or password",
    )


async def test_accounts_lock_after_repeated_failures(relay_factory: RelayFactory) -> None:
    server = await relay_factory(login_failures_before_lockout=3, lockout_duration=60)
    await create_account(server, "jane")
    results = [await refused_login(server.url, "jane", "not the password") for _ in range(3)]
    assert [code for code, _ in results] == [
        CloseCode.LOGIN_FAILED,
        CloseCode.LOGIN_FAILED,
        CloseCode.LOCKED_OUT,
    ]
    assert results[2][1] == "too many failed sign-ins for this account; try again in 1 minute"
    # Even the right password is refused while the lockout lasts, without a hash check.
    assert await refused_login(server.url, "jane", PASSWORD) == results[2]


async def test_an_address_that_keeps_failing_is_rate_limited(relay_factory: RelayFactory) -> None:
    server = await relay_factory(login_failures_per_address=2)
    await create_account(server, "jane")
    codes = [(await refused_login(server.url, f"user{i}", "whatever!!!!"))[0] for i in range(2)]
    assert codes == [CloseCode.LOGIN_FAILED] * 2
    code, reason = await refused_login(server.url, "jane", PASSWORD)
    assert code == CloseCode.RATE_LIMITED
    assert reason.startswith("too many failed sign-ins from this address; try again in")


async def test_a_disabled_account_cannot_sign_in(relay: RelayServer) -> None:
    await disable_account(relay, "jane")
    assert await refused_login(relay.url, "jane", PASSWORD) == (
        CloseCode.ACCOUNT_DISABLED,
        "this account is disabled",
    )


# --- tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic amFuZTpwdw==", "send the token as 'Bearer <token>'"),
        ("Bearer not-a-token", "invalid sign-in token; sign in again"),
        ("Bearer dh1.AAAAAAAAAAAAAAAA." + "A" * 43, "invalid sign-in token; sign in again"),
    ],
)
async def test_bad_tokens_are_refused(relay: RelayServer, header: str, reason: str) -> None:
    async with peer(relay.url, additional_headers={"Authorization": header}) as ws:
        await ws.send(encode(WatchQueue()))
        assert (await closed_with(ws))[:2] == (CloseCode.UNAUTHORIZED, reason)


async def test_a_forged_secret_for_a_real_token_id_is_refused(relay: RelayServer) -> None:
    token = (await login(relay.url)).token
    prefix, token_id, secret = token.split(".")
    forged = f"{prefix}.{token_id}.{'A' * len(secret)}"
    async with peer(relay.url, token=forged) as ws:
        await ws.send(encode(WatchQueue()))
        assert (await closed_with(ws))[0] == CloseCode.UNAUTHORIZED


async def test_an_expired_token_is_refused_with_a_clear_reason(relay_factory: RelayFactory) -> None:
    server = await relay_factory(token_ttl=0.3)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    async with peer(server.url, token=token) as ws:
        assert await watch(ws) == []
    await asyncio.sleep(0.4)
    async with peer(server.url, token=token) as ws:
        await ws.send(encode(WatchQueue()))
        assert (await closed_with(ws))[:2] == (
            CloseCode.TOKEN_EXPIRED,
            "your sign-in has expired; sign in again",
        )


async def test_the_token_travels_in_the_header_never_in_the_url() -> None:
    seen: list[tuple[str, str | None]] = []

    async def record(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append((ws.request.path, ws.request.headers.get("Authorization")))
        await ws.close()

    async with ws_serve(record, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        link = await RelayLink.open(f"ws://127.0.0.1:{port}/v1/peer", token="dh1.secret", timeout=T)
        await link.close()
    assert seen == [("/v1/peer", "Bearer dh1.secret")]


async def test_a_watch_renews_its_token(relay: RelayServer) -> None:
    first = await login(relay.url)
    async with peer(relay.url, token=first.token) as ws:
        await watch(ws)
        await ws.send(encode(RenewToken()))
        renewed = decode_as(LoggedIn, await recv(ws))
    assert renewed.token != first.token
    async with peer(relay.url, token=renewed.token) as ws:
        assert await watch(ws) == []


async def test_the_technician_core_renews_before_expiry(relay_factory: RelayFactory) -> None:
    server = await relay_factory(token_ttl=0.6)
    await create_account(server, "jane")
    tech = TechnicianClient(server.url, make_org().technician())
    await tech.login("jane", PASSWORD)
    first = tech._token
    queue = await tech.watch_queue()
    async with asyncio.timeout(T):
        while tech._token == first:
            await asyncio.sleep(0.02)
    await queue.close()
    # The renewed token outlives the first one.
    await asyncio.sleep(0.5)
    queue = await tech.watch_queue()
    await asyncio.wait_for(queue.wait_synced(), T)
    await queue.close()


async def test_account_rate_limit(relay_factory: RelayFactory) -> None:
    server = await relay_factory(account_rate=2)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    for _ in range(2):
        async with peer(server.url, token=token) as ws:
            await watch(ws)
    async with peer(server.url, token=token) as ws:
        await ws.send(encode(WatchQueue()))
        assert (await closed_with(ws))[:2] == (
            CloseCode.RATE_LIMITED,
            "too many requests from this account; slow down",
        )


# --- claims ------------------------------------------------------------------------


async def test_claims_per_account_are_limited(relay_factory: RelayFactory) -> None:
    server = await relay_factory(account_claims_per_window=1)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    async with peer(server.url) as a, peer(server.url) as b:
        first, second = await post(a), await post(b)
        async with peer(server.url, token=token) as tech:
            await claim(tech, first.request_id)
            decode_as(Paired, await recv(tech))
        async with peer(server.url, token=token) as tech:
            await claim(tech, second.request_id)
            assert (await closed_with(tech))[:2] == (
                CloseCode.RATE_LIMITED,
                "this account made too many claims; wait a few minutes",
            )


async def test_failed_claims_lock_the_account_out_of_claiming(relay_factory: RelayFactory) -> None:
    server = await relay_factory(claim_failures_before_lockout=2)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    codes = []
    for _ in range(3):
        async with peer(server.url, token=token) as tech:
            await claim(tech, b"\x07" * 16)
            codes.append((await closed_with(tech))[:2])
    assert codes[0] == (CloseCode.UNKNOWN_REQUEST, "this request is no longer queued")
    assert codes[1][0] == codes[2][0] == CloseCode.LOCKED_OUT
    assert codes[2][1].startswith("too many failed claims for this account; try again in")


async def test_code_claims_can_require_a_login(relay_factory: RelayFactory) -> None:
    server = await relay_factory(code_claims="login")
    await create_account(server, "jane")
    async with peer(server.url) as tech:
        await tech.send(encode(Claim(123)))
        assert (await closed_with(tech))[:2] == (
            CloseCode.UNAUTHORIZED,
            "sign in first (no token was sent)",
        )
    token = (await login(server.url)).token
    async with peer(server.url, token=token) as tech:
        await tech.send(encode(Claim(123)))
        assert (await closed_with(tech))[0] == CloseCode.UNKNOWN_CODE


async def test_auto_mode_requires_a_login_once_accounts_exist(relay_factory: RelayFactory) -> None:
    relay_server = await relay_factory(code_claims="auto")
    async with peer(relay_server.url) as tech:
        await tech.send(encode(Claim(123)))
        assert (await closed_with(tech))[0] == CloseCode.UNKNOWN_CODE
    await create_account(relay_server, "jane")
    await login(relay_server.url)
    async with peer(relay_server.url) as tech:
        await tech.send(encode(Claim(123)))
        assert (await closed_with(tech))[0] == CloseCode.UNAUTHORIZED


# --- disabling cuts off ----------------------------------------------------------------


async def test_disabling_cuts_off_live_connections(relay_factory: RelayFactory) -> None:
    server = await relay_factory(check_interval=0.1)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    async with peer(server.url, token=token) as console, peer(server.url) as user:
        await watch(console)
        queued = await post(user)
        await recv(console)
        async with peer(server.url, token=token) as tech:
            await claim(tech, queued.request_id)
            decode_as(Paired, await recv(tech))
            start = time.monotonic()
            await disable_account(server, "jane")
            assert (await closed_with(tech))[:2] == (
                CloseCode.ACCOUNT_DISABLED,
                "this account was disabled",
            )
            assert time.monotonic() - start < 2.0
        code, _, _ = await closed_with(console)
        assert code == CloseCode.ACCOUNT_DISABLED
    assert server.relay.metrics.value("accounts_cut_off_total") == 2


async def test_login_hands_over_a_fresher_revocation_list(
    relay_factory: RelayFactory, tmp_path: Path
) -> None:
    org_dir = tmp_path / "org"
    assert admin.main(["org", "create", str(org_dir), "--name", "ACME IT"], now=lambda: 1000) == 0
    tech_dir = tmp_path / "jane"
    issue = ["cert", "issue", "--org-dir", str(org_dir), "--tech-id", "jane", "--name", "Jane"]
    assert admin.main([*issue, "--out", str(tech_dir)], now=time.time) == 0
    from common.keyfiles import CRL_FILE, load_technician_credential

    credential = load_technician_credential(tech_dir)
    stale = credential.revocations
    assert admin.main(["cert", "crl", "--org-dir", str(org_dir)], now=lambda: time.time() + 5) == 0
    server = await relay_factory(org_dir=str(org_dir))
    await create_account(server, "jane")
    tech = TechnicianClient(server.url, credential)
    await tech.login("jane", PASSWORD)
    assert credential.revocations != stale
    assert credential.revocations == (org_dir / CRL_FILE).read_bytes()


async def test_watching_needs_a_login_in_the_core(relay: RelayServer) -> None:
    tech = TechnicianClient(relay.url, make_org().technician())
    with pytest.raises(InvalidState):
        await tech.watch_queue()
    with pytest.raises(ConnectionLost) as refused:
        await tech.login("jane", "not the password")
    assert refused.value.code == CloseCode.LOGIN_FAILED
    assert "wrong account name or password" in refused.value.reason


async def test_sign_in_logs_hold_no_passwords_tokens_or_typed_names(
    relay: RelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay")
    # Someone typed their password into the name field.
    await refused_login(relay.url, "Hunter2Hunter2", "whatever at all")
    token = (await login(relay.url)).token
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "relay"]
    events = [json.loads(line) for line in lines]
    assert [e["code"] for e in events if e["event"] == "login_refused"] == ["LOGIN_FAILED"]
    assert [e["account"] for e in events if e["event"] == "logged_in"] == ["jane"]
    text = "\n".join(lines)
    for secret in ("Hunter2", PASSWORD, token, token.split(".")[2]):
        assert secret not in text
