"""The technician console's Qt layer: a thin view over technician.core, wired by app.py."""
