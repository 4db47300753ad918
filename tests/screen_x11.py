"""X11 helpers for screen-sharing tests: the content app, RandR changes, reference grabs."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from tests.xvfb import Xvfb


CONTENT_SCRIPT = Path(__file__).with_name("x11_content.py")


class ContentApp:
    """tests/x11_content.py running on an X display; commands go to its stdin."""

    def __init__(self, xvfb: Xvfb, *args: str, timeout: float = 30.0) -> None:
        env = xvfb.env()
        env["QT_QPA_PLATFORM"] = "xcb"
        env.pop("QT_QPA_PLATFORMTHEME", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(CONTENT_SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.info = self.read(timeout)
        if not self.info.get("ready"):
            self.stop()
            raise RuntimeError(f"content app did not start: {self.info}")

    def read(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the content app did not answer")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1)
                if not chunk:
                    raise RuntimeError("the content app exited")
                line += chunk
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, text: str, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def grab_screen(
    display: str, rect: tuple[int, int, int, int] | None = None
) -> npt.NDArray[np.uint8]:
    """A reference screenshot (BGRX) taken independently of the sharer."""
    import mss

    with mss.MSS(display=display) as sct:
        mon = sct.monitors[0]
        x, y, w, h = rect or (mon["left"], mon["top"], mon["width"], mon["height"])
        shot = sct.grab({"left": x, "top": y, "width": w, "height": h})
        return np.frombuffer(shot.raw, np.uint8).reshape(h, w, 4).copy()


def set_monitors(display: str, monitors: list[tuple[str, int, int, int, int]]) -> None:
    """Split the screen into RandR 1.5 monitors (what ``xrandr --setmonitor`` does).

    python-xlib's own SetMonitor request mis-encodes its nested struct, so the
    request is declared flat here.
    """
    from Xlib import display as xdisplay
    from Xlib.protocol import rq

    class SetMonitor(rq.Request):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"),
            rq.Opcode(43),
            rq.RequestLength(),
            rq.Window("window"),
            rq.Card32("name"),
            rq.Bool("primary"),
            rq.Bool("automatic"),
            rq.LengthOf("crtcs", 2),
            rq.Int16("x"),
            rq.Int16("y"),
            rq.Card16("width"),
            rq.Card16("height"),
            rq.Card32("mmw"),
            rq.Card32("mmh"),
            rq.List("crtcs", rq.Card32),
        )

    d = xdisplay.Display(display)
    try:
        root = d.screen().root
        opcode = d.display.get_extension_major("RANDR")
        output = root.xrandr_get_screen_resources().outputs[0]
        for i, (name, x, y, w, h) in enumerate(monitors):
            SetMonitor(
                display=d.display,
                opcode=opcode,
                window=root,
                name=d.intern_atom(name),
                primary=int(i == 0),
                automatic=0,
                x=x,
                y=y,
                width=w,
                height=h,
                mmw=w // 4,
                mmh=h // 4,
                crtcs=[output] if i == 0 else [],
            )
        d.sync()
    finally:
        d.close()


def resize_screen(display: str, width: int, height: int) -> None:
    """Change the root window's size with RandR (Xvfb allows up to its start size)."""
    from Xlib import display as xdisplay
    from Xlib.ext import randr

    d = xdisplay.Display(display)
    try:
        root = d.screen().root
        res = root.xrandr_get_screen_resources()
        output, crtc = res.outputs[0], res.crtcs[0]
        mode = next((m.id for m in res.modes if (m.width, m.height) == (width, height)), None)
        if mode is None:
            name = f"{width}x{height}"
            info = {
                "id": 0,
                "width": width,
                "height": height,
                "dot_clock": 0,
                "h_sync_start": 0,
                "h_sync_end": 0,
                "h_total": width,
                "h_skew": 0,
                "v_sync_start": 0,
                "v_sync_end": 0,
                "v_total": height,
                "name_length": len(name),
                "flags": 0,
            }
            mode = root.xrandr_create_mode(info, name).mode
            d.xrandr_add_output_mode(output, mode)
        d.xrandr_set_crtc_config(crtc, res.config_timestamp, 0, 0, 0, randr.Rotate_0, [])
        root.xrandr_set_screen_size(width, height, width // 4, height // 4)
        d.xrandr_set_crtc_config(crtc, res.config_timestamp, 0, 0, mode, randr.Rotate_0, [output])
        d.sync()
    finally:
        d.close()
