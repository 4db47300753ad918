"""Load benchmark: N concurrent paired sessions through one relay process on loopback.

Every session is a relay-level pair (a user Register, a technician Claim)
exchanging opaque Forward frames: the relay's own work (routing, framing,
back-pressure) is what is measured, not RA1 or the record layer (see
``bench.pairing`` for those). Prints JSON with:

- ``throughput``: MB/s of Forward messages the relay passed on while every
  session sends ``--frame-kib`` frames one way for ``--seconds``, and the
  relay's CPU time per forwarded MB (utime + stime from /proc/<pid>/stat);
- ``latency``: round trips of a 64-byte frame, all sessions at once, through
  the relay and over a direct websocket between the same kind of peers in
  the same process, and the relay's added latency (p50 and p95 differences);
- ``memory``: the relay's RSS growth (VmRSS in /proc/<pid>/status) per idle
  connection, after opening the 2N connections.

The load generator is one Python process on the same machine, so on a small
machine it competes with the relay for CPU: the MB/s figure is a floor, the
CPU-per-MB figure is the relay's own. Every phase is bounded by ``--budget``.

Usage: python -m bench.relay_load [--sessions 200] [--seconds 5] [--frame-kib 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

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


MB = 1_000_000
_KW: dict[str, Any] = {"compression": None, "max_size": MAX_FRAME, "ping_interval": None}
_CONNECT_BATCH = 50


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "n": len(ms),
    }


# --- the relay process through /proc ---------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        # The command name may hold spaces: fields resume after the last ")".
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


# --- sessions ------------------------------------------------------------------------


class Session:
    def __init__(self, user: ClientConnection, tech: ClientConnection) -> None:
        self.user = user
        self.tech = tech

    async def close(self) -> None:
        await asyncio.gather(self.user.close(), self.tech.close(), return_exceptions=True)


async def open_pair(url: str) -> Session:
    user = await connect(url, **_KW)
    await user.send(encode(Register("bench")))
    registered = decode_as(Registered, await user.recv(decode=False))
    tech = await connect(url, **_KW)
    await tech.send(encode(Claim(registered.nameplate, "bench")))
    decode_as(Paired, await tech.recv(decode=False))
    decode_as(PeerJoined, await user.recv(decode=False))
    return Session(user, tech)


async def open_direct(port: int) -> Session:
    """A user connected straight to a 'technician' websocket served in this process."""
    user = await connect(f"ws://127.0.0.1:{port}/", **_KW)
    return Session(user, user)


async def open_all(factory: Any, n: int) -> list[Session]:
    sessions: list[Session] = []
    for start in range(0, n, _CONNECT_BATCH):
        batch = min(_CONNECT_BATCH, n - start)
        sessions += await asyncio.gather(*(factory() for _ in range(batch)))
    return sessions


async def ping_pong(sessions: list[Session], rounds: int, direct: bool) -> list[float]:
    """Round trips of a 64-byte frame user -> peer -> user, every session at once."""
    frame = forward_frame(b"x" * 61)  # 64 bytes on the wire with the Forward header
    rtts: list[float] = []

    async def echo(session: Session) -> None:
        for _ in range(rounds):
            await session.tech.send(await session.tech.recv(decode=False))

    async def one(session: Session) -> None:
        echoer = None if direct else asyncio.create_task(echo(session))
        for _ in range(rounds):
            start = time.perf_counter()
            await session.user.send(frame)
            await session.user.recv(decode=False)
            rtts.append(time.perf_counter() - start)
        if echoer is not None:
            await echoer

    await asyncio.gather(*(one(s) for s in sessions))
    return rtts


async def flood(sessions: list[Session], seconds: float, frame_size: int) -> tuple[int, float]:
    """Every user sends frames to its technician for ``seconds``; bytes received and time."""
    frame = forward_frame(os.urandom(frame_size))
    stop = time.perf_counter() + seconds
    received = 0

    async def send(session: Session) -> None:
        while time.perf_counter() < stop:
            await session.user.send(frame)
        await session.user.send(forward_frame(b"end"))

    async def receive(session: Session) -> None:
        nonlocal received
        while True:
            data = await session.tech.recv(decode=False)
            if len(data) < 16:
                return
            received += len(data)

    start = time.perf_counter()
    await asyncio.gather(*(send(s) for s in sessions), *(receive(s) for s in sessions))
    return received, time.perf_counter() - start


# --- the run ---------------------------------------------------------------------------


async def run(args: argparse.Namespace, relay: RelayProcess) -> dict[str, Any]:
    assert relay.proc is not None
    pid = relay.proc.pid
    n = args.sessions
    warm = await open_pair(relay.url)
    await warm.close()
    await asyncio.sleep(0.5)
    rss_before = rss_bytes(pid)

    sessions = await open_all(lambda: open_pair(relay.url), n)
    await asyncio.sleep(1.0)
    rss_idle = rss_bytes(pid)
    connections = 2 * n

    relay_rtts = await ping_pong(sessions, args.rounds, direct=False)

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, **_KW) as direct_server:
        port = direct_server.sockets[0].getsockname()[1]
        direct = await open_all(lambda: open_direct(port), n)
        direct_rtts = await ping_pong(direct, args.rounds, direct=True)
        for session in direct:
            await session.close()

    cpu_before = cpu_seconds(pid)
    received, elapsed = await flood(sessions, args.seconds, args.frame_kib * 1024)
    cpu_used = cpu_seconds(pid) - cpu_before
    await asyncio.gather(*(s.close() for s in sessions))

    relay_ms, direct_ms = summary_ms(relay_rtts), summary_ms(direct_rtts)
    forwarded_mb = received / MB
    return {
        "benchmark": "relay_load",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "sessions": n,
        "connections": connections,
        "throughput": {
            "seconds": round(elapsed, 3),
            "frame_bytes": args.frame_kib * 1024,
            "forwarded_MB": round(forwarded_mb, 1),
            "forwarded_MBps": round(forwarded_mb / elapsed, 1),
            "relay_cpu_seconds": round(cpu_used, 3),
            "relay_cpu_ms_per_MB": round(1000 * cpu_used / forwarded_mb, 3) if received else None,
        },
        "latency": {
            "frame_bytes": 64,
            "rounds_per_session": args.rounds,
            "through_relay": relay_ms,
            "direct_websocket": direct_ms,
            "added_p50_ms": round(relay_ms["p50_ms"] - direct_ms["p50_ms"], 3),
            "added_p95_ms": round(relay_ms["p95_ms"] - direct_ms["p95_ms"], 3),
        },
        "memory": {
            "relay_rss_before_MB": round(rss_before / MB, 1),
            "relay_rss_idle_MB": round(rss_idle / MB, 1),
            "per_idle_connection_KiB": round((rss_idle - rss_before) / connections / 1024, 1),
        },
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    limit = str(4 * args.sessions + 16)
    relay = RelayProcess(
        "--max-connections", limit,
        "--max-connections-per-address", limit,
        "--address-rate", str(100 * args.sessions + 100),
        "--registrations-per-window", limit,
        "--address-claims-per-window", limit,
        "--max-waiting-per-address", limit,
        "--max-handshakes-per-address", limit,
        "--code-claims", "anyone",
        "--idle-timeout", str(max(60, 4 * args.seconds)),
        "--ping-interval", "3600",
    )  # fmt: skip
    await asyncio.to_thread(relay.start)
    try:
        async with asyncio.timeout(args.budget):
            return await run(args, relay)
    finally:
        await asyncio.to_thread(relay.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the flood")
    parser.add_argument("--frame-kib", type=int, default=64, help="flood frame size")
    parser.add_argument("--rounds", type=int, default=20, help="round trips per session")
    parser.add_argument("--budget", type=float, default=180.0, help="bound on the whole run")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 900:
        parser.error("--sessions must be 1-900 (one nameplate per session)")
    if not 1 <= args.frame_kib <= 1023:
        parser.error("--frame-kib must be 1-1023")
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
