"""A private Xvfb X server for tests.

    with Xvfb() as server:              # 1920x1080x24 on a free display
        subprocess.run([...], env=server.env())

Xvfb picks a free display number itself (``-displayfd``), so parallel runs
and a developer's own desktop never collide. ``stop()`` ends only the process
this object started.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import pytest


INSTALL_HINT = "apt-get install xvfb (bash scripts/test.sh installs it when run as root)"


class XvfbError(RuntimeError):
    """Xvfb did not start, or stopped on its own."""


class Xvfb:
    """One Xvfb process with ``screens`` screens of ``width``x``height``x``depth``."""

    def __init__(
        self,
        width: int = 1920,
        height: int = 1080,
        depth: int = 24,
        *,
        screens: int = 1,
        extra_args: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        if screens < 1:
            raise ValueError("screens must be at least 1")
        self.width = width
        self.height = height
        self.depth = depth
        self.screens = screens
        self.extra_args = tuple(extra_args)
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._display: str | None = None

    @property
    def display(self) -> str:
        """The display name, ``":N"``."""
        if self._display is None:
            raise XvfbError("Xvfb is not running; call start() first")
        return self._display

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """A copy of os.environ that points X clients (and Qt) at this server."""
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("WAYLAND_DISPLAY", None)  # else Qt and GTK may prefer Wayland
        return env

    def command(self, executable: str = "Xvfb", displayfd: int = 1) -> list[str]:
        geometry = f"{self.width}x{self.height}x{self.depth}"
        cmd = [executable, "-displayfd", str(displayfd)]
        for screen in range(self.screens):
            cmd += ["-screen", str(screen), geometry]
        cmd += ["-nolisten", "tcp", "-noreset", *self.extra_args]
        return cmd

    def start(self) -> Self:
        """Starts Xvfb and waits (at most ``timeout`` seconds) until it accepts clients.

        Skips the calling test if Xvfb is not installed.
        """
        if self._proc is not None:
            raise XvfbError("Xvfb already started")
        executable = shutil.which("Xvfb")
        if executable is None:
            pytest.skip(f"Xvfb is not installed: {INSTALL_HINT}")
        read_fd, write_fd = os.pipe()
        self._stderr = tempfile.TemporaryFile()  # closed in stop()
        try:
            self._proc = subprocess.Popen(
                self.command(executable, write_fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=(write_fd,),
                start_new_session=True,  # a Ctrl-C in the terminal is pytest's alone
            )
        except BaseException:
            os.close(read_fd)
            self._stderr.close()
            self._stderr = None
            raise
        finally:
            os.close(write_fd)
        try:
            number = self._read_display_number(read_fd)
            self._display = f":{number}"
            self._wait_for_socket(number)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(read_fd)
        return self

    def stop(self) -> None:
        """Terminates the Xvfb this object started (by its pid) and waits for it."""
        proc, self._proc = self._proc, None
        self._display = None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self._display if self.running else "stopped"
        return f"<Xvfb {self.width}x{self.height}x{self.depth} {state} pid={self.pid}>"

    # Start-up helpers.

    def _deadline_left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._failure(f"Xvfb did not get ready within {self.timeout:g} s")
        return left

    def _read_display_number(self, read_fd: int) -> int:
        # Xvfb writes "N\n" to the -displayfd pipe once it is ready for clients.
        deadline = time.monotonic() + self.timeout
        data = b""
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], min(0.1, self._deadline_left(deadline)))
            if ready:
                chunk = os.read(read_fd, 64)
                if not chunk:  # Xvfb exited (or closed the pipe) before answering
                    break
                data += chunk
            elif not self.running:
                break
        text = data.decode("ascii", "replace").strip()
        if not text.isdigit():
            raise self._failure(f"Xvfb reported no display number (got {text!r})")
        return int(text)

    def _wait_for_socket(self, number: int) -> None:
        # -displayfd answers when the server listens; the socket check is belt and braces.
        socket = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + self.timeout
        while not socket.exists():
            if not self.running:
                raise self._failure("Xvfb exited during start-up")
            time.sleep(min(0.02, self._deadline_left(deadline)))

    def _failure(self, message: str) -> XvfbError:
        details = []
        if self._proc is not None and self._proc.poll() is not None:
            details.append(f"exit status {self._proc.returncode}")
        if self._stderr is not None:
            self._stderr.seek(0)
            err = self._stderr.read().decode("utf-8", "replace").strip()
            if err:
                details.append(f"stderr:\n{err[-2000:]}")
        return XvfbError("; ".join([message, *details]))
