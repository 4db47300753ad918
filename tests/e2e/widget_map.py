"""The widget map of an app, as the acceptance tests read it (see harness.py).

Each app writes its map when ``DESKHAND_WIDGET_LOG`` names a file
(:mod:`common.qt.widget_log`): what is visible, its text and screen geometry.

:class:`WidgetMap` (one app's log, read as it grows): ``find(**spec)`` -> list
of :class:`Widget` (top to bottom, left to right); ``ever(**spec)``: past states
too (a countdown seen for a moment); ``current(widget)`` (its latest state, None
once gone); ``moved_at`` (when each entry last appeared, moved or resized);
``describe()`` (what is visible, for error messages); ``errors`` (the map's own
failures).

A *spec* is keywords matched against the widget map: ``label`` (the
accessible name, the form label naming the field ("Cause" for "C&ause:"),
the text or the objectName, whichever matches),
``text``, ``name`` (objectName), ``accessible``, ``role`` (button,
checkbox, edit, text, combo, label, tab, item, list, view, window,
dialog, group, widget), ``cls`` (the Python class name, e.g.
"ScreenView"), ``window`` (the top-level's title), ``kind`` (window,
widget, tab, item), ``enabled``, ``inside`` (the objectName of an
ancestor, e.g. "deskhand-session-bar"), ``where`` (a predicate on the Widget).
Strings match exactly (after collapsing white space); an ``re.Pattern``
is searched for.

:class:`Widget`: ``text``, ``role``, ``enabled``, ``rect``, ``center``,
``target`` (where a person clicks it), ``viewport`` (a scroll area's), ``short()``;
``widget["field"]`` and ``get(field)`` read the raw entry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


_GEOMETRY = ("x", "y", "w", "h", "wid", "viewport")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _matches(value: str, want: str | re.Pattern[str]) -> bool:
    if isinstance(want, re.Pattern):
        return want.search(value) is not None
    return _norm(value) == _norm(want)


@dataclasses.dataclass(frozen=True)
class Widget:
    """One entry of an app's widget map (see common/qt/widget_log.py)."""

    key: str
    raw: dict[str, Any]

    def __getitem__(self, field: str) -> Any:
        return self.raw[field]

    def get(self, field: str, default: Any = None) -> Any:
        return self.raw.get(field, default)

    @property
    def text(self) -> str:
        return str(self.raw.get("text", ""))

    @property
    def role(self) -> str:
        return str(self.raw.get("role", ""))

    @property
    def enabled(self) -> bool:
        return bool(self.raw.get("enabled"))

    @property
    def rect(self) -> tuple[int, int, int, int]:
        r = self.raw
        return int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])

    @property
    def center(self) -> tuple[int, int]:
        x, y, w, h = self.rect
        return x + w // 2, y + h // 2

    @property
    def target(self) -> tuple[int, int]:
        """Where a person clicks it: the middle, or a check box's box (only the box and
        its text react, and a box in a layout is often much wider than its text)."""
        x, y, w, h = self.rect
        if self.role in ("checkbox", "radio"):
            return x + min(w // 2, 9), y + h // 2
        return self.center

    @property
    def viewport(self) -> tuple[int, int, int, int]:
        """A scroll area's viewport (the viewer's picture area), global pixels."""
        v = self.raw["viewport"]
        return int(v["x"]), int(v["y"]), int(v["w"]), int(v["h"])

    def short(self) -> str:
        r = self.raw
        bits = [f"{r.get('role')}:{r.get('class')}"]
        for field in ("name", "accessible", "label"):
            if r.get(field):
                bits.append(f"{field}={r[field]!r}")
        text = self.text
        if text:
            bits.append(f"text={text[:60]!r}")
        if not r.get("enabled", True):
            bits.append("disabled")
        bits.append(f"@{r.get('x')},{r.get('y')} {r.get('w')}x{r.get('h')}")
        bits.append(f"in {r.get('window', '')!r}")
        return " ".join(bits)


class WidgetMap:
    """Reads an app's widget log as it grows; the latest state of every visible entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._state: dict[str, dict[str, Any]] = {}
        self.started: dict[str, Any] | None = None
        self.scans = 0
        self.last_scan: dict[str, Any] = {}
        self.scan_ms: list[float] = []
        self.errors: list[str] = []  # the map's own failures (they fail no app, but show here)
        self.history: list[dict[str, Any]] = []  # every "set" record, in order
        self.moved_at: dict[str, float] = {}  # key -> when it last appeared, moved or resized
        self._moving: set[str] = set()

    def refresh(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                self._apply(json.loads(line))

    def _apply(self, record: dict[str, Any]) -> None:
        op = record.get("op")
        if op == "set":
            key = str(record["key"])
            old = self._state.get(key)
            if old is None or any(old.get(f) != record.get(f) for f in _GEOMETRY):
                self._moving.add(key)
            self._state[key] = record
            self.history.append(record)
        elif op == "gone":
            self._state.pop(str(record["key"]), None)
        elif op == "scan":
            for key in self._moving:
                self.moved_at[key] = float(record.get("t", 0.0))
            self._moving.clear()
            self.scans += 1
            self.last_scan = record
            self.scan_ms.append(float(record.get("ms", 0.0)))
        elif op == "start":
            self.started = record
            self._state.clear()
        elif op == "error":
            self.errors.append(str(record.get("error")))

    def widgets(self) -> list[Widget]:
        self.refresh()
        return [Widget(key, record) for key, record in self._state.items()]

    def current(self, widget: Widget) -> Widget | None:
        """The widget's latest state (None once it is gone)."""
        self.refresh()
        record = self._state.get(widget.key)
        return None if record is None else Widget(widget.key, record)

    def find(
        self,
        *,
        label: str | re.Pattern[str] | None = None,
        text: str | re.Pattern[str] | None = None,
        name: str | re.Pattern[str] | None = None,
        accessible: str | re.Pattern[str] | None = None,
        role: str | None = None,
        cls: str | re.Pattern[str] | None = None,
        window: str | re.Pattern[str] | None = None,
        kind: str | None = None,
        enabled: bool | None = None,
        inside: str | None = None,
        where: Callable[[Widget], bool] | None = None,
        _among: list[Widget] | None = None,
    ) -> list[Widget]:
        found = []
        for widget in self.widgets() if _among is None else _among:
            r = widget.raw
            if role is not None and r.get("role") != role:
                continue
            if kind is not None and r.get("kind") != kind:
                continue
            if enabled is not None and bool(r.get("enabled")) != enabled:
                continue
            checks = (
                (text, "text"),
                (name, "name"),
                (accessible, "accessible"),
                (cls, "class"),
                (window, "window"),
            )
            if any(
                want is not None and not _matches(str(r.get(f, "")), want) for want, f in checks
            ):
                continue
            if inside is not None and inside not in str(r.get("path", "")).split("/"):
                continue
            if label is not None and not any(
                _matches(str(r.get(f, "")), label) for f in ("accessible", "label", "text", "name")
            ):
                continue
            if where is not None and not where(widget):
                continue
            found.append(widget)
        # Top to bottom, left to right: a stable order for "the first one".
        found.sort(key=lambda w: (w.raw.get("y", 0), w.raw.get("x", 0)))
        return found

    def ever(self, **spec: Any) -> list[Widget]:
        """Every past state that matched spec (oldest first), visible now or not.

        For states too brief to wait for: a countdown, a message that was
        replaced. Window ids (``wid``) tell one dialog from a later one.
        """
        self.refresh()
        past = [Widget(str(r["key"]), r) for r in self.history]
        matching = {id(w.raw) for w in self.find(_among=past, **spec)}
        return [w for w in past if id(w.raw) in matching]

    def describe(self, limit: int = 80) -> str:
        widgets = sorted(
            self.widgets(),
            key=lambda w: (str(w.raw.get("window")), w.raw.get("y", 0), w.raw.get("x", 0)),
        )
        lines = [w.short() for w in widgets[:limit]]
        if len(widgets) > limit:
            lines.append(f"... and {len(widgets) - limit} more")
        lines += [f"widget map error: {error}" for error in self.errors[-5:]]
        return "\n".join(lines) or "(nothing visible)"
