"""Resuming an RA1 session on a fresh link (pure: no I/O, no clock).

A session keeps a *resume secret*, ``HKDF-Expand(PRK, "RA1 resume")``,
that never leaves memory. The relay only ever sees the public *resume id*,
``HKDF-Expand(secret, "RA1 resume id")``, which does not reveal the secret.
On a new link both sides exchange::

    each side -> other   ResumeOffer(role, nonce, X25519 share, current id, previous id)
    each side -> other   ResumeProof(received, mac)

    S    = the secret whose id both offers name (see _choose)
    TH   = SHA256("RA1 resume|" id(S) SHA256(tech offer) SHA256(user offer))
    PRK' = HKDF(S || X25519(e_self, e_peer), salt=TH, info="RA1 resume prk")
    mac  = HMAC(finished key of the sender, TH || u64 received)

The secret acts as a pre-shared key and the fresh X25519 exchange gives
each resume forward secrecy: someone who later learns one resume secret
cannot compute the keys of the resumes that followed it.

``received`` is how many reliable data records the sender got so far; it
tells the other side where to start re-sending. Both nonces are fresh, so
an old proof never verifies again, and a relay that does not hold ``S``
cannot make one: it can neither resume a session by itself nor join two
sessions together. New record keys, a new record sid and the *next* resume
secret come from ``PRK'``; the old secret is then forgotten, so each
ticket works once.

Why a previous id: a side that verified the peer's proof switches to the
next secret, but the link may drop before the peer verified ours. Until a
record under the new keys arrives from the peer, the side keeps the
previous secret too, and both offers name what they hold; the two sides
then agree on the newest secret they have in common.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from common.crypto.handshake import HandshakeRole
from common.errors import CryptoError, ProtocolError
from common.protocol.codec import Message, decode_as, encode, message


__all__ = [
    "NONCE_BYTES",
    "RANDOM_BYTES",
    "RESUME_ID_BYTES",
    "ResumeHandshake",
    "ResumeKeys",
    "ResumeOffer",
    "ResumeProof",
    "ResumeSecrets",
    "resume_id",
]

RESUME_ID_BYTES = 32
NONCE_BYTES = 32
# What a resume attempt draws from the injected entropy: a nonce and an X25519 key.
RANDOM_BYTES = 64
_SID_BYTES = 16
_COUNT = struct.Struct(">Q")


def _expand(key: bytes, label: str, length: int = 32) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, label.encode()).derive(key)


def resume_id(secret: bytes) -> bytes:
    """The public handle of a resume secret (one-way)."""
    return _expand(secret, "RA1 resume id", RESUME_ID_BYTES)


@message(36)
class ResumeOffer(Message):
    role: HandshakeRole
    nonce: bytes = dataclasses.field(metadata={"max": NONCE_BYTES})
    x25519: bytes = dataclasses.field(metadata={"max": 32})
    current: bytes = dataclasses.field(metadata={"max": RESUME_ID_BYTES})
    previous: bytes = dataclasses.field(default=b"", metadata={"max": RESUME_ID_BYTES})

    def check(self) -> None:
        if len(self.nonce) != NONCE_BYTES:
            raise ProtocolError("resume nonce must be 32 bytes")
        if len(self.x25519) != 32:
            raise ProtocolError("resume X25519 share must be 32 bytes")
        if len(self.current) != RESUME_ID_BYTES:
            raise ProtocolError("resume id must be 32 bytes")
        if self.previous and len(self.previous) != RESUME_ID_BYTES:
            raise ProtocolError("previous resume id must be 32 bytes or empty")


@message(37)
class ResumeProof(Message):
    received: int
    mac: bytes = dataclasses.field(metadata={"max": 32})

    def check(self) -> None:
        if not 0 <= self.received < 1 << 63:
            raise ProtocolError("received count out of range")
        if len(self.mac) != 32:
            raise ProtocolError("resume proof must be 32 bytes")


@dataclasses.dataclass(frozen=True)
class ResumeSecrets:
    """The secrets a side may resume with: the current one and, briefly, the previous."""

    current: bytes
    previous: bytes | None = None

    def ids(self) -> tuple[bytes, bytes]:
        """(current id, previous id or b"") as offered to the relay and the peer."""
        return resume_id(self.current), resume_id(self.previous) if self.previous else b""


@dataclasses.dataclass(frozen=True)
class ResumeKeys:
    """What a successful resume gives the session.

    Attributes:
        send, receive: the new record keys.
        sid: the new record session id (associated data of every record).
        next_secret: the secret for the next resume.
        used: the secret this resume used (kept as "previous" until confirmed).
        peer_received: reliable records of ours the peer has; re-send from there.
    """

    send: bytes
    receive: bytes
    sid: bytes
    next_secret: bytes
    used: bytes
    peer_received: int


def _choose(mine: ResumeSecrets, peer: ResumeOffer) -> bytes | None:
    """The newest secret both sides hold, or None (symmetric on both sides)."""
    cur_id, prev_id = mine.ids()
    if hmac.compare_digest(cur_id, peer.current):
        return mine.current
    if mine.previous is not None and hmac.compare_digest(prev_id, peer.current):
        return mine.previous  # we moved on; the peer never saw our proof
    if peer.previous and hmac.compare_digest(cur_id, peer.previous):
        return mine.current  # the peer moved on; it falls back to this one
    return None


class ResumeHandshake:
    """One side of one resume attempt.

    Args:
        secrets: what this side can resume with.
        role: this side's RA1 role.
        random: 64 fresh random bytes (injected): the nonce and the X25519 key.
        received: reliable records received from the peer so far.
    """

    def __init__(
        self, secrets: ResumeSecrets, role: HandshakeRole, random: bytes, received: int
    ) -> None:
        if len(random) != RANDOM_BYTES:
            raise ValueError("a resume needs 64 random bytes")
        self._secrets = secrets
        self._role = role
        self._received = received
        self._x25519 = X25519PrivateKey.from_private_bytes(random[NONCE_BYTES:])
        share = self._x25519.public_key().public_bytes_raw()
        current, previous = secrets.ids()
        self._offer = encode(ResumeOffer(role, random[:NONCE_BYTES], share, current, previous))
        self._mac_peer = b""
        self._prk = b""
        self._secret = b""
        self._transcript = b""

    def offer(self) -> bytes:
        return self._offer

    def receive_offer(self, peer_offer: bytes) -> bytes:
        """Take the peer's offer; return our proof.

        Raises:
            ProtocolError: malformed offer.
            CryptoError: reflected role, or no secret in common.
        """
        peer = decode_as(ResumeOffer, peer_offer)
        if peer.role is self._role:
            raise CryptoError("the resume offer claims our own role (reflection?)")
        secret = _choose(self._secrets, peer)
        if secret is None:
            raise CryptoError("the other side offered a resume ticket we do not hold")
        try:
            dh = self._x25519.exchange(X25519PublicKey.from_public_bytes(peer.x25519))
        except ValueError:
            raise CryptoError("invalid X25519 share in the resume offer") from None
        if dh == bytes(32):
            raise CryptoError("all-zero X25519 result in the resume (low-order share)")
        tech_offer, user_offer = (
            (self._offer, peer_offer)
            if self._role is HandshakeRole.TECHNICIAN
            else (peer_offer, self._offer)
        )
        transcript = hashlib.sha256(
            b"RA1 resume|"
            + resume_id(secret)
            + hashlib.sha256(tech_offer).digest()
            + hashlib.sha256(user_offer).digest()
        ).digest()
        prk = HKDF(hashes.SHA256(), 32, salt=transcript, info=b"RA1 resume prk").derive(secret + dh)
        f_t, f_u = (
            _expand(prk, "RA1 resume finished tech"),
            _expand(prk, "RA1 resume finished user"),
        )
        tech = self._role is HandshakeRole.TECHNICIAN
        mine, self._mac_peer = (f_t, f_u) if tech else (f_u, f_t)
        self._prk, self._secret, self._transcript = prk, secret, transcript
        mac = hmac.new(mine, transcript + _COUNT.pack(self._received), "sha256").digest()
        return encode(ResumeProof(self._received, mac))

    def receive_proof(self, peer_proof: bytes) -> ResumeKeys:
        """Verify the peer's proof; return the new keys.

        Raises:
            ProtocolError: malformed proof, or called before receive_offer.
            CryptoError: the proof is wrong (not the same secret or tampered).
        """
        if not self._prk:
            raise ProtocolError("resume proof before the offer")
        proof = decode_as(ResumeProof, peer_proof)
        expected = hmac.new(
            self._mac_peer, self._transcript + _COUNT.pack(proof.received), "sha256"
        ).digest()
        if not hmac.compare_digest(expected, proof.mac):
            raise CryptoError("the resume proof is wrong (another session, or tampering)")
        prk = self._prk
        t2u, u2t = (
            _expand(prk, "RA1 resume key tech->user"),
            _expand(prk, "RA1 resume key user->tech"),
        )
        tech = self._role is HandshakeRole.TECHNICIAN
        return ResumeKeys(
            send=t2u if tech else u2t,
            receive=u2t if tech else t2u,
            sid=_expand(prk, "RA1 resume sid", _SID_BYTES),
            next_secret=_expand(prk, "RA1 resume"),
            used=self._secret,
            peer_received=proof.received,
        )
