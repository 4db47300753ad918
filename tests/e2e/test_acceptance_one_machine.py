"""Acceptance test of the one-machine demo: the client and the console on ONE X display.

The README promises that on one machine the technician's own mouse and
keyboard in the console do not count as "the user is active" (which would
pause remote control and refuse every input). Here both apps share one
Xvfb, as `bash scripts/demo.sh` runs them: the technician clicks in the
viewer over a probe window, so the click is real input on the shared
display, made in the console; the user's side must still inject the
technician's click into the probe, and the console must still say it has
control.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Deskhand, Probe, Widget
from tests.e2e.steps import CONSENT, PROBE_FILL, allow, click_over_probe, pass_gate, viewer


pytestmark = [pytest.mark.e2e, pytest.mark.x11]

CODE = re.compile(r"^\d{3,4}-\d{3}-\d{3}$")
CLIENT_AT = (1300, 40)  # beside the console (1280 wide at 0,0): no window manager places it
PROBE_GEOMETRY = (1320, 640, 500, 380)


@pytest.fixture(scope="module")
def dh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deskhand]:
    with Deskhand(tmp_path_factory.mktemp("one-machine"), one_display=True) as dh:
        yield dh


@pytest.fixture(scope="module")
def probe(dh: Deskhand) -> Probe:
    fill = "#{:02x}{:02x}{:02x}".format(*PROBE_FILL)
    return dh.probe(PROBE_GEOMETRY, fill)


@pytest.fixture(scope="module")
def session(dh: Deskhand, probe: Probe) -> Widget:
    """A code session with view and control, both apps on the one display."""
    client, technician = dh.client, dh.technician
    window = client.wait(role="window", cls="ClientWindow")
    dh.user.xdotool("windowmove", str(window.get("wid")), *map(str, CLIENT_AT))
    client.wait(role="window", cls="ClientWindow", where=lambda w: w.rect[0] >= CLIENT_AT[0])
    client.click(name="phone-code", role="button")
    pass_gate(client)
    code = client.wait(name="code", role="label", text=CODE).text
    technician.click(role="tab", text="Queue")
    box = technician.wait(name="capability-control", role="checkbox")
    if not box.get("checked"):
        technician.click(box)
        technician.wait(name="capability-control", where=lambda w: bool(w.get("checked")))
    technician.click(name="code", role="edit")
    technician.type(code)
    technician.key("Return")
    allow(client, CONSENT, ("view", "control"))
    technician.wait(name="granted", text="The user allows: view, control")
    technician.wait(name="control", text="Control on — click to stop")
    return viewer(dh)


def test_the_technicians_own_input_does_not_pause_control(
    dh: Deskhand, session: Widget, probe: Probe
) -> None:
    px, py, pw, ph = PROBE_GEOMETRY
    for x, y in ((px + pw // 2, py + ph // 2), (px + 60, py + 50)):
        # A real click in the console, on the display the user's side watches.
        press = click_over_probe(dh, session, probe, x, y)
        assert press["button"] == 1
    state = dh.technician.find(name="control-state")
    said = state[0].text if state else ""
    assert "using the mouse or keyboard" not in said, said
