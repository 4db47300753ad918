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

The harness is in parts; this module re-exports them, so tests import every
name from ``tests.e2e.harness``:

- ``tests/e2e/harness.py``: :class:`Deskhand` and :class:`App` (below);
- ``tests/e2e/widget_map.py``: :class:`WidgetMap`, :class:`Widget` and what a
  *spec* is;
- ``tests/e2e/xdisplay.py``: :class:`XDisplay` (one Xvfb), :class:`Shot`,
  :func:`require_tools`;
- ``tests/e2e/probe.py``: :class:`Probe` (``tests/x11_probe.py``: a
  solid-coloured window that logs the input it gets);
- ``tests/e2e/harness_base.py``: :class:`HarnessError`, :func:`wait_until`.

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

    A *spec* is keywords matched against the widget map (``label``, ``text``,
    ``name``, ``role``, ``window``, ``inside``...; see tests/e2e/widget_map.py).

Every wait is bounded (``timeout`` seconds, generous: the suite shares two
cores) and fails with what was seen; a process that dies makes the next
wait fail at once. Every process is ended by its pid at ``stop()``, also
after a failure; tests/e2e/conftest.py attaches ``logs()`` to the report of
a failed test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from bench.relay_process import RelayProcess
from demo.__main__ import Demo
from tests.e2e.harness_base import (
    LOG_TAIL,
    QT_PATTERN,
    ROOT,
    WAIT,
    HarnessError,
    end_process,
    log_tail,
    wait_until,
)
from tests.e2e.probe import Probe
from tests.e2e.widget_map import Widget, WidgetMap
from tests.e2e.xdisplay import Shot, XDisplay, require_tools


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
    "module_deskhand",
    "require_tools",
    "wait_until",
]

START_WAIT = 60.0
_QT_PROBLEM = re.compile(r"^\[qt (warning|critical|fatal)\] (.*)$")
SETTLE = 0.25  # seconds a widget must stay put before it is clicked (layouts move things)

RUNNING: list[Deskhand] = []  # what tests/e2e/conftest.py reports on failure


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
            self.exit_status = end_process(self.proc, 8.0)
            self._log.close()
        return self.exit_status

    def tail(self, lines: int = LOG_TAIL) -> str:
        return log_tail(self.log_path, lines)

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


class Deskhand:
    """The relay and both apps, each app on its own Xvfb (see the module docstring).

    Args:
        base: a fresh directory for everything (tmp_path).
        user_size, tech_size: the two screens.
        device: the user's computer name, as the technician sees it.
        one_display: both apps on one X display of ``tech_size`` (the one-machine
            demo); ``user`` and ``tech`` are then the same display.
    """

    def __init__(
        self,
        base: Path,
        *,
        user_size: tuple[int, int] = (1024, 768),
        tech_size: tuple[int, int] = (1920, 1080),
        device: str = "E2E computer",
        one_display: bool = False,
    ) -> None:
        self.base = base
        self.data_dir = base / "demo"
        self.log_dir = base / "logs"
        self.device = device
        if one_display:
            self.user = self.tech = XDisplay("the one display", *tech_size)
        else:
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
            if self.tech is not self.user:
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
        if self.tech is not self.user:
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
            lines = [json.dumps(e, ensure_ascii=False) for e in self.relay.events()[-LOG_TAIL:]]
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
