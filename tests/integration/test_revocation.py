"""Revocation that sticks (issue 14), through the real relay.

- A revoked technician replays a revocation list signed before the
  revocation: the user client has seen a newer list and refuses, even after
  a restart (the list is kept in its data folder).
- A certificate that expired a minute ago is refused (no grace).
- Only a certificate with the technician role pairs as a technician.
- The relay hands out a freshly signed list at every sign-in.
"""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import pytest

from client.core.revocation_store import RevocationFiles, client_trust
from client.core.session import UserClient
from common.crypto.identity import (
    MAX_CRL_AGE,
    OrgTrust,
    RevocationList,
    SignedRevocationList,
    TechnicianCredential,
)
from common.errors import IdentityError, PairingError
from common.keyfiles import CRL_FILE, load_org_public_key
from common.net.pairing import ConsentRequest, PairingTimeouts
from common.protocol.codec import decode_as
from relay import admin
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.integration.conftest import RelayFactory
from tests.integration.relay_helpers import PASSWORD, create_account, login
from tests.pki import DAY, Org, make_org


TIMEOUT = 10.0
FAST = PairingTimeouts(hello=3.0, consent=3.0)


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


async def pair(
    relay: RelayServer, trust: OrgTrust, credential: TechnicianCredential
) -> tuple[asyncio.Task[object], asyncio.Task[object]]:
    user = UserClient(relay.url, trust, allow, timeouts=FAST)
    code = await user.request_help()
    tech = TechnicianClient(relay.url, credential, timeouts=FAST)
    return (
        asyncio.create_task(user.wait_for_technician()),
        asyncio.create_task(tech.connect(code.display)),
    )


async def pairs(relay: RelayServer, trust: OrgTrust, credential: TechnicianCredential) -> None:
    async with asyncio.timeout(TIMEOUT):
        user_task, tech_task = await pair(relay, trust, credential)
        user_channel, tech_channel = await user_task, await tech_task
        await tech_channel.close("done")  # type: ignore[attr-defined]
        await user_channel.wait_closed()  # type: ignore[attr-defined]


async def refused(
    relay: RelayServer, trust: OrgTrust, credential: TechnicianCredential, match: str
) -> None:
    async with asyncio.timeout(TIMEOUT):
        user_task, tech_task = await pair(relay, trust, credential)
        with pytest.raises(IdentityError, match=match):
            await user_task
        with pytest.raises(PairingError, match="closed before accepting"):
            await tech_task


def with_list(credential: TechnicianCredential, revocations: bytes) -> TechnicianCredential:
    return TechnicianCredential(credential._key, credential.certificate, revocations)


async def test_a_revoked_technician_cannot_replay_an_older_list(
    relay_server: RelayServer, tmp_path: Path
) -> None:
    org = make_org()
    now = time.time()
    jane = org.technician("Jane Doe", crl_at=now - 3600)  # her list predates the revocation
    org.revoked.append(1)  # Jane's serial
    bob = org.technician("Bob Roe")  # signed in later: his list names Jane
    data = tmp_path / "client"
    # Bob helps this user first: the client sees the newer list and keeps it.
    await pairs(relay_server, client_trust(org.key.public_bytes, data), bob)
    stored = data / f"revocations-{org.key.key_id.hex()}.crl"
    assert stored.read_bytes() == bob.revocations
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # The same client after a restart: Jane's older list no longer clears her.
    await refused(relay_server, client_trust(org.key.public_bytes, data), jane, "revoked")
    # A client that never saw the newer list still trusts her list (within 4 hours):
    # that is what the shorter window bounds.
    await pairs(relay_server, client_trust(org.key.public_bytes, tmp_path / "fresh"), jane)


async def test_a_certificate_that_just_expired_is_refused(
    relay_server: RelayServer, tmp_path: Path
) -> None:
    org = make_org()
    expired = org.technician(not_before=time.time() - DAY - 60, days=1)  # a minute ago
    await refused(relay_server, client_trust(org.key.public_bytes, tmp_path), expired, "expired")


async def test_a_certificate_without_the_technician_role_cannot_pair(
    relay_server: RelayServer, tmp_path: Path
) -> None:
    org: Org = make_org()
    trust = client_trust(org.key.public_bytes, tmp_path)
    auditor = org.technician("Audrey", roles=("auditor",))
    await refused(relay_server, trust, auditor, "does not allow the technician role")
    await pairs(relay_server, trust, org.technician("Tess", roles=("technician", "supervisor")))


def _issued_at(revocations: bytes) -> int:
    return decode_as(RevocationList, decode_as(SignedRevocationList, revocations).body).issued_at


async def test_every_sign_in_hands_out_a_freshly_signed_list(
    relay_factory: RelayFactory, tmp_path: Path
) -> None:
    org_dir = tmp_path / "org"
    three_hours_ago = int(time.time()) - 3 * 3600
    assert admin.main(["org", "create", str(org_dir), "--name", "ACME IT"]) == 0
    issue = ["cert", "issue", "--org-dir", str(org_dir), "--tech-id", "jane", "--name", "Jane"]
    assert admin.main([*issue, "--out", str(tmp_path / "jane")]) == 0
    assert admin.main(["cert", "revoke", "--org-dir", str(org_dir), "1"]) == 0
    # The published list is three hours old (cert crl was last run then).
    key = admin._Org(org_dir).key
    (org_dir / CRL_FILE).write_bytes(key.sign_revocations([1], three_hours_ago))
    server = await relay_factory(org_dir=str(org_dir))
    await create_account(server, "jane")
    first = (await login(server.url)).revocations
    assert time.time() - _issued_at(first) < 60
    trust = OrgTrust(load_org_public_key(org_dir / "org.pub"))
    assert trust.verify_revocations(first, time.time()).serials == (1,)
    assert (org_dir / CRL_FILE).read_bytes() == first
    # Lists only move forward, even when signed within one second of each other.
    assert admin.main(["cert", "crl", "--org-dir", str(org_dir)]) == 0
    assert _issued_at((org_dir / CRL_FILE).read_bytes()) > _issued_at(first)
    # Without the key on the relay (kept offline), the published file goes out as it is.
    (org_dir / "org.key").unlink()
    stale = key.sign_revocations([1], three_hours_ago)
    (org_dir / CRL_FILE).write_bytes(stale)
    assert (await login(server.url, "jane", PASSWORD)).revocations == stale


def test_the_client_store_survives_damage(tmp_path: Path) -> None:
    store = RevocationFiles(tmp_path / "client")
    key_id = bytes(8)
    assert store.newest(key_id) is None
    store.remember(key_id, b"list one")
    assert RevocationFiles(tmp_path / "client").newest(key_id) == b"list one"
    store.remember(key_id, b"list two")
    assert RevocationFiles(tmp_path / "client").newest(key_id) == b"list two"
    assert [p.name for p in (tmp_path / "client").iterdir()] == [f"revocations-{key_id.hex()}.crl"]
    # A folder that cannot be written still remembers for this run.
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    memory_only = RevocationFiles(blocked / "client")
    memory_only.remember(key_id, b"kept")
    assert memory_only.newest(key_id) == b"kept"
    assert MAX_CRL_AGE == 4 * 3600
