"""The user's side of Deskhand: a tray app over a Qt-free core."""
