"""The RA1 pairing handshake (security.md 2.7), as two sans-I/O state machines.

::

    M1  T -> U  Hello(role=T, SPAKE2_A(pw), X25519 share, suites, nonce)
    M2  U -> T  Hello(role=U, SPAKE2_B(pw), X25519 share, suites, nonce)   (concurrent)
        both:   TH  = SHA256("RA1 transcript|" sid "|" SHA256(M1) SHA256(M2))
                PRK = HKDF(K_pake || X25519, salt=TH, info="RA1 prk")
                per-direction keys, finished keys and the SAS from PRK
    M3  T -> U  AUTH record: TechAuth(HMAC(f_t, TH), certificate, revocations,
                Ed25519_tech("RA1 tech-auth|" TH), requested capabilities)
    M4  U -> T  AUTH record: UserAuth(HMAC(f_u, TH), granted capabilities, device)

Queue mode (a public password, :mod:`common.net.queue_pairing`) adds a hello
commitment, so that a relay in the middle cannot pick one of its hellos after
seeing both real ones and grind the 4-digit SAS until the two screens agree::

    M0  T -> U  HelloCommit(SHA256("RA1 hello commit|" M1))   (T: commit())
    M2  U -> T  Hello(role=U, ...)          sent only after M0 arrived
    M1  T -> U  Hello(role=T, ...)          sent only after M2 arrived (T: opening)
        U checks M1 against M0 before using it; then M3 and M4 as above.

States, technician: START -> HELLO_SENT -> AUTH_SENT -> DONE
States, user:       START -> HELLO_SENT -> WAIT_AUTH -> VERIFIED -> DONE
Any failure moves to FAILED and raises :class:`~common.errors.PairingError`
(or :class:`~common.errors.IdentityError` for a refused technician); a failed
machine refuses every further call. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from spake2 import SPAKE2_A, SPAKE2_B
from spake2.spake2 import SPAKEError

from common.crypto.identity import OrgTrust, TechnicianCredential, TechnicianIdentity
from common.crypto.record import RecordOpener, RecordSealer, RecordType
from common.errors import CryptoError, IdentityError, InvalidState, PairingError, ProtocolError
from common.protocol.codec import Message, decode_as, encode, message
from common.protocol.messages import CAPABILITIES


__all__ = [
    "SUITES",
    "CloseNotice",
    "Established",
    "HandshakeRole",
    "Hello",
    "HelloCommit",
    "TechAuth",
    "TechnicianHandshake",
    "UserAuth",
    "UserHandshake",
]

VERSION = "RA1"
SUITES = ("chacha20poly1305",)
_NONCE_BYTES = 16


class HandshakeRole(enum.IntEnum):
    TECHNICIAN = 1
    USER = 2


def _caps_ok(caps: tuple[str, ...]) -> None:
    if set(caps) - set(CAPABILITIES) or len(set(caps)) != len(caps):
        raise ProtocolError("invalid capability list")


@message(32)
class Hello(Message):
    version: str = dataclasses.field(metadata={"max": 16})
    role: HandshakeRole
    pake: bytes = dataclasses.field(metadata={"max": 64})
    x25519: bytes = dataclasses.field(metadata={"max": 32})
    suites: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 32})
    nonce: bytes = dataclasses.field(metadata={"max": _NONCE_BYTES})

    def check(self) -> None:
        if len(self.x25519) != 32 or len(self.nonce) != _NONCE_BYTES or len(self.pake) != 33:
            raise ProtocolError("malformed hello")


@message(33)
class TechAuth(Message):
    MAX_SIZE = 1 << 20
    mac: bytes = dataclasses.field(metadata={"max": 32})
    certificate: bytes = dataclasses.field(metadata={"max": 4096})
    revocations: bytes = dataclasses.field(metadata={"max": (1 << 20) - 8192})
    signature: bytes = dataclasses.field(metadata={"max": 64})
    requested: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})

    def check(self) -> None:
        _caps_ok(self.requested)


@message(34)
class UserAuth(Message):
    mac: bytes = dataclasses.field(metadata={"max": 32})
    granted: tuple[str, ...] = dataclasses.field(metadata={"max_items": 8, "item_max": 16})
    device: str = dataclasses.field(default="", metadata={"max": 256})

    def check(self) -> None:
        _caps_ok(self.granted)


@message(35)
class CloseNotice(Message):
    """The plaintext of an authenticated CLOSE record."""

    reason: str = dataclasses.field(metadata={"max": 400})


@message(39)
class HelloCommit(Message):
    """Queue mode: the technician's commitment to its hello (M0)."""

    digest: bytes = dataclasses.field(metadata={"max": 32})

    def check(self) -> None:
        if len(self.digest) != 32:
            raise ProtocolError("malformed hello commitment")


