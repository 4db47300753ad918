"""InputCapture: a viewer widget's mouse, wheel and keys become remote input.

Install it on any widget that shows the user's screen::

    capture = InputCapture(view.viewport(), bridge.send_input)   # one AppMessage at a time
    capture.set_transform_source(lambda: ViewTransform(region, view.scale(), ox, oy))
    menu_button.setMenu(special_keys_menu(capture, parent=window))

(``set_transform`` takes a fixed transform instead; a source is asked at
every pointer event, so resizing, scrolling and monitor changes need no
extra wiring.)

It is an event filter: it translates events with
:class:`technician.core.input.RemoteInput` and swallows them, so the viewer
(or a scroll area around it) does not act on them too. Everything else
passes through. Policy lives in the core; this module only knows Qt.

Mouse events come from the widget given; keyboard and focus events from the
widget that really holds the focus when that one is focused: the end of its
focus-proxy chain. A scroll area's viewport forwards its focus to the scroll
area, so keys never reach the viewport: filtering only the viewport lost
every key (issue 9).

Keys. Special keys and modifiers travel as X keysyms; Ctrl/Alt/Super
shortcuts as the key's character; other text as text (é, ß, € and input
method commits). Auto-repeat is not forwarded: the user's X server repeats
the held key itself. Each release goes to the keysym its press sent, even
if Shift changed in between. AltGr itself is not forwarded: the character
it makes is.

Shortcuts reach the remote side where the platform allows: while the
viewer has the focus *and* the pointer is over it, the keyboard is grabbed
(``QWidget.grabKeyboard``; on X11 an active grab, which wins over the window
manager's Alt+Tab and Super bindings), and ``ShortcutOverride`` is accepted
so that the technician app's own shortcuts stay quiet. Moving the pointer
out of the viewer gives the keyboard back. Ctrl+Alt+Del can never be
grabbed on Windows, and Wayland compositors keep their shortcuts: use the
special keys menu there. Losing focus or hiding releases everything held.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import (
    QFocusEvent,
    QGuiApplication,
    QInputMethodEvent,
    QKeyEvent,
    QMouseEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QMenu, QWidget

from common.protocol.messages import (
    ALT_MASK,
    ALTGR_MASK,
    CONTROL_MASK,
    SHIFT_MASK,
    SUPER_MASK,
    AppMessage,
)
from technician.core.input import SPECIAL_KEYS, RemoteInput, ViewTransform, translate_key


__all__ = ["QT_KEY_TO_KEYSYM", "InputCapture", "keyboard_widget", "special_keys_menu"]

Key = Qt.Key

# Non-character keys: Qt key -> X keysym.
QT_KEY_TO_KEYSYM: dict[Qt.Key, int] = {
    Key.Key_Escape: 0xFF1B,
    Key.Key_Tab: 0xFF09,
    Key.Key_Backtab: 0xFE20,  # ISO_Left_Tab: what Shift+Tab makes on X11
    Key.Key_Backspace: 0xFF08,
    Key.Key_Return: 0xFF0D,
    Key.Key_Enter: 0xFF8D,  # KP_Enter
    Key.Key_Insert: 0xFF63,
    Key.Key_Delete: 0xFFFF,
    Key.Key_Pause: 0xFF13,
    Key.Key_Print: 0xFF61,
    Key.Key_SysReq: 0xFF15,
    Key.Key_Clear: 0xFF0B,
    Key.Key_Home: 0xFF50,
    Key.Key_End: 0xFF57,
    Key.Key_Left: 0xFF51,
    Key.Key_Up: 0xFF52,
    Key.Key_Right: 0xFF53,
    Key.Key_Down: 0xFF54,
    Key.Key_PageUp: 0xFF55,
    Key.Key_PageDown: 0xFF56,
    Key.Key_Shift: 0xFFE1,
    Key.Key_Control: 0xFFE3,
    Key.Key_Meta: 0xFFEB,  # the Windows / Super key on X11 and Windows
    Key.Key_Alt: 0xFFE9,
    Key.Key_CapsLock: 0xFFE5,
    Key.Key_NumLock: 0xFF7F,
    Key.Key_ScrollLock: 0xFF14,
    Key.Key_Super_L: 0xFFEB,
    Key.Key_Super_R: 0xFFEC,
    Key.Key_Menu: 0xFF67,
    Key.Key_Help: 0xFF6A,
    **{Key(Key.Key_F1.value + n): 0xFFBE + n for n in range(35)},  # F1..F35
}

# Keys that shape text on this side and must not be pressed on the other.
_LOCAL_ONLY = {Key.Key_AltGr, Key.Key_Mode_switch, Key.Key_Multi_key}

_GRAB_PLATFORMS = {"xcb", "windows", "cocoa"}
_HOVER = (QEvent.Type.Enter, QEvent.Type.Leave)

_BUTTONS: dict[Qt.MouseButton, int] = {
    Qt.MouseButton.LeftButton: 1,
    Qt.MouseButton.MiddleButton: 2,
    Qt.MouseButton.RightButton: 3,
    Qt.MouseButton.BackButton: 8,
    Qt.MouseButton.ForwardButton: 9,
}


def x_modifiers(modifiers: Qt.KeyboardModifier) -> int:
    """Qt's modifier flags as an X modifier mask."""
    mask = 0
    for flag, bit in (
        (Qt.KeyboardModifier.ShiftModifier, SHIFT_MASK),
        (Qt.KeyboardModifier.ControlModifier, CONTROL_MASK),
        (Qt.KeyboardModifier.AltModifier, ALT_MASK),
        (Qt.KeyboardModifier.MetaModifier, SUPER_MASK),
        (Qt.KeyboardModifier.GroupSwitchModifier, ALTGR_MASK),
    ):
        if modifiers & flag:
            mask |= bit
    return mask


