"""SecureSession: channels, priority, flow control, liveness, rekeying, close."""

from __future__ import annotations

import time

import pytest

from common.crypto.handshake import TechnicianHandshake, UserHandshake
from common.crypto.record import RecordType
from common.errors import InvalidState, ProtocolError
from common.protocol import messages as m
from common.protocol.channels import Channel
from common.protocol.codec import encode
from common.session import MessageReceived, SecureSession, SessionEnded, SessionLimits
from tests.pki import make_org


SID = b"q" * 16
SMALL = SessionLimits(
    fragment_size=1024, initial_window=4096, heartbeat_interval=5, peer_timeout=15
)


def open_pair(
    limits: SessionLimits = SMALL, now: float = 0.0
) -> tuple[SecureSession, SecureSession]:
    org = make_org()
    tech = TechnicianHandshake("123456", SID, org.technician(), ("view",))
    user = UserHandshake("123456", SID, org.trust)
    m1, m2 = tech.hello(), user.hello()
    user.receive_hello(m1)
    user.receive_auth(tech.receive_hello(m2), time.time())
    m4, user_est = user.accept(("view",))
    tech_est = tech.receive_auth(m4)
    return SecureSession(tech_est, now, limits), SecureSession(user_est, now, limits)


def pump(a: SecureSession, b: SecureSession, now: float = 0.0, limit: int = 10_000) -> int:
    """Move every record a wants to send into b (and b's replies back). Returns records moved."""
    moved = 0
    for _ in range(limit):
        progressed = False
        for src, dst in ((a, b), (b, a)):
            record = src.next_record(now)
            if record is not None:
                dst.receive_record(record, now)
                moved += 1
                progressed = True
        if not progressed:
            return moved
    raise AssertionError("pump did not settle")


def raw_frame(pixels: bytes) -> m.ScreenFrame:
    """A keyframe of one raw rectangle, 100 pixels wide."""
    height = len(pixels) // 400
    rect = (0, 0, 100, height, m.ScreenEncoding.RAW_BGRA, len(pixels))
    return m.ScreenFrame(1, True, 100, height, 0, rect, pixels)


def messages(session: SecureSession) -> list[m.AppMessage]:
    return [e.message for e in session.events_received() if isinstance(e, MessageReceived)]


def test_every_channel_both_ways() -> None:
    tech, user = open_pair()
    samples = [
        m.CapabilityRequest(("control",)),
        m.PointerMove(1, 2),
        m.ChatText(1, "hi", 0),
        m.ClipboardText("clip"),
        m.AuditEvent(1, 1, "e", ""),
        m.ScreenFrame(
            1, True, 10, 10, 0, (0, 0, 10, 10, int(m.ScreenEncoding.RAW_BGRA), 400), bytes(400)
        ),
        m.FileOffer(b"i" * 16, "a.txt", 3, b"h" * 32),
    ]
    for msg in samples:
        tech.send(msg)
        user.send(msg)
    pump(tech, user)
    assert sorted(map(repr, messages(user))) == sorted(map(repr, samples))
    assert sorted(map(repr, messages(tech))) == sorted(map(repr, samples))


def test_large_messages_are_fragmented_and_reassembled() -> None:
    tech, user = open_pair()
    frame = raw_frame(bytes(range(256)) * 150)
    user.send(frame)
    records = pump(user, tech)
    assert records > 30  # 38 KB in 1 KB fragments, plus window updates
    assert messages(tech) == [frame]


def test_input_overtakes_queued_bulk_data() -> None:
    tech, user = open_pair(SessionLimits(fragment_size=1024, initial_window=1 << 20))
    big = raw_frame(bytes(40_000))
    user.send(big)
    first = user.next_record(0.0)
    assert first is not None
    tech.receive_record(first, 0.0)
    user.send(m.ChatText(1, "urgent", 0))
    tech.send(m.KeyEvent(65, True))
    # The very next record from the user is the chat message, not the next fragment.
    record = user.next_record(0.0)
    assert record is not None
    tech.receive_record(record, 0.0)
    assert messages(tech) == [m.ChatText(1, "urgent", 0)]
    pump(tech, user)
    assert messages(tech) == [big]
    assert messages(user) == [m.KeyEvent(65, True)]


def test_bulk_sender_stops_without_credit_and_resumes_on_window_update() -> None:
    tech, user = open_pair()
    payload = m.FileChunk(b"t" * 16, 0, bytes(20_000))
    user.send(payload)
    sent = []
    while (record := user.next_record(0.0)) is not None:
        sent.append(record)
    # 4096 bytes of window, 1024-byte fragments: exactly four go out.
    assert len(sent) == 4 and user.send_credit(Channel.FILE) == 0
    assert user.queued_bytes(Channel.FILE) > 0
    for record in sent:
        tech.receive_record(record, 0.0)
    pump(tech, user)
    assert messages(tech) == [payload]
    assert user.queued_bytes(Channel.FILE) == 0