def hello_commitment(hello: bytes) -> bytes:
    """What :class:`HelloCommit` carries for these exact hello bytes."""
    return hashlib.sha256(b"RA1 hello commit|" + hello).digest()


@dataclasses.dataclass(frozen=True)
class _Keys:
    transcript: bytes
    send: bytes
    receive: bytes
    finished_self: bytes
    finished_peer: bytes
    sas: str


@dataclasses.dataclass
class Established:
    """What a completed handshake hands to the secure session.

    Attributes:
        sid: the session id both sides bound into the keys.
        sealer, opener: the record layer, positioned after the AUTH records.
        sas: the short verification number both sides show.
        granted: the capabilities the user granted in M4.
        requested: the capabilities the technician asked for in M3.
        technician: the verified technician (the user side's view).
        device: what the user chose to tell about their device.
        role: this side's role.
        resume_secret: ``HKDF-Expand(PRK, "RA1 resume")``, for resuming on a
            new link (common.crypto.resume); never sent. Empty: not resumable.
    """

    sid: bytes
    sealer: RecordSealer
    opener: RecordOpener
    sas: str
    granted: tuple[str, ...]
    requested: tuple[str, ...]
    technician: TechnicianIdentity | None
    device: str
    role: HandshakeRole = HandshakeRole.TECHNICIAN
    resume_secret: bytes = b""


class _State(enum.Enum):
    START = "start"
    HELLO_SENT = "hello sent"
    AUTH_SENT = "auth sent"
    WAIT_AUTH = "waiting for the technician's proof"
    VERIFIED = "technician verified"
    DONE = "done"
    FAILED = "failed"


def _label(prk: bytes, label: str, length: int = 32) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, label.encode()).derive(prk)


