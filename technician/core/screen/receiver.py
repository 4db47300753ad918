"""ScreenReceiver: turns the user's screen frames into a canvas, off the GUI thread.

Attach it to an open SecureChannel (in the channel's loop)::

    receiver = ScreenReceiver()
    receiver.add_listener(on_event)     # called from the decode or the loop thread
    receiver.attach(channel)            # asks the sharer for a keyframe
    ...
    receiver.close()

Frames arrive in the loop thread and go to a decode thread, which checks and
decodes them (:class:`~.decoder.FrameDecoder`: untrusted input), blits them
into the :class:`~.canvas.Canvas`, acknowledges them (the sharer's pacing),
and tells the listeners what changed. A bad frame is dropped with a clear
status and a keyframe is requested; a backlog larger than the limits is
dropped whole (with a keyframe request) so memory stays bounded.

Listeners receive :data:`ReceiverEvent` objects and must only hand them over
(the Qt viewer emits a signal); they run in the decode thread (canvas and
frame events) or in the loop thread (cursor, monitors, status).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.protocol.messages import (
    CursorPosition,
    CursorShape,
    FrameAck,
    KeyframeRequest,
    MonitorList,
    ScreenEncoding,
    ScreenFrame,
    ScreenStopped,
    ScreenStopReason,
    SelectMonitor,
)
from common.screen.geometry import Rect
from common.session import MessageReceived, SessionEnded, SessionEvent
from technician.core.screen.canvas import Canvas
from technician.core.screen.decoder import (
    CursorImage,
    DecodedFrame,
    DecoderLimits,
    FrameDecoder,
    ScreenDecodeError,
    decode_cursor,
)


__all__ = [
    "CanvasChanged",
    "CursorChanged",
    "FrameApplied",
    "FrameTiming",
    "MonitorsChanged",
    "ReceiverEvent",
    "ReceiverStats",
    "ScreenReceiver",
    "StatsWindow",
    "StatusChanged",
]

logger = logging.getLogger(__name__)

ScreenMessage = ScreenFrame | CursorPosition | CursorShape | MonitorList | ScreenStopped
SCREEN_MESSAGES = (ScreenFrame, CursorPosition, CursorShape, MonitorList, ScreenStopped)
_STOPPED = "The user stopped sharing the screen."
_ENDED = "Screen sharing ended with the session."
_STOP_REASONS = {
    ScreenStopReason.PAUSED.value: "The user paused the session.",
    ScreenStopReason.VIEW_REVOKED.value: _STOPPED,
    ScreenStopReason.SESSION_ENDED.value: "The session ended.",
    ScreenStopReason.FAILED.value: "Screen sharing failed on the user's computer.",
}

ENCODING_NAMES = {
    ScreenEncoding.RAW_BGRA: "raw",
    ScreenEncoding.ZSTD: "zstd",
    ScreenEncoding.JPEG: "JPEG",
    ScreenEncoding.H264: "H.264",
    ScreenEncoding.H264_KEY: "H.264",
    ScreenEncoding.FILL: "fill",
    ScreenEncoding.PALETTE: "palette",
}


@dataclasses.dataclass(frozen=True)
class ReceiverStats:
    """Live figures for the status strip (all over the last second).

    Attributes:
        fps: frames applied per second.
        mbps: megabits per second of frame payload.
        latency_ms: the sharer's capture-to-acknowledgement time (None: unknown).
        decode_ms: mean time from a frame's arrival to its being on the canvas.
        encoding: the encodings seen, most used first ("zstd+JPEG"), or "idle".
        width, height: the view's size (0 before the first keyframe).
        frames: frames applied in all.
        errors: frames refused in all.
        dropped: frames dropped because the backlog grew too large.
    """

    fps: float = 0.0
    mbps: float = 0.0
    latency_ms: float | None = None
    decode_ms: float = 0.0
    encoding: str = "idle"
    width: int = 0
    height: int = 0
    frames: int = 0
    errors: int = 0
    dropped: int = 0


@dataclasses.dataclass(frozen=True)
class CanvasChanged:
    """A new canvas (first picture, or the view changed size)."""

    canvas: Canvas


@dataclasses.dataclass(frozen=True)
class FrameApplied:
    """A frame is on the canvas; dirty says where it changed."""

    seq: int
    dirty: tuple[Rect, ...]
    stats: ReceiverStats


@dataclasses.dataclass(frozen=True)
class CursorChanged:
    """The remote pointer (image None: not known yet; hidden when not visible)."""

    image: CursorImage | None
    x: int
    y: int
    visible: bool


@dataclasses.dataclass(frozen=True)
class MonitorsChanged:
    """The user's monitors (x, y, w, h each) and the shared view (0: all)."""

    monitors: tuple[tuple[int, int, int, int], ...]
    selected: int


