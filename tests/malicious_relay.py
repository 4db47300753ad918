"""A scripted malicious relay for attack tests (loopback only).

It speaks the relay protocol well enough to pair one user and one
technician, and passes every peer payload through a script that may tamper
with it, drop it, duplicate it, hold it back (to reorder) or inject others.
Payload index 0 in each direction is the hello, 1 the AUTH record, and 2 and
up are session records.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from common.protocol.codec import decode, encode
from common.protocol.relay_wire import (
    MAX_FRAME,
    Claim,
    Forward,
    Paired,
    PeerJoined,
    Register,
    Registered,
    Resumable,
)


# direction ("u2t" or "t2u"), index, payload -> payloads to forward instead.
Script = Callable[[str, int, bytes], list[bytes]]


def honest(direction: str, index: int, payload: bytes) -> list[bytes]:
    return [payload]


@dataclasses.dataclass
class MaliciousRelay:
    script: Script = honest
    nameplate: int = 123
    sid: bytes = dataclasses.field(default_factory=lambda: os.urandom(16))
    server: Server | None = None
    user: ServerConnection | None = None
    tech: ServerConnection | None = None
    paired: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    forwarded: dict[str, int] = dataclasses.field(default_factory=lambda: {"u2t": 0, "t2u": 0})

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/peer"

    async def start(self) -> None:
        self.server = await serve(
            self._handle, "127.0.0.1", 0, compression=None, max_size=MAX_FRAME
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def send_to_user(self, frame: bytes) -> None:
        assert self.user is not None
        await self.user.send(frame)

    async def _handle(self, ws: ServerConnection) -> None:
        first = decode(await ws.recv(decode=False))
        if isinstance(first, Register):
            self.user = ws
            await ws.send(encode(Registered(self.nameplate, self.sid, 600)))
            await self.paired.wait()
            await ws.send(encode(PeerJoined()))
            await self._pump(ws, "u2t")
        elif isinstance(first, Claim):
            self.tech = ws
            await ws.send(encode(Paired(self.sid)))
            self.paired.set()
            await self._pump(ws, "t2u")

    async def _pump(self, source: ServerConnection, direction: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in source:
                assert isinstance(frame, bytes)
                payload = decode(frame)
                if isinstance(payload, Resumable):
                    continue  # resume ids for the relay: this one does not resume
                assert isinstance(payload, Forward)
                index = self.forwarded[direction]
                self.forwarded[direction] += 1
                target = self.tech if direction == "u2t" else self.user
                for out in self.script(direction, index, payload.payload):
                    if target is not None:
                        with contextlib.suppress(ConnectionClosed):
                            await target.send(encode(Forward(out)))
        # Like a real relay, end the other side when one goes.
        other = self.tech if direction == "u2t" else self.user
        if other is not None:
            await other.close()
