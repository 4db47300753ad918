"""Application messages: the one module that imports every feature's messages.

Every class names the channel it may travel on; the session refuses a
message that arrives on another channel. Type ids 64 and up are application
messages (1-31 relay, 32-63 pairing and identity).

The messages are defined by feature, one module each (type ids in brackets)::

    msg_base.py                   AppMessage, the base class
    msg_control.py                capabilities, flow-control credit, control state (64-72)
    msg_input.py                  pointer, wheel, keys, text: technician -> user (80-85)
    msg_chat_clipboard_record.py  chat (96), clipboard (104-105), session record (112)
    msg_screen.py                 frames, monitors, cursor, screen stopped (128-135)
    msg_files.py                  file offers, chunks and ends (144-146)

This module imports them all, so importing it registers every application
type id with the codec (a decoder that has not imported a message's module
refuses its id). Import message classes from here
(``from common.protocol.messages import ScreenFrame``); a new feature module
must be imported and re-exported here too.
"""

from __future__ import annotations

from common.protocol.msg_base import AppMessage
from common.protocol.msg_chat_clipboard_record import (
    CLIPBOARD_MAX_TEXT,
    AuditEvent,
    ChatText,
    ClipboardPolicy,
    ClipboardText,
)
from common.protocol.msg_control import (
    CAPABILITIES,
    CapabilityDeclined,
    CapabilityGrant,
    CapabilityRequest,
    ControlState,
    ControlStatus,
    WindowUpdate,
)
from common.protocol.msg_files import FileChunk, FileEnd, FileOffer
from common.protocol.msg_input import (
    ALT_MASK,
    ALTGR_MASK,
    CONTROL_MASK,
    LOCK_MASK,
    NUM_LOCK_MASK,
    SHIFT_MASK,
    SUPER_MASK,
    WHEEL_NOTCH,
    KeyEvent,
    PointerButton,
    PointerMove,
    ReleaseAll,
    TextInput,
    Wheel,
)
from common.protocol.msg_screen import (
    MAX_CURSOR_SIDE,
    MAX_MONITORS,
    MAX_RECTS,
    MAX_VIEW_PIXELS,
    MAX_VIEW_SIDE,
    RECT_FIELDS,
    CursorPosition,
    CursorShape,
    FrameAck,
    KeyframeRequest,
    MonitorList,
    ScreenEncoding,
    ScreenFrame,
    ScreenStopped,
    ScreenStopReason,
    SelectMonitor,
)


__all__ = [
    "ALTGR_MASK",
    "ALT_MASK",
    "CAPABILITIES",
    "CLIPBOARD_MAX_TEXT",
    "CONTROL_MASK",
    "LOCK_MASK",
    "MAX_CURSOR_SIDE",
    "MAX_MONITORS",
    "MAX_RECTS",
    "MAX_VIEW_PIXELS",
    "MAX_VIEW_SIDE",
    "NUM_LOCK_MASK",
    "RECT_FIELDS",
    "SHIFT_MASK",
    "SUPER_MASK",
    "WHEEL_NOTCH",
    "AppMessage",
    "AuditEvent",
    "CapabilityDeclined",
    "CapabilityGrant",
    "CapabilityRequest",
    "ChatText",
    "ClipboardPolicy",
    "ClipboardText",
    "ControlState",
    "ControlStatus",
    "CursorPosition",
    "CursorShape",
    "FileChunk",
    "FileEnd",
    "FileOffer",
    "FrameAck",
    "KeyEvent",
    "KeyframeRequest",
    "MonitorList",
    "PointerButton",
    "PointerMove",
    "ReleaseAll",
    "ScreenEncoding",
    "ScreenFrame",
    "ScreenStopReason",
    "ScreenStopped",
    "SelectMonitor",
    "TextInput",
    "Wheel",
    "WindowUpdate",
]
