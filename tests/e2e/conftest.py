"""Attach the logs of the acceptance harness's processes to the report of a failed test."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from pluggy import Result

from tests.e2e.harness import RUNNING


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for deskhand in RUNNING:
            report.sections.append(("Deskhand processes", deskhand.logs()))
