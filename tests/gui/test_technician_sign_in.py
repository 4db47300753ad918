"""The technician console, driven for real: signing in and out, the relay's TLS pin,
an account disabled while signed in, and the command line.

The set-up (relays, users, consoles) is in technician_console.py.

Set DESKHAND_SCREENSHOTS=DIR to save a PNG of each screen.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from common.keyfiles import save_technician_credential
from common.net.runner import LoopThread
from relay import provision
from technician.__main__ import main as technician_main, options_from
from technician.qt.app import TechnicianOptions, build
from technician.qt.bridge import TechnicianBridge
from tests.gui import technician_console
from tests.gui.technician_console import LEFT, Console, sign_in, signed_in, wait_text
from tests.gui.technician_support import PASSWORD, RelayThread, screenshot
from tests.pki import Org


pytestmark = [
    pytest.mark.gui,
    # The offscreen platform cannot resize or raise windows, and says so.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints", "This plugin does not support raise"
    ),
]

# The fixtures these tests share with the other test_technician_* modules.
org = technician_console.org
relay = technician_console.relay
consoles = technician_console.consoles


# --- signing in ---


def test_sign_in_fails_with_a_clear_reason_then_succeeds(
    qtbot: QtBot, relay: RelayThread, consoles: Callable[..., Console]
) -> None:
    console = consoles(relay.url)
    page = console.page
    assert page.account_edit.text() == "jane"  # from the settings
    assert console.window.account_status.text() == "Not signed in"
    screenshot(console.window, "technician-sign-in")

    sign_in(qtbot, console, "not the password")
    wait_text(
        qtbot,
        page.sign_in_status,
        r"^Not signed in: The relay closed the connection: wrong account name or password\.$",
    )
    assert page.sign_in_button.isEnabled() and page.password_edit.text() == ""
    screenshot(console.window, "technician-sign-in-failed")

    sign_in(qtbot, console)
    wait_text(qtbot, page.queue_status, r"^Live: nobody is waiting")
    assert page.account_label.text() == "Signed in as Jane Doe (technician)"
    assert console.window.account_status.text() == "Signed in as Jane Doe"
    # The test certificate names another tech_id than the account: the console says so.
    assert re.match(
        r"^Signed in as jane, but your certificate was issued to 'tech-\d+'",
        console.window.status_label.text(),
    )

    qtbot.mouseClick(page.sign_out_button, LEFT)
    wait_text(qtbot, page.sign_in_status, "^You signed out.$")
    assert console.window.account_status.text() == "Not signed in"


def test_empty_fields_are_not_sent(
    qtbot: QtBot, relay: RelayThread, consoles: Callable[..., Console]
) -> None:
    page = consoles(relay.url).page
    qtbot.mouseClick(page.sign_in_button, LEFT)
    assert page.sign_in_status.text() == "Type your password."
    page.account_edit.clear()
    qtbot.mouseClick(page.sign_in_button, LEFT)
    assert page.sign_in_status.text() == "Type your account name."
    qtbot.mouseClick(page.connect_button, LEFT)
    assert page.code_status.text().startswith("Type the code")


# --- the account: TLS pinning, cut-offs, the command line ---


def technician_settings(
    tmp_path: Path, org: Org, url: str, pin: str, name: str = "technician.toml"
) -> Path:
    credential = tmp_path / "jane"
    if not credential.exists():
        credential.mkdir()
        save_technician_credential(credential, org.technician("Jane Doe", org="ACME IT"))
    path = tmp_path / name
    path.write_text(
        f'relay_url = "{url}"\nrelay_pin = "{pin}"\ncredential = "jane"\n'
        'account = "jane"\ndata_dir = "reports"\n'
    )
    return path


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[RelayThread, str]]:
    """A relay set up by ``deskhand-relay init`` (TLS 1.3, pinned key) with the account jane."""
    directory = tmp_path / "relay"
    assert provision.main([str(directory), "--host", "127.0.0.1", "--hostname", "127.0.0.1"]) == 0
    server = RelayThread(account="jane", config_file=directory / "relay.toml").start()
    try:
        yield server, (directory / "relay.pin").read_text().strip()
    finally:
        server.stop()


def console_from_settings(
    qtbot: QtBot, settings: Path, made: list[tuple[TechnicianBridge, LoopThread]]
) -> tuple[TechnicianOptions, Console]:
    options = options_from(
        ["--config", str(settings), "--password-stdin"], io.StringIO(PASSWORD + "\n")
    )
    loop = LoopThread("test-technician-loop")
    loop.start()
    bridge, window = build(options, loop)
    made.append((bridge, loop))
    qtbot.addWidget(window)
    window.show()
    return options, Console(window, bridge, options.data_dir)


def test_sign_in_over_tls_with_the_pin_from_the_settings(
    qtbot: QtBot, tmp_path: Path, org: Org, tls_relay: tuple[RelayThread, str]
) -> None:
    relay, pin = tls_relay
    assert relay.url.startswith("wss://127.0.0.1:")
    made: list[tuple[TechnicianBridge, LoopThread]] = []
    try:
        good = technician_settings(tmp_path, org, relay.url, pin)
        options, console = console_from_settings(qtbot, good, made)
        assert options.pin is not None and options.account == "jane"
        assert options.data_dir == tmp_path / "reports"
        assert options.password is not None
        console.window.sign_in(options.account, options.password)
        wait_text(qtbot, console.page.queue_status, r"^Live: nobody is waiting")

        # Another key behind the same address: refused before any password is sent.
        wrong = "sha256:" + "00" * 32
        bad = technician_settings(tmp_path, org, relay.url, wrong, name="wrong.toml")
        options, console = console_from_settings(qtbot, bad, made)
        console.window.sign_in(options.account, PASSWORD)
        wait_text(qtbot, console.page.sign_in_status, "^Not signed in: .*does not match the pinned")
    finally:
        for bridge, loop in made:
            bridge.shutdown()
            loop.stop()


def test_a_disabled_account_is_signed_out(qtbot: QtBot, consoles: Callable[..., Console]) -> None:
    relay = RelayThread(account="jane", check_interval=0.2).start()
    try:
        console = consoles(relay.url)
        signed_in(qtbot, console)
        relay.disable("jane")
        wait_text(qtbot, console.page.sign_in_status, "^Signed out: .*disabled")
        assert console.window.account_status.text() == "Not signed in"
    finally:
        relay.stop()


def test_command_line_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def run(*argv: str) -> str:
        assert technician_main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        return err

    prefix = "deskhand-technician: error: "
    assert run() == f"{prefix}give --config FILE, or both --relay URL and --credential DIR\n"
    assert run("--relay", "ws://127.0.0.1:1/v1/peer", "--credential", str(tmp_path)) == (
        f"{prefix}cannot read the credential {tmp_path / 'technician.key'}:"
        " No such file or directory\n"
    )
    assert run("--relay", "http://x", "--credential", str(tmp_path)).startswith(
        f"{prefix}--relay must be a ws:// or wss:// URL"
    )
    assert run("--config", str(tmp_path / "nope.toml")) == (
        f"{prefix}{tmp_path / 'nope.toml'}: no such file\n"
    )
    typo = tmp_path / "typo.toml"
    typo.write_text('relay_url = "wss://h:1/v1/peer"\ncredential = "c"\nrelay_pim = "x"\n')
    assert run("--config", str(typo)) == f"{prefix}{typo}: unknown setting 'relay_pim'\n"
    assert run(
        "--relay", "ws://127.0.0.1:1/v1/peer", "--pin", "md5:00", "--credential", "x"
    ).startswith(f"{prefix}--pin: a relay pin starts with 'sha256:'")
