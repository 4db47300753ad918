"""Qt-free core of the user client."""
