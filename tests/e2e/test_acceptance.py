"""Acceptance tests: the relay, the user client and the technician console as separate
processes, each app on its own Xvfb display, driven with real X input (tests/e2e/harness.py).

Display A is the user's (1024x768): the client's window and a probe window
(tests/x11_probe.py, a solid colour that logs its input). Display B is the
technician's (1920x1080): the console. One set-up serves the whole module,
and the tests run in order:

1. the code flow: the anti-scam gate, a code read off the client, typed into
   the console's "connect by code" field, consent after its delay, the
   user's screen (the probe's colour) in the technician's viewer; the user
   stops it from the session bar;
2. the queue flow: the request form, the request in the technician's
   queue, claimed with Ctrl+Enter, consent, the user's screen again (this
   session stays open for the next tests);
3. control: asked for by the technician, allowed by the user; a click in the
   viewer lands on the probe where it was aimed;
4. typing, with é ß €: what the technician types over the viewer is what
   the probe receives;
5. chat both ways;
6. pause: no rights left, a click reaches nothing; resume gives them back;
7. Stop on the session bar, then the end-session form: its report, one JSON
   line in the console's data folder;
8. (the harness's selection helpers) SIGTERM stops
   every program with status 0 (last: it stops them).

Tests added later must come before the last one. Tests that need a fresh
session can end the current one the way test 7 does.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Deskhand, HarnessError, Probe, Widget, module_deskhand
from tests.e2e.steps import (
    CONSENT,
    MORE,
    PROBE_FILL,
    PROBE_GEOMETRY,
    USER_QUIET,
    allow,
    click_over_probe,
    pass_gate,
    viewer,
    wait_for_user_screen,
)


pytestmark = [pytest.mark.e2e, pytest.mark.x11]

CODE = re.compile(r"^\d{3,4}-\d{3}-\d{3}$")  # a busy relay has 4-digit nameplates
USER_NAME = "Zoë Müller"
DESCRIPTION = "My printer prints only € signs"
CATEGORY = "Printing"


@pytest.fixture(scope="module")
def dh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deskhand]:
    yield from module_deskhand(tmp_path_factory.mktemp("acceptance"))


@pytest.fixture(scope="module")
def probe(dh: Deskhand) -> Probe:
    fill = "#{:02x}{:02x}{:02x}".format(*PROBE_FILL)
    return dh.probe(PROBE_GEOMETRY, fill)


@pytest.fixture(autouse=True)
def no_qt_warnings(dh: Deskhand) -> Iterator[None]:
    """A Qt warning in either app fails the test that caused it (as tests/gui do)."""
    dh.qt_problems()
    yield
    problems = dh.qt_problems()
    assert not problems, "\n".join(problems)


# --- the tests ---


def test_code_flow(dh: Deskhand, probe: Probe) -> None:
    client, technician = dh.client, dh.technician
    client.click(name="phone-code", role="button")
    pass_gate(client)
    code = client.wait(name="code", role="label", text=CODE).text

    technician.click(name="code", role="edit")
    technician.type(code)
    technician.key("Return")
    tech_sas = technician.wait(name="sas", text=re.compile(r"^Verification number: \d+$"))

    user_sas = allow(client, CONSENT, ("view",))
    assert tech_sas.text == f"Verification number: {user_sas}"
    technician.wait(name="granted", text="The user allows: view")
    wait_for_user_screen(dh)

    # The user ends it from the always-on-top session bar.
    client.click(role="button", text="Stop", inside="deskhand-session-bar")
    technician.wait(name="banner-text", text=re.compile(r"ended", re.IGNORECASE))
    client.wait(name="request", role="button", enabled=True)


@dataclasses.dataclass(frozen=True)
class QueueSession:
    row: Widget  # the request in the technician's queue
    sas: str  # the verification number both sides showed


@pytest.fixture(scope="module")
def queue_session(dh: Deskhand, probe: Probe) -> QueueSession:
    """A session from the queue, viewing the user's screen (kept open for the next tests)."""
    client, technician = dh.client, dh.technician
    client.click(name="request", role="button")
    pass_gate(client)
    name = client.click(role="edit", where=lambda w: "Your name" in str(w.get("placeholder")))
    client.key("ctrl+a")
    client.type(USER_NAME)
    client.wait(role="edit", text=USER_NAME, where=lambda w: w.key == name.key)
    client.click(role="text", where=lambda w: "What is wrong" in str(w.get("placeholder")))
    client.type(DESCRIPTION)
    client.wait(role="text", text=DESCRIPTION)
    client.click(role="combo")
    client.click(role="item", text=CATEGORY)
    client.wait(role="combo", text=CATEGORY)
    client.click(role="button", text="Send request")
    client.wait(name="queue-position")

    technician.click(role="tab", text="Queue")  # an earlier session's tab may be in front
    row = technician.wait(
        role="item", name="queue", where=lambda w: USER_NAME in w.get("cells", [])
    )
    technician.click(row)
    technician.wait(name="details-title", text=f"{USER_NAME} — {CATEGORY}")
    technician.wait(name="details-text", text=DESCRIPTION)
    technician.key("ctrl+Return")  # Claim
    tech_sas = technician.wait(name="sas", text=re.compile(r"^Verification number: \d+$"))

    sas = allow(client, CONSENT, ("view",))
    assert tech_sas.text == f"Verification number: {sas}"
    technician.wait(name="granted", text="The user allows: view")
    wait_for_user_screen(dh)
    return QueueSession(row, sas)


