"""The synthetic scenes (user process): real grabs with the scene's change injected,
and the damage it makes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.screen.common import CONTENT, HEIGHT, WIDTH, Pixels


# --- synthetic scenes (user process) -----------------------------------------------


def content_function(name: str) -> Callable[..., Any]:
    """A function of tests/x11_content.py (a script, loaded by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deskhand_x11_content", CONTENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[..., Any] = getattr(module, name)
    return function


class SyntheticEvents:
    """Damage for injected changes: one report per grab, through a pipe.

    Looks like :class:`client.core.screen.damage.X11Events` to the sharer.
    """

    has_damage = True
    has_cursor = False

    def __init__(self, on_damage: Callable[[Any], None], region: Any) -> None:
        self._on_damage = on_damage
        self.region = region
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self.kick()

    def fileno(self) -> int:
        return self._read

    def kick(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._write, b"x")

    def process(self) -> None:
        try:
            os.read(self._read, 4096)
        except BlockingIOError:
            return
        self._on_damage(self.region)

    def query_pointer(self) -> tuple[int, int]:
        return 0, 0

    def cursor_image(self) -> Any:
        raise RuntimeError("no cursor in synthetic mode")

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class InjectingCapture:
    """A real MssCapture whose full-screen grabs get the scene's change injected.

    Every grab() takes the whole screen (real MIT-SHM cost), copies it into a
    reused buffer, applies the next step of the scene, and returns the part
    asked for; then it tells SyntheticEvents that the scene changed again.
    """

    def __init__(self, display: str, scene: str, layout: dict[str, Any]) -> None:
        from client.core.screen.capture import MssCapture
        from common.screen.geometry import Rect

        self.real = MssCapture(display, require_shm=True)
        self.shm = self.real.shm
        self.scene = scene
        self.events: SyntheticEvents | None = None
        self.frame = 0
        self.full = Rect(0, 0, WIDTH, HEIGHT)
        self.buffer: Pixels = np.empty((HEIGHT, WIDTH, 4), np.uint8)
        ex, ey, _, _ = layout["editor"]
        self.line = Rect(ex + 8, ey + 8 + 5 * 16, 320, 16)  # the editor's typing line
        # Real text for "typing": a line of the editor, revealed glyph by glyph.
        source = self.real.grab(Rect(ex + 8, ey + 8, 320, 16))
        self.text = source.copy()
        self.blank = np.full_like(self.text, 255)
        vx, vy, vw, vh = layout["video"]
        self.video = Rect(vx, vy, vw, vh)
        video_frame = content_function("video_frame")
        self.video_frames = [video_frame(k, vh, vw) for k in range(0, 48, 2)]

    @property
    def region(self) -> Any:
        from common.screen.geometry import Rect

        return {"typing": self.line, "scrolling": self.full, "video": self.video}.get(
            self.scene, Rect(0, 0, 1, 1)
        )

    def monitors(self) -> Any:
        return self.real.monitors()

    def desktop(self) -> Any:
        return self.real.desktop()

    def reopen(self) -> None:
        self.real.reopen()

    def close(self) -> None:
        self.real.close()

    def grab(self, rect: Any) -> Pixels:
        # mss hands over a fresh copy of its shared-memory segment: write into it.
        self.buffer = self.real.grab(self.full)
        self.frame += 1
        n = self.frame
        if self.scene == "typing":
            glyphs = n % 40
            line = self.line
            patch = self.blank.copy()
            patch[:, : glyphs * 8] = self.text[:, : glyphs * 8]
            self.buffer[line.y : line.bottom, line.x : line.right] = patch
        elif self.scene == "scrolling":
            self.buffer = np.roll(self.buffer, -4 * n, axis=0)
        elif self.scene == "video":
            v = self.video
            self.buffer[v.y : v.bottom, v.x : v.right] = self.video_frames[
                n % len(self.video_frames)
            ]
        if self.events is not None:
            self.events.kick()
        return self.buffer[rect.y : rect.bottom, rect.x : rect.right]
