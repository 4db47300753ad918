"""ClientShell: the tray icon, the session bar, notifications and mid-session dialogs.

It puts the app's pieces together around one :class:`~client.qt.bridge.ClientBridge`:

- the tray icon (when the desktop has a system tray) shows the state and
  offers a menu rebuilt from it each time it opens; remote input is paused
  while that menu is open;
- the :class:`~client.qt.window.ClientWindow` (asking, waiting, consent, chat);
- the always-on-top :class:`~client.qt.session_bar.SessionBar` while a
  technician is connected;
- notifications when a technician joins, asks for more, or leaves (tray
  messages; without a tray they are written in the window);
- the :class:`~client.qt.consent_dialog.MoreRightsDialog` for mid-session
  requests (from the technician, or from a tick in the session bar), with
  remote input paused while it is open;
- the clipboard (:class:`QClipboard` on the GUI thread, both ways through
  the bridge, docs/control.md).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QClipboard

from client.core.help_flow import Connected
from client.core.presence import Presence, PresenceState
from client.core.session_controller import CapabilitiesAsked
from client.qt.bridge import ClientBridge
from client.qt.consent_dialog import ALLOW_DELAY, MoreRightsDialog
from client.qt.notify_throttle import NotificationThrottle
from client.qt.session_bar import SessionBar
from client.qt.tray import Tray
from client.qt.tray_menu import describe
from client.qt.window import ClientWindow
from client.qt.wording import joined_notice, left_notice, more_rights_notice


__all__ = ["ClientShell"]

_SHARING = (PresenceState.VIEWED, PresenceState.CONTROLLED)


class ClientShell(QObject):
    """Wires the user client's widgets to its bridge.

    Args:
        bridge: the core's adapter.
        use_tray: the desktop has a system tray: show an icon, and let the
            window hide on close. Otherwise the window is the app.
        clipboard: the system clipboard (None: no clipboard sync).
        allow_delay: seconds before Allow works in consent dialogs.
        bar_reassert_ms, screenshot_delay_ms, default_name: see SessionBar
            and ClientWindow.

    Signals:
        quit_requested: the user chose Quit (or closed the window without a tray).

    Attributes:
        window, bar, tray (None without a tray), more_rights_dialog (when open),
        notifications: every notification shown, newest last (title, text).
    """

    quit_requested = Signal()

    def __init__(
        self,
        bridge: ClientBridge,
        *,
        use_tray: bool,
        clipboard: QClipboard | None = None,
        allow_delay: float = ALLOW_DELAY,
        bar_reassert_ms: int = 3000,
        screenshot_delay_ms: int = 400,
        default_name: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._allow_delay = allow_delay
        self._clipboard = clipboard
        self._presence = Presence()
        self._technician = "The technician"
        self.notifications: list[tuple[str, str]] = []
        self.more_rights_dialog: MoreRightsDialog | None = None
        self._more_by_user = False
        self._throttle = NotificationThrottle()
        self.window = ClientWindow(
            bridge,
            allow_delay=allow_delay,
            screenshot_delay_ms=screenshot_delay_ms,
            hide_on_close=use_tray,
            in_tray=use_tray,
            default_name=default_name,
        )
        self.bar = SessionBar(reassert_ms=bar_reassert_ms)
        self.tray: Tray | None = Tray(self) if use_tray else None

        bridge.presence_changed.connect(self.on_bridge_presence_changed)
        bridge.connected.connect(self.on_bridge_connected)
        bridge.capabilities_asked.connect(self.on_bridge_capabilities_asked)
        bridge.chat_received.connect(self.on_bridge_chat_received)
        bridge.notice.connect(self.on_bridge_notice)
        bridge.ended.connect(self.on_bridge_ended)
        bridge.verification_failed.connect(self.on_bridge_verification_failed)
        self.bar.stop_requested.connect(self.on_stop_requested)
        self.bar.pause_toggled.connect(bridge.set_paused)
        self.bar.capability_toggled.connect(self.on_bar_capability_toggled)
        self.bar.clipboard_directions_changed.connect(bridge.set_clipboard_directions)
        bridge.reconnecting.connect(self.bar.set_reconnecting)
        self.bar.chat_requested.connect(self.window.show_chat)
        self.window.closed.connect(self.quit_requested)
        if self.tray is not None:
            self.tray.action_chosen.connect(self.on_tray_action_chosen)
            self.tray.activated.connect(self.window.show_and_raise)
            self.tray.menu_open_changed.connect(self.on_tray_menu_open_changed)
        if clipboard is not None:
            bridge.clipboard_write.connect(self.on_bridge_clipboard_write)
            clipboard.dataChanged.connect(self.on_clipboard_data_changed)

    def start(self, *, show_window: bool = True) -> None:
        """Show the tray icon, and the window unless asked not to (with a tray only)."""
        if self.tray is not None:
            self.tray.show()
        if show_window or self.tray is None:
            self.window.show()

    @property
    def presence(self) -> Presence:
        return self._presence

    def notify(self, title: str, text: str, *, warning: bool = False) -> None:
        """A notification: a tray message, or a line in the window without a tray."""
        self.notifications.append((title, text))
        admitted = self._throttle.admit(title, text, time.monotonic(), warning=warning)
        shown = (
            admitted and self.tray is not None and self.tray.notify(title, text, warning=warning)
        )
        if not shown:
            self.window.status_label.setText(text)

    # --- bridge events ---

    @Slot(object)
    def on_bridge_presence_changed(self, presence: object) -> None:
        if not isinstance(presence, Presence):
            return
        previous, self._presence = self._presence, presence
        if presence.state in _SHARING and previous.state in _SHARING and presence != previous:
            # What the technician may do changed: the status line must not say the old.
            self.window.status_label.setText(describe(presence))
        if self.tray is not None:
            self.tray.set_presence(presence)
        self.bar.set_presence(presence)
        if presence.state in _SHARING:
            if not self.bar.isVisible():
                self.bar.stop_button.setEnabled(True)
                self.bar.show()
                self.bar.place_at_top()
            else:
                self.bar.adjustSize()
        else:
            self.bar.hide()

    @Slot(object)
    def on_bridge_connected(self, session: object) -> None:
        if isinstance(session, Connected):
            self._technician = session.technician
            self.notify(*joined_notice(session.technician, session.granted))

    @Slot(object)
    def on_bridge_capabilities_asked(self, asked: object) -> None:
        if not isinstance(asked, CapabilitiesAsked) or not asked.capabilities:
            return
        caps = tuple(str(c) for c in asked.capabilities)
        if asked.notify:
            self.notify(*more_rights_notice(self._technician, caps))
        # One prompt at a time: a grown request replaces the open dialog (and
        # its Allow delay starts again, since what it asks for changed).
        self._ask_more(caps, by_user=False)

    @Slot(str)
    def on_bridge_chat_received(self, text: str) -> None:
        # Without a tray the chat is in the window already; with one, the
        # window may be hidden: say a message came.
        if self.tray is not None and not self.window.isActiveWindow():
            self.notify("Message from the technician", text[:300])

    @Slot(str)
    def on_bridge_notice(self, text: str) -> None:
        self.notify("Deskhand", text)

    @Slot(str)
    def on_bridge_verification_failed(self, reason: str) -> None:
        self.notify("Technician NOT verified", reason, warning=True)

    @Slot(str, bool)
    def on_bridge_ended(self, reason: str, had_session: bool) -> None:
        self._close_more_rights()
        self.bar.hide()
        if had_session:
            self.notify(*left_notice(reason))

    @Slot(str)
    def on_bridge_clipboard_write(self, text: str) -> None:
        if self._clipboard is not None:
            self._clipboard.setText(text)

    @Slot()
    def on_clipboard_data_changed(self) -> None:
        # While paused nothing leaves this computer, not even to the core.
        if (
            self._clipboard is not None
            and self._presence.state in _SHARING
            and not self._presence.paused
        ):
            self._bridge.clipboard_changed(self._clipboard.text())

    # --- mid-session requests ---

    def _ask_more(self, capabilities: tuple[str, ...], *, by_user: bool) -> None:
        missing = tuple(c for c in capabilities if c not in self._presence.granted)
        if not missing:
            return
        self._close_more_rights()
        dialog = MoreRightsDialog(
            technician=self._technician,
            requested=missing,
            by_user=by_user,
            allow_delay=self._allow_delay,
        )
        dialog.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._more_by_user = by_user
        dialog.answered.connect(self.on_more_rights_answered)
        self.more_rights_dialog = dialog
        # Remote input waits until the user has answered (docs/control.md).
        self._bridge.set_dialog_open("more-rights", True)
        dialog.open()

    def _close_more_rights(self) -> None:
        dialog, self.more_rights_dialog = self.more_rights_dialog, None
        if dialog is not None:
            dialog.answered.disconnect(self.on_more_rights_answered)
            dialog.reject()
            self._bridge.set_dialog_open("more-rights", False)

    @Slot(object)
    def on_more_rights_answered(self, granted: tuple[str, ...] | None) -> None:
        self.more_rights_dialog = None
        self._bridge.set_dialog_open("more-rights", False)
        if self._more_by_user:
            if granted:
                self._bridge.grant(tuple(granted))
        else:
            self._bridge.answer_request(tuple(granted) if granted else None)

    # --- the user's intents ---

    @Slot(str, bool)
    def on_bar_capability_toggled(self, capability: str, on: bool) -> None:
        if on:
            self._ask_more((capability,), by_user=True)
        else:
            self._bridge.set_capability(capability, False)

    @Slot()
    def on_stop_requested(self) -> None:
        self._close_more_rights()
        self.bar.stop_button.setEnabled(False)
        self._bridge.stop()

    @Slot(bool)
    def on_tray_menu_open_changed(self, is_open: bool) -> None:
        self._bridge.set_dialog_open("tray-menu", is_open)

    @Slot(str)
    def on_tray_action_chosen(self, action: str) -> None:
        window = self.window
        if action == "request":
            window.show_and_raise()
            if window.page in ("home", "report"):
                window.on_request_clicked()
        elif action == "code":
            window.show_and_raise()
            if window.page in ("home", "report"):
                window.on_code_clicked()
        elif action == "show":
            window.show_and_raise()
        elif action in ("cancel", "stop"):
            self.on_stop_requested()
        elif action == "pause":
            self._bridge.set_paused(not self._presence.paused)
        elif action == "chat":
            window.show_chat()
        elif action == "quit":
            self.quit_requested.emit()
