"""What the user client says: capabilities, the anti-scam gate, reporting, notifications.

Pure text, kept out of the widgets so that the words can be reviewed (and
tested) in one place. The audience is someone who is not technical and may
be talking to a scammer right now (security.md 4.3): short sentences, plain
consequences, no jargon.
"""

from __future__ import annotations

from collections.abc import Iterable


__all__ = [
    "ANTI_SCAM",
    "ANTI_SCAM_CONFIRM",
    "ANTI_SCAM_DETAILS",
    "ANTI_SCAM_TITLE",
    "CAPABILITY_CONSEQUENCES",
    "CAPABILITY_LABELS",
    "LONGER_CODES",
    "REPORT_STEPS",
    "REPORT_TITLE",
    "SCREENSHOT_NOTE",
    "VERIFICATION_FAILED",
    "capability_list",
    "joined_notice",
    "left_notice",
    "more_rights_notice",
]

# What each capability means to someone who is not technical.
CAPABILITY_LABELS = {
    "view": "See your screen",
    "control": "Control your mouse and keyboard",
    "clipboard": "Read and change your clipboard",
    "files": "Send and receive files",
}

# What saying yes lets them do (security.md 4.3, point 4: plain consequences).
CAPABILITY_CONSEQUENCES = {
    "view": "They see everything on your screen, including open documents and messages.",
    "control": "They can do anything you can do, including opening your files and programs.",
    "clipboard": "They can read what you copy, and put text on your clipboard.",
    "files": "They can send files to this computer and ask for files from it.",
}

ANTI_SCAM_TITLE = "Before you continue"
ANTI_SCAM = "Only continue if you contacted your IT support yourself."
ANTI_SCAM_DETAILS = (
    "Your IT support will never call you out of the blue, ask you for money, gift cards "
    "or bank details, or ask you to open your online banking. If someone called you, "
    "sent you a pop-up or a message asking you to install or open a remote-help "
    "program, it is probably a scam."
)
ANTI_SCAM_CONFIRM = "I contacted my IT support myself"

REPORT_TITLE = "Someone contacted you: do not continue"
REPORT_STEPS = (
    "Hang up the phone or close the chat. Do not let them talk you into trying again.",
    "Do not install anything, open any link or read out any code they gave you.",
    "Contact your IT support the way you always do (the number or address you already "
    "know, for example from your intranet or your badge), not a number the caller gave "
    "you, and tell them what happened.",
    "If you already paid or gave out a password, tell your bank and IT support at once.",
)

VERIFICATION_FAILED = (
    "This technician could not be verified as working for your organisation. "
    "Do not continue, and do not try again with this person. Someone may be "
    "pretending to be your IT support."
)


def capability_list(capabilities: Iterable[str]) -> str:
    """'see your screen and control your mouse and keyboard' (lower case, for sentences)."""
    words = [CAPABILITY_LABELS.get(c, c).lower() for c in capabilities]
    if not words:
        return "chat only"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def joined_notice(technician: str, granted: Iterable[str]) -> tuple[str, str]:
    """The notification when a technician has joined: (title, text)."""
    return (
        "A technician is connected",
        f"{technician} is connected. They can: {capability_list(granted)}.",
    )


def more_rights_notice(technician: str, requested: Iterable[str]) -> tuple[str, str]:
    """The notification when the technician asks for more: (title, text)."""
    return (
        "The technician asks for more",
        f"{technician} asks to: {capability_list(requested)}. Nothing changes unless you allow it.",
    )


def left_notice(reason: str) -> tuple[str, str]:
    """The notification when the session is over: (title, text)."""
    return ("The session has ended", f"{reason} Nobody can see or use your computer now.")


# Sent to the technician as a chat line when the request had a screenshot.
SCREENSHOT_NOTE = (
    "[Deskhand] The user attached a screenshot to this request. It stays on their "
    "computer: ask them to click “Show my screenshot” in their chat window, and it "
    "will open on their screen."
)


# Shown with a code after three failed pairings in a row (security.md 2.7).
LONGER_CODES = (
    "Warning: the last attempts to connect to this computer failed. Someone may be "
    "guessing codes. Your code is longer for the next hour; read it out only to the "
    "IT support you contacted yourself."
)
