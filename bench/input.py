"""Remote-control benchmark: technician input to an X client on the user's display.

Everything runs on this machine, through a real relay process on loopback:

- an Xvfb of its own (1920x1080) and the input probe window
  (tests/x11_probe.py) in a separate process on it;
- the relay (``python -m relay``) as a process;
- the technician core and the user core in this process, paired by code;
  the user core injects with :class:`~client.core.control.service.ControlService`
  (XTest, with the local-input monitor running, as in the app).

It prints JSON with:

- ``latency``: p50/p95 from the technician's event (the moment the core
  sends it) to the probe window receiving it, for pointer moves and key
  presses, on CLOCK_MONOTONIC shared by both processes;
- ``drag``: a fast drag generated at ``--rate`` events/s for ``--seconds``:
  events the technician generated per second, input messages per second
  that reached the user's core, and pointer moves the window saw; once with
  the default coalescing and once without it, for comparison.

Usage: python -m bench.input [--samples 150] [--rate 1000] [--seconds 2]

Every process it starts (Xvfb, relay, probe) is stopped by its pid; the whole
run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from bench.pairing import make_credentials, percentile
from bench.relay_process import RelayProcess
from client.core.authority import CapabilityAuthority
from client.core.control.gate import GateConfig, GateEvent
from client.core.control.service import ControlService
from client.core.session import UserClient
from client.core.session_controller import UserSessionController
from common.net.channel import SecureChannel
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.session import MessageReceived, SessionEvent
from technician.core.input import Rect, RemoteInput, ViewTransform
from technician.core.session import TechnicianClient


PROBE = Path(__file__).resolve().parent.parent / "tests" / "x11_probe.py"
WIDTH, HEIGHT = 1920, 1080


@contextlib.contextmanager
def xvfb(timeout: float = 10.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private Xvfb on a free display; yields (":N", process) and stops it by pid."""
    executable = shutil.which("Xvfb")
    if executable is None:
        raise SystemExit("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            executable,
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{WIDTH}x{HEIGHT}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
        start_new_session=True,
    )
    os.close(write_fd)
    try:
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.1)
            if ready:
                chunk = os.read(read_fd, 64)
                if not chunk:
                    break
                data += chunk
        number = data.decode().strip()
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start")
        yield f":{number}", proc
    finally:
        os.close(read_fd)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Probe:
    """The probe window process; collects its events with their timestamps."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.events.append(json.loads(line))
            self.changed.set()

    async def wait(self, count: int, kind: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while sum(e["event"] == kind for e in self.events) < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def probe_window(display: str) -> AsyncIterator[Probe]:
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    env.pop("WAYLAND_DISPLAY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        "--geometry",
        f"0,0,{WIDTH},{HEIGHT}",
        "--lifetime",
        "300",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    probe = Probe(proc)
    try:
        await probe.wait(1, "ready", 30)
        probe.events.clear()
        yield probe
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        probe.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe.reader


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "n": len(ms),
    }


async def pair(relay_url: str) -> tuple[SecureChannel, SecureChannel]:
    trust, credential = make_credentials()

    async def consent(request: ConsentRequest) -> tuple[str, ...]:
        return ("view", "control")

    user = UserClient(relay_url, trust, consent)
    tech = TechnicianClient(relay_url, credential)
    code = await user.request_help()
    return await asyncio.gather(
        user.wait_for_technician(), tech.connect(code.display, requested=("view", "control"))
    )


async def measure_latency(
    probe: Probe, remote: RemoteInput, tech: SecureChannel, samples: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    # Pointer moves: each to its own pixel, so the window's report names the sample.
    sent_at: dict[tuple[int, int], float] = {}
    for i in range(samples):
        x, y = 100 + i * 7 % 1700, 200 + i * 3 % 800
        remote.pointer_move(x + 0.5, y + 0.5, loop.time())
        for msg in remote.take(loop.time() + 1):
            sent_at[(x, y)] = time.monotonic()
            tech.send_nowait(msg)
        await asyncio.sleep(0.01)
    await probe.wait(samples, "move", 20)
    moves = [
        e["t"] - sent_at[(e["x"], e["y"])]
        for e in probe.events
        if e["event"] == "move" and (e["x"], e["y"]) in sent_at
    ]
    # Key presses: letters in turn; the n-th press the window sees is the n-th sent.
    probe.events.clear()
    pressed_at: list[float] = []
    for i in range(samples):
        keysym = ord("a") + i % 26
        pressed_at.append(time.monotonic())
        tech.send_nowait(m.KeyEvent(keysym, True, 0))
        tech.send_nowait(m.KeyEvent(keysym, False, 0))
        await asyncio.sleep(0.01)
    await probe.wait(samples, "key", 20)
    presses = [e for e in probe.events if e["event"] == "key"]
    typed = "".join(e["text"] for e in presses)
    expected = "".join(chr(ord("a") + i % 26) for i in range(samples))
    if typed != expected:
        raise RuntimeError(f"the window saw {typed!r}, not {expected!r}")
    keys = [e["t"] - sent for e, sent in zip(presses, pressed_at, strict=True)]
    return {"pointer_move": summary_ms(moves), "key_press": summary_ms(keys)}


async def measure_drag(
    probe: Probe,
    tech: SecureChannel,
    received: list[float],
    *,
    rate: float,
    seconds: float,
    min_move_interval: float,
) -> dict[str, Any]:
    """A straight drag across the screen with the button held."""
    loop = asyncio.get_running_loop()
    remote = RemoteInput(min_move_interval=min_move_interval)
    remote.transform = ViewTransform.fit(Rect(0, 0, WIDTH, HEIGHT), WIDTH, HEIGHT)
    probe.events.clear()
    received.clear()
    total = int(rate * seconds)
    start = loop.time()
    remote.pointer_button(1, True, 10.5, 10.5, start)
    sent_messages = 0
    generated = 0
    while generated < total:
        now = loop.time()
        due = min(total, int((now - start) * rate) + 1)
        while generated < due:
            generated += 1
            # A diagonal that visits a new pixel on every event.
            x = 10 + generated * (WIDTH - 20) / total
            y = 10 + generated * (HEIGHT - 20) / total
            remote.pointer_move(x, y, start + generated / rate)
        for msg in remote.take(now):
            tech.send_nowait(msg)
            sent_messages += 1
        await asyncio.sleep(0.001)
    remote.pointer_button(1, False, WIDTH - 10.5, HEIGHT - 10.5, loop.time())
    for msg in remote.take(loop.time() + 1):
        tech.send_nowait(msg)
        sent_messages += 1
    elapsed = loop.time() - start
    await probe.wait(1, "release", 20)
    arrivals = sorted(received)
    span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else elapsed
    seen_moves = sum(e["event"] == "move" for e in probe.events)
    return {
        "min_move_interval_ms": round(min_move_interval * 1000, 3),
        "seconds": round(elapsed, 3),
        "events_generated": generated,
        "events_per_s": round(generated / elapsed, 1),
        "messages_sent": sent_messages,
        "messages_at_user": len(received),
        "messages_per_s_at_user": round(len(received) / max(span, 1e-9), 1),
        "moves_seen_by_window": seen_moves,
        "reduction": round(generated / max(1, len(received)), 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with xvfb() as (display, xvfb_proc), RelayProcess("--code-claims", "anyone") as relay:
        async with probe_window(display) as probe:
            user_channel, tech_channel = await pair(relay.url)
            received: list[float] = []

            def count_input(event: SessionEvent) -> None:
                if isinstance(event, MessageReceived) and event.message.CHANNEL is Channel.INPUT:
                    received.append(time.monotonic())

            user_channel.add_listener(count_input)
            services: list[ControlService] = []

            def control_factory(
                channel: SecureChannel,
                authority: CapabilityAuthority,
                *,
                on_event: Callable[[GateEvent], None] | None,
                on_stop_requested: Callable[[], None] | None,
            ) -> ControlService:
                service = ControlService.for_x11(
                    channel,
                    authority,
                    display=display,
                    config=GateConfig(user_pause=1.0),
                    restore_delay=0.1,
                    on_event=on_event,
                    on_stop_requested=on_stop_requested,
                )
                services.append(service)
                return service

            # As in the app: the session controller admits the input and routes it.
            session = UserSessionController(
                user_channel, lambda _event: None, control_factory=control_factory
            )
            session.start()
            if not services:
                raise RuntimeError("remote control could not start on the display")
            service = services[0]
            try:
                remote = RemoteInput()
                remote.transform = ViewTransform.fit(Rect(0, 0, WIDTH, HEIGHT), WIDTH, HEIGHT)
                latency = await measure_latency(probe, remote, tech_channel, args.samples)
                coalesced = await measure_drag(
                    probe,
                    tech_channel,
                    received,
                    rate=args.rate,
                    seconds=args.seconds,
                    min_move_interval=1 / 120,
                )
                uncoalesced = await measure_drag(
                    probe,
                    tech_channel,
                    received,
                    rate=args.rate,
                    seconds=args.seconds,
                    min_move_interval=0.0,
                )
            finally:
                await session.stop()
                await tech_channel.wait_closed()
                async with asyncio.timeout(10):
                    await service.finished.wait()
        return {
            "bench": "input",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "display": f"Xvfb {WIDTH}x{HEIGHT} (pid {xvfb_proc.pid})",
            "relay": f"python -m relay on 127.0.0.1:{relay.port}",
            "latency": latency,
            "drag": {"coalesced": coalesced, "not_coalesced": uncoalesced},
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--rate", type=float, default=1000.0, help="drag events per second")
    parser.add_argument("--seconds", type=float, default=2.0, help="drag duration")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await run(args)

    result = asyncio.run(bounded())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
