"""ScreenSharer: the asyncio side of sharing the user's screen over a SecureChannel.

Start it once the user has granted "view", stop it when they take it back or
the session ends::

    sharer = ScreenSharer(channel)          # in the channel's event loop
    await sharer.start()                    # sends the monitor list and a keyframe
    ...
    await sharer.stop("The user paused screen sharing.")

What it does, in the loop thread (all heavy work goes to one worker thread):

- listens to X DAMAGE (or polls without it), RandR and XFixes events;
- waits until :class:`~.scheduler.FrameScheduler` says a frame is due (something
  changed, a frame slot is free, the frame-rate cap allows, a poll or a
  lossless refresh falls due), runs :class:`~.pipeline.FramePipeline` in the
  worker as it plans: grab, diff, encode; then sends the frame;
- hands the viewer's FrameAck to the scheduler (pacing and adaptation), and
  handles KeyframeRequest and SelectMonitor;
- polls the pointer and sends CursorPosition (control channel) and
  CursorShape when it changes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Protocol

from client.core.screen.capture import CaptureError, Monitor, MssCapture, ScreenCapture
from client.core.screen.cursor import CursorTracker, shape_from_xfixes
from client.core.screen.damage import DamageAccumulator, X11Events
from client.core.screen.encoder import EncoderSettings
from client.core.screen.pipeline import FrameJob, FramePipeline, Produced
from client.core.screen.policy import MotionSettings
from client.core.screen.scheduler import FrameScheduler
from client.core.screen.stats import ENCODING_NAMES, FrameRecord, SharerStats, mark_acked
from common.errors import DeskhandError, InvalidState
from common.net.channel import SecureChannel
from common.protocol.messages import (
    MAX_MONITORS,
    AppMessage,
    FrameAck,
    KeyframeRequest,
    MonitorList,
    ScreenFrame,
    ScreenStopped,
    SelectMonitor,
)
from common.screen.frame import encoded_size, pack_rects
from common.screen.geometry import Rect
from common.session import MessageReceived, SecureSession, SessionEnded, SessionEvent


__all__ = ["FrameRecord", "ScreenSharer", "SharerConfig", "SharerStats", "follow_channel"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SharerConfig:
    """How the sharer behaves.

    Attributes:
        display: the X display to share (None: $DISPLAY).
        max_fps: frame-rate cap (0: none, the window and the link decide).
        max_window: frames in flight at most (the adapter picks 2-4 by RTT).
        ack_timeout: the shortest wait for an acknowledgement before a frame
            is given up on (its slot is freed).
        refresh_after: seconds a lossy area must be still before its lossless refresh.
        poll_active / poll_idle: polling intervals without X DAMAGE.
        safety_poll: with X DAMAGE, a whole-view check this often anyway (in
            case a change reached the screen without a damage event).
        use_damage: use X DAMAGE when the server has it.
        cursor: send the pointer's position and shape.
        require_shm: refuse to run without MIT-SHM.
        encoder / motion: codec and motion-detection settings.
        frame_log: per-frame records kept for statistics (benchmarks).
    """

    display: str | None = None
    max_fps: float = 60.0
    max_window: int = 3
    ack_timeout: float = 1.0
    refresh_after: float = 0.3
    poll_active: float = 1 / 30
    poll_idle: float = 1 / 5
    safety_poll: float = 3.0
    use_damage: bool = True
    cursor: bool = True
    require_shm: bool = False
    encoder: EncoderSettings = dataclasses.field(default_factory=EncoderSettings)
    motion: MotionSettings = dataclasses.field(default_factory=MotionSettings)
    frame_log: int = 4096


CaptureFactory = Callable[[], ScreenCapture]
EventsFactory = Callable[
    [Callable[[Rect], None], Callable[[], None], Callable[[], None]], X11Events | None
]


class ScreenChannel(Protocol):
    """Where a sharer sends: a SecureChannel, or the session controller's gated port."""

    @property
    def session(self) -> SecureSession: ...
    def send_nowait(self, msg: AppMessage) -> None: ...
    async def send(self, msg: AppMessage) -> None: ...


