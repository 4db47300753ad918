"""Remote control on the user's side: consent gate, X11 injection, local activity, clipboard.

Modules:
    gate: the pure consent and enforcement state machine (ControlGate).
    injector: XTest injection with keysym-to-keycode mapping (XInjector).
    activity: local input detection that tells the user's input from ours.
    clipboard: clipboard text sync behind a port (ClipboardSync).
    service: the asyncio adapter that wires them to a SecureChannel.

See docs/control.md for the wiring.
"""
