"""InputCapture on a plain widget: Qt events in, input messages out (offscreen Qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QMouseEvent, QShortcut, QWheelEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
from pytestqt.qtbot import QtBot

from common.protocol import messages as m
from technician.core.input import Rect, ViewTransform
from technician.qt.input_capture import InputCapture, special_keys_menu
from technician.qt.viewer import ScreenView


pytestmark = pytest.mark.gui

CONTROL_L, SHIFT_L, ALT_L, DELETE = 0xFFE3, 0xFFE1, 0xFFE9, 0xFFFF
NO_MODS = Qt.KeyboardModifier.NoModifier


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(qtbot: QtBot) -> tuple[QMainWindow, QWidget, InputCapture, list[m.AppMessage], Clock]:
    window = QMainWindow()
    viewer = QWidget()
    window.setCentralWidget(viewer)
    window.resize(960, 540)
    qtbot.addWidget(window)
    sent: list[m.AppMessage] = []
    clock = Clock()
    capture = InputCapture(viewer, sent.append, clock=clock, min_move_interval=0)
    window.show()
    qtbot.waitExposed(window)
    viewer.setFocus()
    qtbot.waitUntil(viewer.hasFocus)
    desktop = Rect(0, 0, 1920, 1080)
    capture.set_transform(ViewTransform.fit(desktop, viewer.width(), viewer.height()))
    return window, viewer, capture, sent, clock


def mouse(
    widget: QWidget,
    kind: QEvent.Type,
    x: float,
    y: float,
    button: Qt.MouseButton = Qt.MouseButton.NoButton,
    buttons: Qt.MouseButton = Qt.MouseButton.NoButton,
) -> None:
    pos = QPointF(x, y)
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, NO_MODS)
    QApplication.sendEvent(widget, event)


def key(
    widget: QWidget,
    kind: QEvent.Type,
    qt_key: Qt.Key,
    text: str = "",
    mods: Qt.KeyboardModifier = NO_MODS,
    *,
    repeat: bool = False,
) -> bool:
    event = QKeyEvent(kind, qt_key, mods, text, repeat)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


PRESS, RELEASE = QEvent.Type.KeyPress, QEvent.Type.KeyRelease


def test_mouse_clicks_double_clicks_and_drags(setup: tuple) -> None:  # type: ignore[type-arg]
    _, viewer, capture, sent, _ = setup
    scale = 1920 / viewer.width()
    left = Qt.MouseButton.LeftButton
    x, y = 100, viewer.height() / 2
    rx, ry = int(x * scale), int((y - capture.remote.transform.origin_y) * scale)  # type: ignore[union-attr]
    mouse(viewer, QEvent.Type.MouseMove, x, y)
    mouse(viewer, QEvent.Type.MouseButtonPress, x, y, left, left)
    mouse(viewer, QEvent.Type.MouseButtonRelease, x, y, left)
    mouse(viewer, QEvent.Type.MouseButtonDblClick, x, y, left, left)
    mouse(viewer, QEvent.Type.MouseButtonRelease, x, y, left)
    mouse(viewer, QEvent.Type.MouseButtonPress, x, y, Qt.MouseButton.RightButton)
    mouse(viewer, QEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.RightButton)
    assert sent == [
        m.PointerMove(rx, ry),
        m.PointerButton(1, True),
        m.PointerButton(1, False),
        m.PointerButton(1, True),
        m.PointerButton(1, False),
        m.PointerButton(3, True),
        m.PointerButton(3, False),
    ]
    sent.clear()
    mouse(viewer, QEvent.Type.MouseButtonPress, x, y, left, left)
    mouse(viewer, QEvent.Type.MouseMove, x + 50, y, buttons=left)
    mouse(viewer, QEvent.Type.MouseMove, 99_999, y, buttons=left)  # leaves the picture
    mouse(viewer, QEvent.Type.MouseButtonRelease, 99_999, y, left)
    assert sent == [
        m.PointerButton(1, True),
        m.PointerMove(int((x + 50) * scale), ry),
        m.PointerMove(1919, ry),
        m.PointerButton(1, False),
    ]


def test_wheel_both_axes(setup: tuple) -> None:  # type: ignore[type-arg]
    _, viewer, _, sent, _ = setup
    for angle in (QPoint(0, 120), QPoint(0, -240), QPoint(120, 0), QPoint(-120, 0)):
        pos = QPointF(200, 200)
        event = QWheelEvent(
            pos,
            viewer.mapToGlobal(pos),
            QPoint(),
            angle,
            Qt.MouseButton.NoButton,
            NO_MODS,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(viewer, event)
    wheels = [msg for msg in sent if isinstance(msg, m.Wheel)]
    # Qt's x > 0 is "left"; the wire's dx > 0 is "right".
    assert wheels == [m.Wheel(0, 120), m.Wheel(0, -240), m.Wheel(-120, 0), m.Wheel(120, 0)]


def test_keys_shortcuts_and_text(setup: tuple) -> None:  # type: ignore[type-arg]
    _, viewer, _, sent, _ = setup
    ctrl = Qt.KeyboardModifier.ControlModifier
    shift = Qt.KeyboardModifier.ShiftModifier
    # Qt reports a modifier key's own event with its flag toggled, as after the event.
    key(viewer, PRESS, Qt.Key.Key_Control)
    key(viewer, PRESS, Qt.Key.Key_C, "\x03", ctrl)
    key(viewer, PRESS, Qt.Key.Key_C, "\x03", ctrl, repeat=True)  # auto-repeat: dropped
    key(viewer, RELEASE, Qt.Key.Key_C, "\x03", ctrl)
    key(viewer, RELEASE, Qt.Key.Key_Control, mods=ctrl)
    key(viewer, PRESS, Qt.Key.Key_Shift)
    key(viewer, PRESS, Qt.Key.Key_A, "A", shift)
    key(viewer, RELEASE, Qt.Key.Key_Shift, mods=shift)
    key(viewer, RELEASE, Qt.Key.Key_A, "a")  # released after Shift: still the "A" key
    key(viewer, PRESS, Qt.Key.Key_Eacute, "é")
    key(viewer, RELEASE, Qt.Key.Key_Eacute, "é")
    key(viewer, PRESS, Qt.Key.Key_F5)
    key(viewer, RELEASE, Qt.Key.Key_F5)
    key(viewer, PRESS, Qt.Key.Key_AltGr)  # shapes text here; never pressed there
    assert sent == [
        m.KeyEvent(CONTROL_L, True, m.CONTROL_MASK),
        m.KeyEvent(ord("c"), True, m.CONTROL_MASK),
        m.KeyEvent(ord("c"), False, m.CONTROL_MASK),
        m.KeyEvent(CONTROL_L, False, 0),
        m.KeyEvent(SHIFT_L, True, m.SHIFT_MASK),
        m.KeyEvent(ord("A"), True, m.SHIFT_MASK),
        m.KeyEvent(SHIFT_L, False, 0),
        m.KeyEvent(ord("A"), False, 0),
        m.TextInput("é"),
        m.KeyEvent(0xFFC2, True, 0),
        m.KeyEvent(0xFFC2, False, 0),
    ]


def test_local_shortcuts_stay_quiet_while_the_viewer_has_focus(
    setup: tuple,  # type: ignore[type-arg]
    qtbot: QtBot,
) -> None:
    window, viewer, _, sent, _ = setup
    fired: list[bool] = []
    shortcut = QShortcut(QKeySequence("Ctrl+Q"), window)
    shortcut.activated.connect(lambda: fired.append(True))
    qtbot.keyClick(viewer, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert fired == []
    assert m.KeyEvent(ord("q"), True, m.CONTROL_MASK) in sent
    # Tab goes to the remote side instead of moving the focus.
    qtbot.keyClick(viewer, Qt.Key.Key_Tab)
    assert viewer.hasFocus()
    assert m.KeyEvent(0xFF09, True, 0) in sent


def test_losing_focus_releases_everything(setup: tuple, qtbot: QtBot) -> None:  # type: ignore[type-arg]
    window, viewer, _, sent, _ = setup
    key(viewer, PRESS, Qt.Key.Key_Shift)
    mouse(viewer, QEvent.Type.MouseButtonPress, 50, 200, Qt.MouseButton.LeftButton)
    sent.clear()
    other = QWidget(window)
    other.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    other.show()
    other.setFocus()
    qtbot.waitUntil(lambda: not viewer.hasFocus())
    assert sent == [m.KeyEvent(SHIFT_L, False, 0), m.PointerButton(1, False), m.ReleaseAll()]


def test_moves_are_coalesced(qtbot: QtBot) -> None:
    viewer = QWidget()
    viewer.resize(400, 300)
    qtbot.addWidget(viewer)
    sent: list[m.AppMessage] = []
    clock = Clock()
    capture = InputCapture(viewer, sent.append, clock=clock, min_move_interval=0.01)
    capture.set_transform(ViewTransform.fit(Rect(0, 0, 400, 300), 400, 300))
    for i in range(100):
        clock.now += 0.001
        mouse(viewer, QEvent.Type.MouseMove, i, 10)
    # 100 moves over 0.1 s at most every 0.01 s: about 10 go out, the newest last.
    assert 5 <= len(sent) <= 11
    clock.now += 1
    qtbot.waitUntil(lambda: sent[-1] == m.PointerMove(99, 10), timeout=2000)
    assert capture.remote.queue.coalesced >= 80


def test_special_keys_menu_and_disabling(setup: tuple) -> None:  # type: ignore[type-arg]
    window, viewer, capture, sent, _ = setup
    menu = special_keys_menu(capture, window)
    actions = {action.text(): action for action in menu.actions()}
    assert {"Ctrl+Alt+Del", "Alt+Tab", "Print Screen", "Escape", "Super"} <= set(actions)
    actions["Ctrl+Alt+Del"].trigger()
    assert [(msg.keysym, msg.pressed) for msg in sent if isinstance(msg, m.KeyEvent)] == [
        (CONTROL_L, True),
        (ALT_L, True),
        (DELETE, True),
        (DELETE, False),
        (ALT_L, False),
        (CONTROL_L, False),
    ]
    sent.clear()
    capture.set_enabled(False)
    key(viewer, PRESS, Qt.Key.Key_X, "x")  # not ours any more
    assert sent == []
    capture.set_enabled(True)
    key(viewer, PRESS, Qt.Key.Key_X, "x")
    assert sent == [m.KeyEvent(ord("x"), True, 0)]
    capture.detach()
    key(viewer, RELEASE, Qt.Key.Key_X, "x")
    assert sent == [m.KeyEvent(ord("x"), True, 0), m.KeyEvent(ord("x"), False, 0), m.ReleaseAll()]


def test_a_transform_source_is_asked_at_every_pointer_event(qtbot: QtBot) -> None:
    viewer = QWidget()
    viewer.resize(400, 300)
    qtbot.addWidget(viewer)
    sent: list[m.AppMessage] = []
    capture = InputCapture(viewer, sent.append, min_move_interval=0)
    scroll = [0]

    def source() -> ViewTransform:
        # 1:1 on the second of two monitors, scrolled by scroll[0] pixels.
        region = Rect(1920, 0, 1920, 1080)
        return ViewTransform.one_to_one(region, 400, 300, scroll_x=scroll[0])

    capture.set_transform_source(source)
    mouse(viewer, QEvent.Type.MouseMove, 10, 20)
    scroll[0] = 100
    mouse(viewer, QEvent.Type.MouseMove, 10, 20)
    capture.set_transform_source(lambda: None)
    mouse(viewer, QEvent.Type.MouseMove, 30, 20)
    assert sent == [m.PointerMove(1930, 20), m.PointerMove(2030, 20)]


def test_keys_reach_the_capture_of_the_viewer_viewport(qtbot: QtBot) -> None:
    """The viewer's viewport forwards its focus to the scroll area, so that is where keys
    arrive: the capture installed on the viewport must see them (issue 9)."""
    view = ScreenView()
    qtbot.addWidget(view)
    sent: list[m.AppMessage] = []
    capture = InputCapture(view.viewport(), sent.append, min_move_interval=0)
    view.show()
    qtbot.waitExposed(view)
    view.viewport().setFocus()  # what the session tab does when control starts
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None)
    focused = QApplication.focusWidget()
    assert focused is view and capture.keyboard_target is view
    key(focused, PRESS, Qt.Key.Key_Q, "q")
    key(focused, RELEASE, Qt.Key.Key_Q, "q")
    key(focused, PRESS, Qt.Key.Key_Eacute, "é")
    assert sent == [m.KeyEvent(ord("q"), True, 0), m.KeyEvent(ord("q"), False, 0), m.TextInput("é")]
    capture.detach()
    sent.clear()
    key(focused, PRESS, Qt.Key.Key_Q, "q")
    assert sent == []
