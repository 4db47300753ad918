"""The global stop hotkey (client/core/control/hotkey.py) on a real Xvfb.

A probe window (tests/x11_probe.py, its own process) has the focus; xdotool
plays the user's keys. The grab must report the chord and keep End away
from the probe, whatever locks are on, and give End back after close().
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from Xlib import X, display as xdisplay

from client.core.control.hotkey import GlobalHotkey, HotkeyTaken, HotkeyUnavailable
from tests.xvfb import Xvfb


pytestmark = pytest.mark.x11

PROBE = Path(__file__).resolve().parent.parent / "x11_probe.py"
END, F5 = 0xFF57, 0xFFC2
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def desktop() -> Iterator[Xvfb]:
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: apt-get install xdotool")
    with Xvfb(1280, 800, 24) as server:
        yield server


class Probe:
    """The probe window process; a thread collects its JSON lines."""

    def __init__(self, server: Xvfb) -> None:
        env = server.env()
        env["QT_QPA_PLATFORM"] = "xcb"
        self.proc = subprocess.Popen(
            [sys.executable, str(PROBE), "--geometry", "0,0,1280,800", "--lifetime", "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise AssertionError(f"not seen; the probe saw {self.events}")
                self._cond.wait(left)

    def keys(self) -> list[int]:
        with self._cond:
            return [e["keysym"] for e in self.events if e["event"] == "key"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._thread.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def probe(desktop: Xvfb) -> Iterator[Probe]:
    probe = Probe(desktop)
    try:
        ready = probe.wait_for(lambda e: e["event"] in ("ready", "failed"))
        assert ready["event"] == "ready", ready
        yield probe
    finally:
        probe.close()


def xdotool(server: Xvfb, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=server.env(), check=True, timeout=TIMEOUT)


def marker(server: Xvfb, probe: Probe) -> None:
    """F5 as a marker: once the probe saw it, it saw everything typed before."""
    before = probe.keys().count(F5)
    xdotool(server, "key", "F5")
    probe.wait_for(lambda e: probe.keys().count(F5) > before)


def presses(hotkey: GlobalHotkey, want: int = 1) -> int:
    """Read until `want` presses arrived (or the timeout), as an adapter would."""
    total = 0
    deadline = time.monotonic() + TIMEOUT
    while total < want and time.monotonic() < deadline:
        select.select([hotkey.fileno()], [], [], 0.1)
        total += hotkey.read()
    return total


def test_chord_is_reported_and_kept_from_the_focused_window(desktop: Xvfb, probe: Probe) -> None:
    hotkey = GlobalHotkey(desktop.display)
    try:
        assert hotkey.grabbed
        assert hotkey.read() == 0  # nothing yet, and it does not block
        xdotool(desktop, "key", "ctrl+alt+shift+End")
        assert presses(hotkey) == 1
        marker(desktop, probe)
        assert END not in probe.keys()
        # The bare key is not the hotkey: it still reaches the window.
        xdotool(desktop, "key", "End")
        probe.wait_for(lambda e: e["event"] == "key" and e["keysym"] == END)
        assert hotkey.read() == 0
    finally:
        hotkey.close()


LOCK_BITS = {"Caps_Lock": X.LockMask, "Num_Lock": X.Mod2Mask}  # Xvfb's default modifier map


def set_lock(server: Xvfb, name: str, on: bool) -> None:
    """Toggle a lock key until the server's modifier state says it is on (off)."""
    conn = xdisplay.Display(server.display)
    try:
        for _ in range(3):
            if bool(conn.screen().root.query_pointer().mask & LOCK_BITS[name]) == on:
                return
            xdotool(server, "key", name)
        raise AssertionError(f"{name} did not turn {'on' if on else 'off'}")
    finally:
        conn.close()


@pytest.mark.parametrize("locks", [["Num_Lock"], ["Caps_Lock"], ["Num_Lock", "Caps_Lock"]])
def test_works_with_num_lock_and_caps_lock_on(
    desktop: Xvfb, probe: Probe, locks: list[str]
) -> None:
    hotkey = GlobalHotkey(desktop.display)
    try:
        for lock in locks:
            set_lock(desktop, lock, True)
        xdotool(desktop, "key", "ctrl+alt+shift+End")
        assert presses(hotkey) == 1
        marker(desktop, probe)
        assert END not in probe.keys()
    finally:
        for lock in LOCK_BITS:
            set_lock(desktop, lock, False)
        hotkey.close()


def test_held_key_counts_once(desktop: Xvfb, probe: Probe) -> None:
    hotkey = GlobalHotkey(desktop.display)
    try:
        xdotool(desktop, "keydown", "ctrl+alt+shift+End")
        time.sleep(1.0)  # past the server's auto-repeat delay
        xdotool(desktop, "keyup", "End")
        xdotool(desktop, "keyup", "ctrl+alt+shift")
        assert presses(hotkey) == 1
        time.sleep(0.2)
        assert hotkey.read() == 0
        xdotool(desktop, "key", "ctrl+alt+shift+End")
        assert presses(hotkey) == 1
    finally:
        hotkey.close()


def test_close_gives_the_key_back(desktop: Xvfb, probe: Probe) -> None:
    hotkey = GlobalHotkey(desktop.display)
    hotkey.close()
    hotkey.close()  # idempotent
    assert not hotkey.grabbed
    assert hotkey.read() == 0
    xdotool(desktop, "key", "ctrl+alt+shift+End")
    probe.wait_for(lambda e: e["event"] == "key" and e["keysym"] == END)


def test_second_grabber_is_refused_clearly(desktop: Xvfb) -> None:
    first = GlobalHotkey(desktop.display)
    try:
        with pytest.raises(HotkeyTaken, match="Another program already uses the stop hotkey"):
            GlobalHotkey(desktop.display)
        assert first.grabbed
        # The refused attempt must not have released the first grab.
        xdotool(desktop, "key", "ctrl+alt+shift+End")
        assert presses(first) == 1
    finally:
        first.close()
    # Once the first is gone, the grab is free again.
    GlobalHotkey(desktop.display).close()


def test_no_display_is_unavailable() -> None:
    with pytest.raises(HotkeyUnavailable, match="cannot open the X display"):
        GlobalHotkey("not-a-display-name")


def test_still_grabbed_after_a_keymap_change(desktop: Xvfb, probe: Probe) -> None:
    hotkey = GlobalHotkey(desktop.display)
    try:
        # xdotool binds a spare keycode for a character not on the keymap
        # (as the injector does): a MappingNotify for every client.
        xdotool(desktop, "type", "\u00e9\u20ac")
        time.sleep(0.2)
        assert hotkey.read() == 0
        assert hotkey.grabbed
        xdotool(desktop, "key", "ctrl+alt+shift+End")
        assert presses(hotkey) == 1
        marker(desktop, probe)
        assert END not in probe.keys()
    finally:
        hotkey.close()