class _Base:
    role: HandshakeRole

    def __init__(
        self, password: str, sid: bytes, entropy: Callable[[int], bytes] = os.urandom
    ) -> None:
        if len(sid) != 16:
            raise ValueError("session ids are 16 bytes")
        if not password.isdigit():
            raise ValueError("the PAKE password is the secret digits of the code")
        self._sid = sid
        self._entropy = entropy
        id_tech = b"RA1|" + sid + b"|tech"
        id_user = b"RA1|" + sid + b"|user"
        pake_cls = SPAKE2_A if self.role is HandshakeRole.TECHNICIAN else SPAKE2_B
        self._pake = pake_cls(password.encode(), idA=id_tech, idB=id_user, entropy_f=entropy)
        self._x25519 = X25519PrivateKey.from_private_bytes(entropy(32))
        self._hello: bytes | None = None
        self._keys: _Keys | None = None
        self._resume_secret = b""
        self._state = _State.START

    @property
    def state(self) -> str:
        return self._state.value

    def _expect(self, *states: _State) -> None:
        if self._state not in states:
            raise InvalidState(f"handshake is {self._state.value}")

    def _fail(self, exc: Exception) -> PairingError | IdentityError:
        self._state = _State.FAILED
        # Drop secrets as far as Python allows.
        self._keys = None
        self._resume_secret = b""
        if isinstance(exc, IdentityError | PairingError):
            return exc
        return PairingError(str(exc))

    def hello(self) -> bytes:
        """Our hello message (M1 or M2). Send it to the peer at once."""
        self._expect(_State.START)
        public = self._x25519.public_key().public_bytes_raw()
        self._hello = encode(
            Hello(VERSION, self.role, self._pake.start(), public, SUITES, self._entropy(16))
        )
        self._state = _State.HELLO_SENT
        return self._hello

    def _derive(self, peer_hello: bytes) -> None:
        assert self._hello is not None
        try:
            peer = decode_as(Hello, peer_hello)
        except ProtocolError as exc:
            raise PairingError(f"malformed hello: {exc}") from None
        if peer.version != VERSION:
            raise PairingError(f"peer speaks {peer.version!r}, not {VERSION}")
        if peer.role is self.role:
            raise PairingError("the peer claims our own role (reflection attack?)")
        if SUITES[0] not in peer.suites:
            raise PairingError("no cipher suite in common")
        try:
            k_pake = self._pake.finish(peer.pake)
        except (SPAKEError, ValueError) as exc:
            raise PairingError(f"invalid PAKE message: {exc}") from None
        except Exception:  # the library's own point errors (e.g. NotOnCurve)
            raise PairingError("invalid PAKE message") from None
        try:
            dh = self._x25519.exchange(X25519PublicKey.from_public_bytes(peer.x25519))
        except ValueError:
            raise PairingError("invalid X25519 share") from None
        if dh == bytes(32):
            raise PairingError("all-zero X25519 result (low-order share)")
        tech_hello, user_hello = (
            (self._hello, peer_hello)
            if self.role is HandshakeRole.TECHNICIAN
            else (peer_hello, self._hello)
        )
        transcript = hashlib.sha256(
            b"RA1 transcript|"
            + self._sid
            + b"|"
            + hashlib.sha256(tech_hello).digest()
            + hashlib.sha256(user_hello).digest()
        ).digest()
        prk = HKDF(hashes.SHA256(), 32, salt=transcript, info=b"RA1 prk").derive(k_pake + dh)
        t2u, u2t = _label(prk, "RA1 key tech->user"), _label(prk, "RA1 key user->tech")
        f_t, f_u = _label(prk, "RA1 finished tech"), _label(prk, "RA1 finished user")
        sas = f"{int.from_bytes(_label(prk, 'RA1 sas', 4), 'big') % 10000:04d}"
        self._resume_secret = _label(prk, "RA1 resume")
        tech = self.role is HandshakeRole.TECHNICIAN
        self._keys = _Keys(
            transcript,
            send=t2u if tech else u2t,
            receive=u2t if tech else t2u,
            finished_self=f_t if tech else f_u,
            finished_peer=f_u if tech else f_t,
            sas=sas,
        )
        self._sealer = RecordSealer(self._keys.send, self._sid)
        self._opener = RecordOpener(self._keys.receive, self._sid)

    def _open_auth(self, record: bytes) -> bytes:
        try:
            rtype, plaintext = self._opener.open(record)
        except (CryptoError, ProtocolError):
            # The first record under the new keys fails when the codes differ.
            raise PairingError(
                "The codes did not match, or the connection was tampered with."
            ) from None
        if rtype is RecordType.CLOSE:
            try:
                reason = decode_as(CloseNotice, plaintext).reason
            except ProtocolError:
                reason = ""
            raise PairingError(f"The other side ended the pairing. {reason}".strip())
        if rtype is not RecordType.AUTH:
            raise PairingError(f"expected the peer's proof, got a {rtype.name} record")
        return plaintext

    def _mac_ok(self, mac: bytes) -> None:
        assert self._keys is not None
        expected = hmac.new(self._keys.finished_peer, self._keys.transcript, "sha256").digest()
        if not hmac.compare_digest(mac, expected):
            raise PairingError("key confirmation failed: the peer does not share our key")

    def _my_mac(self) -> bytes:
        assert self._keys is not None
        return hmac.new(self._keys.finished_self, self._keys.transcript, "sha256").digest()

    @property
    def sas(self) -> str:
        """The 4-digit verification number (after the hellos)."""
        if self._keys is None:
            raise InvalidState("no keys yet")
        return self._keys.sas


class TechnicianHandshake(_Base):
    """The technician's side: proves the code and its identity first."""

    role = HandshakeRole.TECHNICIAN

    def __init__(
        self,
        password: str,
        sid: bytes,
        credential: TechnicianCredential,
        requested: tuple[str, ...] = ("view",),
        entropy: Callable[[int], bytes] = os.urandom,
    ) -> None:
        _caps_ok(requested)
        super().__init__(password, sid, entropy)
        self._credential = credential
        self._requested = requested
        self._committed = False

    def commit(self) -> bytes:
        """Queue mode: our hello's commitment (M0), to send instead of the hello.

        The hello itself (:attr:`opening`) may only go out after the user's
        hello arrived: that order is what stops a relay from grinding the SAS.
        """
        hello = self.hello()
        self._committed = True
        return encode(HelloCommit(hello_commitment(hello)))

    @property
    def opening(self) -> bytes:
        """Queue mode: our hello (M1), once the user's hello has been received."""
        if not self._committed:
            raise InvalidState("no commitment was made: send hello() instead")
        self._expect(_State.AUTH_SENT, _State.DONE)
        assert self._hello is not None
        return self._hello

    def receive_hello(self, peer_hello: bytes) -> bytes:
        """Take the user's hello; return our AUTH record (M3) to send."""
        self._expect(_State.HELLO_SENT)
        try:
            self._derive(peer_hello)
            assert self._keys is not None
            auth = TechAuth(
                mac=self._my_mac(),
                certificate=self._credential.certificate,
                revocations=self._credential.revocations,
                signature=self._credential.sign(b"RA1 tech-auth|" + self._keys.transcript),
                requested=self._requested,
            )
            record = self._sealer.seal(RecordType.AUTH, encode(auth))
        except (PairingError, ProtocolError) as exc:
            raise self._fail(exc) from None
        self._state = _State.AUTH_SENT
        return record

    def receive_auth(self, record: bytes) -> Established:
        """Take the user's AUTH record (M4): the channel is then open."""
        self._expect(_State.AUTH_SENT)
        try:
            auth = decode_as(UserAuth, self._open_auth(record))
            self._mac_ok(auth.mac)
        except (PairingError, ProtocolError) as exc:
            raise self._fail(exc) from None
        assert self._keys is not None
        self._state = _State.DONE
        return Established(
            self._sid,
            self._sealer,
            self._opener,
            self._keys.sas,
            auth.granted,
            self._requested,
            None,
            auth.device,
            role=self.role,
            resume_secret=self._resume_secret,
        )


