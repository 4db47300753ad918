"""Fakes and helpers shared by the screen-sharing tests (no X, no network)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from client.core.screen.capture import Monitor
from client.core.screen.pipeline import FrameJob, FramePipeline, Produced
from common.protocol.codec import decode, encode
from common.protocol.messages import ScreenFrame
from common.screen.frame import pack_rects
from common.screen.geometry import Rect
from technician.core.screen.canvas import Canvas
from technician.core.screen.decoder import FrameDecoder


Pixels = npt.NDArray[np.uint8]


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeCapture:
    """A numpy 'desktop' with optional monitors; records every grab."""

    def __init__(self, width: int, height: int, monitors: list[Rect] | None = None) -> None:
        self.screen: Pixels = np.zeros((height, width, 4), np.uint8)
        self._monitors = monitors or [Rect(0, 0, width, height)]
        self.grabs: list[Rect] = []
        self.reopened = 0
        self.closed = False
        self.shm = True

    def monitors(self) -> list[Monitor]:
        return [Monitor(r, i == 0) for i, r in enumerate(self._monitors)]

    def desktop(self) -> Rect:
        h, w = self.screen.shape[:2]
        return Rect(0, 0, w, h)

    def grab(self, rect: Rect) -> Pixels:
        self.grabs.append(rect)
        return self.screen[rect.y : rect.bottom, rect.x : rect.right].copy()

    def reopen(self) -> None:
        self.reopened += 1

    def close(self) -> None:
        self.closed = True


def text_like(height: int, width: int, seed: int = 0) -> Pixels:
    """Dark glyph-ish strokes on white: compresses well losslessly."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 4), 255, np.uint8)
    for y in range(4, height - 12, 16):
        x = 4
        while x < width - 8:
            w = int(rng.integers(3, 9))
            glyph = rng.random((10, w)) < 0.45
            img[y : y + 10, x : x + w, :3][glyph] = 20
            x += w + 2
    return img


def photo_like(height: int, width: int, phase: float = 0.0, seed: int = 0) -> Pixels:
    """A smooth colour field plus mild noise: JPEG and H.264 territory."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 4), np.uint8)
    img[..., 0] = (127 + 100 * np.sin(xx / 23 + phase)).astype(np.uint8)
    img[..., 1] = (127 + 100 * np.sin(yy / 17 - phase)).astype(np.uint8)
    img[..., 2] = (127 + 100 * np.sin((xx + yy) / 31 + 2 * phase)).astype(np.uint8)
    noise = rng.integers(0, 12, (height, width, 3), dtype=np.uint8)
    img[..., :3] = np.clip(img[..., :3].astype(np.int16) + noise - 6, 0, 255).astype(np.uint8)
    img[..., 3] = 0
    return img


def psnr(a: Pixels, b: Pixels) -> float:
    """Peak signal-to-noise ratio over B, G, R in dB (inf when equal)."""
    diff = a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def same_bgr(a: Pixels, b: Pixels) -> bool:
    return a.shape == b.shape and np.array_equal(a[..., :3], b[..., :3])


class Loopback:
    """A FramePipeline wired to a FrameDecoder and Canvas through the real codec."""

    def __init__(self, pipeline: FramePipeline) -> None:
        self.pipeline = pipeline
        self.decoder = FrameDecoder()
        self.canvas: Canvas | None = None
        self.seq = 0
        self.wire_bytes: list[int] = []

    def step(self, job: FrameJob) -> Produced | None:
        produced = self.pipeline.produce(job)
        if produced is None:
            return None
        self.seq += 1
        fields, data = pack_rects(produced.rects)
        frame = ScreenFrame(
            self.seq, produced.keyframe, produced.width, produced.height, 0, fields, data
        )
        wire = encode(frame)
        self.wire_bytes.append(len(wire))
        decoded = self.decoder.decode(decode(wire))  # type: ignore[arg-type]
        if self.canvas is None or decoded.keyframe:
            if self.canvas is None or self.canvas.size != (decoded.width, decoded.height):
                self.canvas = Canvas(decoded.width, decoded.height)
        self.canvas.apply(decoded)
        return produced
