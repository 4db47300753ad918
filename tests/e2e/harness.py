"""Acceptance-test harness: the three programs as separate processes, each app on its own X.

Not collected (no ``test_`` prefix). A test starts a :class:`Deskhand`: two
Xvfb servers (display A for the user, display B for the technician), the
relay set up as the demo sets it up (``relay init``, ``account create``,
``cert issue``: TLS with a pinned certificate), ``python -m client`` on A
(``--no-tray``: its window is the app) and ``python -m technician`` on B
(signed in with the demo account), each with a private HOME and XDG
directories. Tests then act like people: xdotool clicks and types on a
display, and the effect is read on the other one. Nothing reaches into the
apps: what the tests know of their widgets comes from the widget map each
app writes when ``DESKHAND_WIDGET_LOG`` is set (:mod:`common.qt.widget_log`).

::

    with Deskhand(tmp_path) as dh:                  # or a module-scoped fixture
        dh.client.click(name="phone-code")          # "Show a code for phone support"
        dh.client.click(name="anti-scam-confirm")
        dh.client.click(text="Continue")
        code = dh.client.wait(name="code", text=CODE_PATTERN).text
        dh.technician.click(name="code", role="edit")
        dh.technician.type(code + "\\n")
        allow = dh.client.wait(text="Allow", role="button", enabled=True,
                               window="Deskhand — allow remote help?")
        dh.client.click(allow)

API
---

:class:`Deskhand` (a context manager; ``start()``/``stop()``):
    ``user``, ``tech``: the two :class:`XDisplay` s; ``relay``: the
    :class:`~bench.relay_process.RelayProcess`; ``client``, ``technician``:
    the :class:`App` s; ``probe(...)``: start a :class:`Probe` window on the
    user's display; ``logs()``: the tail of every process's log;
    ``qt_problems()``: Qt warnings the apps printed since the last call (each
    app runs with a ``QT_MESSAGE_PATTERN`` that tags them); ``check_alive()``;
    ``to_viewer(viewer, x, y)``: where a point of the user's screen appears in
    the technician's viewer (fit to window), ``viewer_scale(viewer)``.
    ``data_dir``: the demo's folder (relay dir, client.toml, technician.toml,
    the console's reports/).

:class:`App` (one app process on one display):
    ``find(**spec)`` -> list of :class:`Widget`; ``wait(**spec, timeout=)`` ->
    the first match, waiting (bounded) until one is visible, else a
    :class:`HarnessError` that lists what *was* visible; ``wait_gone(**spec)``;
    ``map.ever(**spec)``: past states too (a countdown seen for a moment);
    ``wait_until(predicate, what)``; ``settled(widget)`` (its latest state,
    once it has not moved for ``SETTLE`` s); ``click(widget or **spec)`` (on
    the settled widget; focuses its window first, as a click-to-focus window
    manager would: Xvfb has none); ``type(text)`` (xdotool type, any Unicode); ``key("ctrl+a")``;
    ``focus_window(widget)``; ``alive``; ``tail()``; ``map`` (its
    :class:`WidgetMap`).

    A *spec* is keywords matched against the widget map: ``label`` (the
    accessible name, the form label naming the field ("Cause" for "C&ause:"),
    the text or the objectName, whichever matches),
    ``text``, ``name`` (objectName), ``accessible``, ``role`` (button,
    checkbox, edit, text, combo, label, tab, item, list, view, window,
    dialog, group, widget), ``cls`` (the Python class name, e.g.
    "ScreenView"), ``window`` (the top-level's title), ``kind`` (window,
    widget, tab, item), ``enabled``, ``inside`` (the objectName of an
    ancestor, e.g. "deskhand-session-bar"), ``where`` (a predicate on the Widget).
    Strings match exactly (after collapsing white space); an ``re.Pattern``
    is searched for.

:class:`XDisplay` (one Xvfb):
    ``name`` (":N"), ``env()``, ``xdotool(*args)``, ``move(x, y)``,
    ``click_at(x, y, button=1)``, ``type(text)`` (any Unicode: ``ensure_keys``
    first gives each non-ASCII character a key, as a keyboard layout would),
    ``key(*keys)``,
    ``focus(wid)``, ``screenshot(x, y, w, h)`` -> :class:`Shot`,
    ``selection("clipboard"|"primary")`` -> str (xclip),
    ``own_selection(text, "clipboard")`` (an xclip process that serves it;
    ended by pid at teardown), ``wait_quiet(seconds)`` (time since the last
    input this harness sent there: the user client pauses remote input for
    a moment after local input).

:class:`Probe` (``tests/x11_probe.py``: a solid-coloured window that logs the input it gets):
    ``wait_ready()``, ``events(name)``, ``wait_for(predicate, what)``,
    ``typed()`` (the text of its key presses), ``clear()``, ``stop()``.

:class:`Shot`: ``pixel(x, y)``, ``mean(x, y, w, h)`` (RGB, in the shot's
coordinates), ``save_ppm(path)``.

Every wait is bounded (``timeout`` seconds, generous: the suite shares two
cores) and fails with what was seen; a process that dies makes the next
wait fail at once. Every process is ended by its pid at ``stop()``, also
after a failure; tests/e2e/conftest.py attaches ``logs()`` to the report of
a failed test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import pytest

from bench.relay_process import RelayProcess
from demo.__main__ import Demo
from tests.xvfb import INSTALL_HINT, Xvfb


__all__ = [
    "RUNNING",
    "App",
    "Deskhand",
    "HarnessError",
    "Probe",
    "Shot",
    "Widget",
    "WidgetMap",
    "XDisplay",
    "require_tools",
]

ROOT = Path(__file__).resolve().parents[2]
PROBE_SCRIPT = ROOT / "tests" / "x11_probe.py"
WAIT = 25.0  # seconds: the default bound of every wait
START_WAIT = 60.0
POLL = 0.05
QT_PATTERN = "[qt %{type}] %{if-category}%{category}: %{endif}%{message}"
_QT_PROBLEM = re.compile(r"^\[qt (warning|critical|fatal)\] (.*)$")
_LOG_TAIL = 40
_GEOMETRY = ("x", "y", "w", "h", "wid", "viewport")
SETTLE = 0.25  # seconds a widget must stay put before it is clicked (layouts move things)

RUNNING: list[Deskhand] = []  # what tests/e2e/conftest.py reports on failure


class HarnessError(AssertionError):
    """A bounded wait ran out, or a process died: the message says what was seen."""


def require_tools() -> None:
    """Skip the calling test unless Xvfb and xdotool are installed."""
    if shutil.which("Xvfb") is None:
        pytest.skip(f"Xvfb is not installed: {INSTALL_HINT}")
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: apt-get install xdotool")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _matches(value: str, want: str | re.Pattern[str]) -> bool:
    if isinstance(want, re.Pattern):
        return want.search(value) is not None
    return _norm(value) == _norm(want)


# --- the widget map ---


@dataclasses.dataclass(frozen=True)
class Widget:
    """One entry of an app's widget map (see common/qt/widget_log.py)."""

    key: str
    raw: dict[str, Any]

    def __getitem__(self, field: str) -> Any:
        return self.raw[field]

    def get(self, field: str, default: Any = None) -> Any:
        return self.raw.get(field, default)

    @property
    def text(self) -> str:
        return str(self.raw.get("text", ""))

    @property
    def role(self) -> str:
        return str(self.raw.get("role", ""))

    @property
    def enabled(self) -> bool:
        return bool(self.raw.get("enabled"))

    @property
    def rect(self) -> tuple[int, int, int, int]:
        r = self.raw
        return int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])

    @property
    def center(self) -> tuple[int, int]:
        x, y, w, h = self.rect
        return x + w // 2, y + h // 2

    @property
    def target(self) -> tuple[int, int]:
        """Where a person clicks it: the middle, or a check box's box (only the box and
        its text react, and a box in a layout is often much wider than its text)."""
        x, y, w, h = self.rect
        if self.role in ("checkbox", "radio"):
            return x + min(w // 2, 9), y + h // 2
        return self.center

    @property
    def viewport(self) -> tuple[int, int, int, int]:
        """A scroll area's viewport (the viewer's picture area), global pixels."""
        v = self.raw["viewport"]
        return int(v["x"]), int(v["y"]), int(v["w"]), int(v["h"])

    def short(self) -> str:
        r = self.raw
        bits = [f"{r.get('role')}:{r.get('class')}"]
        for field in ("name", "accessible", "label"):
            if r.get(field):
                bits.append(f"{field}={r[field]!r}")
        text = self.text
        if text:
            bits.append(f"text={text[:60]!r}")
        if not r.get("enabled", True):
            bits.append("disabled")
        bits.append(f"@{r.get('x')},{r.get('y')} {r.get('w')}x{r.get('h')}")
        bits.append(f"in {r.get('window', '')!r}")
        return " ".join(bits)


class WidgetMap:
    """Reads an app's widget log as it grows; the latest state of every visible entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._state: dict[str, dict[str, Any]] = {}
        self.started: dict[str, Any] | None = None
        self.scans = 0
        self.last_scan: dict[str, Any] = {}
        self.scan_ms: list[float] = []
        self.errors: list[str] = []  # the map's own failures (they fail no app, but show here)
        self.history: list[dict[str, Any]] = []  # every "set" record, in order
        self.moved_at: dict[str, float] = {}  # key -> when it last appeared, moved or resized
        self._moving: set[str] = set()

    def refresh(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                self._apply(json.loads(line))

    def _apply(self, record: dict[str, Any]) -> None:
        op = record.get("op")
        if op == "set":
            key = str(record["key"])
            old = self._state.get(key)
            if old is None or any(old.get(f) != record.get(f) for f in _GEOMETRY):
                self._moving.add(key)
            self._state[key] = record
            self.history.append(record)
        elif op == "gone":
            self._state.pop(str(record["key"]), None)
        elif op == "scan":
            for key in self._moving:
                self.moved_at[key] = float(record.get("t", 0.0))
            self._moving.clear()
            self.scans += 1
            self.last_scan = record
            self.scan_ms.append(float(record.get("ms", 0.0)))
        elif op == "start":
            self.started = record
            self._state.clear()
        elif op == "error":
            self.errors.append(str(record.get("error")))

    def widgets(self) -> list[Widget]:
        self.refresh()
        return [Widget(key, record) for key, record in self._state.items()]

    def current(self, widget: Widget) -> Widget | None:
        """The widget's latest state (None once it is gone)."""
        self.refresh()
        record = self._state.get(widget.key)
        return None if record is None else Widget(widget.key, record)

    def find(
        self,
        *,
        label: str | re.Pattern[str] | None = None,
        text: str | re.Pattern[str] | None = None,
        name: str | re.Pattern[str] | None = None,
        accessible: str | re.Pattern[str] | None = None,
        role: str | None = None,
        cls: str | re.Pattern[str] | None = None,
        window: str | re.Pattern[str] | None = None,
        kind: str | None = None,
        enabled: bool | None = None,
        inside: str | None = None,
        where: Callable[[Widget], bool] | None = None,
        _among: list[Widget] | None = None,
    ) -> list[Widget]:
        found = []
        for widget in self.widgets() if _among is None else _among:
            r = widget.raw
            if role is not None and r.get("role") != role:
                continue
            if kind is not None and r.get("kind") != kind:
                continue
            if enabled is not None and bool(r.get("enabled")) != enabled:
                continue
            checks = (
                (text, "text"),
                (name, "name"),
                (accessible, "accessible"),
                (cls, "class"),
                (window, "window"),
            )
            if any(
                want is not None and not _matches(str(r.get(f, "")), want) for want, f in checks
            ):
                continue
            if inside is not None and inside not in str(r.get("path", "")).split("/"):
                continue
            if label is not None and not any(
                _matches(str(r.get(f, "")), label) for f in ("accessible", "label", "text", "name")
            ):
                continue
            if where is not None and not where(widget):
                continue
            found.append(widget)
        # Top to bottom, left to right: a stable order for "the first one".
        found.sort(key=lambda w: (w.raw.get("y", 0), w.raw.get("x", 0)))
        return found

    def ever(self, **spec: Any) -> list[Widget]:
        """Every past state that matched spec (oldest first), visible now or not.

        For states too brief to wait for: a countdown, a message that was
        replaced. Window ids (``wid``) tell one dialog from a later one.
        """
        self.refresh()
        past = [Widget(str(r["key"]), r) for r in self.history]
        matching = {id(w.raw) for w in self.find(_among=past, **spec)}
        return [w for w in past if id(w.raw) in matching]

    def describe(self, limit: int = 80) -> str:
        widgets = sorted(
            self.widgets(),
            key=lambda w: (str(w.raw.get("window")), w.raw.get("y", 0), w.raw.get("x", 0)),
        )
        lines = [w.short() for w in widgets[:limit]]
        if len(widgets) > limit:
            lines.append(f"... and {len(widgets) - limit} more")
        lines += [f"widget map error: {error}" for error in self.errors[-5:]]
        return "\n".join(lines) or "(nothing visible)"


# --- X displays ---


@dataclasses.dataclass(frozen=True)
class Shot:
    """A screenshot: width x height pixels, RGB bytes, row after row."""

    x: int
    y: int
    width: int
    height: int
    rgb: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """The pixel at (x, y) in root coordinates."""
        i = ((y - self.y) * self.width + (x - self.x)) * 3
        return self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]

    def mean(self, x: int, y: int, w: int, h: int) -> tuple[float, float, float]:
        """The mean colour of a rectangle, root coordinates."""
        total = [0, 0, 0]
        for yy in range(y, y + h):
            row = ((yy - self.y) * self.width + (x - self.x)) * 3
            data = self.rgb[row : row + w * 3]
            for c in range(3):
                total[c] += sum(data[c::3])
        n = max(1, w * h)
        return total[0] / n, total[1] / n, total[2] / n

    def save_ppm(self, path: Path) -> None:
        path.write_bytes(f"P6 {self.width} {self.height} 255\n".encode() + self.rgb)


