"""A map of the visible widgets, written for acceptance tests; it never accepts input.

When the environment variable ``DESKHAND_WIDGET_LOG`` names a file,
:func:`install_widget_log` puts an application-wide event filter on the
QApplication and appends JSON lines to that file describing the widgets a
person can see and act on: windows and dialogs, buttons, check boxes, line
and text edits, combo boxes, labels, tabs, the rows of list, tree and table
views, scroll areas (the screen viewer), and any widget with an objectName
or accessibleName. Without the variable it does nothing at all.

Tests (``tests/e2e/harness.py``, through ``tests/e2e/widget_map.py``) read the
file to find where a widget is on the X screen and what it shows, and act only
through the X server (xdotool): there is no way in through this module.

Lines, in the order written::

    {"op": "start", "pid": 123, "platform": "xcb", "display": ":7", "t": 12.5}
    {"op": "set", "key": "7f..", "kind": "widget", "role": "button", "class": "QPushButton",
     "name": "request", "accessible": "", "text": "Request help…", "enabled": true,
     "focus": false, "x": 10, "y": 20, "w": 200, "h": 30, "window": "Deskhand — remote help",
     "wid": 4194310, "path": "", ...}
    {"op": "gone", "key": "7f.."}
    {"op": "scan", "t": 12.6, "n": 40, "ms": 1.2}

``set`` gives the full current state of one entry (a widget, a tab of a tab
bar ``<key>/tab/<i>``, or a row of an item view ``<key>/row/<i>``); ``gone``
says it is no longer visible; ``scan`` ends each batch (``t`` is
CLOCK_MONOTONIC seconds, ``n`` the entries now visible, ``ms`` what the scan
cost). Geometry is global (root window) pixels. Text is what the widget
shows, with mnemonic ampersands removed from buttons and tabs; ``label`` is
the text of the label that names a field (a QLabel whose buddy it is, as in
a form); the text of password fields is never written.

Cost. The filter only looks at the event type and marks the map dirty on
show, hide, move, resize, enable/disable, title, focus and paint events
(text changes show up as paints); widgets that paint opaque content all the
time (the viewer's canvas) are ignored. A scan of the visible widgets runs
at most every ``_MIN_INTERVAL_MS`` and writes only what changed.
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPoint,
    QRect,
    Qt,
    QTimer,
)
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QTabBar,
    QTextEdit,
    QWidget,
)
from shiboken6 import Shiboken


__all__ = ["ENV_VAR", "WidgetLog", "install_widget_log"]

ENV_VAR = "DESKHAND_WIDGET_LOG"
_MIN_INTERVAL_MS = 100
_FIRST_DELAY_MS = 20
_MAX_ROWS = 200
_MAX_TEXT = 4000

_WATCHED = frozenset(
    {
        QEvent.Type.Show,
        QEvent.Type.Hide,
        QEvent.Type.Move,
        QEvent.Type.Resize,
        QEvent.Type.EnabledChange,
        QEvent.Type.WindowTitleChange,
        QEvent.Type.FocusIn,
        QEvent.Type.FocusOut,
        QEvent.Type.Paint,
        QEvent.Type.WindowActivate,
        QEvent.Type.WindowDeactivate,
    }
)

_INSTALLED: list[WidgetLog] = []  # keeps the filter (and its Python side) alive


def install_widget_log(app: QApplication, env: dict[str, str] | None = None) -> WidgetLog | None:
    """Start the widget map if ``DESKHAND_WIDGET_LOG`` is set; else do nothing, return None."""
    path = (os.environ if env is None else env).get(ENV_VAR, "")
    if not path:
        return None
    log = WidgetLog(app, open(path, "a", encoding="utf-8"))  # closed in WidgetLog.close()
    _INSTALLED.append(log)
    return log


def _strip_mnemonic(text: str) -> str:
    # "&Continue" shows as "Continue"; "&&" is a literal "&".
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _rect(widget: QWidget, rect: QRect | None = None) -> dict[str, int]:
    area = widget.rect() if rect is None else rect
    top_left = widget.mapToGlobal(area.topLeft())
    return {"x": top_left.x(), "y": top_left.y(), "w": area.width(), "h": area.height()}


def _role(widget: QWidget) -> str:
    for cls, role in (
        (QCheckBox, "checkbox"),
        (QRadioButton, "radio"),
        (QAbstractButton, "button"),
        (QLineEdit, "edit"),
        (QPlainTextEdit, "text"),
        (QTextEdit, "text"),
        (QComboBox, "combo"),
        (QLabel, "label"),
        (QTabBar, "tabs"),
        (QAbstractItemView, "list"),
        (QGroupBox, "group"),
        (QAbstractScrollArea, "view"),
    ):
        if isinstance(widget, cls):
            return role
    if widget.isWindow():
        return "dialog" if isinstance(widget, QDialog) else "window"
    return "widget"


class WidgetLog(QObject):
    """The application-wide filter and the scanner (see the module docstring)."""

    def __init__(self, app: QApplication, out: IO[str]) -> None:
        super().__init__(app)
        self._app = app
        self._out = out
        self._last: dict[str, dict[str, Any]] = {}
        self._last_scan = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.scan)
        self._write(
            {
                "op": "start",
                "pid": os.getpid(),
                "platform": QGuiApplication.platformName(),
                "display": os.environ.get("DISPLAY", ""),
                "t": time.monotonic(),
            }
        )
        self._out.flush()
        app.installEventFilter(self)
        app.aboutToQuit.connect(self.close)
        self._schedule()

    def close(self) -> None:
        self._timer.stop()
        self._app.removeEventFilter(self)
        if not self._out.closed:
            self._out.close()

    # --- the filter: cheap, it sees every event of the app ---

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in _WATCHED or not isinstance(watched, QWidget):
            return False
        if kind == QEvent.Type.Paint and watched.testAttribute(
            Qt.WidgetAttribute.WA_OpaquePaintEvent
        ):
            return False  # a canvas repainting its picture changes nothing in the map
        self._schedule()
        return False

    def _schedule(self) -> None:
        if self._timer.isActive():
            return
        since = (time.monotonic() - self._last_scan) * 1000
        self._timer.start(max(_FIRST_DELAY_MS, round(_MIN_INTERVAL_MS - since)))

    # --- the scan ---

    def scan(self) -> None:
        """Write what changed since the last scan (also callable directly)."""
        if self._out.closed:
            return
        started = time.monotonic()
        now: dict[str, dict[str, Any]] = {}
        for top in self._app.topLevelWidgets():
            if top.isVisible():
                try:
                    self._scan_window(top, now)
                except Exception as exc:  # a bug here must not take the app down
                    self._write({"op": "error", "error": repr(exc), "window": top.windowTitle()})
        for key, record in now.items():
            if self._last.get(key) != record:
                self._write({"op": "set", "key": key, **record})
        for key in self._last.keys() - now.keys():
            self._write({"op": "gone", "key": key})
        self._last = now
        self._last_scan = time.monotonic()
        cost = (self._last_scan - started) * 1000
        self._write({"op": "scan", "t": self._last_scan, "n": len(now), "ms": round(cost, 2)})
        self._out.flush()

    def _write(self, record: dict[str, Any]) -> None:
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _scan_window(self, top: QWidget, now: dict[str, dict[str, Any]]) -> None:
        window = {"window": top.windowTitle(), "wid": int(top.effectiveWinId())}
        widgets = [top, *(w for w in top.findChildren(QWidget) if w.isVisible())]
        # The label a field carries on screen ("Cause:" in a form), as a screen reader says it.
        labels = {
            _key(buddy): _strip_mnemonic(w.text()).strip().rstrip(":")
            for w in widgets
            if isinstance(w, QLabel) and (buddy := w.buddy()) is not None
        }
        for widget in widgets:
            if widget.window() is not top:
                continue  # in a dialog parented to this window: the dialog's scan has it
            record = self._describe(widget)
            if record is None:
                continue
            key = _key(widget)
            record.update(window)
            record["label"] = labels.get(key, "")
            now[key] = record
            if isinstance(widget, QTabBar):
                self._tabs(widget, key, window, now)
            elif isinstance(widget, QAbstractItemView) and not isinstance(widget, QHeaderView):
                self._rows(widget, key, window, now)

    def _describe(self, widget: QWidget) -> dict[str, Any] | None:
        role = _role(widget)
        # Qt's own names (qt_scrollarea_viewport, qt_splithandle_...) are not a person's targets.
        named = bool(
            widget.accessibleName()
            or (widget.objectName() and not widget.objectName().startswith("qt_"))
        )
        if role == "widget" and not named:
            return None
        if isinstance(widget, QHeaderView):
            return None
        record: dict[str, Any] = {
            "kind": "window" if widget.isWindow() else "widget",
            "role": role,
            "class": type(widget).__name__,
            "name": widget.objectName(),
            "accessible": widget.accessibleName(),
            "text": "",
            "enabled": widget.isEnabled(),
            "focus": widget.hasFocus(),
            **_rect(widget),
            "path": _path(widget),
        }
        if widget.isWindow():
            record["text"] = widget.windowTitle()
            record["active"] = widget.isActiveWindow()
            record["takes_focus"] = not (
                widget.windowFlags() & Qt.WindowType.WindowDoesNotAcceptFocus
            )
        elif isinstance(widget, QAbstractButton):
            record["text"] = _strip_mnemonic(widget.text())
            if widget.isCheckable():
                record["checked"] = widget.isChecked()
        elif isinstance(widget, QLineEdit):
            secret = widget.echoMode() != QLineEdit.EchoMode.Normal
            record["text"] = "" if secret else widget.text()
            record["secret"] = secret
            record["placeholder"] = widget.placeholderText()
        elif isinstance(widget, (QPlainTextEdit, QTextEdit)):
            record["text"] = widget.toPlainText()[:_MAX_TEXT]
            record["placeholder"] = widget.placeholderText()
        elif isinstance(widget, QComboBox):
            record["text"] = widget.currentText()
        elif isinstance(widget, QLabel):
            text = widget.text()
            record["text"] = _strip_mnemonic(text) if widget.buddy() is not None else text
            if not record["text"] and not named:
                return None  # an empty label or a picture: nothing to read or do
        elif isinstance(widget, QGroupBox):
            record["text"] = _strip_mnemonic(widget.title())
        if isinstance(widget, QAbstractScrollArea):
            viewport = widget.viewport()
            record["viewport"] = _rect(viewport)
            record["viewport_focus"] = viewport.hasFocus()
        return record

    def _tabs(
        self, bar: QTabBar, key: str, window: dict[str, Any], now: dict[str, dict[str, Any]]
    ) -> None:
        for i in range(bar.count()):
            now[f"{key}/tab/{i}"] = {
                "kind": "tab",
                "role": "tab",
                "class": type(bar).__name__,
                "name": bar.objectName(),
                "accessible": bar.accessibleTabName(i),
                "text": _strip_mnemonic(bar.tabText(i)),
                "enabled": bar.isTabEnabled(i) and bar.isEnabled(),
                "current": i == bar.currentIndex(),
                "index": i,
                **_rect(bar, bar.tabRect(i)),
                "path": _path(bar),
                "parent": key,
                **window,
            }

    def _rows(
        self,
        view: QAbstractItemView,
        key: str,
        window: dict[str, Any],
        now: dict[str, dict[str, Any]],
    ) -> None:
        model = view.model()  # never None: Qt gives an empty model instead
        viewport = view.viewport()
        shown_area = viewport.rect()
        selection = view.selectionModel()
        root = QModelIndex()
        # PySide makes columnCount private on list models (they have one column).
        columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(root)
        for row in range(min(model.rowCount(root), _MAX_ROWS)):
            cells: list[str] = []
            area = QRect()
            for column in range(columns):
                index = model.index(row, column)
                data = index.data(Qt.ItemDataRole.DisplayRole)
                cells.append("" if data is None else str(data))
                if not view.isIndexHidden(index):
                    area = area.united(view.visualRect(index))
            first = model.index(row, 0)
            visible = area.intersected(shown_area)
            top_left = viewport.mapToGlobal(
                visible.topLeft() if not visible.isEmpty() else QPoint()
            )
            now[f"{key}/row/{row}"] = {
                "kind": "item",
                "role": "item",
                "class": type(view).__name__,
                "name": view.objectName(),
                "accessible": "",
                "text": " | ".join(cells) if columns > 1 else (cells[0] if cells else ""),
                "cells": cells,
                "enabled": view.isEnabled(),
                "selected": selection is not None and selection.isSelected(first),
                "current": view.currentIndex() == first,
                "shown": not visible.isEmpty(),
                "index": row,
                "x": top_left.x(),
                "y": top_left.y(),
                "w": visible.width() if not visible.isEmpty() else 0,
                "h": visible.height() if not visible.isEmpty() else 0,
                "path": _path(view),
                "parent": key,
                **window,
            }


def _key(widget: QWidget) -> str:
    # The C++ address: stable for the widget's life; a reused address is just a "set".
    return f"{Shiboken.getCppPointer(widget)[0]:x}"


def _path(widget: QWidget) -> str:
    """The objectNames of the named ancestors, outermost first ("a/b")."""
    names: list[str] = []
    parent = widget.parentWidget()
    while parent is not None:
        name = parent.objectName()
        if name and not name.startswith("qt_"):
            names.append(name)
        parent = parent.parentWidget()
    return "/".join(reversed(names))
