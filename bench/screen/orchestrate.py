"""The orchestrator: starts every process, measures each scene and mode, and ends them by pid."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.screen.common import (
    CONTENT,
    HEIGHT,
    OTHER_CORE,
    USER_CORE,
    WIDTH,
    Child,
    XServer,
    cpu_seconds,
    pin,
)
from bench.screen.report import summarize, targets
from bench.screen.vnc import free_port, measure_vnc


# --- the orchestrator -------------------------------------------------------------------


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            out[name] = cpu_seconds(pid)
    return out


def measure_ours(
    user: Child,
    viewer: Child,
    content: Child,
    mode: str,
    scene: str,
    seconds: float,
    warmup: float,
    others: dict[str, int],
) -> dict[str, Any]:
    grab = user.ask("grabrate 1.0") if mode == "synthetic" else None
    if mode == "synthetic":
        content.ask("scene static")
    else:
        content.ask("hz 0" if mode == "fastest" else "hz 30")
        content.ask(f"scene {scene}")
    user.ask(f"share {mode} {scene}")
    time.sleep(warmup)
    user.ask("mark")
    viewer.ask("reset")
    ticks0 = content.ask("stats")["ticks"]
    pids = {"user": user.pid, "viewer": viewer.pid, "content": content.pid, **others}
    cpu0 = cpu_of(pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu1 = cpu_of(pids)
    elapsed = time.monotonic() - t0
    cpu = cpu1["user"] - cpu0["user"]
    ticks = content.ask("stats")["ticks"] - ticks0
    stats_user = user.ask("stats")
    stats_viewer = viewer.ask("stats")
    user.ask("stop")
    content.ask("hz 30")
    if grab is not None:
        # G before and after the run: the machine's load drifts (performance.md: +-30%).
        after = user.ask("grabrate 1.0")
        grab = {
            "G": round((grab["G"] + after["G"]) / 2, 1),
            "G_before_after": [grab["G"], after["G"]],
            "grab_copy_ms": grab["grab_copy_ms"],
        }
    result = summarize(stats_user, stats_viewer, elapsed, cpu, grab)
    result["cpu_percent_by_process"] = {
        name: round(100 * (cpu1[name] - cpu0[name]) / elapsed, 1) for name in cpu1 if name in cpu0
    }
    if mode != "synthetic":
        result["content_changes_per_s"] = round(ticks / elapsed, 1)
    return result


@contextlib.contextmanager
def started(items: list[Any]) -> Iterator[list[Any]]:
    try:
        yield items
    finally:
        for item in reversed(items):
            with contextlib.suppress(Exception):
                item.stop()


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    from bench.relay_process import RelayProcess
    from common.crypto.identity import OrgKey, TechnicianCredential
    from common.keyfiles import save_org_public_key, save_technician_credential

    pin(0, OTHER_CORE)  # this process: with the relay and the viewer
    load_before = os.getloadavg()
    scenes = [s for s in args.scenes.split(",") if s]
    vnc_available = shutil.which("x11vnc") is not None and not args.no_vnc
    tmp = Path(tempfile.mkdtemp(prefix="deskhand-bench-"))
    org = OrgKey.generate()
    save_org_public_key(tmp / "org.pub", org.public_bytes)
    private = TechnicianCredential.generate_key()
    now = int(time.time())
    cert = org.issue(
        serial=1,
        tech_id="bench",
        name="Bench Technician",
        org="Bench IT",
        public_key=private.public_key().public_bytes_raw(),
        roles=("technician",),
        not_before=now - 60,
        not_after=now + 86400,
    )
    (tmp / "tech").mkdir()
    save_technician_credential(
        tmp / "tech", TechnicianCredential(private, cert, org.sign_revocations([], now))
    )

    results: dict[str, Any] = {}
    with started([]) as procs:
        xserver = XServer(WIDTH, HEIGHT)
        procs.append(xserver)
        env = dict(os.environ, DISPLAY=xserver.display, QT_QPA_PLATFORM="xcb", PYTHONUNBUFFERED="1")
        env.pop("WAYLAND_DISPLAY", None)
        content = Child(
            "content",
            [sys.executable, str(CONTENT), "--scene", "static", "--hz", "30"],
            env,
            OTHER_CORE,
        )
        procs.append(content)
        layout = content.read(30)
        relay = RelayProcess("--code-claims", "anyone")
        relay.start()
        procs.append(relay)
        if relay.proc is not None:
            pin(relay.proc.pid, OTHER_CORE)
        me = [sys.executable, "-m", "bench.screen"]
        user = Child(
            "user",
            [
                *me,
                "--role",
                "user",
                "--relay",
                relay.url,
                "--org",
                str(tmp / "org.pub"),
                "--display",
                xserver.display,
                "--layout",
                json.dumps(layout),
            ],
            env,
            USER_CORE,
        )
        procs.append(user)
        code = user.read(30)["code"]
        viewer_env = dict(env, QT_QPA_PLATFORM="offscreen")
        viewer = Child(
            "viewer",
            [
                *me,
                "--role",
                "viewer",
                "--relay",
                relay.url,
                "--tech",
                str(tmp / "tech"),
                "--code",
                code,
            ],
            viewer_env,
            OTHER_CORE,
        )
        procs.append(viewer)
        viewer.read(60)
        user.read(30)
        vnc: subprocess.Popen[bytes] | None = None
        port = 0
        if vnc_available:
            port = free_port()
            vnc = subprocess.Popen(
                [
                    "x11vnc",
                    "-display",
                    xserver.display,
                    "-localhost",
                    "-nopw",
                    "-shared",
                    "-forever",
                    "-ncache",
                    "0",
                    "-rfbport",
                    str(port),
                    "-quiet",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            pin(vnc.pid, USER_CORE)

            class _Vnc:
                def stop(self) -> None:
                    assert vnc is not None
                    if vnc.poll() is None:
                        vnc.send_signal(signal.SIGTERM)
                        try:
                            vnc.wait(5)
                        except subprocess.TimeoutExpired:
                            vnc.kill()
                            vnc.wait(5)

            procs.append(_Vnc())
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=1),
                ):
                    break
                time.sleep(0.2)
        others = {"xvfb": xserver.proc.pid}
        if relay.proc is not None:
            others["relay"] = relay.proc.pid
        for scene in scenes:
            runs: dict[str, Any] = {}
            if scene != "static":
                runs["synthetic"] = measure_ours(
                    user, viewer, content, "synthetic", scene, args.seconds, args.warmup, others
                )
            runs["real"] = measure_ours(
                user, viewer, content, "real", scene, args.seconds, args.warmup, others
            )
            if scene == "typing":
                runs["fastest"] = measure_ours(
                    user, viewer, content, "fastest", scene, args.seconds, args.warmup, others
                )
            if vnc is not None:
                runs["x11vnc"] = measure_vnc(
                    port, vnc.pid, content, scene, args.seconds, args.warmup
                )
            content.ask("scene static")
            results[scene] = runs
            print(f"{scene}: done", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            user.ask("quit", timeout=5)
        with contextlib.suppress(Exception):
            viewer.ask("quit", timeout=5)
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "benchmark": "screen",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "screen": f"{WIDTH}x{HEIGHT}",
        "seconds_per_run": args.seconds,
        "load_average_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "layout": "user process on core 0; Xvfb, content, relay, viewer on core 1",
        "x11vnc": "x11vnc 0.9.16 -ncache 0 (defaults -wait 20 -defer 20)"
        if vnc_available
        else "not installed",
        "scenes": results,
        "targets": targets(results),
    }
