"""What a user may grant, each separately (security.md 4.1).

The wire carries capabilities as their string values; everything above the
codec works with :class:`Capability`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


__all__ = ["Capability", "ordered", "parse_capabilities"]


class Capability(enum.StrEnum):
    VIEW = "view"
    CONTROL = "control"
    CLIPBOARD = "clipboard"
    FILES = "files"


def ordered(capabilities: Iterable[Capability | str]) -> tuple[Capability, ...]:
    """Capabilities in their canonical order (view, control, clipboard, files), once each."""
    wanted = {Capability(c) for c in capabilities}
    return tuple(c for c in Capability if c in wanted)


def parse_capabilities(values: Iterable[str]) -> tuple[Capability, ...]:
    """Wire strings to capabilities.

    Raises:
        ValueError: an unknown capability.
    """
    return ordered(Capability(v) for v in values)
