"""The console's Qt-free parts: wait times, summaries, end states, the report book, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError
from technician.core.console import (
    ChatLine,
    ReportBook,
    SessionFacts,
    SessionOrigin,
    TabState,
    describe_end,
    diagnostics_rows,
    format_wait,
    summary_rows,
)
from technician.core.report import SessionReport
from technician.core.settings import default_data_dir, load_technician_settings


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3, "0 s"), (0.9, "0 s"), (59, "59 s"), (60, "1 min 00 s"), (605, "10 min 05 s"),
     (3599, "59 min 59 s"), (3600, "1 h 00 min"), (7322, "2 h 02 min")],
)  # fmt: skip
def test_format_wait(seconds: float, text: str) -> None:
    assert format_wait(seconds) == text


def test_summary_rows_keep_untrusted_text_as_it_is() -> None:
    text = (
        "Operating system: Debian: 13\n\n  <b>bold</b>\nNetwork: eth0 10.0.0.2\n" + "x" * 50 + ": y"
    )
    assert summary_rows(text) == [
        ("Operating system", "Debian: 13"),
        ("", "<b>bold</b>"),
        ("Network", "eth0 10.0.0.2"),
        ("", "x" * 50 + ": y"),  # not a plausible name
    ]
    assert summary_rows("") == []


def test_diagnostics_rows_by_origin() -> None:
    queued = SessionOrigin("queue", "ab" * 16, "Bob", "help", "Email", "Memory: 8 GiB")
    assert diagnostics_rows(queued, "Bob's laptop") == [
        ("Device", "Bob's laptop"),
        ("Asked by", "Bob"),
        ("Category", "Email"),
        ("Memory", "8 GiB"),
    ]
    assert diagnostics_rows(SessionOrigin("code"), "") == []
    assert SessionOrigin("code").title == "By code" and queued.title == "Bob"


def test_describe_end() -> None:
    assert describe_end("x", clean=True, by_peer=False).text == "You ended the session."
    ended = describe_end("The user stopped the session.", clean=True, by_peer=True)
    assert ended.state is TabState.ENDED
    assert ended.text == "The session ended: The user stopped the session."
    lost = describe_end("relay shutting down.", clean=False, by_peer=True)
    assert (lost.state, lost.text) == (TabState.LOST, "Connection lost: relay shutting down.")


def facts() -> SessionFacts:
    return SessionFacts(
        technician="jane",
        technician_name="Jane Doe (ACME IT)",
        origin=SessionOrigin("code"),
        device="PC-12",
        sas="0420",
        started_at=100.0,
        ended_at=0.0,
        granted=("view", "control"),
        end="",
        chat=(ChatLine("user", "hi", 101.0),),
    )


def test_the_report_book_appends_private_json_lines(tmp_path: Path) -> None:
    book = ReportBook(tmp_path / "data")
    assert book.records() == []
    incomplete = SessionReport("printer", "", "", "Printing", "Resolved")
    with pytest.raises(ValueError, match="Say what was done"):
        book.append(incomplete, facts())
    assert not book.path.exists()
    report = SessionReport("printer", "toner", "replaced", "Printing", "Resolved", "n")
    book.append(report, facts(), now=200.0)
    book.append(report, facts(), now=300.0)
    records = book.records()
    assert [r["filed_at"] for r in records] == [200.0, 300.0]
    first = records[0]
    assert first["format"] == 1 and first["ended_at"] is None
    assert first["report"]["resolution"] == "replaced"
    assert first["chat"] == [{"who": "user", "text": "hi", "at": 101.0}]
    assert first["granted"] == ["view", "control"] and first["origin"]["kind"] == "code"
    assert book.path.stat().st_mode & 0o777 == 0o600


def test_settings_resolve_paths_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "technician.toml"
    path.write_text(
        'relay_url = "wss://relay.test:8443/v1/peer"\n'
        'relay_pin = "sha256:' + "ab" * 32 + '"\n'
        'credential = "jane"\naccount = "jane"\ndata_dir = "/srv/reports"\n'
        'org_key = "ignored"\n'
    )
    settings = load_technician_settings(path)
    assert settings.relay_url == "wss://relay.test:8443/v1/peer"
    assert settings.pin is not None and settings.pin.spki_sha256 == bytes.fromhex("ab" * 32)
    assert settings.credential_dir == tmp_path / "jane"
    assert settings.account == "jane"
    assert settings.data_dir == Path("/srv/reports")


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('relay_url = "ws://127.0.0.1:1/v1/peer"\ncredential = "c"\n')
    settings = load_technician_settings(path, env={"XDG_DATA_HOME": "/xdg"})
    assert settings.pin is None and settings.account == ""
    assert settings.data_dir == Path("/xdg/deskhand/technician")
    assert default_data_dir({"XDG_DATA_HOME": "/d"}) == Path("/d/deskhand/technician")

    for text, error in [
        ('credential = "c"\n', "relay_url is required"),
        ('relay_url = "ws://h/v1/peer"\n', r"credential \(the credential directory\) is required"),
        ('relay_url = "ws://h/v1/peer"\ncredential = 3\n', "credential must be a string"),
        (
            'relay_url = "ws://h/v1/peer"\ncredential = "c"\nrelay_pin = "sha256:'
            + "00" * 32
            + '"\nrelay_certificate = "x.pem"\n',
            "not both",
        ),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=error):
            load_technician_settings(path)
