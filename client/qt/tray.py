"""The tray icon: its state at a glance, and a menu rebuilt from the current state.

Where the desktop has no system tray, the app keeps its normal window
instead (see app.py); this class is then not created.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from client.core.presence import Presence
from client.qt.icons import icon_for
from client.qt.tray_menu import tray_menu, tray_tooltip


__all__ = ["Tray"]


class Tray(QObject):
    """Renders a Presence snapshot as a tray icon, tooltip and menu.

    Signals:
        action_chosen: a menu entry was chosen; its action name (str).
        activated: the icon itself was clicked (show the main window).
        menu_open_changed: the menu opened (True) or closed (False); remote
            input is paused while it is open.
    """

    action_chosen = Signal(str)
    activated = Signal()
    menu_open_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._presence = Presence()
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.on_menu_about_to_show)
        self.menu.aboutToHide.connect(self.on_menu_about_to_hide)
        self.icon = QSystemTrayIcon(icon_for(self._presence.state), self)
        self.icon.setContextMenu(self.menu)
        self.icon.setToolTip(tray_tooltip(self._presence))
        self.icon.activated.connect(self.on_icon_activated)
        self.rebuild_menu()

    @property
    def presence(self) -> Presence:
        return self._presence

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_presence(self, presence: Presence) -> None:
        if presence.state is not self._presence.state:
            self.icon.setIcon(icon_for(presence.state))
        self._presence = presence
        self.icon.setToolTip(tray_tooltip(presence))
        if self.menu.isVisible():
            self.rebuild_menu()

    def notify(self, title: str, text: str, *, warning: bool = False) -> bool:
        """A tray notification (technician joined, asks for more, left); False if not shown."""
        if not (self.icon.isVisible() and QSystemTrayIcon.supportsMessages()):
            return False
        icons = QSystemTrayIcon.MessageIcon
        kind = icons.Warning if warning else icons.Information
        self.icon.showMessage(title, text, kind, 8000)
        return True

    def rebuild_menu(self) -> None:
        self.menu.clear()
        for item in tray_menu(self._presence):
            action = QAction(item.text, self.menu)
            action.setEnabled(item.enabled)
            if item.checked is not None:
                action.setCheckable(True)
                action.setChecked(item.checked)
            if item.action:
                name = item.action
                action.triggered.connect(
                    lambda _checked=False, name=name: self.action_chosen.emit(name)
                )
            self.menu.addAction(action)
            if not item.action:
                self.menu.addSeparator()

    @Slot()
    def on_menu_about_to_show(self) -> None:
        self.rebuild_menu()
        self.menu_open_changed.emit(True)

    @Slot()
    def on_menu_about_to_hide(self) -> None:
        self.menu_open_changed.emit(False)

    @Slot(QSystemTrayIcon.ActivationReason)
    def on_icon_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.activated.emit()
