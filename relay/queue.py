"""The help-request queue: pure state, wall-clock time injected.

A request moves through::

    post() ──> WAITING ──claim()──> CLAIMED ──finish(STARTED)──> (gone)
                 ^  │                  │
                 │  │   release()      │  the technician left before pairing
                 │  └──────────────────┘  finished: back to WAITING, same place
                 │
    any state ──finish(CANCELLED)──> (gone)      the user withdrew it
    WAITING ──expire()──> (gone)                 waited request_ttl, or its user
                                                 stayed away resume_window

Independently of its state a request is *attached* while its user's
connection is open. A user whose connection drops (or whose relay restarts)
is *away*: the request keeps its place but cannot be claimed, and the user
may re-attach with the resume token within ``resume_window``. A claimed
request whose user leaves goes back to WAITING.

Times are unix seconds (``now``), because requests outlive the relay
process. Nothing here does I/O; refusals raise
:class:`~relay.registry.RelayRejection` and leave the queue unchanged.
"""

from __future__ import annotations

import dataclasses
import hmac
import itertools
import unicodedata
from collections.abc import Iterable, Iterator

from common.protocol.relay_wire import (
    MAX_CATEGORY,
    MAX_DESCRIPTION,
    MAX_REQUEST_NAME,
    MAX_SYSTEM_SUMMARY,
    REQUEST_ID_BYTES,
    CloseCode,
    RequestState,
)
from relay.registry import RelayRejection


__all__ = ["HelpQueue", "HelpRequest", "check_request_text"]

# Bidi overrides could make a request read differently in the technician's list.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@dataclasses.dataclass(slots=True, eq=False)
class HelpRequest:
    """One request for help, as the relay keeps it.

    Attributes:
        id: 16 random bytes, public to technicians, secret to nobody.
        name, description, category, system_summary: what the user sent.
        created_at: when it was posted (unix seconds); its place in the queue.
        resume_hash: SHA-256 of the user's resume token.
        address: the limit key of the address that posted it.
        seq: tie-break for requests posted in the same instant.
        state: WAITING or CLAIMED.
        claimed_by: the claiming account's id while CLAIMED.
        claimed_name: that account's display name.
        attached: True while the user's connection is open.
        away_since: when the user left (unix seconds), while not attached.
    """

    id: bytes
    name: str
    description: str
    category: str
    system_summary: str
    created_at: float
    resume_hash: bytes
    address: str
    seq: int = 0
    state: RequestState = RequestState.WAITING
    claimed_by: int | None = None
    claimed_name: str = ""
    attached: bool = False
    away_since: float | None = None


def _text_problem(value: str, *, multiline: bool) -> str | None:
    allowed = "\n\t" if multiline else ""
    for ch in value:
        if ch in allowed:
            continue
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return "contains a control character"
    return None


def check_request_text(
    name: str,
    description: str,
    category: str,
    system_summary: str,
    *,
    max_text: int,
    max_summary: int,
) -> None:
    """Refuse a request that is empty, too long or holds control characters.

    Raises:
        RelayRejection: REQUEST_TOO_LARGE or BAD_MESSAGE, with the reason.
    """
    if not name.strip() or not description.strip():
        raise RelayRejection(CloseCode.BAD_MESSAGE, "a request needs a name and a description")
    text = sum(len(v.encode("utf-8")) for v in (name, description, category))
    if text > max_text:
        raise RelayRejection(
            CloseCode.REQUEST_TOO_LARGE,
            f"the request text is {text} bytes; the limit is {max_text}",
        )
    summary = len(system_summary.encode("utf-8"))
    if summary > max_summary:
        raise RelayRejection(
            CloseCode.REQUEST_TOO_LARGE,
            f"the system summary is {summary} bytes; the limit is {max_summary}",
        )
    for what, value, multiline in (
        ("name", name, False),
        ("category", category, False),
        ("description", description, True),
        ("system summary", system_summary, True),
    ):
        problem = _text_problem(value, multiline=multiline)
        if problem:
            raise RelayRejection(CloseCode.BAD_MESSAGE, f"the {what} {problem}")


