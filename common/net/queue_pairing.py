"""RA1 for help requests picked from the queue ("queue mode").

In the code flow the user reads ``NNN-SSS-SSS`` to a technician and the
PAKE runs on the six secret digits, so both sides prove knowledge of a
secret the relay never saw. A request picked from the queue has no code:
nobody reads anything out. Queue mode runs the *same* RA1 handshake with a
fixed, public password (:data:`QUEUE_PASSWORD`), under a session id bound to
the request::

    sid = SHA-256("deskhand queue v1|" || request_id || "|" || relay_sid)[:16]

The PAKE then authenticates nobody; what remains (docs/architecture.md,
"Queue mode"):

* the user still verifies the technician's organisation certificate and
  its signature over the transcript (which covers the sid, hence the
  request id): the relay cannot pose as a technician to a user;
* both sides show the SAS. With a public password a relay in the middle
  knows both keys, so nothing but the order of messages stops it from
  trying hello after hello until the two 4-digit numbers agree (it could,
  when both hellos went out at once, as they did before issue 14). Queue
  mode therefore adds a hello commitment: the technician sends
  ``HelloCommit(H(hello))`` first, the user sends its hello only then, and
  the technician opens its hello only after the user's arrived; the user
  checks the opening. A relay must fix its hello on each side before it
  sees the real one it would have to match, so each side's SAS is decided
  by one try: the numbers agree by chance, 1 in 10 000;
* but a malicious relay *can* pose as a user to a technician (it can run
  the user side itself); comparing the SAS with the user over the phone
  catches it. The code flow is the stronger mode.

Helpers here wrap :func:`~common.net.pairing.pair_user` and
:func:`~common.net.pairing.pair_technician` with that password and sid.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from common.crypto.code import CODE_LIFETIME, PairingCode
from common.crypto.identity import OrgTrust, TechnicianCredential
from common.net.channel import SecureChannel
from common.net.pairing import ConsentCallback, PairingTimeouts, pair_technician, pair_user
from common.net.reconnect import Reconnector
from common.net.relay_link import RelayLink
from common.protocol.relay_wire import REQUEST_ID_BYTES, SID_BYTES
from common.session import SessionLimits


__all__ = [
    "QUEUE_PASSWORD",
    "AttemptLink",
    "pair_technician_queued",
    "pair_user_queued",
    "queue_sid",
]

QUEUE_PASSWORD = "000000"
_SID_LABEL = b"deskhand queue v1|"


def queue_sid(request_id: bytes, relay_sid: bytes) -> bytes:
    """The RA1 session id for one claim of one request."""
    if len(request_id) != REQUEST_ID_BYTES or len(relay_sid) != SID_BYTES:
        raise ValueError("request ids and relay session ids are 16 bytes")
    return hashlib.sha256(_SID_LABEL + request_id + b"|" + relay_sid).digest()[:SID_BYTES]


class AttemptLink(RelayLink):
    """The user's relay link, lent to one pairing attempt.

    A failed attempt must not close the user's connection: the request stays
    queued on it (a technician who left is replaced by the next one). Until
    :attr:`live` is set, :meth:`close` only records that the attempt ended;
    after it, the secure channel owns the link and closing closes it.
    """

    def __init__(self, link: RelayLink) -> None:
        super().__init__(link.connection)
        self.live = False
        self.closed_by_attempt = False

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.live:
            await super().close(code, reason)
        else:
            self.closed_by_attempt = True


async def pair_user_queued(
    link: AttemptLink,
    request_id: bytes,
    relay_sid: bytes,
    trust: OrgTrust,
    consent: ConsentCallback,
    *,
    device: str = "",
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    entropy: Callable[[int], bytes] = os.urandom,
    timeouts: PairingTimeouts | None = None,
    limits: SessionLimits | None = None,
    reconnector: Reconnector | None = None,
) -> SecureChannel:
    """The user's side of queue-mode RA1, after the relay said Assigned(relay_sid).

    Raises what :func:`pair_user` raises, plus
    :class:`~common.net.relay_link.RequestRequeued` when the technician left
    mid-way (the link then stays open and the request queued).
    """
    code = PairingCode(0, QUEUE_PASSWORD, clock(), CODE_LIFETIME)
    channel = await pair_user(
        link,
        code,
        queue_sid(request_id, relay_sid),
        trust,
        consent,
        device=device,
        clock=clock,
        wall_clock=wall_clock,
        entropy=entropy,
        timeouts=timeouts,
        limits=limits,
        reconnector=reconnector,
        committed=True,
    )
    link.live = True
    return channel


async def pair_technician_queued(
    link: RelayLink,
    request_id: bytes,
    relay_sid: bytes,
    credential: TechnicianCredential,
    *,
    requested: tuple[str, ...] = ("view",),
    on_sas: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    entropy: Callable[[int], bytes] = os.urandom,
    timeouts: PairingTimeouts | None = None,
    limits: SessionLimits | None = None,
    reconnector: Reconnector | None = None,
) -> SecureChannel:
    """The technician's side of queue-mode RA1, after the relay answered Paired(relay_sid)."""
    return await pair_technician(
        link,
        QUEUE_PASSWORD,
        queue_sid(request_id, relay_sid),
        credential,
        requested=requested,
        on_sas=on_sas,
        clock=clock,
        entropy=entropy,
        timeouts=timeouts,
        limits=limits,
        reconnector=reconnector,
        committed=True,
    )
