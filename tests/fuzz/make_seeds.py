"""Write the fuzz targets' seed corpora (tests/fuzz/seeds/TARGET/), small and deterministic.

    python -m tests.fuzz.make_seeds

Run it again when a wire format changes; the fuzzer finds its way from
valid messages much faster than from nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import simplejpeg
import zstandard

from client.core.screen.encoder import H264Region
from common.crypto.handshake import (
    CloseNotice,
    HandshakeRole,
    Hello,
    HelloCommit,
    TechAuth,
    UserAuth,
    hello_commitment,
)
from common.crypto.identity import (
    Certificate,
    OrgKey,
    RevocationList,
    SignedCertificate,
    SignedRevocationList,
)
from common.protocol import messages as m, relay_wire as rw
from common.protocol.codec import Message, decode_as, encode
from common.screen.frame import EncodedRect, pack_rects
from common.screen.geometry import Rect


SEEDS = Path(__file__).parent / "seeds"
_ORG = OrgKey.from_private_bytes(hashlib.sha256(b"deskhand fuzz seed org").digest())
_TECH = bytes(range(32))


def _identity() -> tuple[bytes, bytes]:
    cert = _ORG.issue(
        serial=7,
        tech_id="jane@acme",
        name="Jane Doe",
        org="ACME IT",
        public_key=_TECH,
        roles=["technician"],
        not_before=1_750_000_000,
        not_after=1_750_000_000 + 86_400,
    )
    return cert, _ORG.sign_revocations([3, 9], 1_750_000_000)


def _hello(role: HandshakeRole) -> bytes:
    return encode(Hello("RA1", role, b"A" + bytes(32), bytes(32), ("chacha20poly1305",), bytes(16)))


def handshake_seeds() -> list[bytes]:
    cert, crl = _identity()
    kinds: list[tuple[type[Message], bytes]] = [
        (Hello, _hello(HandshakeRole.TECHNICIAN)),
        (HelloCommit, encode(HelloCommit(hello_commitment(_hello(HandshakeRole.TECHNICIAN))))),
        (TechAuth, encode(TechAuth(bytes(32), cert, crl, bytes(64), ("view", "control")))),
        (UserAuth, encode(UserAuth(bytes(32), ("view",), "laptop"))),
        (CloseNotice, encode(CloseNotice("The user declined."))),
        (SignedCertificate, cert),
        (Certificate, decode_as(SignedCertificate, cert).body),
        (SignedRevocationList, crl),
        (RevocationList, decode_as(SignedRevocationList, crl).body),
    ]
    # The target picks the parser with the first byte (index into its list).
    return [bytes([i]) + data for i, (_, data) in enumerate(kinds)]


def relay_seeds() -> list[bytes]:
    rid = bytes(range(16))
    msgs: list[Message] = [
        rw.Register(),
        rw.Registered(512, rid, 600),
        rw.Claim(512),
        rw.Paired(rid),
        rw.PeerJoined(),
        rw.PeerLeft("gone"),
        rw.Login("jane", "correct horse"),
        rw.PostRequest("Bob", "my printer is on fire", "printing", ""),
        rw.Assigned(rid),
        rw.ClaimRequest(rid),
        rw.WatchQueue(),
        rw.CancelRequest(),
    ]
    out = [encode(msg) for msg in msgs]
    out.append(rw.forward_frame(b"\x01\x02" + bytes(40)))
    return out


def codec_seeds() -> list[bytes]:
    frame = _frame([EncodedRect(Rect(0, 0, 16, 16), m.ScreenEncoding.FILL, bytes(4))])
    return [
        *relay_seeds()[:4],
        *(data[1:] for data in handshake_seeds()[:5]),
        encode(m.ChatText(1, "hello", 0)),
        encode(frame),
    ]


def _frame(rects: list[EncodedRect], w: int = 16, h: int = 16) -> m.ScreenFrame:
    fields, data = pack_rects(rects)
    return m.ScreenFrame(1, True, w, h, 0, fields, data)


def screen_seeds() -> list[bytes]:
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 255, (16, 16, 4), dtype=np.uint8)
    flat = np.zeros((16, 16, 4), np.uint8)
    E = m.ScreenEncoding
    whole = Rect(0, 0, 16, 16)
    rects = [
        EncodedRect(whole, E.FILL, bytes((1, 2, 3, 255))),
        EncodedRect(whole, E.ZSTD, zstandard.ZstdCompressor(level=1).compress(flat.tobytes())),
        EncodedRect(whole, E.JPEG, simplejpeg.encode_jpeg(photo, 60, colorspace="BGRA")),
        EncodedRect(whole, E.PALETTE, bytes((0, 1, 0, 0, 0, 255, 255, 255)) + bytes(32)),
        H264Region(whole, crf=35).encode(photo),
    ]
    out = [b"\x00" + encode(_frame([rect])) for rect in rects]
    shape = zstandard.ZstdCompressor().compress(bytes(8 * 8 * 4))
    out.append(b"\x02" + encode(m.CursorShape(1, 8, 8, 0, 0, shape)))
    return out


def record_seeds() -> list[bytes]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from common.capability import Capability
    from common.record import events as ev
    from common.record.log import RecordLog

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # deterministic seeds
    log = RecordLog("00" * 16, ev.ActorRole.USER, key)
    payloads: list[ev.Payload] = [
        ev.CapabilityGranted(Capability.VIEW),
        ev.SessionPaused(),
        ev.SessionResumed(),
        ev.ControlStarted(),
    ]
    seeds = [
        log.append(payload, 1_700_000_000_000 + i).to_bytes() for i, payload in enumerate(payloads)
    ]
    seeds.append(log.seal(1_700_000_001_000).to_bytes())
    return seeds


def file_name_seeds() -> list[bytes]:
    names = [
        "report.pdf",
        "../../etc/passwd",
        "C:\\Windows\\System32\\drivers\\etc\\hosts",
        "\\\\server\\share\\x.txt",
        "CON.txt",
        "invoice\u202efdp.exe",
        "trailing dots... ",
        "a/b/c/d.txt\na/b\na/../x",
        "é" * 300 + ".docx",
    ]
    return [name.encode("utf-8") for name in names]


def main() -> None:
    for name, seeds in (
        ("codec", codec_seeds()),
        ("relay_wire", relay_seeds()),
        ("handshake", handshake_seeds()),
        ("screen", screen_seeds()),
        ("record", record_seeds()),
        ("file_names", file_name_seeds()),
    ):
        folder = SEEDS / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i, seed in enumerate(seeds):
            (folder / f"seed-{i:02d}").write_bytes(seed)
        print(f"{folder}: {len(seeds)} seeds, {sum(map(len, seeds))} bytes")


if __name__ == "__main__":
    main()
