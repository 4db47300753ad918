"""Pairing and channel benchmark through a real relay process on loopback.

Prints JSON with:
- handshake: RA1 pairing time through the relay (p50, p95), from the
  technician's claim to both sides holding an open channel, and the same
  including both websocket connects;
- echo_rtt: an encrypted 64-byte chat message to the user and back;
- throughput: MB/s of 1 MiB file chunks user -> technician through the
  secure channel, next to plain unencrypted websocket frames through the
  same relay, and their ratio.

Usage: python -m bench.pairing [--pairings 30] [--echoes 500] [--megabytes 128]
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

from websockets.asyncio.client import connect

from bench.relay_process import RelayProcess
from client.core.session import UserClient
from common.crypto.identity import OrgKey, OrgTrust, TechnicianCredential
from common.net.pairing import ConsentRequest
from common.protocol import messages as m
from common.protocol.codec import decode, encode
from common.protocol.relay_wire import MAX_FRAME, Claim, Forward, Register, Registered
from common.session import MessageReceived
from technician.core.session import TechnicianClient


MB = 1_000_000


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "min_ms": round(min(ms), 3),
        "n": len(ms),
    }


def make_credentials() -> tuple[OrgTrust, TechnicianCredential]:
    org = OrgKey.generate()
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
    return OrgTrust(org.public_bytes), TechnicianCredential(
        private, cert, org.sign_revocations([], now)
    )


async def allow(request: ConsentRequest) -> tuple[str, ...]:
    return ("view",)


class Pair:
    def __init__(self, url: str, trust: OrgTrust, credential: TechnicianCredential) -> None:
        self.user = UserClient(url, trust, allow)
        self.tech = TechnicianClient(url, credential)


async def one_pairing(
    url: str, trust: OrgTrust, cred: TechnicianCredential
) -> tuple[float, float, Any, Any]:
    pair = Pair(url, trust, cred)
    start_all = time.perf_counter()
    code = await pair.user.request_help()
    start = time.perf_counter()
    user_ch, tech_ch = await asyncio.gather(
        pair.user.wait_for_technician(), pair.tech.connect(code.display)
    )
    end = time.perf_counter()
    return end - start, end - start_all, user_ch, tech_ch


async def bench_handshakes(url: str, n: int) -> dict[str, Any]:
    trust, cred = make_credentials()
    pairing, total = [], []
    for _ in range(n):
        t_pair, t_total, user_ch, tech_ch = await one_pairing(url, trust, cred)
        pairing.append(t_pair)
        total.append(t_total)
        await tech_ch.close()
        await user_ch.wait_closed()
    return {"claim_to_open": summary_ms(pairing), "including_connects": summary_ms(total)}


async def bench_echo_and_throughput(url: str, echoes: int, megabytes: int) -> dict[str, Any]:
    trust, cred = make_credentials()
    _, _, user_ch, tech_ch = await one_pairing(url, trust, cred)

    async def echo_back() -> None:
        while True:
            event = await user_ch.next_event()
            if not isinstance(event, MessageReceived):
                return
            if isinstance(event.message, m.ChatText):
                user_ch.send_nowait(event.message)

    echo_task = asyncio.create_task(echo_back())
    rtts = []
    for i in range(echoes):
        msg = m.ChatText(i, "x" * 40, 0)  # 64 bytes encoded with its header
        start = time.perf_counter()
        tech_ch.send_nowait(msg)
        event = await tech_ch.next_event()
        rtts.append(time.perf_counter() - start)
        assert isinstance(event, MessageReceived) and event.message == msg
    echo_task.cancel()

    chunk = os.urandom(1 << 20)
    count = megabytes

    async def receive_all() -> None:
        got = 0
        while got < count:
            event = await tech_ch.next_event()
            if isinstance(event, MessageReceived) and isinstance(event.message, m.FileChunk):
                got += 1

    receiver = asyncio.create_task(receive_all())
    start = time.perf_counter()
    for i in range(count):
        await user_ch.send(m.FileChunk(b"b" * 16, i << 20, chunk))
    await receiver
    secure_s = time.perf_counter() - start
    await tech_ch.close()
    await user_ch.wait_closed()
    return {
        "echo_rtt": summary_ms(rtts),
        "secure_s": secure_s,
        "bytes": count * len(chunk),
    }


async def bench_plain(url: str, megabytes: int, frame_size: int = 64 * 1024) -> float:
    """Unencrypted: the same relay forwarding plain Forward frames one way, same byte count."""
    kwargs: dict[str, Any] = {"compression": None, "max_size": MAX_FRAME}
    async with connect(url, **kwargs) as user, connect(url, **kwargs) as tech:
        await user.send(encode(Register("bench")))
        registered = decode(await user.recv(decode=False))
        assert isinstance(registered, Registered)
        await tech.send(encode(Claim(registered.nameplate, "bench")))
        await tech.recv(decode=False)  # Paired
        await user.recv(decode=False)  # PeerJoined
        frame = encode(Forward(os.urandom(frame_size)))
        total = megabytes * (1 << 20)
        frames = total // frame_size

        async def receive() -> None:
            for _ in range(frames):
                await tech.recv(decode=False)

        receiver = asyncio.create_task(receive())
        start = time.perf_counter()
        for _ in range(frames):
            await user.send(frame)
        await receiver
        return time.perf_counter() - start


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    # Every pairing comes from 127.0.0.1: lift the per-address rates, and claim
    # anonymously (the relay's own sign-in is not what is measured).
    with RelayProcess(
        "--address-rate", "100000", "--registrations-per-window", "100000",
        "--address-claims-per-window", "100000", "--code-claims", "anyone",
    ) as relay:  # fmt: skip
        handshakes = await bench_handshakes(relay.url, args.pairings)
        secure = await bench_echo_and_throughput(relay.url, args.echoes, args.megabytes)
        plain_s = await bench_plain(relay.url, args.megabytes)
    secure_mbps = secure["bytes"] / secure["secure_s"] / MB
    plain_mbps = secure["bytes"] / plain_s / MB
    return {
        "benchmark": "pairing",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "handshake": handshakes,
        "echo_rtt": secure["echo_rtt"],
        "throughput": {
            "megabytes_moved": round(secure["bytes"] / MB, 1),
            "secure_channel_MBps": round(secure_mbps, 1),
            "plain_websocket_MBps": round(plain_mbps, 1),
            "secure_over_plain": round(secure_mbps / plain_mbps, 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairings", type=int, default=30)
    parser.add_argument("--echoes", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=128)
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