def test_queue_flow(dh: Deskhand, queue_session: QueueSession) -> None:
    assert CATEGORY in queue_session.row.get("cells")
    # The session tab is titled after the user; the client shows who is connected.
    dh.technician.wait(role="tab", text=re.compile(re.escape(USER_NAME)))
    dh.client.wait(name="connected", text=re.compile("Demo Technician"))


@pytest.fixture(scope="module")
def control(dh: Deskhand, queue_session: QueueSession, probe: Probe) -> Widget:
    """The technician asked for control and the user allowed it; returns the viewer."""
    technician, client = dh.technician, dh.client
    technician.click(name="control", role="button", text="Ask for control")
    allow(client, MORE, ("control",))
    technician.wait(name="granted", text="The user allows: view, control")
    technician.wait(name="control", text="Control on — click to stop")
    dh.user.wait_quiet(USER_QUIET)
    return viewer(dh)


def test_click_lands_at_the_mapped_position(dh: Deskhand, control: Widget, probe: Probe) -> None:
    px, py, pw, ph = PROBE_GEOMETRY
    tolerance = 1 + 1 / dh.viewer_scale(control)  # a viewer pixel covers 1/scale of A's
    for x, y in ((px + pw // 2, py + ph // 2), (px + 37, py + ph - 23)):
        press = click_over_probe(dh, control, probe, x, y)
        assert press["button"] == 1
        assert dh.user.pointer() == (press["x"], press["y"])  # the user's real pointer moved
        assert abs(press["x"] - x) <= tolerance and abs(press["y"] - y) <= tolerance, (
            press,
            (x, y),
        )


def test_typing_reaches_the_user_desktop(dh: Deskhand, control: Widget, probe: Probe) -> None:
    # As a technician works: the keyboard was somewhere else in the console (the chat
    # box), then a click in the picture, then typing.
    dh.technician.click(name="chat-entry", role="edit")
    dh.technician.wait(name="chat-entry", where=lambda w: bool(w.get("focus")))
    px, py, pw, ph = PROBE_GEOMETRY
    click_over_probe(dh, control, probe, px + pw // 2, py + ph // 2)
    probe.clear()
    text = "é ß €"
    dh.technician.type(text, delay_ms=80)
    try:
        probe.wait_for(lambda _events: len(probe.typed()) >= len(text), f"{text!r} on the probe")
    except HarnessError as exc:
        state = dh.technician.find(name="control-state")
        said = state[0].text if state else "(no control state shown)"
        raise HarnessError(f"{exc}\nthe console says: {said}") from None
    assert probe.typed() == text


def test_chat_both_ways(dh: Deskhand, queue_session: QueueSession) -> None:
    client, technician = dh.client, dh.technician
    client.click(name="chat-entry", role="edit")
    client.type("Hello from Zoë ✓")
    client.key("Return")
    technician.wait(role="item", name="chat-transcript", text="User: Hello from Zoë ✓")
    client.wait(role="item", name="chat-transcript", text="You: Hello from Zoë ✓")

    technician.click(name="chat-entry", role="edit")
    technician.type("Looking at it — ß")
    technician.key("Return")
    client.wait(role="item", name="chat-transcript", text="Technician: Looking at it — ß")
    technician.wait(role="item", name="chat-transcript", text="You: Looking at it — ß")


def test_pause_takes_every_right_away_until_resumed(
    dh: Deskhand, control: Widget, probe: Probe
) -> None:
    client, technician = dh.client, dh.technician
    client.click(role="button", text="Pause", inside="deskhand-session-bar")
    technician.wait(name="granted", text="The user allows: nothing right now (paused?)")
    technician.wait(name="control", where=lambda w: w.text != "Control on — click to stop")
    client.wait(role="button", text="Resume", inside="deskhand-session-bar")
    # A click in the picture reaches nothing while paused.
    probe.clear()
    px, py, pw, ph = PROBE_GEOMETRY
    vx, vy = dh.to_viewer(viewer(dh), px + pw // 2, py + ph // 2)
    dh.tech.click_at(round(vx), round(vy))
    time.sleep(1.5)
    assert probe.events("press") == []

    client.click(role="button", text="Resume", inside="deskhand-session-bar")
    technician.wait(name="granted", text="The user allows: view, control")
    client.wait(role="button", text="Pause", inside="deskhand-session-bar")


def test_stop_then_the_report(dh: Deskhand, queue_session: QueueSession) -> None:
    client, technician = dh.client, dh.technician
    client.click(role="button", text="Stop", inside="deskhand-session-bar")
    ended = "The session ended: The user stopped the session."
    technician.wait(name="banner-text", text=ended)
    client.wait(name="request", role="button", enabled=True)
    client.wait_gone(name="deskhand-session-bar")

    technician.click(role="button", text="File report and close")
    form = re.compile(r"^End session — ")
    technician.wait(role="dialog", window=form)
    assert technician.wait(label="Problem", role="edit", window=form).text == DESCRIPTION
    assert technician.wait(label="Category", role="combo", window=form).text == CATEGORY
    technician.click(label="Cause", role="edit", window=form)
    technician.type("A paper jam near the fuser")
    technician.click(label="Resolution", role="text", window=form)
    technician.type("Cleared the jam; printed a test page.")
    technician.click(label="Outcome", role="combo", window=form)
    technician.click(role="item", text="Resolved")
    technician.wait(label="Outcome", role="combo", text="Resolved", window=form)
    technician.click(role="button", text="File report", window=form)
    technician.wait_gone(role="dialog", window=form)
    technician.wait_gone(role="tab", text=re.compile(re.escape(USER_NAME)))

    (reports,) = dh.data_dir.rglob("reports.jsonl")
    (line,) = reports.read_text(encoding="utf-8").splitlines()  # the code session filed none
    record = json.loads(line)
    assert record["report"] == {
        "category": CATEGORY,
        "cause": "A paper jam near the fuser",
        "notes": "",
        "outcome": "Resolved",
        "problem": DESCRIPTION,
        "resolution": "Cleared the jam; printed a test page.",
    }
    assert record["technician"] == "demo"
    assert record["technician_name"] == "Demo Technician (Demo IT)"
    assert record["origin"]["kind"] == "queue" and record["origin"]["name"] == USER_NAME
    assert record["granted"] == ["view", "control"]
    assert record["end"] == ended
    assert record["verification_number"] == queue_session.sas
    assert [(c["who"], c["text"]) for c in record["chat"]] == [
        ("user", "Hello from Zoë ✓"),
        ("technician", "Looking at it — ß"),
    ]


def test_the_harness_reads_and_sets_selections(dh: Deskhand) -> None:
    """The selection helpers the clipboard tests use, on both displays."""
    dh.user.own_selection("Grüße € 1", "clipboard")
    dh.tech.own_selection("ß 2", "primary")
    assert dh.user.selection("clipboard") == "Grüße € 1"
    assert dh.tech.selection("primary") == "ß 2"
    assert dh.tech.selection("clipboard") != "Grüße € 1"  # two displays, two clipboards


def test_the_programs_stop_cleanly(dh: Deskhand) -> None:
    """SIGTERM ends each program with status 0 (keep this test last: it stops them)."""
    for probe in dh.probes:
        probe.stop()
    dh.probes.clear()
    assert dh.client.stop() == 0, dh.client.tail()
    assert dh.technician.stop() == 0, dh.technician.tail()
    assert dh.relay is not None and dh.relay.stop() == 0
