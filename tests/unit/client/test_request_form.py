"""The request form's checks, what it sends, and the wording the user reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.core.request_form import (
    MAX_DESCRIPTION_BYTES,
    MAX_NAME,
    RequestDraft,
    default_user_name,
)
from client.core.session import HelpRequest
from client.qt.wording import (
    CAPABILITY_CONSEQUENCES,
    CAPABILITY_LABELS,
    capability_list,
    joined_notice,
    left_notice,
    more_rights_notice,
)
from common.protocol.messages import CAPABILITIES


def test_a_good_draft_becomes_a_request() -> None:
    draft = RequestDraft(" Bob ", " Printer jams \n", "Printing")
    assert draft.problems() == []
    assert draft.to_help_request() == HelpRequest("Bob", "Printer jams", "Printing", "")


def test_the_summary_goes_only_when_ticked() -> None:
    summary = "Operating system: Debian"
    ticked = RequestDraft("Bob", "Printer jams", include_summary=True, summary=summary)
    unticked = RequestDraft("Bob", "Printer jams", include_summary=False, summary=summary)
    assert ticked.to_help_request().system_summary == summary
    assert unticked.to_help_request().system_summary == ""
    waiting = RequestDraft("Bob", "Printer jams", include_summary=True, summary="")
    assert waiting.problems() == ["The summary of this computer is not ready yet."]


@pytest.mark.parametrize(
    ("draft", "problem"),
    [
        (RequestDraft("", "Printer jams"), "Please type your name."),
        (RequestDraft("x" * (MAX_NAME + 1), "Printer jams"), "Your name is too long"),
        (RequestDraft("Bob", "help"), "Please describe what is wrong"),
        (RequestDraft("Bob", "é" * MAX_DESCRIPTION_BYTES), "too long"),
        (RequestDraft("Bob", "Printer jams", "Astrology"), "pick a category"),
    ],
)
def test_problems_are_named(draft: RequestDraft, problem: str) -> None:
    problems = draft.problems()
    assert len(problems) == 1 and problem in problems[0]
    with pytest.raises(ValueError, match=problem.split()[0]):
        draft.to_help_request()


def test_the_screenshot_never_goes_into_the_request() -> None:
    request = RequestDraft("Bob", "Printer jams", screenshot=True).to_help_request()
    assert request == HelpRequest("Bob", "Printer jams")


def test_the_default_name_is_the_full_name_or_nothing_never_a_login() -> None:
    def entries(login: str, gecos: str) -> Callable[[int], tuple[str, str]]:
        return lambda _uid: (login, gecos)

    assert default_user_name(1000, entries("zoe", "Zoë Müller,,,")) == "Zoë Müller"
    assert default_user_name(0, entries("root", "root")) == ""
    assert default_user_name(0, entries("root", "Admin Person")) == ""  # uid 0 is nobody's name
    assert default_user_name(1001, entries("jdoe2", "")) == ""
    assert default_user_name(1002, entries("build", "Build")) == ""  # just the login again
    assert len(default_user_name(1003, entries("x", "y" * 500))) == MAX_NAME

    def missing(_uid: int) -> tuple[str, str]:
        raise KeyError(_uid)

    assert default_user_name(4242, missing) == ""
    assert default_user_name() != "root"  # whoever runs the tests (CI runs as root)


def test_every_capability_has_plain_words() -> None:
    assert set(CAPABILITY_LABELS) == set(CAPABILITIES) == set(CAPABILITY_CONSEQUENCES)
    assert capability_list(()) == "chat only"
    assert capability_list(("view",)) == "see your screen"
    assert capability_list(("view", "control", "files")) == (
        "see your screen, control your mouse and keyboard and send and receive files"
    )


def test_notifications() -> None:
    assert joined_notice("Jane Doe (ACME IT)", ("view",)) == (
        "A technician is connected",
        "Jane Doe (ACME IT) is connected. They can: see your screen.",
    )
    _title, text = more_rights_notice("Jane Doe (ACME IT)", ("control",))
    assert "control your mouse and keyboard" in text and "unless you allow it" in text
    assert left_notice("You ended the session.")[1].startswith("You ended the session.")
