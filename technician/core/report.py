"""The technician's closing report for a session (the support record's human part)."""

from __future__ import annotations

import dataclasses

from common.protocol.support import CATEGORIES, OUTCOMES


__all__ = ["MAX_FIELD", "SessionReport"]

MAX_FIELD = 4000


@dataclasses.dataclass(frozen=True)
class SessionReport:
    """What was wrong, why, and what was done.

    Attributes:
        problem: the problem as the technician understood it.
        cause: the cause found, if any.
        resolution: what was done.
        category: one of CATEGORIES.
        outcome: one of OUTCOMES.
        notes: free notes kept during the session.
    """

    problem: str
    cause: str
    resolution: str
    category: str
    outcome: str
    notes: str = ""

    def problems(self) -> list[str]:
        """What stops the report from being filed, in words (empty when complete)."""
        found = []
        if not self.problem.strip():
            found.append("Describe the problem.")
        if not self.resolution.strip():
            found.append("Say what was done.")
        if self.category not in CATEGORIES:
            found.append("Pick a category.")
        if self.outcome not in OUTCOMES:
            found.append("Pick an outcome.")
        for name in ("problem", "cause", "resolution", "notes"):
            if len(getattr(self, name)) > MAX_FIELD:
                found.append(f"The {name} field is longer than {MAX_FIELD} characters.")
        return found