class XDisplay:
    """One Xvfb and the X input a person would give it (xdotool, xclip)."""

    def __init__(self, label: str, width: int, height: int) -> None:
        self.label = label
        self.server = Xvfb(width, height, 24)
        self.last_input = 0.0
        self._selection_owners: list[subprocess.Popen[bytes]] = []
        self._keyed: set[str] = set()  # characters ensure_keys gave a key

    @property
    def name(self) -> str:
        return self.server.display

    @property
    def size(self) -> tuple[int, int]:
        return self.server.width, self.server.height

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        for proc in self._selection_owners:
            _end(proc)
        self._selection_owners.clear()
        self.server.stop()

    def env(self) -> dict[str, str]:
        return self.server.env()

    def xdotool(self, *args: str, timeout: float = 15.0) -> str:
        self.last_input = time.monotonic()
        try:
            done = subprocess.run(
                ["xdotool", *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"xdotool {' '.join(args)} on {self.label} hung") from None
        if done.returncode != 0:
            raise HarnessError(
                f"xdotool {' '.join(args)} on {self.label} failed: {done.stderr.strip()}"
            )
        self.last_input = time.monotonic()
        return done.stdout

    def move(self, x: int, y: int) -> None:
        # "mousemove --sync" waits for the pointer to move: forever if it is there already.
        if self.pointer() != (x, y):
            self.xdotool("mousemove", "--sync", str(x), str(y))

    def click_at(self, x: int, y: int, button: int = 1) -> None:
        self.move(x, y)
        self.xdotool("click", str(button))

    def pointer(self) -> tuple[int, int]:
        out = self.xdotool("getmouselocation", "--shell")
        fields = dict(line.split("=", 1) for line in out.split())
        return int(fields["X"]), int(fields["Y"])

    def type(self, text: str, delay_ms: int = 40) -> None:
        """Type text with xdotool; any Unicode (see ensure_keys)."""
        self.ensure_keys(text)
        self.xdotool("type", "--delay", str(delay_ms), "--", text, timeout=30 + len(text))

    def ensure_keys(self, text: str) -> None:
        """Give each non-ASCII character of text a key of its own, as a keyboard layout
        with those characters has.

        Without it xdotool remaps a spare key for every such character and puts it
        back at once; an app that reads the new mapping late (a loaded machine)
        then sees a key with no symbol, and the character is lost.
        """
        missing = {c for c in text if ord(c) > 0x7E and c not in self._keyed}
        if not missing:
            return
        from Xlib import display as xdisplay

        conn = xdisplay.Display(self.name)
        try:
            info = conn.display.info
            first, last = int(info.min_keycode), int(info.max_keycode)
            rows = [list(row) for row in conn.get_keyboard_mapping(first, last - first + 1)]
            present = {int(sym) for row in rows for sym in row}
            free = [first + i for i, row in enumerate(rows) if not any(row)]
            for char in sorted(missing):
                code = ord(char)
                keysym = code if code <= 0xFF else 0x01000000 | code  # Latin-1, else Unicode
                if keysym not in present:
                    if not free:
                        break  # no spare key left: xdotool remaps, as before
                    width = len(rows[0])
                    conn.change_keyboard_mapping(
                        free.pop(), [(keysym, keysym) + (0,) * (width - 2)]
                    )
                self._keyed.add(char)
            conn.sync()
        finally:
            conn.close()
        time.sleep(0.2)  # let the apps read the new mapping before the first key

    def key(self, *keys: str) -> None:
        """Press key combinations, like "ctrl+a", "Return", "ctrl+Return"."""
        self.xdotool("key", "--delay", "40", *keys)

    def focus(self, wid: int) -> None:
        """Give a window the keyboard focus, as a window manager does on a click."""
        self.xdotool("windowfocus", "--sync", str(wid))

    def wait_quiet(self, seconds: float) -> None:
        """Let seconds pass since the last input this harness sent to this display."""
        left = self.last_input + seconds - time.monotonic()
        if left > 0:
            time.sleep(left)

    def screenshot(
        self, x: int = 0, y: int = 0, w: int | None = None, h: int | None = None
    ) -> Shot:
        from Xlib import X, display as xdisplay

        width, height = self.size
        w = width - x if w is None else w
        h = height - y if h is None else h
        conn = xdisplay.Display(self.name)
        try:
            image = conn.screen().root.get_image(x, y, w, h, X.ZPixmap, 0xFFFFFFFF)
            data = bytes(image.data)
        finally:
            conn.close()
        # Depth 24 in 32-bit pixels, least significant byte first: B, G, R, pad.
        rgb = bytearray(w * h * 3)
        rgb[0::3] = data[2::4]
        rgb[1::3] = data[1::4]
        rgb[2::3] = data[0::4]
        return Shot(x, y, w, h, bytes(rgb))

    def selection(self, which: str = "clipboard", timeout: float = 10.0) -> str:
        """The text of an X selection ("clipboard" or "primary"), "" when nobody owns it."""
        if shutil.which("xclip") is None:
            pytest.skip("xclip is not installed: apt-get install xclip")
        done = subprocess.run(
            ["xclip", "-o", "-selection", which],
            env=self.env(),
            capture_output=True,
            timeout=timeout,
        )
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""

    def own_selection(self, text: str, which: str = "clipboard") -> None:
        """Put text in an X selection, served by an xclip process until stop()."""
        if shutil.which("xclip") is None:
            pytest.skip("xclip is not installed: apt-get install xclip")
        proc = subprocess.Popen(
            ["xclip", "-quiet", "-i", "-selection", which],  # -quiet: stays in the foreground
            env=self.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        proc.stdin.write(text.encode("utf-8"))
        proc.stdin.close()
        self._selection_owners.append(proc)
        self.last_input = time.monotonic()
        wait_until(lambda: self.selection(which) == text, f"xclip to own the {which} selection")


def _end(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Terminate one process we started (by its pid), kill it if it will not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def _tail(path: Path, lines: int = _LOG_TAIL) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], Any],
    what: str,
    *,
    timeout: float = WAIT,
    check: Callable[[], None] | None = None,
    seen: Callable[[], str] | None = None,
) -> Any:
    """predicate()'s first truthy value, polling; HarnessError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            detail = f"\nseen:\n{seen()}" if seen is not None else ""
            raise HarnessError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(POLL)


# --- processes ---


class App:
    """One app process (client or technician) on one display, seen through its widget map."""

    def __init__(
        self,
        name: str,
        display: XDisplay,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        map_path: Path,
        *,
        stdin_text: str | None = None,
    ) -> None:
        self.name = name
        self.display = display
        self.log_path = log_path
        self.map = WidgetMap(map_path)
        self._log: IO[bytes] = open(log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if stdin_text is not None:
            assert self.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write(stdin_text.encode("utf-8"))
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        self._qt_seen = 0
        self.exit_status: int | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive:
            raise HarnessError(
                f"the {self.name} process exited with status {self.proc.returncode}:\n{self.tail()}"
            )

    def stop(self) -> int:
        if self.exit_status is None:
            self.exit_status = _end(self.proc, 8.0)
            self._log.close()
        return self.exit_status

    def tail(self, lines: int = _LOG_TAIL) -> str:
        return _tail(self.log_path, lines)

    def qt_problems(self) -> list[str]:
        """Qt warnings, criticals and fatals printed since the last call."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        new, self._qt_seen = lines[self._qt_seen :], len(lines)
        return [line for line in new if _QT_PROBLEM.match(line)]

    # --- reading the screen ---

    def find(self, **spec: Any) -> list[Widget]:
        return self.map.find(**spec)

    def _spec_text(self, spec: dict[str, Any]) -> str:
        return ", ".join(
            f"{k}={v.pattern if isinstance(v, re.Pattern) else v!r}" for k, v in spec.items()
        )

    def wait(self, *, timeout: float = WAIT, **spec: Any) -> Widget:
        """The first visible widget matching spec (waits for it, bounded)."""
        found: list[Widget] = wait_until(
            lambda: self.map.find(**spec),
            f"a widget with {self._spec_text(spec)} in the {self.name}",
            timeout=timeout,
            check=self.check_alive,
            seen=self.map.describe,
        )
        return found[0]

    def wait_gone(self, *, timeout: float = WAIT, **spec: Any) -> None:
        wait_until(
            lambda: not self.map.find(**spec),
            f"no widget with {self._spec_text(spec)} in the {self.name}",
            timeout=timeout,
            check=self.check_alive,
            seen=self.map.describe,
        )

    def wait_until(self, predicate: Callable[[], Any], what: str, *, timeout: float = WAIT) -> Any:
        return wait_until(
            predicate,
            f"{what} in the {self.name}",
            timeout=timeout,
            check=self.check_alive,
            seen=self.map.describe,
        )

    # --- acting, through the X server only ---

    def focus_window(self, widget: Widget) -> None:
        """Focus the widget's top-level window unless it is focused or never takes focus."""
        windows = [w for w in self.map.find(kind="window") if w.get("wid") == widget.get("wid")]
        top = windows[0] if windows else None
        if top is not None and (top.get("active") or not top.get("takes_focus", True)):
            return
        self.display.focus(int(widget["wid"]))

    def settled(self, widget: Widget, *, timeout: float = WAIT) -> Widget:
        """The widget's latest state once it has stayed in place for SETTLE seconds.

        A person aims at where a button is, not where it was: a layout that
        grows (a longer text, a banner) moves widgets after they appear.
        """

        def still() -> Widget | None:
            now = self.map.current(widget)
            if now is None:
                raise HarnessError(f"the {self.name}'s {widget.short()} is gone")
            moved = self.map.moved_at.get(widget.key, 0.0)
            return now if time.monotonic() - moved >= SETTLE else None

        found: Widget = self.wait_until(still, f"{widget.short()} to stay put", timeout=timeout)
        return found

    def click(self, widget: Widget | None = None, *, button: int = 1, **spec: Any) -> Widget:
        """Click a widget (or the first one matching spec) where a person would (``target``),
        once it stays put (``settled``)."""
        target = self.settled(widget if widget is not None else self.wait(**spec))
        self.focus_window(target)
        self.display.click_at(*target.target, button=button)
        return target

    def type(self, text: str, delay_ms: int = 40) -> None:
        self.display.type(text, delay_ms)

    def key(self, *keys: str) -> None:
        self.display.key(*keys)


