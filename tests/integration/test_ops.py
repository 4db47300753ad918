"""The relay as a service, run as real processes: restarts, accounts, cut-offs, settings, logs.

The tests taking ``database_url`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.relay_process import RelayProcess
from client.core.session import HelpRequest, QueueStatus, UserClient, UserState
from common.crypto.identity import OrgTrust, TechnicianCredential
from common.errors import ConnectionLost
from common.keyfiles import CRL_FILE, load_org_public_key, load_technician_credential
from common.protocol import messages as m
from common.protocol.relay_wire import CloseCode
from common.session import MessageReceived
from relay import account_admin, admin
from technician.core.session import TechnicianClient
from tests.integration.relay_helpers import PASSWORD, allow


ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    *args: str, stdin: str = "", config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "relay", *args]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(
        argv, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def service(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[Path, Path, TechnicianCredential, OrgTrust]]:
    """A relay directory: settings with a database file and an org; account jane with a cert.

    Made in this process (the same code as the commands, without their start-up time).
    """
    org_dir = tmp_path / "org"
    assert admin.main(["org", "create", str(org_dir), "--name", "ACME IT"]) == 0
    tech_dir = tmp_path / "jane"
    issue = ["cert", "issue", "--org-dir", str(org_dir), "--tech-id", "jane"]
    assert admin.main([*issue, "--name", "Jane Doe", "--out", str(tech_dir)]) == 0
    config = tmp_path / "relay.toml"
    config.write_text(
        f'database_url = "{database_url}"\n'
        'org_dir = "org"\n'
        'code_claims = "login"\n'
        "check_interval = 0.2\n"
    )
    create = ["create", "jane", "--display-name", "Jane Doe", "--password-stdin"]
    status = account_admin.main(
        [*create, "--config", str(config)], env={}, stdin=io.StringIO(PASSWORD + "\n")
    )
    assert status == 0
    trust = OrgTrust(load_org_public_key(org_dir / "org.pub"))
    yield config, org_dir, load_technician_credential(tech_dir), trust


# --- restart with a persisted queue --------------------------------------------------


async def test_a_restart_keeps_the_queue_and_users_reattach(
    service: tuple[Path, Path, TechnicianCredential, OrgTrust],
) -> None:
    config, _, credential, trust = service
    port = free_port()
    text = HelpRequest("Bob Example", "Outlook crashes — é ß €\nsince Monday", "mail", "Win 11")
    statuses: list[QueueStatus] = []
    first = RelayProcess(port=port, config=config)
    await asyncio.to_thread(first.start)
    second = RelayProcess(port=port, config=config)
    try:
        user = UserClient(first.url, trust, allow, resume_timeout=20, on_queue=statuses.append)
        async with asyncio.timeout(TIMEOUT):
            await user.post_request(text)
            waiting = asyncio.create_task(user.wait_for_technician())
            assert await asyncio.to_thread(first.stop) == 0
            assert [e["event"] for e in first.events()][-1] == "stopped"
            while not statuses[-1].reconnecting:
                await asyncio.sleep(0.02)
            await asyncio.to_thread(second.start)
            assert second.events("listening")[0]["requests_restored"] == 1
            while statuses[-1].reconnecting:
                await asyncio.sleep(0.02)
            assert statuses[-1].position == 1 and user.state is UserState.QUEUED
            assert statuses[-1].request_id == statuses[0].request_id

            tech = TechnicianClient(second.url, credential)
            await tech.login("jane", PASSWORD)  # the account survived too
            queue = await tech.watch_queue()
            await queue.wait_synced()
            (item,) = queue.items
            assert (item.name, item.description, item.category, item.system_summary) == (
                text.name,
                text.description,
                text.category,
                text.system_summary,
            )
            assert item.user_connected
            tech_channel = await tech.claim(item.request_id)
            user_channel = await waiting
            tech_channel.send_nowait(m.ChatText(1, "hello again", 0))
            event = await user_channel.next_event()
            assert isinstance(event, MessageReceived)
            await user.cancel()
            await tech_channel.wait_closed()
            await queue.close()
        logs = json.dumps(first.events() + second.events())
        for secret in (PASSWORD, "Outlook", "Bob Example", "Win 11", item.request_id):
            assert secret not in logs
    finally:
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(second.stop)


# --- tokens and accounts against a process --------------------------------------------


async def test_an_expired_token_against_a_relay_process(
    service: tuple[Path, Path, TechnicianCredential, OrgTrust],
) -> None:
    config, _, credential, _ = service
    relay = RelayProcess("--token-ttl", "0.5", config=config)
    await asyncio.to_thread(relay.start)
    try:
        tech = TechnicianClient(relay.url, credential)
        async with asyncio.timeout(TIMEOUT):
            await tech.login("jane", PASSWORD)
            await asyncio.sleep(0.7)
            with pytest.raises(ConnectionLost) as refused:
                await (await tech.watch_queue()).wait_synced()
        assert refused.value.code == CloseCode.TOKEN_EXPIRED
        assert refused.value.reason == (
            "The relay closed the connection: your sign-in has expired; sign in again."
        )
    finally:
        await asyncio.to_thread(relay.stop)


async def test_disabling_an_account_cuts_off_its_live_session_and_revokes_it(
    service: tuple[Path, Path, TechnicianCredential, OrgTrust],
) -> None:
    config, org_dir, credential, trust = service
    relay = RelayProcess(config=config)
    await asyncio.to_thread(relay.start)
    try:
        user = UserClient(relay.url, trust, allow)
        tech = TechnicianClient(relay.url, credential)
        async with asyncio.timeout(TIMEOUT):
            status = await user.post_request(HelpRequest("Bob", "help"))
            await tech.login("jane", PASSWORD)
            user_channel, tech_channel = await asyncio.gather(
                user.wait_for_technician(), tech.claim(status.request_id)
            )
            assert user.state is UserState.CONNECTED
            started = time.monotonic()
            out = ok(await asyncio.to_thread(cli, "account", "disable", "jane", config=config))
            assert "revoked certificate(s) 1" in out
            ended = await tech_channel.wait_closed()
            assert not ended.clean
            await user_channel.wait_closed()
            assert time.monotonic() - started < 5.0
            await asyncio.to_thread(relay.wait_for, "account_cut_off", 5.0)
            with pytest.raises(ConnectionLost) as refused:
                await tech.login("jane", PASSWORD)
            assert refused.value.code == CloseCode.ACCOUNT_DISABLED
        # The re-signed revocation list names the certificate; users refuse it from now on.
        crl = trust.verify_revocations((org_dir / CRL_FILE).read_bytes(), time.time())
        assert crl.serials == (1,)
    finally:
        await asyncio.to_thread(relay.stop)


def account(
    config: Path, *args: str, stdin: str = "", capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run an account command in this process (same code as the CLI, minus start-up)."""
    status = account_admin.main([*args, "--config", str(config)], env={}, stdin=io.StringIO(stdin))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_account_commands(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'database_url = "{database_url}"\n')
    secret = PASSWORD + "\n"
    run = functools.partial(account, config, capsys=capsys)
    assert run("create", "sam", "--role", "supervisor", "--password-stdin", stdin=secret) == (
        0,
        "created supervisor account 'sam' (sam)\n",
        "",
    )
    assert run("create", "jane", "--password-stdin", stdin=secret)[0] == 0
    assert run("disable", "jane")[0] == 0
    # The real command line, once: the same database, seen from another process.
    listing = json.loads(ok(cli("account", "list", "--json", config=config)))
    assert [(a["name"], a["role"], a["enabled"]) for a in listing] == [
        ("jane", "technician", False),
        ("sam", "supervisor", True),
    ]
    assert run("enable", "jane")[0] == 0
    status, out, _ = run("reset-password", "jane", "--password-stdin", stdin="another password!\n")
    assert status == 0 and "signed out everywhere" in out
    assert run("delete", "sam")[0] == 0
    status, out, _ = run("list")
    table = out.splitlines()
    assert table[0].split() == ["NAME", "DISPLAY", "NAME", "ROLE", "STATUS", "CREATED"]
    assert [row.split()[0] for row in table[1:]] == ["jane"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["create", "jane", "--password-stdin"], PASSWORD + "\n", "already exists"),
        (["create", "new", "--password-stdin"], "short\n", "at least 12 characters"),
        (["create", "bad name", "--password-stdin"], PASSWORD + "\n", "account name"),
        (["create", "new", "--role", "root", "--password-stdin"], "", "invalid choice"),
        (["create", "new"], "", "use --password-stdin"),
        (["create", "new", "--password-stdin"], "", "no password on standard input"),
        (["disable", "nobody"], "", "no account named 'nobody'"),
        (["delete", "nobody"], "", "no account named 'nobody'"),
        (["reset-password", "nobody", "--password-stdin"], PASSWORD + "\n", "no account named"),
        (["frobnicate"], "", "invalid choice"),
    ],
)
def test_account_command_errors_are_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    config = tmp_path / "relay.toml"
    config.write_text('database_url = "sqlite:///accounts.sqlite3"\n')
    assert (
        account(config, "create", "jane", "--password-stdin", stdin=PASSWORD + "\n", capsys=capsys)[
            0
        ]
        == 0
    )
    status, _, err = account(config, *args, stdin=stdin, capsys=capsys)
    assert status == 2
    assert err.startswith("deskhand-relay: error: ")
    assert message in err
    assert err.count("\n") == 1, err


