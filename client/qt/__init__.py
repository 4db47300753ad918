"""The user client's Qt layer: a thin view over client.core, wired by app.py."""
