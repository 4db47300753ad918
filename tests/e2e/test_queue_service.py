"""End to end: a relay set up with ``init``, an account made with the CLI, a queued session over wss://."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bench.relay_process import RelayProcess
from client.core.session import HelpRequest, UserClient, UserState
from common.config import load_client_settings
from common.crypto.identity import OrgTrust, parse_org_public_key
from common.keyfiles import load_technician_credential
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.session import MessageReceived
from technician.core.session import TechnicianClient


pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"


def relay_command(*args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "relay", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_a_queued_session_over_a_pinned_tls_relay(tmp_path: Path) -> None:
    directory = tmp_path / "relay"
    out = relay_command("init", str(directory), "--host", "127.0.0.1", "--org-name", "ACME IT")
    assert "relay pin (clients need this): sha256:" in out
    config = directory / "relay.toml"
    relay_command("account", "create", "jane", "--display-name", "Jane Doe", "--password-stdin",
                  "--config", str(config), stdin=PASSWORD + "\n")  # fmt: skip
    tech_dir = tmp_path / "jane"
    relay_command("cert", "issue", "--org-dir", str(directory / "org"), "--tech-id", "jane",
                  "--name", "Jane Doe", "--out", str(tech_dir))  # fmt: skip
    settings = load_client_settings(directory / "client.toml")
    pin = settings.pin()
    trust = OrgTrust(parse_org_public_key(settings.org_key))

    with RelayProcess(config=config) as relay:
        assert relay.url.startswith("wss://127.0.0.1:")
        seen: list[ConsentRequest] = []

        async def consent(request: ConsentRequest) -> tuple[str, ...]:
            seen.append(request)
            return ("view", "clipboard")

        user = UserClient(relay.url, trust, consent, pin=pin)
        tech = TechnicianClient(relay.url, load_technician_credential(tech_dir), pin=pin)
        async with asyncio.timeout(30):
            status = await user.post_request(HelpRequest("Bob", "VPN drops every hour", "network"))
            account = await tech.login("jane", PASSWORD)
            assert (account.name, account.display_name) == ("jane", "Jane Doe")
            queue = await tech.watch_queue()
            await queue.wait_synced()
            (item,) = queue.items
            assert (item.request_id, item.name) == (status.request_id, "Bob")
            sas: list[str] = []
            user_channel, tech_channel = await asyncio.gather(
                user.wait_for_technician(),
                tech.claim(item.request_id, requested=("view", "clipboard"), on_sas=sas.append),
            )
            assert seen[0].technician.name == "Jane Doe"
            assert seen[0].technician.org == "ACME IT"
            assert user_channel.sas == tech_channel.sas == sas[0]
            assert user.state is UserState.CONNECTED
            user_channel.send_nowait(m.ChatText(1, "thanks for picking this up", 0))
            event = await tech_channel.next_event()
            assert isinstance(event, MessageReceived)
            assert event.message == m.ChatText(1, "thanks for picking this up", 0)
            await tech_channel.close("Fixed.")
            assert (await user_channel.wait_closed()).clean
            while queue.items:
                await queue.next_change()
            await queue.close()
        health = relay.healthz(context=pin.client_context() if pin else None)
        assert health["status"] == "ok"
    assert relay.proc is not None and relay.proc.returncode == 0
