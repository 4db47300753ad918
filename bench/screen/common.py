"""Constants, small helpers, the benchmark's child processes and its Xvfb."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "tests" / "x11_content.py"
SCENES = ("static", "typing", "scrolling", "video")
WIDTH, HEIGHT = 1920, 1080
USER_CORE, OTHER_CORE = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

Pixels = npt.NDArray[np.uint8]


# --- small helpers -------------------------------------------------------------


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def ms(values: list[float]) -> float | None:
    return round(statistics.median(values) * 1000, 3) if values else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pin(pid: int, core: int) -> None:
    if core < (os.cpu_count() or 1):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {core})


class Child:
    """A subprocess speaking JSON lines on stdout, commands on stdin."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], core: int) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if name == "content" else None,
            env=env,
            start_new_session=True,
        )
        pin(self.proc.pid, core)
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name} did not answer")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"{self.name} exited ({self.proc.poll()})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, command: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class XServer:
    """An Xvfb of our own, on a free display number; stopped by its pid."""

    def __init__(self, width: int, height: int) -> None:
        executable = shutil.which("Xvfb")
        if executable is None:
            raise SystemExit("Xvfb is not installed (apt-get install xvfb)")
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [
                executable,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{width}x{height}x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_fd)
        pin(self.proc.pid, OTHER_CORE)
        data = b""
        deadline = time.monotonic() + 10
        while not data.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if ready:
                chunk = os.read(read_fd, 64)
                if not chunk:
                    break
                data += chunk
        os.close(read_fd)
        if not data.strip().isdigit():
            self.stop()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{int(data)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
