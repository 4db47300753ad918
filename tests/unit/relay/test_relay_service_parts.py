"""Pure parts of the relay service: new wire messages, metrics text, registry queue states."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from common.errors import InvalidState, ProtocolError
from common.protocol.codec import decode, encode
from common.protocol.relay_wire import (
    Assigned,
    CancelRequest,
    ClaimRequest,
    LoggedIn,
    Login,
    PostRequest,
    Queued,
    QueueEntry,
    QueuePosition,
    QueueRemoved,
    QueueSynced,
    RemovalReason,
    RenewToken,
    RequestState,
    Requeued,
    ResumeRequest,
    SessionStarted,
    WatchQueue,
)
from relay.metrics import Metrics
from relay.registry import Counts, PeerState, Registry


RID = b"r" * 16
MESSAGES = [
    Login("jane", "a password", "app"),
    LoggedIn("dh1.x.y", 3600, "jane", "Jane", "technician", b"crl"),
    RenewToken(),
    PostRequest("Bob", "printer\non fire", "hardware", "Win 11"),
    Queued(RID, b"t" * 32, 3, 600),
    ResumeRequest(RID, b"t" * 32),
    QueuePosition(1),
    Assigned(b"s" * 16),
    Requeued(2, "the technician left"),
    CancelRequest(),
    SessionStarted(),
    WatchQueue(),
    QueueEntry(RID, RequestState.CLAIMED, False, 1.5, "n", "d", "c", "s", "Jane", True),
    QueueRemoved(RID, RemovalReason.EXPIRED),
    QueueSynced(4),
    ClaimRequest(RID),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_new_relay_messages_round_trip(msg: object) -> None:
    assert decode(encode(msg)) == msg  # type: ignore[arg-type]


def test_secrets_stay_out_of_reprs() -> None:
    for msg, secret in (
        (Login("jane", "hunter2hunter2"), "hunter2"),
        (LoggedIn("dh1.tok.en", 1, "jane", "Jane", "technician"), "dh1.tok"),
        (Queued(RID, b"\xaa" * 32, 1, 1), "aaaa"),
        (ResumeRequest(RID, b"\xaa" * 32), "aaaa"),
    ):
        assert secret not in repr(msg)
        assert secret not in repr(msg).replace("\\x", "")


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Queued(b"short", b"t" * 32, 1, 1),
        lambda: Queued(RID, b"t" * 31, 1, 1),
        lambda: QueuePosition(-1),
        lambda: Assigned(b"s" * 15),
        lambda: ClaimRequest(b"r"),
        lambda: LoggedIn("t", 0, "a", "b", "c"),
    ],
)
def test_invalid_values_cannot_be_sent(bad: object) -> None:
    with pytest.raises(ProtocolError):
        encode(bad())  # type: ignore[operator]


@given(st.binary(max_size=200))
def test_decoding_garbage_raises_only_protocol_error(data: bytes) -> None:
    try:
        decode(b"\x01\x0b" + data)
    except ProtocolError:
        pass


def test_metrics_render_in_the_prometheus_text_format() -> None:
    metrics = Metrics()
    metrics.inc("closed_total", code="RATE_LIMITED")
    metrics.inc("closed_total", 2, code="RATE_LIMITED")
    metrics.inc("logins_total", result='we"ird\\')
    metrics.forwarded_bytes += 1234
    metrics.gauges = lambda: {
        "connections": ("Open connections.", 3),
        "queued_requests": ("Requests.", {(("state", "waiting"),): 2}),
        "uptime_seconds": ("Uptime.", 1.5),
    }
    metrics.observe_forward(0.0003)
    metrics.observe_pairing("code", 12.0)
    text = metrics.render().decode()
    lines = text.splitlines()
    assert 'deskhand_relay_closed_total{code="RATE_LIMITED"} 3.0' in lines
    # Label values are closed sets: whatever else comes in is "other".
    assert 'deskhand_relay_logins_total{result="other"} 1.0' in lines
    assert "deskhand_relay_forwarded_bytes_total 1234.0" in lines
    assert "deskhand_relay_connections 3.0" in lines
    assert 'deskhand_relay_queued_requests{state="waiting"} 2.0' in lines
    assert "deskhand_relay_uptime_seconds 1.5" in lines
    assert "# TYPE deskhand_relay_connections gauge" in lines
    assert 'deskhand_relay_forward_delay_seconds_bucket{le="0.0005"} 1.0' in lines
    assert 'deskhand_relay_pairing_seconds_count{kind="code"} 1.0' in lines
    assert any(line.startswith("deskhand_relay_process_resident_memory_bytes") for line in lines)
    assert metrics.value("closed_total", code="RATE_LIMITED") == 3
    with pytest.raises(KeyError):
        metrics.inc("made_up_total")


def test_every_refusal_has_a_closed_label() -> None:
    from common.protocol.relay_wire import CloseCode
    from relay.metrics import REFUSAL_REASONS, refusal_reason

    cases = {
        (CloseCode.RATE_LIMITED, "too many requests from this address; wait a minute"): (
            "address_rate"
        ),
        (CloseCode.RATE_LIMITED, "too many claims from this address; wait"): "address_claims",
        (CloseCode.RATE_LIMITED, "too many codes waiting from this address; use one"): (
            "address_waiting_codes"
        ),
        (CloseCode.RATE_LIMITED, "too many codes asked from this address; wait"): (
            "address_registrations"
        ),
        (CloseCode.LOCKED_OUT, "too many failed claims for this account; try again in 2 minutes"): (
            "claim_lockout"
        ),
        (CloseCode.TOO_MANY_CONNECTIONS, "too many connections from this address"): (
            "connections_per_address"
        ),
        (CloseCode.UNKNOWN_CODE, "no one is waiting for this code"): "unknown_code",
        (CloseCode.RATE_LIMITED, "something new"): "rate_limited",
    }
    for (code, reason), label in cases.items():
        assert refusal_reason(code, reason) == label
        assert label in REFUSAL_REASONS
    metrics = Metrics()
    metrics.refused("not-a-reason")
    assert metrics.value("refusals_total", reason="other") == 1


def test_registry_queue_states() -> None:
    reg: Registry[str] = Registry()
    for handle in ("user", "tech", "console"):
        reg.connect(handle, "192.0.2.1")
    reg.enter("user", PeerState.QUEUED)
    reg.enter("console", PeerState.CONSOLE)
    assert reg.counts() == Counts(3, 0, 0, queued_users=1, consoles=1)
    pairing = reg.join("user", "tech", b"s" * 16)
    assert (pairing.user, pairing.technician, pairing.sid) == ("user", "tech", b"s" * 16)
    assert reg.state("user") is reg.state("tech") is PeerState.PAIRED
    assert reg.partner("user") == "tech"
    assert reg.counts() == Counts(3, 0, 1, queued_users=0, consoles=1)
    assert reg.disconnect("tech") == "user"
    assert reg.state("user") is PeerState.CLOSED
    reg.requeue("user")
    assert reg.state("user") is PeerState.QUEUED
    assert reg.counts() == Counts(2, 0, 0, queued_users=1, consoles=1)
    reg.disconnect("user")
    reg.disconnect("console")
    assert reg.counts() == Counts(0, 0, 0)


def test_registry_queue_states_refuse_wrong_transitions() -> None:
    reg: Registry[str] = Registry()
    reg.connect("a", "192.0.2.1")
    reg.connect("b", "192.0.2.1")
    with pytest.raises(InvalidState):
        reg.enter("a", PeerState.PAIRED)
    with pytest.raises(InvalidState):
        reg.join("a", "b", b"s" * 16)  # a is not queued
    with pytest.raises(InvalidState):
        reg.requeue("a")
    reg.enter("a", PeerState.QUEUED)
    with pytest.raises(InvalidState):
        reg.enter("a", PeerState.CONSOLE)
