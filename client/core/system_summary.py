"""The system summary a user may choose to share with a request for help.

Collected locally, shown to the user in full before anything is sent, and
sent only if they agree. Nothing here is secret by design: no user names,
no file names, no serial numbers (security.md 4.3, point 7).
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import psutil


__all__ = ["SystemSummary", "collect_summary"]

_GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class SystemSummary:
    """A few facts a help desk asks for first.

    Attributes:
        os: operating system and version.
        cpu: processor model and core count.
        memory: total and available memory.
        disk: size and free space of the user's home drive.
        network: interfaces with an address, and whether a default route exists.
    """

    os: str
    cpu: str
    memory: str
    disk: str
    network: str

    def as_lines(self) -> list[tuple[str, str]]:
        return [
            ("Operating system", self.os),
            ("Processor", self.cpu),
            ("Memory", self.memory),
            ("Disk", self.disk),
            ("Network", self.network),
        ]

    def as_text(self) -> str:
        """The exact text that is shown to the user and, if they agree, sent."""
        return "\n".join(f"{name}: {value}" for name, value in self.as_lines())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _network() -> str:
    parts = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        ips = [a.address for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6)]
        if name == "lo" or not ips:
            continue
        parts.append(f"{name} {ips[0]}")
    return ", ".join(parts) or "no network interface with an address"


def collect_summary(
    home: Path | None = None, cpu_model: Callable[[], str] = _cpu_model
) -> SystemSummary:
    """Read the summary from this machine (platform access is confined here)."""
    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(home or Path.home())
    system = f"{platform.system()} {platform.release()}"
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        pretty = ""
    return SystemSummary(
        os=f"{pretty} ({system})" if pretty else system,
        cpu=f"{cpu_model()}, {psutil.cpu_count() or 1} cores",
        memory=f"{memory.total / _GIB:.1f} GiB, {memory.available / _GIB:.1f} GiB available",
        disk=f"{disk.total / _GIB:.0f} GiB, {disk.free / _GIB:.0f} GiB free",
        network=_network(),
    )
