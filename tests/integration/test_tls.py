"""TLS and pinning: ``init`` output, pinned connections, mismatches, loopback-only plain ws."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from pathlib import Path

import pytest

from bench.relay_process import RelayProcess
from common.config import ConfigError, load_client_settings
from common.errors import ConnectionLost
from common.net.relay_link import RelayLink
from common.net.tls import RelayPin, check_plain_allowed
from relay import provision
from relay.config import RelayConfig, load_config
from relay.server import RelayServer, serve
from technician.core.session import TechnicianClient
from tests.integration.relay_helpers import PASSWORD, T, create_account
from tests.pki import make_org


MISMATCH = "does not match the pinned"


def init_dir(path: Path, *names: str) -> Path:
    argv = [str(path), "--host", "127.0.0.1", "--org-name", "ACME IT"]
    for name in names or ("relay.test",):
        argv += ["--hostname", name]
    assert provision.main(argv) == 0
    return path


@pytest.fixture(scope="module")
def relay_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_dir(tmp_path_factory.mktemp("relay-a"))


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_dir(tmp_path_factory.mktemp("relay-b"))


def pin_of(directory: Path) -> RelayPin:
    return RelayPin.parse((directory / "relay.pin").read_text())


async def start(directory: Path) -> RelayServer:
    config = load_config(
        flags={"port": 0, "close_timeout": 2.0}, config_file=directory / "relay.toml"
    )
    # Each test gets a fresh database; the file from init is shared by the module.
    return await serve(dataclasses.replace(config, database_url=""))


async def test_init_writes_a_ready_directory(
    relay_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "relay.toml",
        "relay.pin",
        "client.toml",
        "tls/relay.crt",
        "tls/relay.key",
        "org/org.key",
    ):
        assert (relay_dir / name).is_file(), name
    assert (relay_dir / "tls/relay.key").stat().st_mode & 0o777 == 0o600
    config = load_config(config_file=relay_dir / "relay.toml")
    assert config.tls and config.code_claims == "login"
    assert config.tls_certificate == str((relay_dir / "tls/relay.crt").resolve())
    assert config.database_url == f"sqlite:///{(relay_dir / 'relay.sqlite3').resolve()}"
    settings = load_client_settings(relay_dir / "client.toml")
    assert settings.relay_url == "wss://relay.test:8443/v1/peer"
    assert settings.pin() == pin_of(relay_dir)
    assert settings.org_key == (relay_dir / "org/org.pub").read_text().strip()


def test_init_again_keeps_everything_and_renewal_keeps_the_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = init_dir(tmp_path / "r")
    pin = (directory / "relay.pin").read_text()
    cert = (directory / "tls/relay.crt").read_bytes()
    capsys.readouterr()
    assert provision.main([str(directory)]) == 0
    out = capsys.readouterr().out
    assert "kept the TLS key" in out and "kept the organisation key" in out
    assert (directory / "tls/relay.crt").read_bytes() == cert
    assert provision.main([str(directory), "--renew-certificate", "--hostname", "new.test"]) == 0
    assert (directory / "tls/relay.crt").read_bytes() != cert
    assert (directory / "relay.pin").read_text() == pin


def test_init_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert provision.main([str(tmp_path), "--days", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deskhand-relay: error: --days") and err.count("\n") == 1


async def test_spki_pin_connects_and_signs_in(relay_dir: Path) -> None:
    server = await start(relay_dir)
    try:
        assert server.url.startswith("wss://127.0.0.1:")
        await create_account(server, "jane")
        tech = TechnicianClient(server.url, make_org().technician(), pin=pin_of(relay_dir))
        account = await asyncio.wait_for(tech.login("jane", PASSWORD), T)
        assert account.name == "jane"
        queue = await tech.watch_queue()
        await asyncio.wait_for(queue.wait_synced(), T)
        await queue.close()
    finally:
        await server.close()


async def test_certificate_pin_connects(relay_dir: Path) -> None:
    server = await start(relay_dir)
    try:
        pin = RelayPin.load_certificate(relay_dir / "tls/relay.crt")
        link = await RelayLink.open(server.url, pin=pin, timeout=T)
        registered = await link.register()
        assert 100 <= registered.nameplate <= 999
        await link.close()
    finally:
        await server.close()


@pytest.mark.parametrize("kind", ["spki", "certificate"])
async def test_a_different_relay_is_refused_before_anything_is_sent(
    relay_dir: Path, other_dir: Path, kind: str
) -> None:
    impostor = await start(other_dir)
    try:
        pin = (
            pin_of(relay_dir)
            if kind == "spki"
            else RelayPin.load_certificate(relay_dir / "tls/relay.crt")
        )
        with pytest.raises(ConnectionLost, match=MISMATCH) as refused:
            await RelayLink.open(impostor.url, pin=pin, token="dh1.must-not-leak", timeout=T)
        assert "refusing to connect" in refused.value.reason
        # The upgrade request (and its token) never reached the impostor.
        await asyncio.sleep(0.1)
        assert impostor.relay.metrics.value("connections_total") == 0
    finally:
        await impostor.close()


async def test_no_pin_means_the_system_authorities_which_refuse_a_self_signed_relay(
    relay_dir: Path,
) -> None:
    server = await start(relay_dir)
    try:
        with pytest.raises(ConnectionLost, match="could not be verified"):
            await RelayLink.open(server.url, timeout=T)
    finally:
        await server.close()


async def test_tls_below_1_3_is_refused(relay_dir: Path) -> None:
    server = await start(relay_dir)
    try:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ConnectionLost, match=r"TLS 1\.3"):
            await RelayLink.open(server.url, ssl_context=old, timeout=T)
        assert server.relay.metrics.value("connections_total") == 0
    finally:
        await server.close()


def test_a_pinned_certificate_mismatch_against_a_relay_process(
    relay_dir: Path, other_dir: Path, tmp_path: Path
) -> None:
    with RelayProcess(
        config=other_dir / "relay.toml", env={"DESKHAND_RELAY_DATABASE_URL": ""}
    ) as relay:
        assert relay.tls and relay.url.startswith("wss://")

        async def attempt(pin: RelayPin) -> None:
            link = await RelayLink.open(relay.url, pin=pin, timeout=T)
            await link.close()

        with pytest.raises(ConnectionLost, match=MISMATCH):
            asyncio.run(attempt(pin_of(relay_dir)))
        asyncio.run(attempt(pin_of(other_dir)))  # its own pin works
        context = pin_of(other_dir).client_context()
        assert relay.healthz(context=context)["status"] == "ok"


# --- plain ws:// --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("ws://127.0.0.1:8765/v1/peer", True),
        ("ws://localhost:8765/v1/peer", True),
        ("ws://[::1]:8765/v1/peer", True),
        ("ws://192.0.2.10:8765/v1/peer", False),
        ("ws://relay.example.org/v1/peer", False),
        ("wss://relay.example.org/v1/peer", True),
    ],
)
def test_plain_ws_is_for_loopback_only(url: str, allowed: bool) -> None:
    if allowed:
        check_plain_allowed(url)
    else:
        with pytest.raises(ValueError, match="only allowed to a relay on this computer"):
            check_plain_allowed(url)


async def test_the_client_refuses_plain_ws_to_another_machine() -> None:
    start_time = time.monotonic()
    with pytest.raises(ConnectionLost, match="Refusing to connect"):
        await RelayLink.open("ws://192.0.2.10:8765/v1/peer", token="dh1.x", timeout=T)
    assert time.monotonic() - start_time < 1.0  # refused before any connection attempt
    with pytest.raises(ConnectionLost, match="needs a wss://"):
        await RelayLink.open("ws://127.0.0.1:9/v1/peer", pin=RelayPin(spki_sha256=b"\0" * 32))


async def test_the_relay_refuses_plain_ws_off_loopback() -> None:
    with pytest.raises(ValueError, match="plain ws:// is only allowed on loopback"):
        await serve(RelayConfig(host="0.0.0.0", port=0))


# --- pins and client settings ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["sha1:00", "sha256:xyz", "sha256:" + "00" * 31, "3f2a", ""],
)
def test_bad_pins_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="pin"):
        RelayPin.parse(text)


def test_pins_accept_colons_and_spaces() -> None:
    digest = bytes(range(32))
    spaced = "SHA256:" + ":".join(f"{b:02x}" for b in digest)
    assert RelayPin.parse(spaced) == RelayPin(spki_sha256=digest)


def test_client_settings_errors(tmp_path: Path) -> None:
    path = tmp_path / "client.toml"
    path.write_text('relay_url = "wss://r/v1/peer"\nrelay_pni = "sha256:00"\n')
    with pytest.raises(ConfigError, match="unknown setting 'relay_pni'"):
        load_client_settings(path)
    path.write_text('relay_url = "wss://r/v1/peer"\nrelay_pin = "sha256:00"\n')
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        load_client_settings(path)
    path.write_text('relay_url = "wss://r/v1/peer"\nrelay_certificate = "missing.crt"\n')
    with pytest.raises(ConfigError, match=r"missing\.crt"):
        load_client_settings(path)
    path.write_text("relay_pin = 3\n")
    with pytest.raises(ConfigError, match="must be a string"):
        load_client_settings(path)
