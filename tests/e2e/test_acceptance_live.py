"""Acceptance tests of a live session: clipboard both ways, pause, resume after the relay
dies, and the stop hotkey pressed in another application.

As in tests/e2e/test_acceptance.py, the relay, the user client (display A)
and the technician console (display B) are separate processes, driven with
real X input. One session, with view, control and clipboard allowed at
consent, serves the module; the tests run in order and the last one ends it:

1. clipboard both ways: text one side's X clipboard holds reaches the other
   side's, byte for byte;
2. pause: while the user has paused, the technician's typing, clipboard and
   screen reach nothing, in either direction; after resuming they do again;
3. resume: the relay process is killed and started again on the same port;
   chat sent while it is down arrives once and in order, and both sides say
   the session reconnected, with the same permissions;
4. consent prompts are rate-limited: the technician asks for control again
   and again, the user sees one prompt; after a decline, asking again is
   refused for a while and the technician is told so;
5. the stop hotkey: Ctrl+Alt+Shift+End pressed while another application
   (the probe) has the focus ends the whole session on both sides, and that
   application never sees the End key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from bench.relay_process import RelayProcess
from tests.e2e.harness import Deskhand, Probe, Widget, module_deskhand
from tests.e2e.steps import (
    CONSENT,
    MORE,
    PROBE_FILL,
    PROBE_GEOMETRY,
    USER_QUIET,
    allow,
    click_over_probe,
    close_to,
    pass_gate,
    probe_colour_in_viewer,
    viewer,
    wait_for_user_screen,
)


pytestmark = [pytest.mark.e2e, pytest.mark.x11]

CODE = re.compile(r"^\d{3,4}-\d{3}-\d{3}$")
QUIET_CHECK = 2.0  # seconds to wait before saying that something did not arrive


@pytest.fixture(scope="module")
def dh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deskhand]:
    yield from module_deskhand(tmp_path_factory.mktemp("acceptance-live"))


@pytest.fixture(scope="module")
def probe(dh: Deskhand) -> Probe:
    fill = "#{:02x}{:02x}{:02x}".format(*PROBE_FILL)
    return dh.probe(PROBE_GEOMETRY, fill)


@pytest.fixture(autouse=True)
def no_qt_warnings(dh: Deskhand) -> Iterator[None]:
    dh.qt_problems()
    yield
    problems = dh.qt_problems()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def session(dh: Deskhand, probe: Probe) -> Widget:
    """A code-flow session with view, control and clipboard; returns the technician's viewer."""
    client, technician = dh.client, dh.technician
    client.click(name="phone-code", role="button")
    pass_gate(client)
    code = client.wait(name="code", role="label", text=CODE).text
    technician.click(role="tab", text="Queue")  # where the console's "ask for" boxes are
    for capability in ("control", "clipboard"):
        box = technician.wait(name=f"capability-{capability}", role="checkbox")
        if not box.get("checked"):
            technician.click(box)
            technician.wait(name=f"capability-{capability}", where=lambda w: bool(w.get("checked")))
    technician.click(name="code", role="edit")
    technician.type(code)
    technician.key("Return")
    allow(client, CONSENT, ("view", "control", "clipboard"))
    technician.wait(name="granted", text="The user allows: view, control, clipboard")
    wait_for_user_screen(dh)
    technician.wait(name="control", text="Control on — click to stop")  # asked for at claim
    technician.wait(name="clipboard-state", text="Clipboard: on")
    return viewer(dh)


def test_clipboard_both_ways(dh: Deskhand, session: Widget) -> None:
    to_tech = "Report path: C:\\Temp\\é ß € — from the user"
    dh.user.own_selection(to_tech)
    dh.technician.wait_until(
        lambda: dh.tech.selection() == to_tech, "the user's text on the technician's clipboard"
    )
    dh.technician.wait(name="clipboard-state", text=re.compile(r"received \d+ bytes"))

    to_user = "ping -c 3 printer.example — from the technician ✓"
    dh.tech.own_selection(to_user)
    dh.client.wait_until(
        lambda: dh.user.selection() == to_user, "the technician's text on the user's clipboard"
    )
    dh.technician.wait(name="clipboard-state", text=re.compile(r"sent \d+ bytes"))


