"""One X display of the acceptance harness and the input a person gives it (see harness.py).

:func:`require_tools`: skip the calling test unless Xvfb and xdotool are installed.

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

:class:`Shot`: ``pixel(x, y)``, ``mean(x, y, w, h)`` (RGB, in the shot's
coordinates), ``save_ppm(path)``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness_base import HarnessError, end_process, wait_until
from tests.xvfb import INSTALL_HINT, Xvfb


def require_tools() -> None:
    """Skip the calling test unless Xvfb and xdotool are installed."""
    if shutil.which("Xvfb") is None:
        pytest.skip(f"Xvfb is not installed: {INSTALL_HINT}")
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: apt-get install xdotool")


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
            end_process(proc)
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