class HelpQueue:
    """Every stored help request of one relay, in order.

    Args:
        max_requests: the most requests at once (waiting or claimed).
        max_per_address: the most requests posted from one address.
        max_text: the most UTF-8 bytes of name, description and category together.
        max_summary: the most UTF-8 bytes of system summary.
        request_ttl: a request still waiting after this long expires.
        resume_window: a request whose user stays away this long expires.
    """

    def __init__(
        self,
        *,
        max_requests: int = 200,
        max_per_address: int = 3,
        max_text: int = 4000,
        max_summary: int = 16 * 1024,
        request_ttl: float = 4 * 3600.0,
        resume_window: float = 600.0,
    ) -> None:
        if min(max_requests, max_per_address, max_text, max_summary) < 1:
            raise ValueError("queue limits must be positive")
        if request_ttl <= 0 or resume_window <= 0:
            raise ValueError("request_ttl and resume_window must be positive")
        limit = MAX_REQUEST_NAME + MAX_DESCRIPTION + MAX_CATEGORY
        if max_text > limit or max_summary > MAX_SYSTEM_SUMMARY:
            raise ValueError("queue text limits exceed what the wire format carries")
        self.max_requests = max_requests
        self.max_per_address = max_per_address
        self.max_text = max_text
        self.max_summary = max_summary
        self.request_ttl = request_ttl
        self.resume_window = resume_window
        self._requests: dict[bytes, HelpRequest] = {}
        self._seq = itertools.count(1)

    # --- queries --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._requests

    def __iter__(self) -> Iterator[HelpRequest]:
        """Requests in queue order (oldest first)."""
        return iter(sorted(self._requests.values(), key=lambda r: (r.created_at, r.seq)))

    def get(self, request_id: bytes) -> HelpRequest | None:
        return self._requests.get(request_id)

    def counts(self) -> tuple[int, int]:
        """(waiting, claimed) requests."""
        claimed = sum(1 for r in self._requests.values() if r.state is RequestState.CLAIMED)
        return len(self._requests) - claimed, claimed

    def positions(self) -> dict[bytes, int]:
        """Every request's position: 1 for the next waiting one, 0 while claimed."""
        result: dict[bytes, int] = {}
        n = 0
        for request in self:
            if request.state is RequestState.WAITING:
                n += 1
                result[request.id] = n
            else:
                result[request.id] = 0
        return result

    def position(self, request_id: bytes) -> int:
        """One request's position (see :meth:`positions`). Raises KeyError."""
        if request_id not in self._requests:
            raise KeyError(request_id)
        return self.positions()[request_id]

    def expires_at(self, request: HelpRequest) -> float:
        """When a waiting request expires if nothing happens to it."""
        deadline = request.created_at + self.request_ttl
        if request.away_since is not None:
            deadline = min(deadline, request.away_since + self.resume_window)
        return deadline

    # --- transitions ----------------------------------------------------------

    def post(
        self,
        request_id: bytes,
        *,
        name: str,
        description: str,
        category: str,
        system_summary: str,
        resume_hash: bytes,
        address: str,
        now: float,
    ) -> HelpRequest:
        """Add an attached, WAITING request at the end of the queue.

        Raises:
            RelayRejection: BAD_MESSAGE or REQUEST_TOO_LARGE (the text),
                QUEUE_FULL, or RATE_LIMITED (too many from this address).
        """
        if len(request_id) != REQUEST_ID_BYTES or request_id in self._requests:
            raise ValueError("request ids are 16 fresh bytes")
        check_request_text(
            name,
            description,
            category,
            system_summary,
            max_text=self.max_text,
            max_summary=self.max_summary,
        )
        if len(self._requests) >= self.max_requests:
            raise RelayRejection(
                CloseCode.QUEUE_FULL, "too many people are waiting for help; try again later"
            )
        if sum(1 for r in self._requests.values() if r.address == address) >= (
            self.max_per_address
        ):
            raise RelayRejection(CloseCode.RATE_LIMITED, "too many open requests from this address")
        request = HelpRequest(
            id=request_id,
            name=name,
            description=description,
            category=category,
            system_summary=system_summary,
            created_at=now,
            resume_hash=resume_hash,
            address=address,
            seq=next(self._seq),
            attached=True,
        )
        self._requests[request_id] = request
        return request

    def load(self, requests: Iterable[HelpRequest], now: float) -> None:
        """Take back stored requests after a restart: all WAITING, all away since ``now``."""
        for request in requests:
            request.seq = next(self._seq)
            request.state = RequestState.WAITING
            request.claimed_by, request.claimed_name = None, ""
            request.attached, request.away_since = False, now
            self._requests[request.id] = request

    def resume(self, request_id: bytes, resume_hash: bytes, now: float) -> tuple[HelpRequest, bool]:
        """Re-attach a user to its request.

        Returns:
            The request, and whether another connection held it (the caller
            must close that one: the newer connection wins).

        Raises:
            RelayRejection: UNKNOWN_REQUEST, for an unknown id or a wrong
                token alike (no oracle), or an expired request.
        """
        request = self._requests.get(request_id)
        if request is None or not hmac.compare_digest(request.resume_hash, resume_hash):
            raise RelayRejection(
                CloseCode.UNKNOWN_REQUEST, "no such request (it may have expired); post it again"
            )
        if not request.attached and now >= self.expires_at(request):
            del self._requests[request_id]
            raise RelayRejection(CloseCode.REQUEST_EXPIRED, "this request has expired")
        was_attached = request.attached
        request.attached, request.away_since = True, None
        return request, was_attached

    def detach(self, request_id: bytes, now: float) -> HelpRequest | None:
        """The user's connection ended: the request stays, away; a claim is released."""
        request = self._requests.get(request_id)
        if request is None:
            return None
        request.attached, request.away_since = False, now
        self._unclaim(request)
        return request

    def claim(self, request_id: bytes, account_id: int, name: str, now: float) -> HelpRequest:
        """A technician takes a waiting request whose user is connected.

        Raises:
            RelayRejection: UNKNOWN_REQUEST, REQUEST_TAKEN or USER_AWAY.
        """
        request = self._requests.get(request_id)
        if request is None:
            raise RelayRejection(CloseCode.UNKNOWN_REQUEST, "this request is no longer queued")
        if request.state is RequestState.CLAIMED:
            raise RelayRejection(CloseCode.REQUEST_TAKEN, "another technician took this request")
        if not request.attached:
            raise RelayRejection(CloseCode.USER_AWAY, "the user is not connected right now")
        request.state = RequestState.CLAIMED
        request.claimed_by, request.claimed_name = account_id, name
        return request

    def release(self, request_id: bytes) -> HelpRequest | None:
        """The claiming technician left before pairing finished: back to WAITING."""
        request = self._requests.get(request_id)
        if request is None or request.state is not RequestState.CLAIMED:
            return None
        self._unclaim(request)
        return request

    def finish(self, request_id: bytes) -> HelpRequest | None:
        """The request is done (started or cancelled): forget it."""
        return self._requests.pop(request_id, None)

    def expire(self, now: float) -> list[HelpRequest]:
        """Remove and return every WAITING request past its deadline at ``now``."""
        gone = [
            r
            for r in self._requests.values()
            if r.state is RequestState.WAITING and now >= self.expires_at(r)
        ]
        for request in gone:
            del self._requests[request.id]
        return gone

    def _unclaim(self, request: HelpRequest) -> None:
        request.state = RequestState.WAITING
        request.claimed_by, request.claimed_name = None, ""
