"""The technician's side of Deskhand: a console over a Qt-free core."""