@dataclasses.dataclass(frozen=True)
class StatusChanged:
    """Something to tell the technician (an error, sharing stopped...).

    Attributes:
        stopped: the user's side stopped sharing (paused, view taken back);
            it lasts until the next frame.
    """

    text: str
    error: bool = False
    stopped: bool = False


ReceiverEvent = CanvasChanged | FrameApplied | CursorChanged | MonitorsChanged | StatusChanged
Listener = Callable[[ReceiverEvent], None]


@dataclasses.dataclass(frozen=True)
class FrameTiming:
    """When one frame arrived and was applied (the receiver's clock)."""

    seq: int
    arrived_at: float
    applied_at: float
    size: int


class StatsWindow:
    """Sliding one-second statistics (pure: the time is passed in)."""

    def __init__(self, span: float = 1.0) -> None:
        self.span = span
        self._samples: collections.deque[tuple[float, int, float, tuple[str, ...]]] = (
            collections.deque()
        )

    def add(self, now: float, size: int, decode_s: float, encodings: tuple[str, ...]) -> None:
        self._samples.append((now, size, decode_s, encodings))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.span:
            self._samples.popleft()

    def snapshot(self, now: float, **extra: object) -> ReceiverStats:
        self._trim(now)
        samples = self._samples
        counts: collections.Counter[str] = collections.Counter()
        for *_, names in samples:
            counts.update(names)
        n = len(samples)
        encoding = "+".join(name for name, _ in counts.most_common()) if counts else "idle"
        return ReceiverStats(
            fps=n / self.span,
            mbps=sum(s[1] for s in samples) * 8 / 1e6 / self.span,
            decode_ms=(sum(s[2] for s in samples) / n * 1000) if n else 0.0,
            encoding=encoding,
            **extra,  # type: ignore[arg-type]
        )


