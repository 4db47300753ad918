"""deskhand-client's command line and config file, and a TLS relay reached through client.toml."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from client.__main__ import main as client_main, parse_options
from common.keyfiles import load_org_public_key
from common.net.runner import LoopThread
from relay.config import RelayConfig
from relay.provision import main as relay_init
from relay.server import RelayServer, serve
from tests.gui.client_support import LEFT, WAIT, WAIT_MS, ClientApp, pass_gate


pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def relay_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """What 'deskhand-relay init' writes, for a relay on 127.0.0.1 and a free port."""
    directory = tmp_path / "relay"
    port = free_port()
    status = relay_init(
        [str(directory), "--host", "127.0.0.1", "--port", str(port), "--hostname", "127.0.0.1"]
    )
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    return directory


@pytest.fixture
def no_default_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own ~/.config/deskhand/client.toml must not leak into the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DESKHAND_RELAY_URL", raising=False)
    monkeypatch.delenv("DESKHAND_RELAY_PIN", raising=False)


@pytest.mark.usefixtures("no_default_config")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--relay", "ws://127.0.0.1:1/v1/peer", "--org-key", "{missing}"], "cannot read the"),
        (["--relay", "http://example.org", "--org-key", "{missing}"], "must be a ws://"),
        (["--relay", "ws://127.0.0.1:1/v1/peer"], "the organisation key is required"),
        ([], "give --config client.toml"),
        (["--config", "{missing}"], "no such file"),
        (["--relay", "wss://x.example/v1/peer", "--pin", "md5:00", "--org-key", "{k}"], "--pin"),
        (["--relay", "ws://127.0.0.1:1/v1/peer", "--org-key", "{k}", "--device", " "], "--device"),
    ],
)
def test_command_line_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    key = tmp_path / "org.pub"
    key.write_text("ab" * 32 + "\n")
    argv = [arg.format(missing=tmp_path / "nothing-here", k=key) for arg in args]
    assert client_main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("deskhand-client: error: ")
    assert message in err


@pytest.mark.usefixtures("no_default_config")
def test_the_config_from_relay_init_gives_url_pin_and_org_key(relay_dir: Path) -> None:
    options = parse_options(["--config", str(relay_dir / "client.toml"), "--hidden"])
    assert re.fullmatch(r"wss://127\.0\.0\.1:\d+/v1/peer", options.relay_url)
    assert options.pin is not None
    assert options.org_public_key == load_org_public_key(relay_dir / "org" / "org.pub")
    assert options.hidden and not options.no_tray
    # Flags override the file.
    overridden = parse_options(
        ["--config", str(relay_dir / "client.toml"), "--relay", "ws://127.0.0.1:9/v1/peer"]
    )
    assert overridden.relay_url == "ws://127.0.0.1:9/v1/peer"
    assert overridden.pin == options.pin


def test_the_default_config_file_is_used_when_nothing_is_given(
    relay_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "deskhand").mkdir(parents=True)
    (xdg / "deskhand" / "client.toml").write_text((relay_dir / "client.toml").read_text())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("DESKHAND_RELAY_URL", raising=False)
    assert parse_options([]).relay_url.startswith("wss://127.0.0.1:")


@pytest.fixture
def tls_relay(relay_dir: Path) -> Iterator[RelayServer]:
    """The relay that init configured: TLS 1.3 with the pinned key."""
    settings = parse_options(["--config", str(relay_dir / "client.toml")])
    port = int(settings.relay_url.rsplit(":", 1)[1].split("/")[0])
    loop = LoopThread("test-tls-relay")
    loop.start()
    config = RelayConfig(
        host="127.0.0.1",
        port=port,
        close_timeout=2.0,
        tls_certificate=str(relay_dir / "tls" / "relay.crt"),
        tls_key=str(relay_dir / "tls" / "relay.key"),
    )
    server = loop.submit(serve(config)).result(WAIT)
    try:
        yield server
    finally:
        loop.submit(server.close()).result(WAIT)
        loop.stop()


@pytest.mark.usefixtures("no_default_config")
def test_the_app_reaches_the_pinned_tls_relay_from_client_toml(
    qtbot: QtBot, relay_dir: Path, tls_relay: RelayServer
) -> None:
    options = parse_options(["--config", str(relay_dir / "client.toml")])
    app = ClientApp(qtbot, options.relay_url, options.org_public_key, pin=options.pin)
    try:
        window = app.window
        qtbot.mouseClick(window.code_button, LEFT)
        pass_gate(qtbot, window)
        qtbot.waitUntil(lambda: bool(window.code_label.text()), timeout=WAIT_MS)
        assert re.fullmatch(r"\d{3}-\d{3}-\d{3}", window.code_label.text())
    finally:
        app.close()