class ScreenSharer:
    """Shares the user's screen over a channel (one sharing session).

    Args:
        channel: the open session (or a gated port onto it); frames go on
            its SCREEN channel.
        config: see SharerConfig.
        capture_factory: builds the capture backend, in the worker thread
            (default: MssCapture on config.display).
        events_factory: builds the X event source in the loop thread, or
            returns None to poll (default: X11Events on config.display).
        clock: monotonic seconds.

    All methods must be called in the channel's event loop.
    """

    def __init__(
        self,
        channel: ScreenChannel,
        config: SharerConfig | None = None,
        *,
        capture_factory: CaptureFactory | None = None,
        events_factory: EventsFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SharerConfig()
        self._channel = channel
        self._clock = clock
        cfg = self.config
        self._capture_factory: CaptureFactory = capture_factory or (
            lambda: MssCapture(cfg.display, require_shm=cfg.require_shm)
        )
        self._events_factory: EventsFactory = events_factory or self._default_events
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._capture: ScreenCapture | None = None
        self._pipeline: FramePipeline | None = None
        self._events: X11Events | None = None
        self._task: asyncio.Task[None] | None = None
        self._cursor_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running = False
        self._started = False
        self._stopped = False
        self._scheduler = FrameScheduler(
            max_fps=cfg.max_fps,
            max_window=cfg.max_window,
            ack_timeout=cfg.ack_timeout,
            poll_active=cfg.poll_active,
            poll_idle=cfg.poll_idle,
            safety_poll=cfg.safety_poll,
        )
        self._monitors: list[Monitor] = []
        self._selected = 0
        self._view = Rect(0, 0, 0, 0)
        self._damage = DamageAccumulator(0, 0)
        self._cursor_changed = True
        self._cursor = CursorTracker()
        self._error: str | None = None
        self.frames = 0
        self.keyframes = 0
        self.bytes_sent = 0
        self.encodings: collections.Counter[str] = collections.Counter()
        self.frame_log: collections.deque[FrameRecord] = collections.deque(maxlen=cfg.frame_log)

    # --- public API ---

    @property
    def running(self) -> bool:
        return self._running

    @property
    def monitors(self) -> list[Monitor]:
        return list(self._monitors)

    async def start(self) -> None:
        """Open the display, tell the viewer the monitors, and start sending.

        Raises:
            CaptureError: the screen cannot be captured.
            InvalidState: start() was called before (one sharing per ScreenSharer).
        """
        if self._started:
            raise InvalidState("this screen sharer has already been started")
        self._started = True
        loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "deskhand-screen")
        try:
            self._capture = await loop.run_in_executor(self._executor, self._capture_factory)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            self._started = False
            raise
        cfg = self.config
        self._pipeline = FramePipeline(
            self._capture,
            self._clock,
            encoder=cfg.encoder,
            motion=cfg.motion,
            refresh_after=cfg.refresh_after,
        )
        if cfg.use_damage or cfg.cursor:
            try:
                self._events = self._events_factory(
                    self._on_damage, self._on_screen_change, self._on_cursor_change
                )
            except Exception as exc:  # fall back to polling
                logger.warning("no X events (%s): polling the screen instead", exc)
                self._events = None
        if self._events is not None:
            loop.add_reader(self._events.fileno(), self._process_x_events)
        self._running = True
        self._refresh_monitors()
        self._task = asyncio.create_task(self._run(), name="deskhand-screen-sharer")
        if cfg.cursor and self._events is not None:
            self._cursor_task = asyncio.create_task(self._cursor_loop(), name="deskhand-cursor")

    async def stop(self, reason: str = "Screen sharing stopped.") -> None:
        """Stop sending (tells the viewer why), release the display and the worker.

        Call it also after the session has ended (the sharer then stops sending
        by itself, but only stop() releases the X connection and the thread).
        Calling it again does nothing.
        """
        if not self._started or self._stopped:
            return
        self._stopped = True
        was_running, self._running = self._running, False
        for task in (self._task, self._cursor_task):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._task, self._cursor_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._cursor_task = None
        if was_running and self._channel.session.is_open:
            with contextlib.suppress(DeskhandError):
                self._channel.send_nowait(ScreenStopped(reason[:200]))
        loop = asyncio.get_running_loop()
        if self._events is not None:
            loop.remove_reader(self._events.fileno())
            self._events.close()
            self._events = None
        executor, capture = self._executor, self._capture
        self._executor = None
        self._capture = None
        if executor is not None:
            if capture is not None:
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(executor, capture.close)
            await loop.run_in_executor(None, executor.shutdown)

    def request_keyframe(self) -> None:
        """Send the whole view again at the next opportunity."""
        self._scheduler.request_keyframe()
        self._wake.set()

    def select_monitor(self, index: int) -> None:
        """Share monitor index (1-based), or 0 for all monitors."""
        if not 0 <= index <= len(self._monitors):
            raise ValueError(f"no monitor {index}")
        self._selected = index
        self._set_view()
        self._send_monitor_list()
        self.request_keyframe()

    def stats(self) -> SharerStats:
        scheduler = self._scheduler
        flow, adapter, latency = scheduler.flow, scheduler.adapter, scheduler.latency
        bw = adapter.bandwidth
        region = self._pipeline.motion.region if self._pipeline is not None else None
        return SharerStats(
            running=self._running,
            damage="xdamage" if self._damage_mode else "polling",
            shm=bool(getattr(self._capture, "shm", False)),
            frames=self.frames,
            keyframes=self.keyframes,
            bytes_sent=self.bytes_sent,
            lost=flow.lost,
            in_flight=flow.in_flight,
            rtt_ms=None if flow.srtt is None else flow.srtt * 1000,
            latency_ms=None if latency is None else latency * 1000,
            bandwidth_mbps=None if bw is None else bw * 8 / 1e6,
            quality_level=adapter.level,
            motion_region=None if region is None else tuple(region),  # type: ignore[arg-type]
            view=tuple(self._view),  # type: ignore[arg-type]
            selected=self._selected,
            encodings=dict(self.encodings),
            error=self._error,
        )

    # --- events (loop thread) ---

    def _stopping(self) -> bool:
        return not self._running

    @property
    def _damage_mode(self) -> bool:
        return self.config.use_damage and self._events is not None and self._events.has_damage

    def _default_events(
        self,
        on_damage: Callable[[Rect], None],
        on_screen: Callable[[], None],
        on_cursor: Callable[[], None],
    ) -> X11Events | None:
        display = self.config.display or os.environ.get("DISPLAY")
        if not display:
            return None
        return X11Events(display, on_damage, on_screen, on_cursor)

    def _process_x_events(self) -> None:
        if self._events is None:
            return
        try:
            self._events.process()
        except Exception as exc:  # the X connection broke
            logger.warning("X event connection failed (%s): polling instead", exc)
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._events.fileno())
            self._events.close()
            self._events = None
            self._wake.set()

    def _on_damage(self, rect: Rect) -> None:
        view = self._view
        local = rect.intersect(view)
        if not local.empty:
            self._damage.add(local.translate(-view.x, -view.y))
            self._wake.set()

    def _on_screen_change(self) -> None:
        self._scheduler.note_screen_change()
        self._wake.set()

    def _on_cursor_change(self) -> None:
        self._cursor_changed = True

    def receive(self, msg: FrameAck | KeyframeRequest | SelectMonitor) -> None:
        """A screen message from the viewer (routed here by the session controller)."""
        if not self._running:
            return
        if isinstance(msg, FrameAck):
            now = self._clock()
            for seq in self._scheduler.on_ack(msg.seq, now):
                mark_acked(self.frame_log, seq, now)
            self._wake.set()
        elif isinstance(msg, KeyframeRequest):
            self._cursor.forget()
            self._cursor_changed = True
            self._send_monitor_list()
            self.request_keyframe()
        elif msg.index <= len(self._monitors):
            self.select_monitor(msg.index)

    def session_ended(self) -> None:
        """The session is over: stop sending at once (stop() still frees the display)."""
        self._running = False
        self._wake.set()

    # --- monitors and views ---

    def _refresh_monitors(self) -> None:
        assert self._capture is not None
        self._monitors = self._capture.monitors()[:MAX_MONITORS]
        if self._selected > len(self._monitors):
            self._selected = 0
        self._set_view()
        self._send_monitor_list()

    def _set_view(self) -> None:
        assert self._capture is not None
        if self._selected == 0:
            view = self._capture.desktop()
        else:
            view = self._monitors[self._selected - 1].rect
        if view != self._view:
            self._view = view
            self._damage = DamageAccumulator(view.w, view.h)
        self._cursor.forget()

    def _send_monitor_list(self) -> None:
        geometry: list[int] = []
        for monitor in self._monitors:
            geometry += monitor.rect
        with contextlib.suppress(DeskhandError):
            self._channel.send_nowait(MonitorList(tuple(geometry), self._selected))

    # --- the frame loop ---

    async def _run(self) -> None:
        try:
            while self._running:
                await self._wait_until_due()
                if self._stopping():
                    return
                if self._scheduler.take_screen_change():
                    await self._reopen()
                await self._one_frame()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error = f"Screen sharing failed: {exc}"
            logger.exception("screen sharing failed")
            self._running = False
            with contextlib.suppress(DeskhandError):
                self._channel.send_nowait(ScreenStopped(self._error[:200]))

    async def _wait_until_due(self) -> None:
        assert self._pipeline is not None
        while self._running:
            wait = self._scheduler.wait(
                self._clock(),
                damage=self._damage.pending,
                refresh_at=self._pipeline.next_refresh(),
            )
            if wait.go:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait.timeout):
                    await self._wake.wait()

    async def _reopen(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._capture is not None and self._executor is not None
        await loop.run_in_executor(self._executor, self._capture.reopen)
        self._refresh_monitors()
        self.request_keyframe()

    async def _one_frame(self) -> None:
        assert self._pipeline is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        damage = self._damage.take()
        plan = self._scheduler.begin(
            self._clock(),
            damage_mode=self._damage_mode,
            damage=bool(damage),
            refresh_at=self._pipeline.next_refresh(),
        )
        if plan is None:
            return
        job = FrameJob(self._view, None if plan.full else damage, plan.keyframe, plan.quality)
        try:
            produced = await loop.run_in_executor(self._executor, self._pipeline.produce, job)
        except CaptureError as exc:
            # Most often the screen changed size under us: reopen and start over.
            logger.info("grab failed (%s): reopening the display", exc)
            self._scheduler.capture_failed()
            return
        if produced is None:
            self._scheduler.nothing_new()
            return
        await self._send(produced)

    async def _send(self, produced: Produced) -> None:
        header = self._scheduler.frame_ready(produced.captured_at)
        fields, data = pack_rects(produced.rects)
        frame = ScreenFrame(
            header.seq,
            produced.keyframe,
            produced.width,
            produced.height,
            header.latency_us,
            fields,
            data,
        )
        size = encoded_size(frame)  # the message, headers and all
        start = self._clock()
        self._scheduler.sending(size, start)
        await self._channel.send(frame)
        sent_at = self._clock()
        self._scheduler.sent(sent_at)
        self.frames += 1
        self.keyframes += produced.keyframe
        self.bytes_sent += size
        for encoding, count in produced.encodings.items():
            self.encodings[ENCODING_NAMES[encoding]] += count
        t = produced.times
        self.frame_log.append(
            FrameRecord(
                header.seq,
                produced.captured_at,
                sent_at,
                size,
                produced.keyframe,
                t.grab,
                t.diff,
                t.encode,
                sent_at - start,
                tuple(sorted(ENCODING_NAMES[e] for e in produced.encodings)),
            )
        )

    # --- the pointer ---

    async def _cursor_loop(self) -> None:
        while self._running:
            events = self._events
            if events is None:
                return
            now = self._clock()
            try:
                if self._cursor_changed and events.has_cursor:
                    self._cursor_changed = False
                    shape = shape_from_xfixes(events.cursor_image())
                    self._cursor.serial = shape.serial
                    await self._channel.send(shape)
                x, y = events.query_pointer()
                events.process()  # Xlib may have read events while waiting for replies
            except DeskhandError:
                return
            except Exception as exc:  # X went away: no more cursor
                logger.info("pointer tracking stopped: %s", exc)
                return
            msg = self._cursor.position(x, y, self._view, now)
            if msg is not None:
                with contextlib.suppress(DeskhandError):
                    self._channel.send_nowait(msg)
            await asyncio.sleep(self._cursor.interval(now))


def follow_channel(channel: SecureChannel, sharer: ScreenSharer) -> None:
    """Feed a sharer from a channel directly, without a session controller.

    For benchmarks and tests of the screen pipeline alone; the apps route
    through their session controller instead.
    """

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            sharer.session_ended()
        elif isinstance(event, MessageReceived) and isinstance(
            event.message, FrameAck | KeyframeRequest | SelectMonitor
        ):
            sharer.receive(event.message)

    channel.add_listener(on_event)
