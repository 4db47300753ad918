"""Session resumption: proofs, exactly-once delivery, the screen, discarding, limits."""

from __future__ import annotations

import os
import time

import pytest

from common.crypto.handshake import TechnicianHandshake, UserHandshake
from common.crypto.record import RecordType
from common.crypto.resume import ResumeOffer, ResumeProof, resume_id
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.protocol.codec import decode_as, encode
from common.session import (
    EndCause,
    LinkLost,
    LinkRestored,
    MessageReceived,
    SecureSession,
    SessionEnded,
    SessionLimits,
)
from tests.pki import make_org


SID = b"r" * 16
LIMITS = SessionLimits(
    fragment_size=1024,
    initial_window=4096,
    heartbeat_interval=5,
    peer_timeout=15,
    resume_grace=60,
    retransmit_budget=64 * 1024,
    ack_bytes=2048,
    ack_interval=1.0,
)


def open_pair(
    limits: SessionLimits = LIMITS, sid: bytes = SID
) -> tuple[SecureSession, SecureSession]:
    org = make_org()
    tech = TechnicianHandshake("123456", sid, org.technician(), ("view",))
    user = UserHandshake("123456", sid, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    user.receive_auth(tech.receive_hello(m2), time.time())
    m4, user_est = user.accept(("view",))
    tech_est = tech.receive_auth(m4)
    pair = SecureSession(tech_est, 0.0, limits), SecureSession(user_est, 0.0, limits)
    for session in pair:
        session.enable_resume()
    return pair


def pump(a: SecureSession, b: SecureSession, now: float = 0.0) -> None:
    for _ in range(10_000):
        progressed = False
        for src, dst in ((a, b), (b, a)):
            record = src.next_record(now)
            if record is not None:
                dst.receive_record(record, now)
                progressed = True
        if not progressed:
            return
    raise AssertionError("pump did not settle")


def drain(session: SecureSession, now: float = 0.0) -> list[bytes]:
    """Records the session sends into a link that is about to drop (lost)."""
    records = []
    while (record := session.next_record(now)) is not None:
        records.append(record)
    return records


def resume(a: SecureSession, b: SecureSession, now: float = 0.0) -> None:
    offer_a, offer_b = a.begin_resume(os.urandom(64)), b.begin_resume(os.urandom(64))
    proof_a, proof_b = a.resume_offer(offer_b), b.resume_offer(offer_a)
    assert proof_a is not None and proof_b is not None
    assert a.resume_proof(proof_b, now) and b.resume_proof(proof_a, now)


def chats(session: SecureSession) -> list[int]:
    return [
        e.message.msg_id
        for e in session.events_received()
        if isinstance(e, MessageReceived) and isinstance(e.message, m.ChatText)
    ]


def ended(session: SecureSession) -> SessionEnded:
    events = [e for e in session.events_received() if isinstance(e, SessionEnded)]
    assert len(events) == 1, events
    return events[0]


def test_resume_ids_are_one_way_and_not_the_secret() -> None:
    tech, user = open_pair()
    assert tech.resume_ids() == user.resume_ids()
    current, previous = tech.resume_ids()
    assert len(current) == 32 and previous == b""
    assert current != resume_id(current)


def test_messages_sent_around_a_drop_arrive_once_and_in_order() -> None:
    tech, user = open_pair()
    for i in range(10):
        tech.send(m.ChatText(i, "before", 0))
    pump(tech, user)
    assert chats(user) == list(range(10))
    # Some records reach the user, then the link drops with the rest in flight.
    for i in range(10, 20):
        tech.send(m.ChatText(i, "x" * 300, 0))
    for record in drain(tech)[:4]:
        user.receive_record(record, 1.0)
    tech.link_lost(2.0)
    user.link_lost(2.0)
    assert isinstance(tech.events_received()[-1], LinkLost)
    # Sent while the link is down: queued, not lost.
    for i in range(20, 25):
        tech.send(m.ChatText(i, "during", 0))
        user.send(m.ChatText(100 + i, "during", 0))
    resume(tech, user, 3.0)
    pump(tech, user, 3.0)
    assert chats(user) == list(range(10, 25))
    assert chats(tech) == [100 + i for i in range(20, 25)]
    # Acknowledgements empty the retransmit buffers.
    pump(tech, user, 10.0)
    tech.tick(10.0)
    user.tick(10.0)
    pump(tech, user, 10.0)
    assert tech.unacknowledged_bytes == 0 and user.unacknowledged_bytes == 0


def test_a_fragmented_message_continues_after_a_resume() -> None:
    tech, user = open_pair()
    tech.send(m.ClipboardText("c" * 5000))
    records = drain(tech)
    for record in records[:2]:
        user.receive_record(record, 0.0)
    tech.link_lost(1.0)
    user.link_lost(1.0)
    resume(tech, user, 1.0)
    pump(tech, user, 1.0)
    got = [e.message for e in user.events_received() if isinstance(e, MessageReceived)]
    assert got == [m.ClipboardText("c" * 5000)]


def test_screen_data_is_never_replayed_and_the_window_restarts() -> None:
    tech, user = open_pair()
    frame = m.ScreenFrame(
        1, True, 10, 10, 0, (0, 0, 10, 10, int(m.ScreenEncoding.RAW_BGRA), 400), bytes(400)
    )
    big = m.ScreenFrame(
        2, True, 100, 30, 0, (0, 0, 100, 30, int(m.ScreenEncoding.RAW_BGRA), 12000), bytes(12000)
    )
    user.send(big)
    for record in drain(user)[:2]:  # part of a frame reaches the technician
        tech.receive_record(record, 0.0)
    tech.link_lost(1.0)
    user.link_lost(1.0)
    user.send(frame)  # dropped: stale by the time the link is back
    assert user.queued_bytes(Channel.SCREEN) == 0
    resume(tech, user, 2.0)
    events = user.events_received() + tech.events_received()
    assert sum(isinstance(e, LinkRestored) for e in events) == 2
    assert user.send_credit(Channel.SCREEN) == LIMITS.initial_window
    pump(tech, user, 2.0)
    assert not [e for e in tech.events_received() if isinstance(e, MessageReceived)]
    # A keyframe after the resume goes through whole.
    user.send(frame)
    pump(tech, user, 2.0)
    got = [e.message for e in tech.events_received() if isinstance(e, MessageReceived)]
    assert got == [frame]


def test_a_tampered_proof_ends_with_a_security_cause() -> None:
    tech, user = open_pair()
    tech.link_lost(0.0)
    user.link_lost(0.0)
    offer_t, offer_u = tech.begin_resume(os.urandom(64)), user.begin_resume(os.urandom(64))
    proof_t = tech.resume_offer(offer_u)
    assert proof_t is not None and user.resume_offer(offer_t) is not None
    proof = decode_as(ResumeProof, proof_t)
    # The relay claims the technician received less, to get data replayed.
    forged = encode(ResumeProof(proof.received + 1, proof.mac))
    assert not user.resume_proof(forged, 0.0)
    end = ended(user)
    assert end.cause is EndCause.SECURITY and "proof is wrong" in end.reason


def test_a_tampered_offer_ends_with_a_security_cause() -> None:
    tech, user = open_pair()
    tech.link_lost(0.0)
    user.link_lost(0.0)
    offer_t, offer_u = tech.begin_resume(os.urandom(64)), user.begin_resume(os.urandom(64))
    original = decode_as(ResumeOffer, offer_u)
    swapped = encode(
        ResumeOffer(
            original.role, os.urandom(32), original.x25519, original.current, original.previous
        )
    )
    proof_t = tech.resume_offer(swapped)
    proof_u = user.resume_offer(offer_t)
    assert proof_t is not None and proof_u is not None
    assert not user.resume_proof(proof_t, 0.0)
    assert not tech.resume_proof(proof_u, 0.0)
    assert ended(user).cause is EndCause.SECURITY
    assert ended(tech).cause is EndCause.SECURITY


def test_a_reflected_offer_is_refused() -> None:
    tech, _ = open_pair()
    tech.link_lost(0.0)
    offer = tech.begin_resume(os.urandom(64))
    assert tech.resume_offer(offer) is None
    assert ended(tech).cause is EndCause.SECURITY


def test_another_sessions_ticket_cannot_splice() -> None:
    tech, _ = open_pair()
    _, other_user = open_pair(sid=b"s" * 16)
    tech.link_lost(0.0)
    other_user.link_lost(0.0)
    offer_t = tech.begin_resume(os.urandom(64))
    offer_u = other_user.begin_resume(os.urandom(64))
    assert tech.resume_offer(offer_u) is None
    assert other_user.resume_offer(offer_t) is None
    assert ended(tech).cause is EndCause.SECURITY
    assert "do not hold" in ended(other_user).reason


def test_a_ticket_works_once_and_old_proofs_do_not_replay() -> None:
    tech, user = open_pair()
    first_id = tech.resume_ids()[0]
    tech.link_lost(0.0)
    user.link_lost(0.0)
    offer_t, offer_u = tech.begin_resume(os.urandom(64)), user.begin_resume(os.urandom(64))
    proof_t, proof_u = tech.resume_offer(offer_u), user.resume_offer(offer_t)
    assert proof_t is not None and proof_u is not None
    assert tech.resume_proof(proof_u, 0.0) and user.resume_proof(proof_t, 0.0)
    pump(tech, user, 0.0)  # records under the new keys confirm the switch
    assert tech.resume_ids()[0] != first_id and tech.resume_ids() == user.resume_ids()
    assert tech.resume_ids()[1] == b""
    # A relay that replays the first resume's messages gets nowhere.
    tech.link_lost(1.0)
    tech.begin_resume(os.urandom(64))
    assert tech.resume_offer(offer_u) is None
    assert ended(tech).cause is EndCause.SECURITY


def test_a_drop_during_the_resume_falls_back_to_the_previous_ticket() -> None:
    tech, user = open_pair()
    tech.send(m.ChatText(1, "a", 0))
    tech.link_lost(0.0)
    user.link_lost(0.0)
    offer_t, offer_u = tech.begin_resume(os.urandom(64)), user.begin_resume(os.urandom(64))
    proof_t, proof_u = tech.resume_offer(offer_u), user.resume_offer(offer_t)
    assert proof_t is not None and proof_u is not None
    # The technician verifies the user's proof; the link drops before the
    # user gets the technician's.
    assert tech.resume_proof(proof_u, 0.0)
    assert tech.resume_ids()[1] == user.resume_ids()[0]
    drain(tech)
    tech.link_lost(1.0)
    user.link_lost(1.0)
    resume(tech, user, 2.0)
    pump(tech, user, 2.0)
    assert chats(user) == [1]


def test_the_grace_period_running_out_ends_with_link_lost() -> None:
    tech, _ = open_pair()
    tech.link_lost(5.0)
    (lost,) = tech.events_received()
    assert lost == LinkLost(65.0)
    assert tech.next_deadline() == 65.0
    tech.tick(64.0)
    assert tech.events_received() == []
    tech.tick(65.0)
    assert ended(tech).cause is EndCause.LINK_LOST


def test_a_silent_peer_suspends_when_resume_is_enabled() -> None:
    tech, _user = open_pair()
    tech.tick(15.0)
    assert tech.events_received() == [LinkLost(75.0)] and tech.is_suspended
    t2, _ = open_pair()
    t2._resume_enabled = False
    t2.tick(15.0)
    assert ended(t2).cause is EndCause.PEER_SILENT


def test_without_resume_a_drop_ends_the_session() -> None:
    tech, _ = open_pair()
    tech._resume_enabled = False
    tech.link_lost(0.0)
    assert ended(tech).cause is EndCause.LINK_LOST


def test_over_the_budget_the_session_cannot_resume() -> None:
    tech, _user = open_pair(
        SessionLimits(
            fragment_size=1024,
            initial_window=4096,
            retransmit_budget=4096,
            ack_bytes=1024,
        )
    )
    for i in range(20):
        tech.send(m.ChatText(i, "y" * 500, 0))
    drain(tech)  # nothing arrives, nothing is acknowledged
    assert not tech.resumable
    tech.link_lost(1.0)
    end = ended(tech)
    assert end.cause is EndCause.LINK_LOST and "too much unacknowledged data" in end.reason


def test_acknowledgements_keep_the_buffer_small() -> None:
    tech, user = open_pair()
    for i in range(300):
        tech.send(m.ChatText(i, "z" * 500, 0))
        pump(tech, user, 0.0)
    assert tech.unacknowledged_bytes <= LIMITS.ack_bytes + 1024
    assert tech.resumable


def test_discard_unsent_aborts_a_partial_message() -> None:
    tech, user = open_pair(SessionLimits(fragment_size=1024, initial_window=1 << 20))
    user.enable_resume()
    big = m.ScreenFrame(
        2, True, 100, 30, 0, (0, 0, 100, 30, int(m.ScreenEncoding.RAW_BGRA), 12000), bytes(12000)
    )
    user.send(big)
    for _ in range(3):
        record = user.next_record(0.0)
        assert record is not None
        tech.receive_record(record, 0.0)
    user.discard_unsent(Channel.SCREEN)
    assert user.queued_bytes(Channel.SCREEN) == 0
    user.send(m.ScreenStopped("paused"))
    pump(tech, user)
    got = [e.message for e in tech.events_received() if isinstance(e, MessageReceived)]
    assert got == [m.ScreenStopped("paused")]


def test_discarded_data_is_not_retransmitted_after_a_resume() -> None:
    tech, user = open_pair()
    user.send(m.ClipboardText("secret" * 500))
    lost = drain(user)
    tech.receive_record(lost[0], 0.0)  # the first fragment arrives
    user.discard_unsent(Channel.CLIPBOARD)
    user.send(m.ChatText(7, "after", 0))
    tech.link_lost(1.0)
    user.link_lost(1.0)
    resume(tech, user, 1.0)
    pump(tech, user, 1.0)
    got = [e.message for e in tech.events_received() if isinstance(e, MessageReceived)]
    assert got == [m.ChatText(7, "after", 0)]
    # The session is still consistent: a new clipboard message arrives whole.
    user.send(m.ClipboardText("new"))
    pump(tech, user, 1.0)
    got = [e.message for e in tech.events_received() if isinstance(e, MessageReceived)]
    assert got == [m.ClipboardText("new")]


def test_withdrawn_file_fragments_refund_their_credit() -> None:
    tech, user = open_pair()
    chunk = m.FileChunk(b"i" * 16, 0, bytes(3000))
    user.send(chunk)
    drain(user)  # lost in flight
    credit = user.send_credit(Channel.FILE)
    user.discard_unsent(Channel.FILE)
    tech.link_lost(1.0)
    user.link_lost(1.0)
    resume(tech, user, 1.0)
    pump(tech, user, 1.0)
    assert user.send_credit(Channel.FILE) > credit
    assert user.send_credit(Channel.FILE) == LIMITS.initial_window


def test_close_while_suspended_ends_locally_at_once() -> None:
    tech, _ = open_pair()
    tech.link_lost(0.0)
    tech.events_received()
    tech.close("The user stopped the session.")
    end = ended(tech)
    assert end.cause is EndCause.CLOSED and not end.by_peer


def test_acks_of_unsent_data_are_a_protocol_error() -> None:
    tech, user = open_pair()
    forged = user._sealer.seal(RecordType.HEARTBEAT, (5).to_bytes(8, "big"))
    tech.receive_record(forged, 0.0)
    assert ended(tech).cause is EndCause.SECURITY


def test_the_old_end_fields_still_compare() -> None:
    assert SessionEnded("x", clean=True, by_peer=True).cause is EndCause.PEER_CLOSED
    assert SessionEnded("x", clean=True, by_peer=False).cause is EndCause.CLOSED
    assert SessionEnded("x", clean=False, by_peer=True).cause is EndCause.LINK_LOST
    with pytest.raises(AttributeError):
        SessionEnded("x", True, True).reason = "y"  # type: ignore[misc]


@pytest.mark.parametrize("share", [os.urandom(32), bytes(32)], ids=["substituted", "low-order"])
def test_a_substituted_x25519_share_is_refused(share: bytes) -> None:
    tech, user = open_pair()
    tech.link_lost(0.0)
    user.link_lost(0.0)
    offer_t, offer_u = tech.begin_resume(os.urandom(64)), user.begin_resume(os.urandom(64))
    original = decode_as(ResumeOffer, offer_u)
    forged = encode(
        ResumeOffer(original.role, original.nonce, share, original.current, original.previous)
    )
    proof_t = tech.resume_offer(forged)
    if proof_t is None:  # a low-order share is refused at once
        assert ended(tech).cause is EndCause.SECURITY
        return
    proof_u = user.resume_offer(offer_t)
    assert proof_u is not None
    assert not user.resume_proof(proof_t, 0.0)
    assert ended(user).cause is EndCause.SECURITY
