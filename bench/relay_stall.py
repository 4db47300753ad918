"""Stalled-pair benchmark: what pairs whose technician never reads cost the relay.

Each pair is a relay-level pair (Register, Claim) where the user side floods
1 MiB Forward frames and the technician side never reads (its socket stops
being read after the first frame). The relay process's RSS growth is then
what it buffers for those pairs. Prints JSON with the RSS before and after,
the growth per pair, and how each flood ended (the relay's close code, or
``"blocked"`` when the relay applied back-pressure and the sender could not
write any more).

Usage: python -m bench.relay_stall [--pairs 4] [--seconds 3] [relay flags...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.relay_process import RelayProcess
from common.protocol.codec import decode_as, encode
from common.protocol.relay_wire import (
    MAX_FRAME,
    Claim,
    Paired,
    PeerJoined,
    Register,
    Registered,
    forward_frame,
)


_FRAME = b"\x00" * (1 << 20)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _pair(url: str) -> tuple[ClientConnection, ClientConnection]:
    kw: dict[str, Any] = {"compression": None, "max_size": None, "ping_interval": None}
    user = await connect(url, **kw)
    # max_queue=1: the client library stops reading its socket after a frame or two.
    tech = await connect(url, max_queue=1, **kw)
    await user.send(encode(Register("stall")))
    registered = decode_as(Registered, await user.recv(decode=False))
    await tech.send(encode(Claim(registered.nameplate, "stall")))
    decode_as(Paired, await tech.recv(decode=False))
    decode_as(PeerJoined, await user.recv(decode=False))
    return user, tech


async def _flood(user: ClientConnection, seconds: float) -> str:
    frame = forward_frame(_FRAME[: MAX_FRAME - 1024])
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                await user.send(frame)
    except TimeoutError:
        return "blocked"
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else 1006}"
    return "flowing"


async def run(args: argparse.Namespace, relay: RelayProcess) -> dict[str, Any]:
    assert relay.proc is not None
    pid = relay.proc.pid
    await asyncio.sleep(0.3)
    before = rss_mib(pid)
    pairs = [await _pair(relay.url) for _ in range(args.pairs)]
    try:
        endings = await asyncio.gather(*(_flood(u, args.seconds) for u, _ in pairs))
        await asyncio.sleep(0.5)
        after = rss_mib(pid)
    finally:
        for user, tech in pairs:
            for ws in (user, tech):
                ws.transport.abort()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.wait_closed(), 1.0)
    return {
        "benchmark": "relay_stall",
        "pairs": args.pairs,
        "relay_args": args.relay_args,
        "rss_before_MiB": round(before, 1),
        "rss_after_MiB": round(after, 1),
        "per_pair_MiB": round((after - before) / args.pairs, 2),
        "floods": endings,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    relay = RelayProcess(
        "--code-claims", "anyone", "--idle-timeout", str(args.seconds + 30),
        "--ping-interval", "3600", *args.relay_args,
    )  # fmt: skip
    await asyncio.to_thread(relay.start)
    try:
        async with asyncio.timeout(args.seconds + 60):
            return await run(args, relay)
    finally:
        await asyncio.to_thread(relay.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each flood")
    parser.add_argument("relay_args", nargs="*", help="extra relay flags (after --)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