def test_peer_overrunning_the_window_ends_the_session() -> None:
    tech, user = open_pair()
    sealer = user._sealer
    for _ in range(5):
        tech.receive_record(
            sealer.seal(RecordType.DATA, bytes((Channel.FILE, 0)) + bytes(1024)), 0.0
        )
    ended = [e for e in tech.events_received() if isinstance(e, SessionEnded)]
    assert ended and "flow-control" in ended[0].reason
    assert tech.is_closed


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        (b"\x09\x01x", "unknown channel"),
        (b"\x02\x08x", "flags"),
        (b"\x02", "channel header"),
        (bytes((Channel.CHAT, 1)) + encode(m.PointerMove(1, 1)), "not allowed on the chat channel"),
        (bytes((Channel.CHAT, 1)) + b"\x01\x7f", "unknown message type"),
        (bytes((Channel.INPUT, 0)) + bytes(17_000), "too large"),
    ],
)
def test_bad_data_records_end_the_session(plaintext: bytes, reason: str) -> None:
    tech, user = open_pair(SessionLimits(fragment_size=32 * 1024, initial_window=1 << 20))
    tech.receive_record(user._sealer.seal(RecordType.DATA, plaintext), 0.0)
    (ended,) = tech.events_received()
    assert isinstance(ended, SessionEnded) and reason in ended.reason and not ended.clean


def test_auth_record_after_handshake_is_refused() -> None:
    tech, user = open_pair()
    tech.receive_record(user._sealer.seal(RecordType.AUTH, b""), 0.0)
    (ended,) = tech.events_received()
    assert isinstance(ended, SessionEnded) and "handshake record" in ended.reason


def test_heartbeats_keep_a_quiet_session_alive() -> None:
    tech, user = open_pair()
    for second in range(1, 60):
        now = float(second)
        tech.tick(now)
        user.tick(now)
        pump(tech, user, now)
    assert tech.is_open and user.is_open


def test_silent_peer_is_detected() -> None:
    tech, _ = open_pair()
    tech.tick(14.9)
    assert tech.is_open
    tech.tick(15.0)
    (ended,) = tech.events_received()
    assert isinstance(ended, SessionEnded) and "stopped responding" in ended.reason


def test_dropped_last_record_is_detected_at_the_next_heartbeat() -> None:
    tech, user = open_pair()
    user.send(m.ChatText(1, "lost", 0))
    assert user.next_record(0.0) is not None  # the relay drops it
    user.tick(6.0)
    heartbeat = user.next_record(6.0)
    assert heartbeat is not None
    tech.receive_record(heartbeat, 6.0)
    (ended,) = tech.events_received()
    assert isinstance(ended, SessionEnded) and "missing" in ended.reason


def test_rekey_is_transparent() -> None:
    limits = SessionLimits(fragment_size=1024, initial_window=1 << 20, rekey_records=5)
    tech, user = open_pair(limits)
    for i in range(40):
        user.send(m.ChatText(i, f"msg {i}", 0))
    pump(user, tech)
    assert [msg.msg_id for msg in messages(tech)] == list(range(40))  # type: ignore[attr-defined]
    assert user._sealer.epoch >= 7 and tech._opener.epoch == user._sealer.epoch


def test_rekey_by_time() -> None:
    limits = SessionLimits(rekey_interval=60.0)
    tech, user = open_pair(limits)
    user.send(m.ChatText(1, "a", 0))
    pump(user, tech, now=61.0)
    assert user._sealer.epoch == 1
    assert messages(tech) == [m.ChatText(1, "a", 0)]


def test_clean_close() -> None:
    tech, user = open_pair()
    tech.send(m.ChatText(1, "bye", 0))
    tech.send(m.FileChunk(b"t" * 16, 0, bytes(5000)))
    tech.close("Problem solved.")
    with pytest.raises(InvalidState):
        tech.send(m.ChatText(2, "late", 0))
    # The queued chat line still goes out; the queued bulk data does not.
    chat = tech.next_record(0.0)
    assert chat is not None and not tech.is_closed
    record = tech.next_record(0.0)
    assert record is not None and tech.is_closed
    assert tech.next_record(0.0) is None
    (ours,) = tech.events_received()
    assert ours == SessionEnded("Problem solved.", clean=True, by_peer=False)
    user.receive_record(chat, 0.0)
    user.receive_record(record, 0.0)
    received, theirs = user.events_received()
    assert received == MessageReceived(Channel.CHAT, m.ChatText(1, "bye", 0))
    assert theirs == SessionEnded("Problem solved.", clean=True, by_peer=True)
    # Records after CLOSE are ignored; the session stays ended once.
    user.receive_record(record, 0.0)
    assert user.events_received() == []


def test_abnormal_end() -> None:
    tech, _ = open_pair()
    tech.connection_lost()
    (ended,) = tech.events_received()
    assert isinstance(ended, SessionEnded) and not ended.clean and "lost" in ended.reason


def test_oversized_send_is_refused() -> None:
    tech, _ = open_pair()
    with pytest.raises(ProtocolError):
        tech.send(m.ChatText(1, "x" * 9000, 0))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SessionLimits(fragment_size=0)
    with pytest.raises(ValueError):
        SessionLimits(fragment_size=2048, initial_window=1024)
    with pytest.raises(ValueError):
        SessionLimits(heartbeat_interval=10, peer_timeout=5)
