"""The help-request queue through a real relay on 127.0.0.1: post, watch, claim, pair, limits."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from client.core.session import HelpRequest, QueueStatus, UserClient, UserState
from common.errors import ConnectionLost, IdentityError, PairingError
from common.net.pairing import ConsentRequest, PairingDeclined, PairingTimeouts
from common.net.queue_pairing import QUEUE_PASSWORD, queue_sid
from common.protocol import messages as m
from common.protocol.codec import decode_as, encode
from common.protocol.relay_wire import (
    Assigned,
    CancelRequest,
    CloseCode,
    Paired,
    Queued,
    QueueEntry,
    QueuePosition,
    QueueRemoved,
    RemovalReason,
    RequestState,
    Requeued,
    ResumeRequest,
    WatchQueue,
    forward_frame,
)
from common.session import MessageReceived
from relay.__main__ import JsonFormatter
from relay.server import RelayServer
from technician.core.session import TechnicianClient
from tests.integration.conftest import RelayFactory
from tests.integration.relay_helpers import (
    PASSWORD,
    T,
    allow,
    claim,
    closed_with,
    create_account,
    login,
    peer,
    post,
    recv,
    request,
    settled,
    watch,
)
from tests.pki import Org, make_org


FAST = PairingTimeouts(hello=3.0, consent=3.0)


@pytest.fixture(scope="module")
def org() -> Org:
    return make_org()


@pytest.fixture
def relay_factory(relay_factory: RelayFactory, database_url: str) -> RelayFactory:
    """Every relay here stores its accounts and queue in a database: SQLite, then PostgreSQL."""

    async def start(**overrides: Any) -> RelayServer:
        return await relay_factory(**{"database_url": database_url, **overrides})

    return start


@pytest.fixture
async def relay(relay_server: RelayServer) -> RelayServer:
    await create_account(relay_server, "jane")
    await create_account(relay_server, "sam", role="supervisor", display_name="Sam Super")
    await create_account(relay_server, "max")
    return relay_server


async def technician(relay: RelayServer, org: Org, name: str = "jane") -> TechnicianClient:
    tech = TechnicianClient(relay.url, org.technician("Jane Doe"), timeouts=FAST)
    await tech.login(name, PASSWORD)
    return tech


# --- the whole flow with the real cores --------------------------------------------


async def test_post_watch_claim_pair_and_chat(relay: RelayServer, org: Org) -> None:
    consents: list[ConsentRequest] = []

    async def consent(req: ConsentRequest) -> tuple[str, ...]:
        consents.append(req)
        return ("view",)

    statuses: list[QueueStatus] = []
    first = UserClient(relay.url, org.trust, consent, on_queue=statuses.append)
    second = UserClient(relay.url, org.trust, allow)
    tech = await technician(relay, org)
    async with asyncio.timeout(15):
        status = await first.post_request(
            HelpRequest("Bob", "printer on fire", "hardware", "Debian 12, 16 GB")
        )
        assert (status.position, first.state) == (1, UserState.QUEUED)
        assert (await second.post_request(HelpRequest("Alice", "mail"))).position == 2
        queue = await tech.watch_queue()
        await queue.wait_synced()
        items = queue.items
        assert [(i.name, i.position, i.user_connected) for i in items] == [
            ("Bob", 1, True),
            ("Alice", 2, True),
        ]
        assert (items[0].description, items[0].category, items[0].system_summary) == (
            "printer on fire",
            "hardware",
            "Debian 12, 16 GB",
        )
        waiting = asyncio.create_task(first.wait_for_technician())
        second_waiting = asyncio.create_task(second.wait_for_technician())
        sas: list[str] = []
        tech_channel = await tech.claim(items[0].request_id, on_sas=sas.append)
        user_channel = await waiting
        # The user verified the technician's certificate and sees the same SAS.
        assert consents[0].technician.name == "Jane Doe"
        assert user_channel.sas == tech_channel.sas == sas[0] == consents[0].sas
        assert first.state is UserState.CONNECTED
        user_channel.send_nowait(m.ChatText(1, "hello", 0))
        event = await tech_channel.next_event()
        assert isinstance(event, MessageReceived) and event.message == m.ChatText(1, "hello", 0)
        # The started request left the queue; Alice moved up.
        while queue.item(items[0].request_id) is not None:
            await queue.next_change()
        while second.queue_status is None or second.queue_status.position != 1:
            await asyncio.sleep(0.01)
        assert [(i.name, i.position) for i in queue.items] == [("Alice", 1)]
        assert statuses[0].position == 1
        await first.cancel()
        await tech_channel.wait_closed()
        await second.cancel()
        with pytest.raises(ConnectionLost, match="withdrew"):
            await second_waiting
        await queue.close()
    assert relay.relay.hub.queue.counts() == (0, 0)


async def test_a_technician_who_leaves_before_pairing_puts_the_request_back(
    relay: RelayServer, org: Org
) -> None:
    statuses: list[QueueStatus] = []
    user = UserClient(relay.url, org.trust, allow, timeouts=FAST, on_queue=statuses.append)
    token = (await login(relay.url)).token
    async with asyncio.timeout(15):
        await user.post_request(HelpRequest("Bob", "vpn"))
        waiting = asyncio.create_task(user.wait_for_technician())
        async with peer(relay.url, token=token) as console:
            (entry,) = await watch(console)
            async with peer(relay.url, token=token) as quitter:
                await claim(quitter, entry.request_id)
                decode_as(Paired, await recv(quitter))
                claimed = decode_as(QueueEntry, await recv(console))
                assert claimed.state is RequestState.CLAIMED
                assert claimed.claimed_by_me and claimed.claimed_by == "Jane"
            # Gone before sending a hello: back in the queue, for everyone.
            back = decode_as(QueueEntry, await recv(console))
            assert (back.state, back.user_connected) == (RequestState.WAITING, True)
        while user.state is not UserState.QUEUED or statuses[-1].position != 1:
            await asyncio.sleep(0.01)
        # The same request, still waiting: another technician can take it.
        tech = await technician(relay, org)
        tech_channel = await tech.claim(entry.request_id)
        user_channel = await waiting
        assert user_channel.sas == tech_channel.sas
        await user.cancel()


async def test_requeued_message_when_the_technician_leaves_mid_handshake(
    relay: RelayServer,
) -> None:
    token = (await login(relay.url)).token
    async with peer(relay.url) as user:
        queued = await post(user)
        async with peer(relay.url, token=token) as tech:
            await claim(tech, queued.request_id)
            sid = decode_as(Paired, await recv(tech)).sid
            assigned = decode_as(Assigned, await recv(user))
            assert assigned.sid == sid
        requeued = decode_as(Requeued, await recv(user))
        assert requeued.position == 1
        assert "technician left" in requeued.reason


async def test_supervisors_see_who_claimed_other_technicians_do_not(relay: RelayServer) -> None:
    jane = (await login(relay.url, "jane")).token
    sam = (await login(relay.url, "sam")).token
    max_ = (await login(relay.url, "max")).token
    async with (
        peer(relay.url) as user,
        peer(relay.url, token=sam) as supervisor,
        peer(relay.url, token=max_) as colleague,
    ):
        queued = await post(user)
        (entry,) = await watch(supervisor)
        assert entry.request_id == queued.request_id
        await watch(colleague)
        async with peer(relay.url, token=jane) as tech:
            await claim(tech, queued.request_id)
            decode_as(Paired, await recv(tech))
            seen = decode_as(QueueEntry, await recv(supervisor))
            assert (seen.state, seen.claimed_by, seen.claimed_by_me) == (
                RequestState.CLAIMED,
                "Jane",
                False,
            )
            seen = decode_as(QueueEntry, await recv(colleague))
            assert (seen.state, seen.claimed_by) == (RequestState.CLAIMED, "")


async def test_positions_follow_the_queue(relay: RelayServer) -> None:
    async with peer(relay.url) as a, peer(relay.url) as b, peer(relay.url) as c:
        assert [(await post(ws)).position for ws in (a, b, c)] == [1, 2, 3]
        await a.send(encode(CancelRequest()))
        assert (await closed_with(a))[:2] == (CloseCode.REQUEST_CANCELLED, "request cancelled")
        assert decode_as(QueuePosition, await recv(b)).position == 1
        assert decode_as(QueuePosition, await recv(c)).position == 2


async def test_consoles_see_posts_cancellations_and_away_users(relay: RelayServer) -> None:
    token = (await login(relay.url)).token
    async with peer(relay.url, token=token) as console:
        assert await watch(console) == []
        async with peer(relay.url) as user:
            queued = await post(user, request("Carol", "screen flickers", category="display"))
            added = decode_as(QueueEntry, await recv(console))
            assert (added.request_id, added.name, added.category) == (
                queued.request_id,
                "Carol",
                "display",
            )
        away = decode_as(QueueEntry, await recv(console))
        assert (away.request_id, away.user_connected) == (queued.request_id, False)
        async with peer(relay.url) as back:
            await back.send(encode(ResumeRequest(queued.request_id, queued.resume_token)))
            again = decode_as(Queued, await recv(back))
            # Same id, same token, same place.
            assert (again.request_id, again.resume_token, again.position) == (
                queued.request_id,
                queued.resume_token,
                1,
            )
            assert decode_as(QueueEntry, await recv(console)).user_connected
            await back.send(encode(CancelRequest()))
            await closed_with(back)
        removed = decode_as(QueueRemoved, await recv(console))
        assert removed == QueueRemoved(queued.request_id, RemovalReason.CANCELLED)


# --- refusals -----------------------------------------------------------------------


async def test_a_request_whose_user_is_away_cannot_be_claimed(relay: RelayServer) -> None:
    token = (await login(relay.url)).token
    async with peer(relay.url) as user:
        queued = await post(user)
    async with peer(relay.url, token=token) as tech:
        await claim(tech, queued.request_id)
        code, reason, _ = await closed_with(tech)
    assert (code, reason) == (CloseCode.USER_AWAY, "the user is not connected right now")


async def test_second_claim_is_refused(relay: RelayServer) -> None:
    token = (await login(relay.url)).token
    async with peer(relay.url) as user, peer(relay.url, token=token) as first:
        queued = await post(user)
        await claim(first, queued.request_id)
        decode_as(Paired, await recv(first))
        async with peer(relay.url, token=token) as second:
            await claim(second, queued.request_id)
            code, reason, _ = await closed_with(second)
    assert (code, reason) == (CloseCode.REQUEST_TAKEN, "another technician took this request")


async def test_unknown_request(relay: RelayServer) -> None:
    token = (await login(relay.url)).token
    async with peer(relay.url, token=token) as tech:
        await claim(tech, b"\x00" * 16)
        code, reason, _ = await closed_with(tech)
    assert (code, reason) == (CloseCode.UNKNOWN_REQUEST, "this request is no longer queued")


async def test_a_wrong_resume_token_looks_like_an_unknown_request(relay: RelayServer) -> None:
    async with peer(relay.url) as user:
        queued = await post(user)
    for request_id, token in ((queued.request_id, b"\x01" * 32), (b"\x02" * 16, b"\x01" * 32)):
        async with peer(relay.url) as thief:
            await thief.send(encode(ResumeRequest(request_id, token)))
            code, reason, _ = await closed_with(thief)
        assert code == CloseCode.UNKNOWN_REQUEST
        assert "no such request" in reason


async def test_a_newer_connection_replaces_the_old_one(relay: RelayServer) -> None:
    async with peer(relay.url) as old:
        queued = await post(old)
        async with peer(relay.url) as new:
            await new.send(encode(ResumeRequest(queued.request_id, queued.resume_token)))
            assert decode_as(Queued, await recv(new)).request_id == queued.request_id
            code, reason, _ = await closed_with(old)
            assert (code, reason) == (CloseCode.REPLACED, "replaced by a newer connection")
            # The request is still attached to the new connection.
            await settled(relay, queued_users=1)
            assert relay.relay.hub.queue.get(queued.request_id) is not None


@pytest.mark.parametrize(
    ("overrides", "msg", "code", "reason"),
    [
        pytest.param(
            {"max_request_text": 50},
            request("Bob", "x" * 60),
            CloseCode.REQUEST_TOO_LARGE,
            "the request text is 63 bytes; the limit is 50",
            id="text",
        ),
        pytest.param(
            {"max_system_summary": 10},
            request(system_summary="y" * 11),
            CloseCode.REQUEST_TOO_LARGE,
            "the system summary is 11 bytes; the limit is 10",
            id="summary",
        ),
        pytest.param(
            {},
            request("  ", "something"),
            CloseCode.BAD_MESSAGE,
            "a request needs a name and a description",
            id="empty-name",
        ),
        pytest.param(
            {},
            request("Bob\u202e", "something"),
            CloseCode.BAD_MESSAGE,
            "the name contains a control character",
            id="bidi-name",
        ),
        pytest.param(
            {},
            request("Bob", "line\x1b[31m"),
            CloseCode.BAD_MESSAGE,
            "the description contains a control character",
            id="escape-description",
        ),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(
    relay_factory: RelayFactory, overrides: dict[str, int], msg: object, code: int, reason: str
) -> None:
    server = await relay_factory(**overrides)
    async with peer(server.url) as user:
        await user.send(encode(msg))  # type: ignore[arg-type]
        assert (await closed_with(user))[:2] == (code, reason)
    assert server.relay.hub.queue.counts() == (0, 0)


async def test_queue_full(relay_factory: RelayFactory) -> None:
    server = await relay_factory(max_queued=1)
    async with peer(server.url) as first, peer(server.url) as second:
        await post(first)
        await second.send(encode(request()))
        code, reason, _ = await closed_with(second)
    assert (code, reason) == (
        CloseCode.QUEUE_FULL,
        "too many people are waiting for help; try again later",
    )


async def test_requests_per_address(relay_factory: RelayFactory) -> None:
    server = await relay_factory(max_requests_per_address=2)
    async with peer(server.url) as a, peer(server.url) as b, peer(server.url) as c:
        await post(a)
        await post(b)
        await c.send(encode(request()))
        code, reason, _ = await closed_with(c)
    assert (code, reason) == (CloseCode.RATE_LIMITED, "too many open requests from this address")


async def test_address_rate_limit(relay_factory: RelayFactory) -> None:
    server = await relay_factory(address_rate=2)
    async with peer(server.url) as a, peer(server.url) as b:
        await post(a)
        await post(b)
        async with peer(server.url) as c:
            await c.send(encode(request()))
            code, reason, _ = await closed_with(c)
    assert (code, reason) == (
        CloseCode.RATE_LIMITED,
        "too many requests from this address; wait a minute",
    )


async def test_unclaimed_requests_expire(relay_factory: RelayFactory) -> None:
    server = await relay_factory(request_ttl=0.4)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    async with peer(server.url, token=token) as console, peer(server.url) as user:
        await watch(console)
        queued = await post(user)
        decode_as(QueueEntry, await recv(console))
        code, reason, _ = await closed_with(user)
        assert (code, reason) == (
            CloseCode.REQUEST_EXPIRED,
            "no technician took the request in time",
        )
        removed = decode_as(QueueRemoved, await recv(console))
        assert removed == QueueRemoved(queued.request_id, RemovalReason.EXPIRED)


async def test_users_who_stay_away_lose_their_request(relay_factory: RelayFactory) -> None:
    server = await relay_factory(resume_window=0.3, check_interval=0.1)
    async with peer(server.url) as user:
        queued = await post(user)
    async with asyncio.timeout(T):
        while server.relay.hub.queue.get(queued.request_id) is not None:
            await asyncio.sleep(0.02)
    async with peer(server.url) as late:
        await late.send(encode(ResumeRequest(queued.request_id, queued.resume_token)))
        assert (await closed_with(late))[0] == CloseCode.UNKNOWN_REQUEST


async def test_technicians_need_a_token_to_watch_or_claim(relay: RelayServer) -> None:
    async with peer(relay.url) as anonymous:
        await anonymous.send(encode(WatchQueue()))
        assert (await closed_with(anonymous))[:2] == (
            CloseCode.UNAUTHORIZED,
            "sign in first (no token was sent)",
        )
    async with peer(relay.url) as anonymous:
        await claim(anonymous, b"\x00" * 16)
        assert (await closed_with(anonymous))[0] == CloseCode.UNAUTHORIZED


# --- queue-mode pairing --------------------------------------------------------------


def test_queue_sid_binds_the_request_and_the_claim() -> None:
    request_id, relay_sid = b"r" * 16, b"s" * 16
    sid = queue_sid(request_id, relay_sid)
    assert len(sid) == 16
    assert sid != queue_sid(b"R" * 16, relay_sid)
    assert sid != queue_sid(request_id, b"S" * 16)
    assert QUEUE_PASSWORD.isdigit()
    with pytest.raises(ValueError):
        queue_sid(b"short", relay_sid)


async def test_a_technician_from_another_organisation_is_refused(
    relay: RelayServer, org: Org
) -> None:
    stranger = make_org()
    user = UserClient(relay.url, org.trust, allow, timeouts=FAST)
    tech = TechnicianClient(relay.url, stranger.technician("Mallory"), timeouts=FAST)
    await tech.login("jane", PASSWORD)
    async with asyncio.timeout(15):
        status = await user.post_request(HelpRequest("Bob", "help"))
        waiting = asyncio.create_task(user.wait_for_technician())
        results = await asyncio.gather(
            waiting, tech.claim(status.request_id), return_exceptions=True
        )
    assert isinstance(results[0], IdentityError)
    assert "different organisation" in str(results[0])
    assert isinstance(results[1], PairingError | ConnectionLost)
    # The request was withdrawn; what the user typed is kept to post again.
    assert user.state is UserState.ENDED
    assert user.help_request == HelpRequest("Bob", "help")
    await settled(relay, queued_users=0)
    assert relay.relay.hub.queue.counts() == (0, 0)


async def test_the_user_can_decline_a_queue_technician(relay: RelayServer, org: Org) -> None:
    async def decline(req: ConsentRequest) -> None:
        return None

    user = UserClient(relay.url, org.trust, decline, timeouts=FAST)
    tech = await technician(relay, org)
    async with asyncio.timeout(15):
        status = await user.post_request(HelpRequest("Bob", "help"))
        results = await asyncio.gather(
            user.wait_for_technician(), tech.claim(status.request_id), return_exceptions=True
        )
    assert isinstance(results[0], PairingDeclined)
    assert isinstance(results[1], PairingError) and "declined" in str(results[1])
    assert relay.relay.hub.queue.counts() == (0, 0)


async def test_queue_logs_hold_no_request_text_tokens_or_passwords(
    relay: RelayServer, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay")
    logged_in = await login(relay.url)
    async with peer(relay.url) as user:
        queued = await post(
            user, request("SECRET-NAME", "SECRET-DESCRIPTION", system_summary="SECRET-SUMMARY")
        )
        async with peer(relay.url, token=logged_in.token) as tech:
            await claim(tech, queued.request_id)
            decode_as(Paired, await recv(tech))
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "relay"]
    events = {json.loads(line)["event"] for line in lines}
    assert {"logged_in", "request_posted", "claimed", "requeued"} <= events
    text = "\n".join(lines)
    for secret in (
        "SECRET",
        PASSWORD,
        logged_in.token,
        queued.request_id.hex(),
        queued.resume_token.hex(),
    ):
        assert secret not in text


async def test_a_hello_that_crosses_the_requeue_is_dropped_not_refused(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(hello_timeout=0.5)
    await create_account(server, "jane")
    token = (await login(server.url)).token
    async with peer(server.url) as user:
        queued = await post(user)
        async with peer(server.url, token=token) as tech:
            await claim(tech, queued.request_id)
            decode_as(Paired, await recv(tech))
            decode_as(Assigned, await recv(user))
        decode_as(Requeued, await recv(user))
        # The user's hello was already on its way: dropped, the user stays queued.
        await user.send(forward_frame(b"stale hello"))
        async with peer(server.url, token=token) as again:
            await claim(again, queued.request_id)
            sid = decode_as(Paired, await recv(again)).sid
            assert decode_as(Assigned, await recv(user)).sid == sid
            await user.send(forward_frame(b"fresh hello"))
            assert await recv(again) == forward_frame(b"fresh hello")


async def test_forward_frames_from_a_queued_user_are_refused_after_the_grace(
    relay_factory: RelayFactory,
) -> None:
    server = await relay_factory(hello_timeout=0.2)
    async with peer(server.url) as user:
        await post(user)
        await user.send(forward_frame(b"nobody asked"))
        assert (await closed_with(user))[:2] == (
            CloseCode.BAD_MESSAGE,
            "not paired yet; wait for Assigned",
        )
