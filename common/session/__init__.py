"""The secure session: channels multiplexed over the RA1 record layer (sans-I/O).

After the handshake, both sides run one :class:`SecureSession`. The adapter
feeds it records with :meth:`~SecureSession.receive_record`, sends whatever
:meth:`~SecureSession.next_record` returns, calls :meth:`~SecureSession.tick`
by :meth:`~SecureSession.next_deadline`, and reads
:meth:`~SecureSession.events_received`. Time is passed in; nothing here does
I/O.

Scheduling. Each channel has a queue. :meth:`next_record` serves the lowest
priority number first (control and input, then chat and clipboard, then the
record channel, then screen and file), taking turns within a priority.
Messages are cut into fragments of ``fragment_size`` so that a keystroke
waits for at most one bulk fragment, never for a whole frame.

Flow control. Bulk channels (screen, file) may only send as many bytes as
the receiver has granted; the receiver grants more with
:class:`~common.protocol.messages.WindowUpdate` as it takes data in. A peer
that overruns its window is a protocol violation. Senders see the backlog
with :meth:`queued_bytes` and are expected to wait or drop stale data.

Liveness and keys. A HEARTBEAT goes out when nothing else has for
``heartbeat_interval``; a peer silent for ``peer_timeout`` counts as a
dropped link (this is also how a dropped last record is caught). Each direction rekeys
after ``rekey_records`` records, ``rekey_bytes`` bytes or ``rekey_interval``
seconds. An authenticated CLOSE ends the session cleanly; a transport that
ends without one is reported as an abnormal end.

Resumption (security.md 2.7). Reliable DATA records (every channel but the
screen) are numbered implicitly on both sides; heartbeats carry how many the
sender received, and :class:`~common.reliable.RetransmitBuffer` keeps what
the peer has not acknowledged. When the link drops (:meth:`link_lost`, or a
silent peer) a session with resumption enabled is *suspended* (LinkLost)
for ``resume_grace``; on a new link :meth:`begin_resume`,
:meth:`resume_offer` and :meth:`resume_proof` run the proof of
:mod:`common.crypto.resume`, switch to fresh keys and re-send from the
count the peer proved (LinkRestored). Screen data is never replayed: it is
dropped, and both sides restart the screen window.

Fragment flags: FINAL ends a message; ABORT (empty) drops the partial
message of its channel (:meth:`discard_unsent`); UNRELIABLE marks records
that are not numbered nor re-sent.
"""

from __future__ import annotations

from common.session.core import SecureSession
from common.session.types import (
    EndCause,
    LinkLost,
    LinkRestored,
    MessageReceived,
    SessionEnded,
    SessionEvent,
    SessionLimits,
)


__all__ = [
    "EndCause",
    "LinkLost",
    "LinkRestored",
    "MessageReceived",
    "SecureSession",
    "SessionEnded",
    "SessionEvent",
    "SessionLimits",
]