class InputCapture(QObject):
    """Event filter that sends a widget's input to the user's side.

    Args:
        widget: the viewer widget (positions are in its coordinates).
        send: called in the GUI thread with each message, in order.
        clock: monotonic seconds (tests pass a fake).
        min_move_interval: pointer moves are coalesced to at most one per
            this many seconds.
        grab_keyboard: grab the keyboard while focused and hovered.
    """

    def __init__(
        self,
        widget: QWidget,
        send: Callable[[AppMessage], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        min_move_interval: float = 1 / 120,
        grab_keyboard: bool = True,
    ) -> None:
        super().__init__(widget)
        self._widget = widget
        self._send = send
        self._clock = clock
        self._grab_wanted = grab_keyboard
        self._grabbed = False
        self._enabled = True
        self._input = RemoteInput(min_move_interval=min_move_interval)
        self._source: Callable[[], ViewTransform | None] | None = None
        self._pressed: dict[int, int] = {}  # physical key -> keysym its press sent
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)
        self._keys = keyboard_widget(widget)
        widget.setMouseTracking(True)
        self._keys.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._keys.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled, True)
        widget.installEventFilter(self)
        if self._keys is not widget:
            self._keys.installEventFilter(self)

    @property
    def remote(self) -> RemoteInput:
        return self._input

    @property
    def keyboard_grabbed(self) -> bool:
        return self._grabbed

    @property
    def keyboard_target(self) -> QWidget:
        """The widget whose keyboard and focus events are captured."""
        return self._keys

    def set_transform(self, transform: ViewTransform | None) -> None:
        """How viewer points map to the user's desktop (on every resize, scroll, monitor)."""
        self._source = None
        self._input.transform = transform

    def set_transform_source(self, source: Callable[[], ViewTransform | None] | None) -> None:
        """Ask source for the transform at every pointer event (None: no pointer input)."""
        self._source = source

    def set_enabled(self, enabled: bool) -> None:
        """Stop (or resume) capturing; stopping releases everything held."""
        if enabled == self._enabled:
            return
        if not enabled:
            self._release_everything()
        self._enabled = enabled

    def send_special(self, name: str) -> None:
        """Send one of SPECIAL_KEYS by its label (e.g. "Ctrl+Alt+Del")."""
        self._input.special(SPECIAL_KEYS[name], self._clock())
        self._flush()

    def detach(self) -> None:
        """Release everything and stop filtering the widget."""
        self._release_everything()
        self._widget.removeEventFilter(self)
        self._keys.removeEventFilter(self)

    # --- the filter ---

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._enabled:
            return False
        pointer, keys = watched is self._widget, watched is self._keys
        if not (pointer or keys):
            return False
        kind = event.type()
        now = self._clock()
        handled = True
        # The pointer is the widget's; the keyboard and the focus are the keyboard widget's.
        if isinstance(event, (QMouseEvent, QWheelEvent)) or kind in _HOVER:
            if not pointer:
                return False
        elif isinstance(event, (QKeyEvent, QInputMethodEvent, QFocusEvent)) and not keys:
            return False
        if self._source is not None and isinstance(event, (QMouseEvent, QWheelEvent)):
            self._input.transform = self._source()
        if isinstance(event, QMouseEvent):
            handled = self._on_mouse(kind, event, now)
        elif isinstance(event, QWheelEvent):
            angle, pos = event.angleDelta(), event.position()
            # Qt: x > 0 scrolls left; the wire: dx > 0 scrolls right.
            self._input.wheel(-angle.x(), angle.y(), pos.x(), pos.y(), now)
        elif kind == QEvent.Type.ShortcutOverride:
            event.accept()  # the key is ours: no local shortcut fires
        elif isinstance(event, QKeyEvent) and kind in (
            QEvent.Type.KeyPress,
            QEvent.Type.KeyRelease,
        ):
            self._on_key(event, kind == QEvent.Type.KeyPress, now)
        elif isinstance(event, QInputMethodEvent):
            if event.commitString():
                self._input.text(event.commitString(), now)
        elif isinstance(event, QFocusEvent) or kind in (
            QEvent.Type.Enter,
            QEvent.Type.Leave,
            QEvent.Type.Hide,
            QEvent.Type.WindowDeactivate,
        ):
            self._on_focus_or_hover(kind)
            handled = False
        else:
            handled = False
        if handled:
            self._flush()
        return handled

    def _on_mouse(self, kind: QEvent.Type, event: QMouseEvent, now: float) -> bool:
        pos = event.position()
        if kind == QEvent.Type.MouseMove:
            self._input.pointer_move(pos.x(), pos.y(), now)
            return True
        button = _BUTTONS.get(event.button())
        if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick):
            if not self._keys.hasFocus():
                self._keys.setFocus(Qt.FocusReason.MouseFocusReason)
            if button is not None:
                self._input.pointer_button(button, True, pos.x(), pos.y(), now)
            return True
        if kind == QEvent.Type.MouseButtonRelease:
            if button is not None:
                self._input.pointer_button(button, False, pos.x(), pos.y(), now)
            return True
        return False

    def _on_key(self, event: QKeyEvent, pressed: bool, now: float) -> None:
        if event.isAutoRepeat():
            return  # the user's side repeats held keys itself
        try:
            qt_key: Qt.Key | None = Key(event.key())
        except ValueError:
            qt_key = None
        if qt_key in _LOCAL_ONLY:
            return
        identity = event.nativeScanCode() or event.key()
        modifiers = x_modifiers(event.modifiers())
        if not pressed:
            keysym = self._pressed.pop(identity, None)
            if keysym is not None:
                self._input.key(keysym, False, modifiers, now)
            return
        special = QT_KEY_TO_KEYSYM.get(qt_key) if qt_key is not None else None
        base = chr(event.key()) if 0x20 <= event.key() < 0x110000 else ""
        if base and not base.isprintable():
            base = ""
        action = translate_key(special=special, base=base, text=event.text(), modifiers=modifiers)
        if isinstance(action, int):
            self._pressed[identity] = action
            self._input.key(action, True, modifiers, now)
        elif isinstance(action, str):
            self._input.text(action, now)

    def _on_focus_or_hover(self, kind: QEvent.Type) -> None:
        if kind in (QEvent.Type.FocusIn, QEvent.Type.Enter):
            if self._keys.hasFocus() and self._widget.underMouse():
                self._grab()
        elif kind == QEvent.Type.Leave:
            self._ungrab()
        else:  # FocusOut, Hide, WindowDeactivate
            self._release_everything()

    def _grab(self) -> None:
        # Only where the platform can grab (offscreen and Wayland would warn).
        if QGuiApplication.platformName() not in _GRAB_PLATFORMS:
            return
        if self._grab_wanted and not self._grabbed:
            self._keys.grabKeyboard()
            self._grabbed = True

    def _ungrab(self) -> None:
        if self._grabbed:
            self._keys.releaseKeyboard()
            self._grabbed = False

    def _release_everything(self) -> None:
        self._ungrab()
        self._pressed.clear()
        if self._input.held_keys or self._input.held_buttons:
            self._input.release_all(self._clock())
            self._flush()

    def _flush(self) -> None:
        now = self._clock()
        for msg in self._input.take(now):
            self._send(msg)
        deadline = self._input.next_deadline()
        if deadline is None:
            self._timer.stop()
        else:
            self._timer.start(max(0, round((deadline - now) * 1000)))


def keyboard_widget(widget: QWidget) -> QWidget:
    """The widget that gets the keyboard when widget is focused (its focus-proxy chain's end)."""
    target, seen = widget, {id(widget)}
    while (proxy := target.focusProxy()) is not None and id(proxy) not in seen:
        seen.add(id(proxy))
        target = proxy
    return target


def special_keys_menu(capture: InputCapture, parent: QWidget | None = None) -> QMenu:
    """A menu of SPECIAL_KEYS; choosing one sends it through capture."""
    menu = QMenu("Special keys", parent)
    for name in SPECIAL_KEYS:
        action = menu.addAction(name)
        action.triggered.connect(lambda _checked=False, n=name: capture.send_special(n))
    return menu
