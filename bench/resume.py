"""Resume benchmark: sessions that survive dropped links, through a real relay process.

One user and one technician (in this process) pair through a relay
subprocess on loopback and chat both ways every few milliseconds. Then
``--drops`` times (default 50), alternately:

- kill the TCP connection of one side (the user's, then the technician's);
- kill the relay process (SIGKILL) and start it again on the same port.

Prints JSON with:
- resume_s: from the relay being reachable again (the kill, or the new
  relay's "listening" line) until both sides reported LinkRestored (p50, p95);
- messages: chat lines sent, lost and duplicated across all drops (both must be 0);
- stop_with_stalled_network_s: with the relay stopped (SIGSTOP), the time
  from the user's Stop (SecureChannel.close) until its session has ended
  locally and every task is stopped.

Usage: python -m bench.resume [--drops 50] [--stops 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import sys
import time
from typing import Any

from bench.pairing import allow, make_credentials, percentile
from bench.relay_process import RelayProcess
from client.core.session import UserClient
from common.net.channel import SecureChannel
from common.net.relay_link import RelayLink
from common.protocol import messages as m
from common.session import LinkLost, LinkRestored, MessageReceived, SessionEvent
from technician.core.session import TechnicianClient


_RELAY_ARGS = (
    "--address-rate", "100000", "--registrations-per-window", "100000",
    "--address-claims-per-window", "100000", "--code-claims", "anyone",
)  # fmt: skip
_WAIT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def summary_s(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 95), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


class Side:
    """One channel's chat ids received and link events, with a wake-up."""

    def __init__(self, channel: SecureChannel) -> None:
        self.channel = channel
        self.received: list[int] = []
        self.restored = 0
        self.lost = 0
        self.restored_at = 0.0
        self.changed = asyncio.Event()
        channel.add_listener(self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, MessageReceived) and isinstance(event.message, m.ChatText):
            self.received.append(event.message.msg_id)
        elif isinstance(event, LinkRestored):
            self.restored += 1
            self.restored_at = time.perf_counter()
        elif isinstance(event, LinkLost):
            self.lost += 1
        self.changed.set()

    async def until(self, check: Any, timeout: float = _WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self.changed.clear()
                await self.changed.wait()


async def pair(url: str) -> tuple[SecureChannel, SecureChannel]:
    trust, credential = make_credentials()
    user = UserClient(url, trust, allow)
    tech = TechnicianClient(url, credential)
    async with asyncio.timeout(_WAIT):
        code = await user.request_help()
        return await asyncio.gather(user.wait_for_technician(), tech.connect(code.display))


def kill_tcp(channel: SecureChannel) -> None:
    link = channel._link
    if isinstance(link, RelayLink):
        link.abort()


async def chatter(channel: SecureChannel, sent: list[int], base: int) -> None:
    """Send a chat line every few milliseconds, drops or not."""
    i = 0
    while channel.ended is None:
        channel.send_nowait(m.ChatText(base + i, "resume bench", 0))
        sent.append(base + i)
        i += 1
        await asyncio.sleep(0.005)


async def bench_drops(drops: int) -> dict[str, Any]:
    port = free_port()
    relay = RelayProcess(*_RELAY_ARGS, port=port).start()
    try:
        user_ch, tech_ch = await pair(relay.url)
        user, tech = Side(user_ch), Side(tech_ch)
        sent_to_user: list[int] = []
        sent_to_tech: list[int] = []
        tasks = [
            asyncio.create_task(chatter(tech_ch, sent_to_user, 0)),
            asyncio.create_task(chatter(user_ch, sent_to_tech, 10_000_000)),
        ]
        times: dict[str, list[float]] = {"kill_tcp": [], "relay_restart": []}
        for n in range(drops):
            await asyncio.sleep(0.1)  # some traffic before each drop
            restored = user.restored, tech.restored
            if n % 2 == 0:
                kind = "kill_tcp"
                kill_tcp(user_ch if n % 4 == 0 else tech_ch)
                back = time.perf_counter()
            else:
                kind = "relay_restart"
                assert relay.proc is not None
                relay.proc.kill()
                relay.stop()
                # Restart at once, as a supervisor would; off the loop, so that the
                # clients keep their own backoff meanwhile.
                relay = await asyncio.to_thread(RelayProcess(*_RELAY_ARGS, port=port).start)
                back = time.perf_counter()
            await user.until(lambda r=restored: user.restored > r[0])
            await tech.until(lambda r=restored: tech.restored > r[1])
            times[kind].append(max(user.restored_at, tech.restored_at) - back)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Everything sent must arrive, once, in order.
        await user.until(lambda: len(user.received) >= len(sent_to_user), timeout=10)
        await tech.until(lambda: len(tech.received) >= len(sent_to_tech), timeout=10)
        lost = len(set(sent_to_user) - set(user.received)) + len(
            set(sent_to_tech) - set(tech.received)
        )
        duplicated = (len(user.received) - len(set(user.received))) + (
            len(tech.received) - len(set(tech.received))
        )
        in_order = user.received == sent_to_user and tech.received == sent_to_tech
        await asyncio.gather(user_ch.close(), tech_ch.close())
        every = times["kill_tcp"] + times["relay_restart"]
        return {
            "drops": drops,
            "resume_s": summary_s(every),
            "resume_s_after_kill_tcp": summary_s(times["kill_tcp"]),
            "resume_s_after_relay_restart": summary_s(times["relay_restart"]),
            "messages": {
                "sent": len(sent_to_user) + len(sent_to_tech),
                "lost": lost,
                "duplicated": duplicated,
                "in_order": in_order,
            },
            "resumes_counted": {"user": user_ch.resumes, "technician": tech_ch.resumes},
        }
    finally:
        relay.stop()


async def bench_stops(stops: int) -> dict[str, Any]:
    relay = RelayProcess(*_RELAY_ARGS).start()
    durations: list[float] = []
    try:
        assert relay.proc is not None
        for _ in range(stops):
            user_ch, tech_ch = await pair(relay.url)
            for i in range(50):  # something in flight
                tech_ch.send_nowait(m.ChatText(i, "x" * 200, 0))
            os.kill(relay.proc.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(0.2)
                start = time.perf_counter()
                await user_ch.close("The user stopped the session.")
                durations.append(time.perf_counter() - start)
                assert user_ch.ended is not None
            finally:
                os.kill(relay.proc.pid, signal.SIGCONT)
            await tech_ch.close()
    finally:
        relay.stop()
    return summary_s(durations)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    drops = await bench_drops(args.drops)
    stops = await bench_stops(args.stops)
    return {
        "benchmark": "resume",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **drops,
        "stop_with_stalled_network_s": stops,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=50)
    parser.add_argument("--stops", type=int, default=5)
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    json.dump(result, sys.stdout, indent=2)
    print()
    ok = result["messages"]["lost"] == 0 and result["messages"]["duplicated"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
