"""What the technician reads when the core reports an outcome (ends, clipboard)."""

from __future__ import annotations

from common.clipboard import ClipboardTransfer, Flow, Outcome
from common.net.session_events import EndReason, SessionClosed


__all__ = ["clipboard_text", "session_end_text"]

_BY_USER = {
    EndReason.USER_STOPPED: "The user stopped the session.",
    EndReason.USER_QUIT: "The user closed Deskhand.",
    EndReason.PEER_ENDED: "The user ended the session.",
}
_ANY = {
    EndReason.CONNECTION_LOST: "The connection was lost and did not come back in time.",
    EndReason.SECURITY: "A security check failed: the session was stopped.",
    EndReason.INTERNAL_ERROR: "The session was stopped because of an error in Deskhand.",
}


def session_end_text(closed: SessionClosed) -> str:
    if closed.reason in _ANY:
        return _ANY[closed.reason]
    if closed.by_peer:
        return _BY_USER.get(closed.reason, "The user ended the session.")
    if closed.reason is EndReason.TECHNICIAN_QUIT:
        return "You closed the console."
    return "The technician ended the session."


def clipboard_text(transfer: ClipboardTransfer) -> str:
    size = f"{transfer.size:,} bytes"
    outbound = transfer.flow is Flow.OUTBOUND
    if transfer.outcome is Outcome.SENT:
        return f"Clipboard: sent {size} to the user."
    if transfer.outcome is Outcome.APPLIED:
        return f"Clipboard: received {size} from the user."
    if transfer.outcome is Outcome.TOO_LARGE:
        return f"Clipboard: {size} is over the size limit; not {'sent' if outbound else 'taken'}."
    if transfer.outcome is Outcome.PEER_REFUSES:
        return f"Clipboard: the user does not accept clipboard text now ({size} not sent)."
    return f"Clipboard: {size} from the user was refused (clipboard is off here)."