def test_pause_blocks_input_clipboard_and_screen(
    dh: Deskhand, session: Widget, probe: Probe
) -> None:
    client, technician = dh.client, dh.technician
    client.click(role="button", text="Pause", inside="deskhand-session-bar")
    client.wait(role="button", text="Resume", inside="deskhand-session-bar")
    technician.wait(name="granted", text=re.compile("nothing right now"))
    technician.wait(name="screen-message", text="The user paused the session.")
    technician.wait(name="screen-overlay", text="The user paused the session.")

    # Input: the technician clicks and types over the picture; the probe gets nothing.
    probe.clear()
    dh.user.wait_quiet(USER_QUIET)
    px, py, pw, ph = PROBE_GEOMETRY
    # Off the middle: click_at's --sync waits for a motion, which a click later at the
    # same spot would never make.
    vx, vy = dh.to_viewer(session, px + pw // 3, py + ph // 3)
    technician.focus_window(session)
    dh.tech.click_at(round(vx), round(vy))
    technician.type("paused?")
    # Clipboard, both ways: nothing crosses.
    dh.tech.own_selection("technician text during the pause")
    dh.user.own_selection("user password during the pause")
    time.sleep(QUIET_CHECK)
    assert probe.events("press") == [] and probe.typed() == ""
    assert probe.events("key") == []
    assert dh.user.selection() == "user password during the pause"  # only the user's own
    assert dh.tech.selection() == "technician text during the pause"

    # Resume: the picture, input and the clipboard come back.
    client.click(role="button", text="Resume", inside="deskhand-session-bar")
    technician.wait(name="granted", text="The user allows: view, control, clipboard")
    technician.wait_gone(name="screen-overlay")
    technician.wait_until(
        lambda: close_to(probe_colour_in_viewer(dh), PROBE_FILL, 12), "the picture again"
    )
    technician.wait(name="control", text="Control on — click to stop", timeout=30)
    press = click_over_probe(dh, session, probe, px + pw // 2, py + ph // 2)
    assert press["button"] == 1
    after = "after the pause"
    dh.user.own_selection(after)
    technician.wait_until(lambda: dh.tech.selection() == after, "the clipboard again")


def test_resume_after_the_relay_is_killed_and_restarted(dh: Deskhand, session: Widget) -> None:
    client, technician = dh.client, dh.technician
    relay = dh.relay
    assert relay is not None and relay.proc is not None
    port = relay.port
    relay.proc.kill()  # a crash, not a graceful shutdown
    relay.stop()
    technician.wait(name="session-state", text=re.compile("Reconnecting"))
    client.wait(
        role="label", inside="deskhand-session-bar", text=re.compile(r"Reconnecting .* s more")
    )
    # The technician keeps typing in the chat while the relay is away.
    technician.click(name="chat-entry", role="edit")
    for line in ("during the drop 1", "during the drop 2"):
        technician.type(line)
        technician.key("Return")
        technician.wait(role="item", name="chat-transcript", text=f"You: {line}")
    config = dh.data_dir / "relay" / "relay.toml"
    dh.relay = RelayProcess(config=config, port=port).start()
    technician.wait(name="session-state", text=re.compile("Reconnected"), timeout=60)
    client.wait(name="status", text=re.compile("The technician reconnected"))
    for line in ("during the drop 1", "during the drop 2"):
        client.wait(role="item", name="chat-transcript", text=f"Technician: {line}", timeout=30)
    lines = [
        w.text
        for w in client.find(role="item", name="chat-transcript")
        if w.text.startswith("Technician: during the drop")
    ]
    assert lines == ["Technician: during the drop 1", "Technician: during the drop 2"]
    technician.wait(name="granted", text="The user allows: view, control, clipboard")
    wait_for_user_screen(dh)


def test_repeated_requests_make_one_prompt_and_a_decline_holds(
    dh: Deskhand, session: Widget
) -> None:
    client, technician = dh.client, dh.technician
    client.click(role="checkbox", text="Control", inside="deskhand-session-bar")
    technician.wait(name="granted", text="The user allows: view, clipboard")
    button = technician.wait(name="control", role="button", text=re.compile("ask again"))
    technician.click(button)
    client.wait(role="dialog", window=MORE)
    # Five more requests while the prompt is open (clicks without moving the pointer).
    dh.tech.xdotool("click", "--repeat", "5", "--delay", "150", "1")
    time.sleep(QUIET_CHECK)
    assert len(client.find(role="dialog", window=MORE)) == 1
    client.click(role="button", text="Decline", window=MORE)
    client.wait_gone(role="dialog", window=MORE)
    technician.wait(
        name="control-state", text=re.compile(r"The user declined: control\. You can ask again")
    )
    dh.tech.xdotool("click", "1")  # at once again: refused without asking the user
    technician.wait(name="control-state", text=re.compile(r"ask again in \d+ s"))
    time.sleep(QUIET_CHECK)
    assert client.find(role="dialog", window=MORE) == []


def test_the_stop_hotkey_in_another_application_ends_everything(
    dh: Deskhand, session: Widget, probe: Probe
) -> None:
    # The user works in another application (the probe has the focus), then presses
    # the hotkey there.
    dh.user.click_at(PROBE_GEOMETRY[0] + 20, PROBE_GEOMETRY[1] + 20)
    probe.clear()
    dh.user.key("ctrl+alt+shift+End")
    dh.technician.wait(name="banner-text", text=re.compile(r"stopped", re.IGNORECASE))
    dh.client.wait(name="request", role="button", enabled=True)
    end_keysym = 0xFF57
    assert not [e for e in probe.events("key") if e.get("keysym") == end_keysym]
