"""The user process: a UserClient sharing its screen, driven by commands on stdin."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.screen.common import HEIGHT, WIDTH, emit, ms
from bench.screen.scenes import InjectingCapture, SyntheticEvents


# --- the user process ---------------------------------------------------------------


def synthetic_sharer(channel: Any, display: str, scene: str, layout: dict[str, Any]) -> Any:
    """A ScreenSharer on an InjectingCapture, with damage from SyntheticEvents."""
    from client.core.screen.sharer import ScreenSharer, SharerConfig, follow_channel

    injecting = InjectingCapture(display, scene, layout)

    def events(on_damage: Any, on_screen: Any, on_cursor: Any) -> Any:
        injecting.events = SyntheticEvents(on_damage, injecting.region)
        return injecting.events

    config = SharerConfig(display=display, max_fps=0, cursor=False)
    sharer = ScreenSharer(channel, config, capture_factory=lambda: injecting, events_factory=events)
    follow_channel(channel, sharer)
    return sharer


async def user_role(args: argparse.Namespace) -> None:
    from client.core.screen.capture import MssCapture
    from client.core.screen.sharer import ScreenSharer, SharerConfig, follow_channel
    from client.core.session import UserClient
    from common.crypto.identity import OrgTrust
    from common.keyfiles import load_org_public_key
    from common.net.pairing import ConsentRequest
    from common.screen.geometry import Rect

    async def allow(request: ConsentRequest) -> tuple[str, ...]:
        return ("view",)

    trust = OrgTrust(load_org_public_key(Path(args.org)))
    user = UserClient(args.relay, trust, allow)
    code = await user.request_help()
    emit({"code": code.display})
    channel = await user.wait_for_technician()
    emit({"paired": True})
    layout = json.loads(args.layout)
    sharer: ScreenSharer | None = None
    mark = 0
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def stop() -> None:
        nonlocal sharer
        if sharer is not None:
            await sharer.stop("benchmark")
            sharer = None

    while True:
        line = (await reader.readline()).decode()
        if not line:
            break
        words = line.split()
        if words[0] == "grabrate":
            await stop()
            capture = MssCapture(args.display, require_shm=True)
            full = Rect(0, 0, WIDTH, HEIGHT)
            buffer = np.empty((HEIGHT, WIDTH, 4), np.uint8)
            times = []
            end = time.monotonic() + float(words[1])
            while time.monotonic() < end:
                t0 = time.perf_counter()
                np.copyto(buffer, capture.grab(full))
                times.append(time.perf_counter() - t0)
            capture.close()
            emit({"G": round(len(times) / float(words[1]), 1), "grab_copy_ms": ms(times)})
        elif words[0] == "share":
            await stop()
            mode, scene = words[1], words[2]
            if mode == "synthetic":
                sharer = synthetic_sharer(channel, args.display, scene, layout)
            else:
                max_fps = 0.0 if mode == "fastest" else 60.0
                config = SharerConfig(display=args.display, require_shm=True, max_fps=max_fps)
                sharer = ScreenSharer(channel, config)
                follow_channel(channel, sharer)  # a stopped sharer ignores what follows
            await sharer.start()
            emit({"sharing": mode, "scene": scene})
        elif words[0] == "mark":
            mark = sharer.frames if sharer is not None else 0
            emit({"mark": mark})
        elif words[0] == "stats":
            records = []
            if sharer is not None:
                records = [
                    [
                        r.seq,
                        r.captured_at,
                        r.sent_at,
                        r.size,
                        r.grab,
                        r.diff,
                        r.encode,
                        r.send,
                        list(r.encodings),
                        r.keyframe,
                    ]
                    for r in sharer.frame_log
                    if r.seq > mark
                ]
                st = sharer.stats()
                emit(
                    {
                        "frames": records,
                        "quality_level": st.quality_level,
                        "rtt_ms": st.rtt_ms,
                        "lost": st.lost,
                        "damage": st.damage,
                        "shm": st.shm,
                        "motion_region": st.motion_region,
                    }
                )
            else:
                emit({"frames": []})
        elif words[0] == "stop":
            await stop()
            emit({"stopped": True})
        elif words[0] == "quit":
            break
    await stop()
    await user.cancel()
