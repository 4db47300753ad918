"""Run the real relay as a subprocess (`python -m relay --port 0`) for benchmarks and tests.

The relay's JSON log lines (stderr) are collected by a reader thread, so a
chatty relay never blocks on a full pipe; :meth:`RelayProcess.events` and
:meth:`RelayProcess.wait_for` read them.
"""

from __future__ import annotations

import json
import os
import select
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any


class RelayProcess:
    """Starts the relay on 127.0.0.1 (an ephemeral port by default); stops only that process.

    Args:
        args: extra command-line arguments (flags win over the config file).
        port: the port to listen on; 0 lets the OS pick (read back from the log).
        config: a TOML settings file (``--config``).
        env: extra environment variables (e.g. ``DESKHAND_RELAY_*``).
        start_timeout: how long to wait for the "listening" line.
    """

    def __init__(
        self,
        *args: str,
        port: int = 0,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self._args = args
        self._port = port
        self._config = config
        self._env = env or {}
        self._start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""
        self.tls = False
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "relay", "--host", "127.0.0.1", "--port", str(self._port)]
        if self._config is not None:
            argv += ["--config", str(self._config)]
        return [*argv, *self._args]

    def start(self) -> RelayProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self._env)
        self.lines = []
        self.proc = subprocess.Popen(
            self.command(),
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
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    self._take(line)
                listening = self.events("listening")
                if listening:
                    event = listening[0]
                    self.port = int(event["port"])
                    self.url = str(event["url"])
                    self.tls = bool(event.get("tls"))
                    self._reader = threading.Thread(
                        target=self._read_rest, args=(buffer,), daemon=True
                    )
                    self._reader.start()
                    return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"relay did not start: {buffer.decode(errors='replace')[-2000:]}")

    def _take(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = {"event": "text", "text": line.decode(errors="replace")}
        if isinstance(event, dict):
            with self._lock:
                self.lines.append(event)

    def _read_rest(self, buffer: bytes) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                if buffer:
                    self._take(buffer)
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                self._take(line)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The log events so far (all, or those named ``name``)."""
        with self._lock:
            return [e for e in self.lines if name is None or e.get("event") == name]

    def wait_for(self, name: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The first log event named ``name`` with these fields; waits (bounded) for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(name):
                if all(event.get(k) == v for k, v in fields.items()):
                    return event
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {name!r} event with {fields} within {timeout} s")
            time.sleep(0.02)

    def http_get(self, path: str, *, context: ssl.SSLContext | None = None) -> bytes:
        scheme = "https" if self.tls else "http"
        url = f"{scheme}://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:
            body: bytes = resp.read()
            return body

    def healthz(self, *, context: ssl.SSLContext | None = None) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.http_get("/healthz", context=context))
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
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
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