def test_account_commands_need_a_database(tmp_path: Path) -> None:
    result = cli("account", "list")
    assert result.returncode == 2
    assert "no database configured" in result.stderr and result.stderr.count("\n") == 1


# --- settings, start-up and the HTTP surface ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "file", "message"),
    [
        (["--host", "0.0.0.0"], {}, "", "plain ws:// is only allowed on loopback"),
        ([], {"DESKHAND_RELAY_MAX_QUEUED": "many"}, "", "DESKHAND_RELAY_MAX_QUEUED must be an"),
        ([], {"DESKHAND_RELAY_MAX_QUEUD": "5"}, "", "unknown environment variable"),
        ([], {}, "max_queud = 5\n", "unknown setting 'max_queud'"),
        ([], {}, "max_queued = 0\n", "relay.toml: max_queued: max_queued must be a positive"),
        ([], {}, "max_queued = [\n", "not valid TOML"),
        ([], {}, 'tls_certificate = "nope.crt"\ntls_key = "nope.key"\n', "is not a readable file"),
        ([], {}, 'database_url = "bogus://x"\n', "cannot use database URL"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], file: str, message: str
) -> None:
    argv = [sys.executable, "-m", "relay", "--port", "0", *args]
    if file:
        (tmp_path / "relay.toml").write_text(file)
        argv += ["--config", str(tmp_path / "relay.toml")]
    import os

    result = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("deskhand-relay: error: ")
    assert message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text("max_queued = 1\nmax_requests_per_address = 1\n")
    with RelayProcess(
        "--max-queued", "3", config=config, env={"DESKHAND_RELAY_MAX_QUEUED": "2",
                                                  "DESKHAND_RELAY_MAX_REQUESTS_PER_ADDRESS": "5"}
    ) as relay:  # fmt: skip

        async def post_until_refused() -> tuple[int, int | None]:
            users = [UserClient(relay.url, OrgTrust(b"\0" * 32), allow) for _ in range(4)]
            accepted = 0
            try:
                for user in users:
                    try:
                        await user.post_request(HelpRequest("Bob", "help"))
                    except ConnectionLost as exc:
                        return accepted, exc.code
                    accepted += 1
                return accepted, None
            finally:
                for user in users:
                    await user.cancel()

        # The flag (3) beat the variable (2), which beat the file for the other setting (5 > 1).
        assert asyncio.run(post_until_refused()) == (3, CloseCode.QUEUE_FULL)


