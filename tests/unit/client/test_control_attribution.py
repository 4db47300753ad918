"""Whose input is it on a shared desktop: ConsoleAttribution and its cache (pure)."""

from __future__ import annotations

import re
from pathlib import Path

from client.core.control.activity import (
    TECHNICIAN_CONSOLE_CLASS,
    ConsoleAttribution,
    LocalInput,
    WmClass,
    is_technician_console,
)


CONSOLE, EDITOR, FRAME = 0x400001, 0x600001, 0x800001
CLASSES: dict[int, WmClass] = {
    CONSOLE: ("__main__.py", TECHNICIAN_CONSOLE_CLASS),
    EDITOR: ("gedit", "Gedit"),
}


class FakeDesktop:
    def __init__(self) -> None:
        self.focus = EDITOR
        self.pointer = EDITOR
        self.calls: list[str] = []

    def attribution(
        self, *, focus_ttl: float = 0.05, class_ttl: float = 5.0, max_windows: int = 256
    ) -> ConsoleAttribution:
        def focus() -> int:
            self.calls.append("focus")
            return self.focus

        def pointer() -> int:
            self.calls.append("pointer")
            return self.pointer

        def wm_class(window: int) -> WmClass | None:
            self.calls.append(f"class {window:#x}")
            return CLASSES.get(window)

        return ConsoleAttribution(
            focus=focus,
            pointer=pointer,
            wm_class=wm_class,
            focus_ttl=focus_ttl,
            class_ttl=class_ttl,
            max_windows=max_windows,
        )


def test_the_console_class_is_qt_application_name_of_the_console() -> None:
    # Qt's xcb plugin sets WM_CLASS's class to QApplication.applicationName.
    app = Path(__file__).resolve().parents[3] / "technician" / "qt" / "app.py"
    names = re.findall(r'setApplicationName\("([^"]+)"\)', app.read_text())
    assert names == [TECHNICIAN_CONSOLE_CLASS]


def test_is_technician_console() -> None:
    assert is_technician_console(("deskhand-technician", "Deskhand technician"))
    assert is_technician_console(("__main__.py", "Deskhand technician"))
    assert not is_technician_console(("deskhand-client", "Deskhand"))
    assert not is_technician_console(("Deskhand technician", "Other"))  # the instance is argv[0]
    assert not is_technician_console(None)
    assert is_technician_console(("x", "Mine"), classes={"Mine"})


def test_focus_in_the_console_flags_every_kind() -> None:
    desk = FakeDesktop()
    desk.focus = CONSOLE
    attribution = desk.attribution()
    assert all(attribution.technician(kind, 0.0) for kind in ("key", "button", "motion"))


def test_focus_elsewhere_flags_nothing() -> None:
    desk = FakeDesktop()
    attribution = desk.attribution()
    assert not any(attribution.technician(kind, 0.0) for kind in ("key", "button", "motion"))


def test_pointer_over_the_console_flags_pointer_events_only() -> None:
    desk = FakeDesktop()
    desk.pointer = CONSOLE
    attribution = desk.attribution()
    assert attribution.technician("motion", 0.0)
    assert attribution.technician("button", 0.0)
    assert not attribution.technician("key", 0.0)  # keys go to the focus, not the console


def test_pointer_root_focus_sends_keys_where_the_pointer_is() -> None:
    desk = FakeDesktop()
    desk.focus, desk.pointer = 1, CONSOLE
    assert desk.attribution().technician("key", 0.0)
    desk.focus = 0  # no focus: keys go nowhere, not the console's
    assert not desk.attribution().technician("key", 0.0)


def test_lookups_are_cached_for_focus_ttl() -> None:
    desk = FakeDesktop()
    desk.focus = CONSOLE
    attribution = desk.attribution(focus_ttl=0.05, class_ttl=5.0)
    for i in range(100):
        assert attribution.technician("key", i * 0.0004)  # 100 events within 40 ms
    assert desk.calls == ["focus", f"class {CONSOLE:#x}"]
    # The focus moves; the old answer lives until focus_ttl is over.
    desk.focus = EDITOR
    assert attribution.technician("key", 0.049)
    assert not attribution.technician("key", 0.051)
    # Back to the console: its class is still known, only the focus is asked.
    desk.calls.clear()
    desk.focus = CONSOLE
    assert attribution.technician("key", 0.2)
    assert desk.calls == ["focus"]


def test_class_verdicts_expire_and_are_bounded() -> None:
    desk = FakeDesktop()
    desk.focus = CONSOLE
    attribution = desk.attribution(focus_ttl=0.0, class_ttl=1.0, max_windows=2)
    attribution.technician("key", 0.0)
    attribution.technician("key", 0.5)
    attribution.technician("key", 1.5)
    assert desk.calls.count(f"class {CONSOLE:#x}") == 2
    for window in (FRAME, FRAME + 1, FRAME + 2):
        desk.focus = window
        attribution.technician("key", 2.0)
    assert len(attribution._verdicts) <= 2
    attribution.forget()
    assert not attribution._verdicts


def test_local_input_is_the_users_by_default() -> None:
    assert LocalInput("key", 38, True, 0x61).technician_console is False