class Probe:
    """tests/x11_probe.py on a display: a solid-coloured window that logs its input."""

    def __init__(
        self,
        display: XDisplay,
        geometry: tuple[int, int, int, int],
        fill: str,
        log_path: Path,
    ) -> None:
        self.display = display
        self.geometry = geometry
        self.fill = fill
        self.log_path = log_path
        self._err: IO[bytes] = open(log_path, "wb")  # closed in stop()
        env = display.env()
        env.update(QT_QPA_PLATFORM="xcb", QT_MESSAGE_PATTERN=QT_PATTERN)
        self.proc = subprocess.Popen(
            [
                sys.executable, str(PROBE_SCRIPT), "--geometry", ",".join(map(str, geometry)),
                "--fill", fill, "--click-focus", "--lifetime", "900",
            ],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
        )  # fmt: skip
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                with self._lock:
                    self._events.append(event)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._events if name is None or e.get("event") == name]

    def clear(self) -> None:
        """Forget the input seen so far (keeps "ready")."""
        with self._lock:
            self._events = [e for e in self._events if e.get("event") in ("ready", "failed")]

    def typed(self) -> str:
        """The text of the key presses received, in order."""
        return "".join(str(e.get("text", "")) for e in self.events("key") if not e.get("repeat"))

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise HarnessError(
                f"the probe exited with status {self.proc.returncode}: {_tail(self.log_path)}"
            )

    def wait_ready(self, timeout: float = WAIT) -> dict[str, Any]:
        wait_until(
            lambda: self.events("ready") or self.events("failed"),
            "the probe window to be ready",
            timeout=timeout,
            check=self.check_alive,
        )
        ready = self.events("ready")
        if not ready:
            raise HarnessError(f"the probe failed: {self.events('failed')}")
        return ready[0]

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], Any], what: str, timeout: float = WAIT
    ) -> Any:
        return wait_until(
            lambda: predicate(self.events()),
            what,
            timeout=timeout,
            check=self.check_alive,
            seen=lambda: "\n".join(json.dumps(e, ensure_ascii=False) for e in self.events()[-30:]),
        )

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.proc.stdin.close()  # it quits when stdin closes
        _end(self.proc)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