def test_start_up_lines_metrics_and_health(tmp_path: Path) -> None:
    with RelayProcess() as relay:
        relay.wait_for("database_in_memory", 5.0)
        listening, notice, memory = relay.events()[:3]
        assert listening["event"] == "listening" and listening["tls"] is False
        assert notice["event"] == "plain_ws_loopback_only"
        assert "loopback only" in notice["detail"]
        assert memory["event"] == "database_in_memory"
        assert relay.healthz() == {
            "status": "ok",
            "connections": 0,
            "waiting_codes": 0,
            "active_pairs": 0,
        }
        metrics = relay.http_get("/metrics").decode()
        # prometheus_client's exposition (issue 14): counters, histograms, process metrics.
        assert "# TYPE deskhand_relay_connections_accepted_total counter" in metrics
        assert "# TYPE deskhand_relay_connections gauge" in metrics
        assert 'deskhand_relay_queued_requests{state="waiting"} 0.0' in metrics
        assert "# TYPE deskhand_relay_forward_delay_seconds histogram" in metrics
        assert "# TYPE deskhand_relay_pairing_seconds histogram" in metrics
        assert "deskhand_relay_process_open_fds " in metrics
        assert "deskhand_relay_uptime_seconds " in metrics
        names = [line.split()[2] for line in metrics.splitlines() if line.startswith("# TYPE")]
        assert len(names) == len(set(names))
        for line in metrics.splitlines():
            assert line.startswith("#") or len(line.split(" ")) == 2, line


def test_disabling_with_the_org_key_offline_says_what_is_left_to_do(
    service: tuple[Path, Path, TechnicianCredential, OrgTrust],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, org_dir, _, _ = service
    (org_dir / "org.key").rename(org_dir.parent / "org.key.offline")
    status, out, err = account(config, "disable", "jane", capsys=capsys)
    assert (status, err) == (0, "")
    assert "its certificates were NOT revoked" in out
    assert "run 'cert revoke' where the org key is" in out
    status, out, _ = account(config, "list", "--json", capsys=capsys)
    assert json.loads(out)[0]["enabled"] is False