class ScreenReceiver:
    """Receives, checks, decodes and acknowledges the user's screen frames.

    Args:
        limits: bounds for the untrusted decoder.
        max_backlog_frames / max_backlog_bytes: frames waiting for the decode
            thread beyond these are dropped (and a keyframe requested).
        ack_filter: test hook; an ack is sent only if it returns True.
        clock: monotonic seconds (the same clock as the sharer's makes
            timings comparable on one machine).

    Attributes:
        canvas: the current canvas (None before the first keyframe).
        cursor: the last pointer state.
        monitors: the last MonitorList.
        timings: recent FrameTiming records (bounded).
    """

    def __init__(
        self,
        *,
        limits: DecoderLimits | None = None,
        max_backlog_frames: int = 8,
        max_backlog_bytes: int = 96 * 1024 * 1024,
        ack_filter: Callable[[FrameAck], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        timing_log: int = 4096,
    ) -> None:
        self._decoder = FrameDecoder(limits)
        self._max_frames = max_backlog_frames
        self._max_bytes = max_backlog_bytes
        self._ack_filter = ack_filter
        self._clock = clock
        self._listeners: list[Listener] = []
        self._channel: SecureChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: collections.deque[tuple[ScreenFrame, float] | None] = collections.deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stats_lock = threading.Lock()
        self._window = StatsWindow()
        self._stats = ReceiverStats()
        self._frames = self._errors = self._dropped = 0
        self._latency_ms: float | None = None
        self.canvas: Canvas | None = None
        self.cursor = CursorChanged(None, 0, 0, False)
        self._cursor_images: collections.OrderedDict[int, CursorImage] = collections.OrderedDict()
        self.monitors = MonitorsChanged((), 0)
        self.timings: collections.deque[FrameTiming] = collections.deque(maxlen=timing_log)

    # --- wiring ---

    def add_listener(self, listener: Listener) -> None:
        """Call listener(event) for every receiver event (see the module docstring)."""
        self._listeners.append(listener)

    def attach(self, channel: SecureChannel) -> None:
        """Start receiving from channel, listening to it directly.

        For the receiver on its own (tests, benchmarks); the console's session
        controller calls :meth:`bind` and routes messages to :meth:`receive`.
        """
        self.bind(channel)
        channel.add_listener(self._on_channel_event)

    def bind(self, channel: SecureChannel) -> None:
        """Start the decoder for channel (acks go there); call in the channel's event loop."""
        if self._channel is not None:
            raise RuntimeError("already attached")
        self._loop = asyncio.get_running_loop()
        self._channel = channel
        self._closed = False
        self._thread = threading.Thread(
            target=self._decode_loop, name="deskhand-screen-decode", daemon=True
        )
        self._thread.start()
        self.request_keyframe("The viewer joined.")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the decode thread (any thread). The channel stays open."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._queued_bytes = 0
            self._queue.append(None)
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def stats(self) -> ReceiverStats:
        """The latest statistics (any thread)."""
        with self._stats_lock:
            return self._current_stats(self._clock())

    # --- requests to the sharer (any thread) ---

    def request_keyframe(self, reason: str = "") -> None:
        self._call_in_loop(lambda: self._send(KeyframeRequest(reason[:200])))

    def select_monitor(self, index: int) -> None:
        """Ask to share monitor index (1-based), or 0 for all monitors."""
        self._call_in_loop(lambda: self._send(SelectMonitor(index)))

    def _call_in_loop(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has stopped
                loop.call_soon_threadsafe(callback)

    def _send(self, msg: FrameAck | KeyframeRequest | SelectMonitor) -> None:
        channel = self._channel
        if channel is None or self._closed or not channel.session.is_open:
            return
        with contextlib.suppress(DeskhandError):
            channel.send_nowait(msg)

    # --- loop thread ---

    def _emit(self, event: ReceiverEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("a screen listener failed")

    def _on_channel_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            self.session_ended(event.reason)
        elif isinstance(event, MessageReceived) and isinstance(event.message, SCREEN_MESSAGES):
            self.receive(event.message)

    def session_ended(self, reason: str = "") -> None:
        """The session is over: stop decoding (the session tab says why)."""
        if not self._closed:
            self._emit(StatusChanged(f"Screen sharing ended: {reason}" if reason else _ENDED))
            self.close()

    def receive(self, msg: ScreenMessage) -> None:
        """A screen message from the user's side (routed by the session controller)."""
        if self._closed:
            return
        if isinstance(msg, ScreenFrame):
            self._enqueue(msg)
        elif isinstance(msg, CursorPosition):
            image = self._cursor_images.get(msg.serial, self.cursor.image)
            self.cursor = CursorChanged(image, msg.x, msg.y, msg.visible)
            self._emit(self.cursor)
        elif isinstance(msg, CursorShape):
            self._on_cursor_shape(msg)
        elif isinstance(msg, MonitorList):
            self.monitors = MonitorsChanged(tuple(msg.monitors), msg.selected)
            self._emit(self.monitors)
        else:
            text = _STOP_REASONS.get(msg.reason, msg.reason) or _STOPPED
            self._emit(StatusChanged(text, stopped=True))

    def _on_cursor_shape(self, msg: CursorShape) -> None:
        try:
            image = decode_cursor(msg)
        except ScreenDecodeError as exc:
            self._emit(StatusChanged(f"A pointer image was refused: {exc}", error=True))
            return
        self._cursor_images[image.serial] = image
        while len(self._cursor_images) > 32:
            self._cursor_images.popitem(last=False)
        c = self.cursor
        self.cursor = CursorChanged(image, c.x, c.y, c.visible)
        self._emit(self.cursor)

    def _enqueue(self, frame: ScreenFrame) -> None:
        size = len(frame.data)
        with self._cond:
            if self._closed:
                return
            if len(self._queue) >= self._max_frames or self._queued_bytes + size > self._max_bytes:
                # The decoder cannot keep up (or the sender ignores our acks):
                # drop everything waiting, and start over from a keyframe.
                dropped = len(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
                self._queue.append(None)  # tells the decode thread to reset
                self._dropped += dropped + 1
                self._cond.notify()
                reset = True
            else:
                self._queue.append((frame, self._clock()))
                self._queued_bytes += size
                self._cond.notify()
                reset = False
        if reset:
            self._emit(StatusChanged("The viewer fell behind; catching up.", error=False))
            self.request_keyframe("The viewer fell behind.")

    # --- decode thread ---

    def _decode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.popleft()
                if item is not None:
                    self._queued_bytes -= len(item[0].data)
                closed = self._closed
            if item is None:
                if closed:
                    return
                self._decoder.reset()
                continue
            self._handle(*item)

    def _handle(self, frame: ScreenFrame, arrived_at: float) -> None:
        if self._decoder.needs_keyframe and not frame.keyframe:
            return  # waiting for the keyframe we asked for
        try:
            decoded = self._decoder.decode(frame)
        except ScreenDecodeError as exc:
            with self._stats_lock:
                self._errors += 1
            self._emit(StatusChanged(f"A screen update was refused: {exc}", error=True))
            self.request_keyframe("The last update could not be decoded.")
            return
        new_canvas = False
        canvas = self.canvas
        if canvas is None or (decoded.keyframe and canvas.size != (decoded.width, decoded.height)):
            canvas = Canvas(decoded.width, decoded.height)
            self.canvas = canvas
            new_canvas = True
        if new_canvas:
            self._emit(CanvasChanged(canvas))
        dirty = canvas.apply(decoded)
        applied_at = self._clock()
        self._acknowledge(decoded, applied_at - arrived_at)
        stats = self._record(decoded, arrived_at, applied_at)
        self._emit(FrameApplied(decoded.seq, tuple(dirty), stats))

    def _acknowledge(self, decoded: DecodedFrame, decode_s: float) -> None:
        ack = FrameAck(decoded.seq, int(decode_s * 1e6))
        if self._ack_filter is not None and not self._ack_filter(ack):
            return
        self._call_in_loop(lambda: self._send(ack))

    def _record(self, decoded: DecodedFrame, arrived_at: float, applied_at: float) -> ReceiverStats:
        self.timings.append(FrameTiming(decoded.seq, arrived_at, applied_at, decoded.payload_bytes))
        names = tuple(sorted({ENCODING_NAMES[e] for e in decoded.encodings}))
        with self._stats_lock:
            self._frames += 1
            if decoded.latency_us:
                self._latency_ms = decoded.latency_us / 1000
            self._window.add(applied_at, decoded.payload_bytes, applied_at - arrived_at, names)
            return self._current_stats(applied_at)

    def _current_stats(self, now: float) -> ReceiverStats:
        canvas = self.canvas
        return self._window.snapshot(
            now,
            latency_ms=self._latency_ms,
            width=canvas.width if canvas else 0,
            height=canvas.height if canvas else 0,
            frames=self._frames,
            errors=self._errors,
            dropped=self._dropped,
        )
