"""x11vnc, measured through a minimal RFB 3.8 client that counts updates and their bytes."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import IO, Any

from bench.screen.common import Child, cpu_seconds


# --- x11vnc and a minimal RFB client ----------------------------------------------------


class RfbCounter:
    """Counts FramebufferUpdates and their bytes from a VNC server (RFB 3.8, no auth)."""

    TIGHT, ZRLE, COPYRECT, RAW = 7, 16, 1, 0
    JPEG_QUALITY_6, COMPRESS_6 = -32 + 6, -256 + 6

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file: IO[bytes] = self.sock.makefile("rb")
        self._handshake()
        self.lock = threading.Lock()
        self.updates = 0
        self.bytes = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read(self, n: int) -> bytes:
        data = self.file.read(n)
        if len(data) != n:
            raise ConnectionError("VNC server closed the connection")
        return data

    def _handshake(self) -> None:
        self._read(12)
        self.sock.sendall(b"RFB 003.008\n")
        (count,) = struct.unpack("B", self._read(1))
        types = self._read(count)
        if 1 not in types:
            raise ConnectionError("the VNC server wants a password")
        self.sock.sendall(b"\x01")
        (result,) = struct.unpack(">I", self._read(4))
        if result:
            raise ConnectionError("VNC security handshake failed")
        self.sock.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", self._read(4))
        self._read(16)
        (name_len,) = struct.unpack(">I", self._read(4))
        self._read(name_len)
        # 32 bpp, depth 24, little endian, true colour, 8-8-8 at 16, 8, 0.
        pf = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        self.sock.sendall(struct.pack(">B3x", 0) + pf)
        encodings = [
            self.TIGHT,
            self.ZRLE,
            self.COPYRECT,
            self.RAW,
            self.JPEG_QUALITY_6,
            self.COMPRESS_6,
        ]
        self.sock.sendall(
            struct.pack(">BxH", 2, len(encodings))
            + b"".join(struct.pack(">i", e) for e in encodings)
        )
        self._request(incremental=False)

    def _request(self, *, incremental: bool) -> None:
        self.sock.sendall(
            struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width, self.height)
        )

    def _compact(self) -> tuple[int, int]:
        length, shift, used = 0, 0, 0
        for _ in range(3):
            (b,) = self._read(1)
            used += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return length, used

    def _tight(self, w: int, h: int) -> int:
        (control,) = self._read(1)
        size = 1
        kind = control >> 4
        if kind == 8:  # fill
            self._read(3)
            return size + 3
        if kind == 9:  # jpeg
            length, used = self._compact()
            self._read(length)
            return size + used + length
        filter_id = 0
        if control & 0x40:
            (filter_id,) = self._read(1)
            size += 1
        row = w * 3  # TPIXEL: 3 bytes at 32 bpp, depth 24
        if filter_id == 1:  # palette
            (colors,) = self._read(1)
            colors += 1
            self._read(colors * 3)
            size += 1 + colors * 3
            row = (w + 7) // 8 if colors == 2 else w
        raw = row * h
        if raw < 12:
            self._read(raw)
            return size + raw
        length, used = self._compact()
        self._read(length)
        return size + used + length

    def _run(self) -> None:
        try:
            while self.running:
                (kind,) = self._read(1)
                if kind != 0:
                    if kind == 2:  # bell
                        continue
                    if kind == 3:  # server cut text
                        self._read(3)
                        (n,) = struct.unpack(">I", self._read(4))
                        self._read(n)
                        continue
                    raise ConnectionError(f"unexpected RFB message {kind}")
                self._read(1)
                (count,) = struct.unpack(">H", self._read(2))
                size = 4
                for _ in range(count):
                    _, _, w, h, enc = struct.unpack(">HHHHi", self._read(12))
                    size += 12
                    if enc == self.RAW:
                        self._read(w * h * 4)
                        size += w * h * 4
                    elif enc == self.COPYRECT:
                        self._read(4)
                        size += 4
                    elif enc == self.ZRLE:
                        (n,) = struct.unpack(">I", self._read(4))
                        self._read(n)
                        size += 4 + n
                    elif enc == self.TIGHT:
                        size += self._tight(w, h)
                    else:
                        raise ConnectionError(f"unexpected encoding {enc}")
                with self.lock:
                    self.updates += 1
                    self.bytes += size
                self._request(incremental=True)
        except (ConnectionError, OSError, ValueError):
            return

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.updates, self.bytes

    def close(self) -> None:
        self.running = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_vnc(
    port: int, vnc_pid: int, content: Child, scene: str, seconds: float, warmup: float
) -> dict[str, Any]:
    content.ask(f"scene {scene}")
    client = RfbCounter(port)
    try:
        time.sleep(warmup)
        u0, b0 = client.snapshot()
        cpu0 = cpu_seconds(vnc_pid)
        ticks0 = content.ask("stats")["ticks"]
        t0 = time.monotonic()
        time.sleep(seconds)
        u1, b1 = client.snapshot()
        cpu = cpu_seconds(vnc_pid) - cpu0
        elapsed = time.monotonic() - t0
        ticks = content.ask("stats")["ticks"] - ticks0
    finally:
        client.close()
    updates = u1 - u0
    return {
        "updates_per_s": round(updates / elapsed, 1),
        "Mbit_s": round((b1 - b0) * 8 / elapsed / 1e6, 3),
        "bytes_per_update": round((b1 - b0) / updates) if updates else 0,
        "x11vnc_cpu_percent": round(100 * cpu / elapsed, 1),
        "content_changes_per_s": round(ticks / elapsed, 1),
    }
