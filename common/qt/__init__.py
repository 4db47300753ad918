"""Qt widgets and helpers shared by the two desktop apps (a UI package: no logic here)."""
