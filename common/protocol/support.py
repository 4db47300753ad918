"""Shared vocabulary for help requests and session reports."""

from __future__ import annotations


__all__ = ["CATEGORIES", "OUTCOMES"]

# What a user picks when asking for help, and a technician when closing.
CATEGORIES = (
    "Hardware",
    "Software",
    "Network or internet",
    "Account or password",
    "Printing",
    "Email",
    "Other",
)

# How a session ended, from the help desk's point of view.
OUTCOMES = ("Resolved", "Partly resolved", "Not resolved", "Escalated", "User not reachable")
