"""The probe window of the acceptance harness (see harness.py).

:class:`Probe` (``tests/x11_probe.py``: a solid-coloured window that logs the input it gets):
    ``wait_ready()``, ``events(name)``, ``wait_for(predicate, what)``,
    ``typed()`` (the text of its key presses), ``clear()``, ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.e2e.harness_base import (
    QT_PATTERN,
    ROOT,
    WAIT,
    HarnessError,
    end_process,
    log_tail,
    wait_until,
)
from tests.e2e.xdisplay import XDisplay


PROBE_SCRIPT = ROOT / "tests" / "x11_probe.py"


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
                f"the probe exited with status {self.proc.returncode}: {log_tail(self.log_path)}"
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
        end_process(self.proc)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