class UserHandshake(_Base):
    """The user's side: verifies the code, then who the technician is."""

    role = HandshakeRole.USER

    def __init__(
        self,
        password: str,
        sid: bytes,
        trust: OrgTrust,
        entropy: Callable[[int], bytes] = os.urandom,
        *,
        committed: bool = False,
    ) -> None:
        # committed (queue mode): the technician's HelloCommit must come first
        # (receive_commitment), before our hello.
        super().__init__(password, sid, entropy)
        self._trust = trust
        self._identity: TechnicianIdentity | None = None
        self._requested: tuple[str, ...] = ()
        self._needs_commitment = committed
        self._commitment: bytes | None = None

    def receive_commitment(self, commit: bytes) -> None:
        """Queue mode: take the technician's commitment (M0); then send :meth:`hello`."""
        self._expect(_State.START)
        if not self._needs_commitment:
            raise InvalidState("this handshake takes no commitment")
        try:
            self._commitment = decode_as(HelloCommit, commit).digest
        except ProtocolError as exc:
            raise self._fail(PairingError(f"malformed hello commitment: {exc}")) from None

    def hello(self) -> bytes:
        if self._needs_commitment and self._commitment is None:
            # Sending ours first would let a relay choose the technician's after seeing it.
            raise InvalidState("queue mode: wait for the technician's commitment first")
        return super().hello()

    def receive_hello(self, peer_hello: bytes) -> None:
        """Take the technician's hello; then wait for its AUTH record."""
        self._expect(_State.HELLO_SENT)
        try:
            if self._commitment is not None and not hmac.compare_digest(
                hello_commitment(peer_hello), self._commitment
            ):
                raise PairingError(
                    "The technician's hello does not match its commitment:"
                    " the connection was tampered with."
                )
            self._derive(peer_hello)
        except PairingError as exc:
            raise self._fail(exc) from None
        self._state = _State.WAIT_AUTH

    def receive_auth(self, record: bytes, now: float) -> TechnicianIdentity:
        """Verify the technician's proof (M3): code, certificate and signature.

        Returns:
            The verified identity, to show in the consent dialog.

        Raises:
            PairingError: wrong code or tampering.
            IdentityError: the technician is not certified by the pinned org.
        """
        self._expect(_State.WAIT_AUTH)
        try:
            auth = decode_as(TechAuth, self._open_auth(record))
            self._mac_ok(auth.mac)
            assert self._keys is not None
            identity = self._trust.verify(auth.certificate, auth.revocations, now)
            self._trust.verify_signature(
                identity, b"RA1 tech-auth|" + self._keys.transcript, auth.signature
            )
        except (PairingError, IdentityError, ProtocolError) as exc:
            raise self._fail(exc) from None
        self._identity = identity
        self._requested = auth.requested
        self._state = _State.VERIFIED
        return identity

    @property
    def requested(self) -> tuple[str, ...]:
        return self._requested

    def accept(self, granted: tuple[str, ...], device: str = "") -> tuple[bytes, Established]:
        """The user consented: return our AUTH record (M4) and the open channel."""
        self._expect(_State.VERIFIED)
        _caps_ok(granted)
        record = self._sealer.seal(
            RecordType.AUTH, encode(UserAuth(self._my_mac(), granted, device))
        )
        assert self._keys is not None
        self._state = _State.DONE
        return record, Established(
            self._sid,
            self._sealer,
            self._opener,
            self._keys.sas,
            granted,
            self._requested,
            self._identity,
            device,
            role=self.role,
            resume_secret=self._resume_secret,
        )

    def decline(self, reason: str = "The user declined.") -> bytes:
        """The user said no: an authenticated CLOSE record to send."""
        self._expect(_State.VERIFIED)
        self._state = _State.FAILED
        return self._sealer.seal(RecordType.CLOSE, encode(CloseNotice(reason[:200])))
