"""Steps a person takes in the acceptance tests, shared by the tests/e2e/test_acceptance*.py.

Not collected (no ``test_`` prefix). Each step acts through the X server
(tests/e2e/harness.py) and waits for what a person would see.
"""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.harness import App, Deskhand, HarnessError, Probe, Widget


__all__ = [
    "CONSENT",
    "MORE",
    "PROBE_FILL",
    "PROBE_GEOMETRY",
    "USER_QUIET",
    "allow",
    "click_over_probe",
    "close_to",
    "pass_gate",
    "probe_colour_in_viewer",
    "viewer",
    "wait_for_user_screen",
]

CONSENT = "Deskhand — allow remote help?"
MORE = "Deskhand — allow more?"
PROBE_GEOMETRY = (560, 420, 400, 280)  # x, y, w, h on display A, clear of the client's window
PROBE_FILL = (0xD8, 0x1B, 0x8C)  # a colour no Deskhand widget uses
USER_QUIET = 1.5  # seconds: the client pauses remote input for 1 s after the user's own input


def pass_gate(client: App) -> None:
    """The anti-scam gate: tick "I contacted my IT support myself", Continue."""
    client.click(name="anti-scam-confirm", role="checkbox")
    client.wait(name="anti-scam-confirm", where=lambda w: bool(w.get("checked")))
    client.click(role="button", text="Continue", enabled=True)


def allow(client: App, window: str, capabilities: tuple[str, ...]) -> str:
    """Tick what to allow in a consent dialog, wait out its delay, click Allow.

    Returns the verification number the dialog showed ("" for a dialog without one).
    """
    wid = client.wait(role="dialog", window=window)["wid"]
    for capability in capabilities:
        box = client.wait(name=f"capability-{capability}", role="checkbox", window=window)
        if not box.get("checked"):
            client.click(box)
            client.wait(
                name=f"capability-{capability}",
                window=window,
                where=lambda w: bool(w.get("checked")),
            )
    sas = client.find(name="sas", role="label", window=window)
    button = client.wait(role="button", text="Allow", enabled=True, window=window, timeout=30)
    client.click(button)
    client.wait_gone(role="dialog", window=window)
    # Not at once: Allow counted down first, disabled (security.md 4.3).
    countdown = client.map.ever(
        role="button",
        text=re.compile(r"^Allow \(\d+\)$"),
        enabled=False,
        where=lambda w: w.get("wid") == wid,
    )
    assert countdown, "the Allow button was never seen counting down"
    return sas[0].text if sas else ""


def viewer(dh: Deskhand) -> Widget:
    """The technician's view of the user's screen, where it is now."""
    return dh.technician.settled(dh.technician.wait(cls="ScreenView", role="view"))


def probe_colour_in_viewer(dh: Deskhand) -> tuple[float, float, float]:
    """The mean colour where the viewer draws the probe's middle (display B)."""
    view = viewer(dh)
    px, py, pw, ph = PROBE_GEOMETRY
    x0, y0 = dh.to_viewer(view, px + pw * 0.25, py + ph * 0.25)
    x1, y1 = dh.to_viewer(view, px + pw * 0.75, py + ph * 0.75)
    shot = dh.tech.screenshot(round(x0), round(y0), round(x1 - x0), round(y1 - y0))
    return shot.mean(shot.x, shot.y, shot.width, shot.height)


def close_to(colour: tuple[float, float, float], want: tuple[int, int, int], tol: float) -> bool:
    return all(abs(c - w) <= tol for c, w in zip(colour, want, strict=True))


def wait_for_user_screen(dh: Deskhand) -> None:
    """The technician's viewer shows the user's screen: the probe's colour where it belongs."""
    seen: list[Any] = []

    def shows_probe() -> bool:
        colour = probe_colour_in_viewer(dh)
        seen.append(colour)
        return close_to(colour, PROBE_FILL, 12)

    try:
        dh.technician.wait_until(shows_probe, "the probe's colour in the viewer", timeout=30)
    except HarnessError as exc:
        raise HarnessError(f"{exc}\nlast colours seen: {seen[-3:]}") from None
    width, height = dh.user.size
    dh.technician.wait(role="combo", text=f"All monitors ({width}x{height})")
    # And not everywhere: the client's window, at the top left of A, is not that colour.
    view = viewer(dh)
    x, y = dh.to_viewer(view, 100, 300)
    outside = dh.tech.screenshot(round(x), round(y), 8, 8)
    assert not close_to(outside.mean(outside.x, outside.y, 8, 8), PROBE_FILL, 40)


def click_over_probe(dh: Deskhand, view: Widget, probe: Probe, x: int, y: int) -> dict[str, Any]:
    """The technician clicks the viewer where it shows (x, y) of A; returns the probe's press."""
    probe.clear()
    dh.user.wait_quiet(USER_QUIET)
    view = dh.technician.settled(view)
    vx, vy = dh.to_viewer(view, x, y)
    dh.technician.focus_window(view)
    dh.tech.click_at(round(vx), round(vy))
    presses: list[dict[str, Any]] = probe.wait_for(
        lambda events: (
            [e for e in events if e.get("event") == "release"]
            and [e for e in events if e.get("event") == "press"]
        ),
        "a click on the probe",
    )
    return presses[0]