class Deskhand:
    """The relay and both apps, each app on its own Xvfb (see the module docstring).

    Args:
        base: a fresh directory for everything (tmp_path).
        user_size, tech_size: the two screens.
        device: the user's computer name, as the technician sees it.
    """

    def __init__(
        self,
        base: Path,
        *,
        user_size: tuple[int, int] = (1024, 768),
        tech_size: tuple[int, int] = (1920, 1080),
        device: str = "E2E computer",
    ) -> None:
        self.base = base
        self.data_dir = base / "demo"
        self.log_dir = base / "logs"
        self.device = device
        self.user = XDisplay("display A (user)", *user_size)
        self.tech = XDisplay("display B (technician)", *tech_size)
        self.relay: RelayProcess | None = None
        self._client: App | None = None
        self._technician: App | None = None
        self.probes: list[Probe] = []
        self.password = ""

    @property
    def client(self) -> App:
        if self._client is None:
            raise HarnessError("the client is not running")
        return self._client

    @property
    def technician(self) -> App:
        if self._technician is None:
            raise HarnessError("the technician console is not running")
        return self._technician

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- start and stop ---

    def start(self) -> Self:
        require_tools()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        RUNNING.append(self)
        try:
            self.user.start()
            self.tech.start()
            demo = Demo(self.data_dir)
            self.password = demo.prepare_relay()
            self.relay = RelayProcess(config=demo.relay_dir / "relay.toml").start()
            demo.relay_url, demo.relay_port = self.relay.url, self.relay.port
            client_toml, technician_toml = demo.write_app_settings()
            self._client = self._spawn(
                "client",
                self.user,
                ["-m", "client", "--config", str(client_toml), "--device", self.device],
                extra=["--no-tray"],
            )
            self._technician = self._spawn(
                "technician",
                self.tech,
                ["-m", "technician", "--config", str(technician_toml), "--password-stdin"],
                stdin_text=self.password + "\n",
            )
            self.client.wait(role="button", name="request", timeout=START_WAIT)
            self.technician.wait(
                name="queue-status", text=re.compile(r"^Live: "), timeout=START_WAIT
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(
        self,
        name: str,
        display: XDisplay,
        args: list[str],
        *,
        extra: list[str] | None = None,
        stdin_text: str | None = None,
    ) -> App:
        home = self.base / f"home-{name}"
        runtime = home / "run"
        for sub in (home, home / ".config", home / ".local" / "share", home / ".cache", runtime):
            sub.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        env = display.env()
        for var in ("DESKHAND_ONSCREEN", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "SESSION_MANAGER"):
            env.pop(var, None)
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            XDG_RUNTIME_DIR=str(runtime),
            QT_QPA_PLATFORM="xcb",
            QT_MESSAGE_PATTERN=QT_PATTERN,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            DESKHAND_WIDGET_LOG=str(self.log_dir / f"{name}.widgets.jsonl"),
        )
        return App(
            name,
            display,
            [sys.executable, *args, *(extra or [])],
            env,
            self.log_dir / f"{name}.log",
            self.log_dir / f"{name}.widgets.jsonl",
            stdin_text=stdin_text,
        )

    def probe(
        self, geometry: tuple[int, int, int, int] = (560, 420, 400, 280), fill: str = "#d81b8c"
    ) -> Probe:
        """A probe window on the user's display; waits until it is ready (focused)."""
        probe = Probe(self.user, geometry, fill, self.log_dir / f"probe-{len(self.probes)}.log")
        self.probes.append(probe)
        probe.wait_ready()
        return probe

    def to_viewer(self, viewer: Widget, x: float, y: float) -> tuple[float, float]:
        """Where a point of the user's screen is drawn in the technician's viewer (global
        pixels on display B), with the viewer fitting the whole screen to its window."""
        vx, vy, vw, vh = viewer.viewport
        width, height = self.user.size
        scale = min(vw / width, vh / height)
        ox = vx + (vw - width * scale) / 2
        oy = vy + (vh - height * scale) / 2
        return ox + x * scale, oy + y * scale

    def viewer_scale(self, viewer: Widget) -> float:
        _, _, vw, vh = viewer.viewport
        width, height = self.user.size
        return min(vw / width, vh / height)

    def stop(self) -> None:
        """End every process this harness started, by pid, newest first."""
        for probe in self.probes:
            probe.stop()
        self.probes.clear()
        for app in (self._technician, self._client):
            if app is not None:
                app.stop()
        if self.relay is not None:
            self.relay.stop()
        self.tech.stop()
        self.user.stop()
        with contextlib.suppress(ValueError):
            RUNNING.remove(self)

    # --- diagnostics ---

    def check_alive(self) -> None:
        self.client.check_alive()
        self.technician.check_alive()

    def qt_problems(self) -> list[str]:
        found = []
        for app in (self._client, self._technician):
            if app is not None:
                found += [f"{app.name}: {line}" for line in app.qt_problems()]
        return found

    def logs(self) -> str:
        parts = []
        for app in (self._client, self._technician):
            if app is not None:
                status = "running" if app.alive else f"exited {app.proc.returncode}"
                parts.append(f"--- {app.name} ({status}) log, tail ---\n{app.tail()}")
        if self.relay is not None:
            lines = [json.dumps(e, ensure_ascii=False) for e in self.relay.events()[-_LOG_TAIL:]]
            parts.append("--- relay log, tail ---\n" + "\n".join(lines))
        for i, probe in enumerate(self.probes):
            events = [json.dumps(e, ensure_ascii=False) for e in probe.events()[-20:]]
            parts.append(f"--- probe {i} events, tail ---\n" + "\n".join(events))
        for app in (self._client, self._technician):
            if app is not None:
                parts.append(f"--- {app.name} widgets now ---\n{app.map.describe(60)}")
        return "\n".join(parts)


def module_deskhand(base: Path) -> Iterator[Deskhand]:
    """For a module-scoped fixture: one set-up shared by the module's tests."""
    with Deskhand(base) as dh:
        yield dh
