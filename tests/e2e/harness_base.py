"""What every part of the acceptance harness shares (see harness.py).

:class:`HarnessError`; :func:`wait_until` (every wait is bounded: ``WAIT``
seconds unless told, polling every ``POLL``); :func:`end_process` (ends one
process we started, by its pid); :func:`log_tail`; ``ROOT`` (the repository)
and ``QT_PATTERN`` (the ``QT_MESSAGE_PATTERN`` every Qt process runs with, so
that its warnings can be told apart).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[2]
WAIT = 25.0  # seconds: the default bound of every wait
POLL = 0.05
QT_PATTERN = "[qt %{type}] %{if-category}%{category}: %{endif}%{message}"
LOG_TAIL = 40


class HarnessError(AssertionError):
    """A bounded wait ran out, or a process died: the message says what was seen."""


def end_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Terminate one process we started (by its pid), kill it if it will not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def log_tail(path: Path, lines: int = LOG_TAIL) -> str:
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
