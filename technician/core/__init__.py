"""Qt-free core of the technician app."""
