"""Tray and window icons, one per presence state (resources/icons)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

from client.core.presence import PresenceState


__all__ = ["icon_for", "icons_dir"]


def icons_dir() -> Path:
    # The repository layout: client/qt/icons.py -> resources/icons.
    return Path(__file__).resolve().parents[2] / "resources" / "icons"


def icon_for(state: PresenceState) -> QIcon:
    path = icons_dir() / f"tray-{state.value}.svg"
    icon = QIcon(str(path))
    if icon.isNull():
        raise FileNotFoundError(f"missing icon {path}")
    return icon
