"""The pairing flows: drive RA1 over a relay link, with bounded waits.

Both return an open :class:`~common.net.channel.SecureChannel`, or raise a
:class:`~common.errors.DeskhandError` whose message can be shown as it is.
On any failure the link is closed: a code is never tried twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable

from common.crypto.code import PairingCode
from common.crypto.handshake import TechnicianHandshake, UserHandshake
from common.crypto.identity import OrgTrust, TechnicianCredential, TechnicianIdentity
from common.errors import ConnectionLost, DeskhandError, PairingError
from common.net.channel import SecureChannel
from common.net.reconnect import Reconnector
from common.net.relay_link import RelayLink
from common.protocol.relay_wire import CloseCode
from common.session import SecureSession, SessionLimits


__all__ = [
    "ConsentCallback",
    "ConsentRequest",
    "PairingDeclined",
    "PairingTimeouts",
    "pair_technician",
    "pair_user",
]


@dataclasses.dataclass(frozen=True)
class ConsentRequest:
    """What the user is asked before anything is shared.

    Attributes:
        technician: who is asking, verified against the pinned organisation.
        requested: the capabilities the technician asks for.
        sas: the verification number to compare with the technician.
    """

    technician: TechnicianIdentity
    requested: tuple[str, ...]
    sas: str


# Returns the granted capabilities, or None to decline.
ConsentCallback = Callable[[ConsentRequest], Awaitable[tuple[str, ...] | None]]


class PairingDeclined(DeskhandError):
    """The user declined the technician's request."""


@dataclasses.dataclass(frozen=True)
class PairingTimeouts:
    hello: float = 20.0
    consent: float = 60.0


async def _recv(link: RelayLink, timeout: float, what: str) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await link.recv_payload()
    except TimeoutError:
        raise PairingError(f"Timed out waiting for {what}.") from None


async def _ask_consent(
    link: RelayLink, consent: ConsentCallback, request: ConsentRequest, timeout: float
) -> tuple[tuple[str, ...] | None, bool]:
    """Ask the user while watching the link: a technician who leaves withdraws the question.

    Returns the granted capabilities (None to decline) and whether time ran out.
    """
    asking = asyncio.ensure_future(consent(request))
    watching = asyncio.create_task(link.recv_payload())
    try:
        done, _ = await asyncio.wait(
            {asking, watching}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (asking, watching):
            if not task.done():
                task.cancel()
        await asyncio.gather(asking, watching, return_exceptions=True)
    if watching in done:
        if isinstance(watching.exception(), ConnectionLost):
            raise PairingError("The technician left before you answered.")
        raise PairingError("The technician sent data before you answered.")
    if asking in done:
        return asking.result(), False
    return None, True


async def pair_user(
    link: RelayLink,
    code: PairingCode,
    sid: bytes,
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
    committed: bool = False,
) -> SecureChannel:
    """The user's side of RA1, after the relay said a technician joined.

    The code is burned first, whatever happens next.

    Args:
        reconnector: reopens the link after a drop so that the session
            resumes (common.net.reconnect); None: a drop ends the session.
        committed: queue mode: wait for the technician's hello commitment
            before sending our hello (common.crypto.handshake).
    """
    timeouts = timeouts or PairingTimeouts()
    password = code.consume(clock())
    try:
        handshake = UserHandshake(password, sid, trust, entropy, committed=committed)
        if committed:
            handshake.receive_commitment(await _recv(link, timeouts.hello, "the technician"))
        await link.send_payload(handshake.hello())
        handshake.receive_hello(await _recv(link, timeouts.hello, "the technician"))
        identity = handshake.receive_auth(
            await _recv(link, timeouts.hello, "the technician's proof"), wall_clock()
        )
        request = ConsentRequest(identity, handshake.requested, handshake.sas)
        granted, timed_out = await _ask_consent(link, consent, request, timeouts.consent)
        if granted is None:
            if timed_out:
                await link.send_payload(handshake.decline("The user did not answer in time."))
                raise PairingDeclined("Nobody answered the request in time, so it was declined.")
            await link.send_payload(handshake.decline("The user declined."))
            raise PairingDeclined("You declined the request.")
        record, established = handshake.accept(granted, device)
        await link.send_payload(record)
    except BaseException as exc:
        code_ = CloseCode.NORMAL if isinstance(exc, PairingDeclined) else CloseCode.BAD_MESSAGE
        await link.close(code_, "pairing ended")
        raise
    channel = SecureChannel(
        link,
        SecureSession(established, clock(), limits),
        clock=clock,
        reconnector=reconnector,
        entropy=entropy,
    )
    channel.start()
    return channel


async def pair_technician(
    link: RelayLink,
    password: str,
    sid: bytes,
    credential: TechnicianCredential,
    *,
    requested: tuple[str, ...] = ("view",),
    on_sas: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    entropy: Callable[[int], bytes] = os.urandom,
    timeouts: PairingTimeouts | None = None,
    limits: SessionLimits | None = None,
    reconnector: Reconnector | None = None,
    committed: bool = False,
) -> SecureChannel:
    """The technician's side of RA1, after the relay paired us.

    Args:
        on_sas: called with the verification number as soon as it is known,
            so the technician can read it out while the user decides.
        committed: queue mode: send a commitment to our hello first, and the
            hello only after the user's (common.crypto.handshake).
    """
    timeouts = timeouts or PairingTimeouts()
    try:
        handshake = TechnicianHandshake(password, sid, credential, requested, entropy)
        await link.send_payload(handshake.commit() if committed else handshake.hello())
        auth = handshake.receive_hello(await _recv(link, timeouts.hello, "the user"))
        if committed:
            await link.send_payload(handshake.opening)
        await link.send_payload(auth)
        if on_sas is not None:
            on_sas(handshake.sas)
        try:
            reply = await _recv(link, timeouts.hello + timeouts.consent, "the user's consent")
        except ConnectionLost as exc:
            # The user side cannot say why over an unauthenticated link: a wrong
            # code and a refused certificate look the same from here.
            raise PairingError(
                "The user's side closed before accepting. Check the code with the user "
                "and try again; if it was right, your certificate was not accepted "
                f"({exc.reason})"
            ) from None
        established = handshake.receive_auth(reply)
    except BaseException:
        await link.close(CloseCode.NORMAL, "pairing ended")
        raise
    channel = SecureChannel(
        link,
        SecureSession(established, clock(), limits),
        clock=clock,
        reconnector=reconnector,
        entropy=entropy,
    )
    channel.start()
    return channel
