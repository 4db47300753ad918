"""What the technician console shows and keeps, without Qt.

- :func:`format_wait` and :func:`summary_rows` turn queue data into text;
- :class:`SessionOrigin` says where a session came from (a queued request
  or a code), and :func:`diagnostics_rows` what is known about the user's
  computer;
- :class:`TabState` and :func:`describe_end` decide what a session tab says
  when the session ends (a clean end, or a lost connection to offer to
  reconnect);
- :class:`ReportBook` appends each closing report, with the session's facts,
  as one JSON line to ``reports.jsonl`` in the technician's data directory.
  The relay keeps no support records yet; this file is the record.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import time
from pathlib import Path
from typing import Any

from technician.core.report import SessionReport


__all__ = [
    "REPORT_FILE",
    "ChatLine",
    "EndView",
    "ReportBook",
    "SessionFacts",
    "SessionOrigin",
    "TabState",
    "describe_end",
    "diagnostics_rows",
    "format_wait",
    "summary_rows",
]

REPORT_FILE = "reports.jsonl"
RECORD_FORMAT = 1


def format_wait(seconds: float) -> str:
    """How long someone has waited, short and ticking: "12 s", "3 min 05 s", "1 h 02 min"."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def summary_rows(text: str) -> list[tuple[str, str]]:
    """A system summary ("Name: value" lines, untrusted) as (name, value) rows.

    Lines without a colon keep their text as the value, with no name.
    """
    rows: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip() and len(name) <= 40:
            rows.append((name.strip(), value.strip()))
        else:
            rows.append(("", line))
    return rows


@dataclasses.dataclass(frozen=True)
class SessionOrigin:
    """Where a session came from.

    Attributes:
        kind: "queue" (a claimed request) or "code" (the user read a code).
        request_id: the queued request's id, hex ("" for a code).
        name, description, category, system_summary: what the user sent
            with the request (untrusted; empty for a code).
        waiting_since: when the request was posted, unix seconds (0: unknown).
    """

    kind: str
    request_id: str = ""
    name: str = ""
    description: str = ""
    category: str = ""
    system_summary: str = ""
    waiting_since: float = 0.0

    @property
    def title(self) -> str:
        """A short tab title."""
        if self.kind == "queue":
            return self.name or "Queued request"
        return "By code"


def diagnostics_rows(origin: SessionOrigin, device: str) -> list[tuple[str, str]]:
    """Everything known about the user's computer, for the diagnostics panel."""
    rows: list[tuple[str, str]] = []
    if device:
        rows.append(("Device", device))
    if origin.kind == "queue":
        if origin.name:
            rows.append(("Asked by", origin.name))
        if origin.category:
            rows.append(("Category", origin.category))
    rows += summary_rows(origin.system_summary)
    return rows


class TabState(enum.Enum):
    """A session tab's life::

    CONNECTING --paired--> LIVE --user or technician ends--> ENDED
        |                   +--connection dropped-------> LOST --reconnect (code)--> CONNECTING
        +--refused, declined, failed--> FAILED
    """

    CONNECTING = "connecting"
    LIVE = "live"
    ENDED = "ended"
    LOST = "lost"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class EndView:
    """What a tab shows when its session ends.

    Attributes:
        state: ENDED or LOST.
        text: the sentence to show.
    """

    state: TabState
    text: str


def describe_end(reason: str, *, clean: bool, by_peer: bool) -> EndView:
    """The tab's state and text once the session is over.

    An end without the authenticated CLOSE record (the relay went away,
    the network dropped, a heartbeat was missed) is a lost connection.
    """
    if not by_peer:
        return EndView(TabState.ENDED, "You ended the session.")
    if clean:
        return EndView(TabState.ENDED, f"The session ended: {reason}")
    return EndView(TabState.LOST, f"Connection lost: {reason}")


@dataclasses.dataclass(frozen=True)
class ChatLine:
    """One chat line, for the record. who: "technician" or "user"."""

    who: str
    text: str
    at: float


@dataclasses.dataclass(frozen=True)
class SessionFacts:
    """What the console knows about one session, for its record.

    Attributes:
        technician: the signed-in account name ("" when not signed in).
        technician_name: the name on the technician's certificate.
        origin: where the session came from.
        device: what the user told about their device.
        sas: the verification number both sides showed.
        started_at, ended_at: unix seconds (ended_at 0: still open when filed).
        granted: every capability the user granted at some point.
        end: how the session ended, in words ("" if still open).
        chat: the chat, in order.
    """

    technician: str
    technician_name: str
    origin: SessionOrigin
    device: str
    sas: str
    started_at: float
    ended_at: float
    granted: tuple[str, ...]
    end: str
    chat: tuple[ChatLine, ...]


class ReportBook:
    """Appends session records to ``reports.jsonl`` in a directory (created on first use).

    Each line is a JSON object: ``format``, ``filed_at``, the session facts,
    and ``report`` (problem, cause, resolution, category, outcome, notes).
    The file is created private (0600): chats and notes are personal data.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        return self.directory / REPORT_FILE

    @staticmethod
    def record(report: SessionReport, facts: SessionFacts, filed_at: float) -> dict[str, Any]:
        """The JSON object for one session."""
        origin = dataclasses.asdict(facts.origin)
        return {
            "format": RECORD_FORMAT,
            "filed_at": filed_at,
            "technician": facts.technician,
            "technician_name": facts.technician_name,
            "origin": origin,
            "device": facts.device,
            "verification_number": facts.sas,
            "started_at": facts.started_at,
            "ended_at": facts.ended_at or None,
            "granted": list(facts.granted),
            "end": facts.end,
            "chat": [dataclasses.asdict(line) for line in facts.chat],
            "report": dataclasses.asdict(report),
        }

    def append(
        self, report: SessionReport, facts: SessionFacts, *, now: float | None = None
    ) -> dict[str, Any]:
        """Write one record as a line; returns it.

        Raises:
            ValueError: the report is incomplete (see SessionReport.problems).
            OSError: the directory or file cannot be written.
        """
        problems = report.problems()
        if problems:
            raise ValueError(" ".join(problems))
        record = self.record(report, facts, time.time() if now is None else now)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far (an absent file: none)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
