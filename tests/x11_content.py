"""Known, deterministic desktop content for screen-sharing tests and bench/screen/.

Run it on an X display (Qt's xcb platform); it fills the screen with one
frameless window and prints one JSON line when it is on screen::

    python tests/x11_content.py --scene video --hz 30
    -> {"ready": true, "width": 1920, "height": 1080, "video": [x, y, w, h], ...}

Layout: a photo-like wallpaper (worst case for lossless codecs), an "editor"
of monospaced Python source on white (text: lossless territory), a clock
that ticks every second, a typing line, and a moving-picture region
(``video``: a moving colour field plus noise, drawn 1:1 from numpy so tests
can recompute it with :func:`video_frame`).

Scenes (also switchable at run time by writing a line to stdin):

- ``static``: only the clock ticks;
- ``typing``: one editor line changes on every tick;
- ``scrolling``: the whole screen is editor text that moves up on every tick;
- ``video``: the video region changes on every tick.

Commands on stdin: ``scene NAME``, ``hz N`` (0: as fast as Qt can), ``freeze``
(stop all motion but the clock stays stopped too), ``stats`` (prints
``{"ticks": N, "frame": K}``), ``quit``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys

import numpy as np
import numpy.typing as npt


VIDEO_SIZE = (1280, 720)
VIDEO_CYCLE = 24


def wallpaper(height: int, width: int) -> npt.NDArray[np.uint8]:
    """A noisy plasma-like picture (BGRX)."""
    rng = np.random.default_rng(42)
    small = rng.random((height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    big = np.kron(small, np.ones((16, 16, 1), np.float32))[:height, :width]
    noise = rng.random((height, width, 3)).astype(np.float32)
    img = np.empty((height, width, 4), np.uint8)
    img[..., :3] = (160 * big + 95 * noise).clip(0, 255).astype(np.uint8)
    img[..., 3] = 255
    return img


def video_frame(k: int, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Frame k of the moving region (BGRX): a drifting colour field plus fixed noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = k * 0.15
    img = np.empty((height, width, 4), np.uint8)
    img[..., 0] = (128 + 110 * np.sin(xx / 40 + phase)).astype(np.uint8)
    img[..., 1] = (128 + 110 * np.sin(yy / 30 - phase * 0.7)).astype(np.uint8)
    img[..., 2] = (128 + 110 * np.sin((xx + yy) / 55 + phase * 1.3)).astype(np.uint8)
    noise = np.random.default_rng(7).integers(0, 16, (height, width, 3), dtype=np.uint8)
    img[..., :3] = np.clip(img[..., :3].astype(np.int16) + noise - 8, 0, 255).astype(np.uint8)
    img[..., 3] = 255
    return img


def source_lines() -> list[str]:
    import asyncio.base_events as module

    return inspect.getsource(module).splitlines()


def main() -> int:
    from PySide6.QtCore import QRect, QSocketNotifier, Qt, QTimer
    from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter
    from PySide6.QtWidgets import QApplication, QWidget

    parser = argparse.ArgumentParser()
    parser.add_argument("--scene", default="static")
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--video-size", default="1280x720")
    args = parser.parse_args()

    app = QApplication(sys.argv[:1])
    screen = app.primaryScreen().geometry()
    width, height = screen.width(), screen.height()
    vw, vh = (int(v) for v in args.video_size.split("x"))
    vw, vh = min(vw, width - 64), min(vh, height - 64)

    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPixelSize(14)
    font.setStyleStrategy(QFont.StyleStrategy.NoAntialias)
    line_h = 16
    lines = source_lines()

    class Content(QWidget):
        def __init__(self) -> None:
            super().__init__(None, Qt.WindowType.FramelessWindowHint)
            self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
            self.scene = args.scene
            self.ticks = 0
            self.frame = 0
            self.typed = 0
            self.scroll = 0
            self.frozen = False
            self.wall = wallpaper(height, width)
            self.wall_img = QImage(
                self.wall.data, width, height, width * 4, QImage.Format.Format_RGB32
            )
            self.video_rect = QRect(width - vw - 32, height - vh - 32, vw, vh)
            self.editor = QRect(32, 32, min(900, width - 64), min(600, height - 64))
            self.type_line = QRect(
                self.editor.x() + 8,
                self.editor.y() + 8 + 5 * line_h,
                self.editor.width() - 16,
                line_h,
            )
            self.clock = QRect(width - 232, 32, 200, 24)
            self.frame_cache: dict[int, npt.NDArray[np.uint8]] = {}
            self.video_buf = self.cached_frame(0)

        def paintEvent(self, event: object) -> None:
            p = QPainter(self)
            p.setFont(font)
            exposed = event.rect()  # type: ignore[attr-defined]
            if self.scene == "scrolling":
                p.fillRect(exposed, QColor(255, 255, 255))
                p.setPen(QColor(20, 20, 20))
                first = max(0, (self.scroll + exposed.top()) // line_h - 1)
                last = (self.scroll + exposed.bottom()) // line_h + 1
                for i in range(first, last + 1):
                    y = i * line_h - self.scroll
                    p.drawText(8, y + line_h - 3, lines[i % len(lines)][:240])
                p.end()
                return
            p.drawImage(exposed, self.wall_img, exposed)
            if exposed.intersects(self.editor):
                p.fillRect(self.editor, QColor(255, 255, 255))
                p.setPen(QColor(20, 20, 20))
                for i in range(self.editor.height() // line_h - 1):
                    y = self.editor.y() + 8 + i * line_h
                    if i == 5:
                        text = "typed: " + "".join(
                            chr(97 + (j * 7) % 26) for j in range(self.typed % 90)
                        )
                    else:
                        text = lines[i % len(lines)][:110]
                    p.drawText(self.editor.x() + 8, y + line_h - 3, text)
            if exposed.intersects(self.clock):
                p.fillRect(self.clock, QColor(240, 240, 200))
                p.setPen(QColor(0, 0, 0))
                p.drawText(
                    self.clock.adjusted(6, 0, 0, 0),
                    Qt.AlignmentFlag.AlignVCenter,
                    f"clock {self.ticks_clock:06d}",
                )
            if exposed.intersects(self.video_rect):
                img = QImage(self.video_buf.data, vw, vh, vw * 4, QImage.Format.Format_RGB32)
                p.drawImage(self.video_rect.topLeft(), img)
            p.end()

        ticks_clock = 0

        def cached_frame(self, k: int) -> npt.NDArray[np.uint8]:
            # A cycle of VIDEO_CYCLE frames, each computed once: the content app
            # then costs little CPU, as a real video player's would.
            key = k % VIDEO_CYCLE
            if key not in self.frame_cache:
                self.frame_cache[key] = video_frame(key, vh, vw)
            return self.frame_cache[key]

        def tick(self) -> None:
            if self.frozen:
                return
            self.ticks += 1
            if self.scene == "typing":
                self.typed += 1
                self.update(self.type_line)
            elif self.scene == "scrolling":
                self.scroll += 4
                self.update()
            elif self.scene == "video":
                self.frame += 1
                self.video_buf = self.cached_frame(self.frame)
                self.update(self.video_rect)

        def second(self) -> None:
            if self.frozen:
                return
            self.ticks_clock += 1
            self.update(self.clock)

    window = Content()
    window.setGeometry(0, 0, width, height)
    window.show()
    timer = QTimer()
    timer.timeout.connect(window.tick)
    timer.start(0 if args.hz <= 0 else max(1, round(1000 / args.hz)))
    clock = QTimer()
    clock.timeout.connect(window.second)
    clock.start(1000)

    def announce() -> None:
        handle = window.windowHandle()
        if handle is None or not handle.isExposed():
            QTimer.singleShot(20, announce)
            return
        # Let the first paint reach the server before saying "ready".
        QTimer.singleShot(
            200,
            lambda: emit(
                {
                    "ready": True,
                    "width": width,
                    "height": height,
                    "video": [window.video_rect.x(), window.video_rect.y(), vw, vh],
                    "editor": [
                        window.editor.x(),
                        window.editor.y(),
                        window.editor.width(),
                        window.editor.height(),
                    ],
                    "clock": [
                        window.clock.x(),
                        window.clock.y(),
                        window.clock.width(),
                        window.clock.height(),
                    ],
                }
            ),
        )

    def emit(obj: dict[str, object]) -> None:
        print(json.dumps(obj), flush=True)

    def command() -> None:
        line = sys.stdin.readline()
        if not line:
            app.quit()
            return
        words = line.split()
        if not words:
            return
        if words[0] == "scene" and len(words) == 2:
            window.scene = words[1]
            window.frozen = False
            window.update()
        elif words[0] == "hz" and len(words) == 2:
            hz = float(words[1])
            timer.start(0 if hz <= 0 else max(1, round(1000 / hz)))
        elif words[0] == "freeze":
            window.frozen = True
            emit({"frozen": True, "frame": window.frame, "ticks": window.ticks})
            return
        elif words[0] == "stats":
            emit({"ticks": window.ticks, "frame": window.frame})
            return
        elif words[0] == "quit":
            app.quit()
            return
        emit({"ok": words[0]})

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(command)
    QTimer.singleShot(0, announce)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
