"""The "Request help" form as data: what the user typed and chose, and its checks.

Pure. The Qt form fills a :class:`RequestDraft`, shows :meth:`RequestDraft.problems`
next to the Send button, and hands :meth:`RequestDraft.to_help_request` to the
core. What leaves the computer is exactly what the user saw:

- the system summary only if the box was ticked, and then the very text
  that was shown in full;
- the screenshot never: the wire has no field for it yet (see
  :attr:`RequestDraft.screenshot`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from client.core.session import HelpRequest
from common.protocol.support import CATEGORIES


__all__ = [
    "MAX_DESCRIPTION_BYTES",
    "MAX_NAME",
    "MIN_DESCRIPTION",
    "RequestDraft",
    "default_user_name",
]

MAX_NAME = 100
# The relay refuses name + description + category over 4000 UTF-8 bytes by
# default (relay.config max_request_text); stay well inside that.
MAX_DESCRIPTION_BYTES = 3000
MIN_DESCRIPTION = 5


@dataclasses.dataclass(frozen=True)
class RequestDraft:
    """The form's content.

    Attributes:
        name: who is asking, as the technician will see it.
        description: what is wrong, in the user's words.
        category: one of :data:`~common.protocol.support.CATEGORIES`, or "".
        include_summary: the user ticked "send a summary of this computer".
        summary: the summary text the user was shown (sent only if included).
        screenshot: a screenshot is attached. It stays on this computer: the
            request has no field for it, so the user can show it once the
            technician is connected (they are told so).
    """

    name: str
    description: str
    category: str = ""
    include_summary: bool = False
    summary: str = ""
    screenshot: bool = False

    def problems(self) -> list[str]:
        """What must be fixed before sending, in words; empty when it can go."""
        found = []
        name = self.name.strip()
        if not name:
            found.append("Please type your name.")
        elif len(name) > MAX_NAME:
            found.append(f"Your name is too long (at most {MAX_NAME} characters).")
        description = self.description.strip()
        if len(description) < MIN_DESCRIPTION:
            found.append("Please describe what is wrong, in a few words.")
        elif len(description.encode("utf-8")) > MAX_DESCRIPTION_BYTES:
            found.append("The description is too long: please shorten it.")
        if self.category and self.category not in CATEGORIES:
            found.append("Please pick a category from the list.")
        if self.include_summary and not self.summary.strip():
            found.append("The summary of this computer is not ready yet.")
        return found

    def to_help_request(self) -> HelpRequest:
        """The request to post.

        Raises:
            ValueError: :meth:`problems` is not empty.
        """
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])
        return HelpRequest(
            name=self.name.strip(),
            description=self.description.strip(),
            category=self.category,
            system_summary=self.summary if self.include_summary else "",
        )


def default_user_name(
    uid: int | None = None, account: Callable[[int], tuple[str, str]] | None = None
) -> str:
    """The account's full name (GECOS) if the system knows one, else "".

    Never the login name: "root" or "jdoe2" is not how a person wants to be
    greeted, and the user types their name anyway.

    Args:
        uid: whose account (default: this process's).
        account: returns (login name, GECOS) for a uid (default: the password database).
    """
    uid = os.getuid() if uid is None else uid
    lookup = account or _password_entry
    try:
        login, gecos = lookup(uid)
    except (ImportError, KeyError, OSError):
        return ""
    full_name = gecos.split(",")[0].strip()
    if uid == 0 or not full_name or full_name.casefold() == login.casefold():
        return ""
    return full_name[:MAX_NAME]


def _password_entry(uid: int) -> tuple[str, str]:
    import pwd  # not on Windows

    entry = pwd.getpwuid(uid)
    return entry.pw_name, entry.pw_gecos
