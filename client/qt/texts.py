"""What the user reads when the core reports an outcome: ends, failures, notices.

The core emits typed events and enums; these functions choose the words.
Technical details (a relay's refusal, an exception) are appended only
where they help the user act.
"""

from __future__ import annotations

from client.core.help_flow import Ended, Failed, FlowEnd, Problem
from client.core.session_controller import (
    ClipboardMoved,
    ControlTakenBack,
    Feature,
    FeatureUnavailable,
    Reconnected,
    Reconnecting,
)
from common.clipboard import Flow, Outcome
from common.net.session_events import EndReason, SessionClosed


__all__ = ["ended_text", "failed_text", "session_end_text", "session_notice"]

_FLOW_END = {
    FlowEnd.CANCELLED: "You cancelled the request.",
    FlowEnd.DECLINED: "You declined the request.",
    FlowEnd.CONSENT_TIMED_OUT: "Nobody answered in time, so the technician was turned away.",
    FlowEnd.NOT_VERIFIED: "The technician could not be verified. Nothing was shared.",
}

_SESSION_END = {
    EndReason.TECHNICIAN_ENDED: "the technician ended the session.",
    EndReason.TECHNICIAN_QUIT: "the technician closed their console.",
    EndReason.PEER_ENDED: "the technician ended the session.",
    EndReason.CONNECTION_LOST: "the connection was lost and did not come back in time.",
    EndReason.SECURITY: "a security check failed, so it was stopped. Nothing more was shared.",
    EndReason.INTERNAL_ERROR: "Deskhand hit an error, so it was stopped. Nothing more is shared.",
    EndReason.USER_STOPPED: "you stopped it.",
    EndReason.USER_QUIT: "Deskhand was closed.",
}


def session_end_text(closed: SessionClosed) -> str:
    if not closed.by_peer and closed.reason is EndReason.USER_STOPPED:
        return "You ended the session."
    return f"The session ended: {_SESSION_END[closed.reason]}"


def ended_text(ended: Ended) -> str:
    if ended.session is not None:
        return session_end_text(ended.session)
    known = _FLOW_END.get(ended.reason)
    if known is not None:
        return known
    if ended.reason is FlowEnd.FAILED and ended.detail:
        return f"Something went wrong: {ended.detail}"
    return ended.detail or "The request ended."


def failed_text(failed: Failed) -> str:
    if failed.problem is Problem.BUSY:
        return "A request for help is already under way."
    if failed.problem is Problem.NOT_CONNECTED:
        return "Not connected: nothing was sent."
    if failed.problem is Problem.SUMMARY_UNREADABLE:
        return f"The summary of this computer could not be read: {failed.detail}"
    return failed.detail or "That did not work."


def _clipboard_text(moved: ClipboardMoved) -> str | None:
    transfer = moved.transfer
    size = f"{transfer.size:,} bytes"
    outbound = transfer.flow is Flow.OUTBOUND
    if transfer.outcome is Outcome.SENT:
        return f"Your clipboard text ({size}) was sent to the technician."
    if transfer.outcome is Outcome.APPLIED:
        return f"The technician put text ({size}) on your clipboard."
    if transfer.outcome is Outcome.TOO_LARGE:
        if outbound:
            return f"Your clipboard text ({size}) is too large to share; it was not sent."
        return f"The technician's clipboard text ({size}) was too large; it was refused."
    return None


def session_notice(event: object) -> str | None:
    """A line for the status bar or a notification, or None for events that need none."""
    if isinstance(event, ClipboardMoved):
        return _clipboard_text(event)
    if isinstance(event, ControlTakenBack):
        return "You took control back: the technician can no longer use your mouse and keyboard."
    if isinstance(event, FeatureUnavailable):
        if event.feature is Feature.SCREEN:
            return f"Your screen cannot be shared on this computer: {event.detail}"
        return f"Remote control is not available on this computer: {event.detail}"
    if isinstance(event, Reconnecting):
        return (
            "The connection to the technician dropped. Reconnecting… Nothing is shared "
            "until it is back; Stop still ends everything."
        )
    if isinstance(event, Reconnected):
        return "The technician reconnected. The same permissions apply."
    return None
