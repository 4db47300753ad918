"""Run the real relay as a subprocess (`python -m relay --port 0`) for benchmarks and tests."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import Any


class RelayProcess:
    """Starts the relay on 127.0.0.1 with an ephemeral port; stops only that process."""

    def __init__(self, *args: str, start_timeout: float = 20.0) -> None:
        self._args = args
        self._start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""

    def start(self) -> RelayProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "--host", "127.0.0.1", "--port", "0", *self._args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + self._start_timeout
        buffer = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                buffer += chunk
                for line in buffer.splitlines():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "listening":
                        self.port = int(event["port"])
                        self.url = str(event["url"])
                        return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"relay did not start: {buffer.decode(errors='replace')[-2000:]}")

    def healthz(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
