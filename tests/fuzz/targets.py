"""Coverage-guided fuzz targets (atheris, libFuzzer) for every parser the network reaches.

::

    python -m tests.fuzz.targets NAME [libFuzzer flags] [CORPUS_DIR ...]

NAME is one of :data:`TARGETS`. Each target feeds one input to the parsers
only, never to the cryptography (a hello is decoded and checked, no SPAKE2
runs), so an input costs microseconds and the fuzzer explores far more.
Each asserts that hostile bytes raise the parser's own error and nothing
else, and a few properties besides (round trips, the relay's fast path
agreeing with the codec). ``tests/fuzz/test_fuzz.py`` runs every target
for a short while in the normal test command; docs/security-tests.md says
how to run a long pass by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import atheris


# Modules whose code the fuzzer measures coverage of.
_INSTRUMENTED = ("common", "technician.core.screen")


def _codec() -> Callable[[bytes], None]:
    from common.crypto import handshake, identity  # noqa: F401  (register their messages)
    from common.errors import ProtocolError
    from common.protocol import messages, relay_wire  # noqa: F401
    from common.protocol.codec import decode, encode

    def one(data: bytes) -> None:
        try:
            msg = decode(data)
        except ProtocolError:
            return
        # Whatever decodes re-encodes, and that encoding is a fixed point.
        again = encode(msg)
        assert encode(decode(again)) == again

    return one


def _relay_wire() -> Callable[[bytes], None]:
    from common.errors import ProtocolError
    from common.protocol import relay_wire
    from common.protocol.codec import decode, encode

    relay_types = tuple(
        cls
        for cls in vars(relay_wire).values()
        if isinstance(cls, type)
        and cls.__module__ == relay_wire.__name__
        and hasattr(cls, "TYPE_ID")
    )

    def one(data: bytes) -> None:
        # The relay's fast path for Forward frames must agree with the codec.
        try:
            fast: bytes | None = relay_wire.forward_payload(data)
        except ProtocolError:
            fast = b"refused"
        try:
            msg = decode(data)
        except ProtocolError:
            assert fast is None or fast == b"refused", "the fast path took what the codec refuses"
            return
        assert fast != b"refused" or not isinstance(msg, relay_wire.Forward), (
            "the fast path refused a Forward frame the codec takes"
        )
        if fast is not None:
            assert isinstance(msg, relay_wire.Forward) and msg.payload == fast
        if isinstance(msg, relay_wire.Forward):
            assert relay_wire.forward_payload(relay_wire.forward_frame(msg.payload)) == msg.payload
        if isinstance(msg, relay_types):
            again = encode(msg)
            assert encode(decode(again)) == again

    return one


def _handshake() -> Callable[[bytes], None]:
    from common.crypto import handshake as h, identity as i
    from common.errors import ProtocolError
    from common.protocol.codec import decode_as

    kinds: list[Any] = [
        h.Hello,
        h.HelloCommit,
        h.TechAuth,
        h.UserAuth,
        h.CloseNotice,
        i.SignedCertificate,
        i.Certificate,
        i.SignedRevocationList,
        i.RevocationList,
    ]

    def one(data: bytes) -> None:
        if not data:
            return
        kind = kinds[data[0] % len(kinds)]
        try:
            msg = decode_as(kind, data[1:])
            if isinstance(msg, h.TechAuth):
                # What the user side parses next, still before any signature check.
                decode_as(i.Certificate, decode_as(i.SignedCertificate, msg.certificate).body)
                decode_as(i.RevocationList, decode_as(i.SignedRevocationList, msg.revocations).body)
        except ProtocolError:
            return

    return one


def _screen() -> Callable[[bytes], None]:
    from common.errors import ProtocolError
    from common.protocol.codec import decode_as
    from common.protocol.messages import RECT_FIELDS, CursorShape, ScreenEncoding, ScreenFrame
    from technician.core.screen.decoder import (
        DecoderLimits,
        FrameDecoder,
        ScreenDecodeError,
        decode_cursor,
    )

    limits = DecoderLimits(max_pixels=256 * 256)

    def structured(data: bytes) -> ScreenFrame:
        # Shape the bytes into a frame that passes the structural checks often,
        # so that the payload decoders (zstd, palette, JPEG, H.264) get reached.
        fdp = atheris.FuzzedDataProvider(data)
        w, h = fdp.ConsumeIntInRange(1, 128), fdp.ConsumeIntInRange(1, 128)
        fields: list[int] = []
        payload = b""
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            x, y = fdp.ConsumeIntInRange(0, w - 1), fdp.ConsumeIntInRange(0, h - 1)
            rw, rh = fdp.ConsumeIntInRange(1, w - x), fdp.ConsumeIntInRange(1, h - y)
            encoding = fdp.ConsumeIntInRange(0, 7)
            chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
            fields += (x, y, rw, rh, encoding, len(chunk))
            payload += chunk
        assert len(fields) % RECT_FIELDS == 0
        return ScreenFrame(1, fdp.ConsumeBool(), w, h, 0, tuple(fields), payload)

    def one(data: bytes) -> None:
        if not data:
            return
        mode, body = data[0] % 3, data[1:]
        decoder = FrameDecoder(limits)
        try:
            if mode == 0:
                frame = decode_as(ScreenFrame, body)
            elif mode == 1:
                frame = structured(body)
            else:
                decode_cursor(decode_as(CursorShape, body))
                return
        except ProtocolError:
            return
        try:
            if not frame.keyframe:
                # A picture to build on, so changes get decoded too.
                fill = (0, 0, frame.width, frame.height, int(ScreenEncoding.FILL), 4)
                decoder.decode(ScreenFrame(1, True, frame.width, frame.height, 0, fill, bytes(4)))
            decoder.decode(frame)
        except ScreenDecodeError:
            return

    return one


def _record() -> Callable[[bytes], None]:
    from common.record.jcs import RecordFormatError
    from common.record.log import parse_event

    def one(data: bytes) -> None:
        # A support-record line from a peer or an upload: one canonical event, or the one error.
        try:
            event = parse_event(data)
        except RecordFormatError:
            return
        assert event.to_bytes() == data  # canonical: exactly one spelling is accepted

    return one


def _file_names() -> Callable[[bytes], None]:
    from common.files.names import (
        TreeEntry,
        TreeLimits,
        is_safe_component,
        plan_tree,
        sanitise_name,
    )
    from common.files.refusal import TransferRefused

    limits = TreeLimits(max_entries=64)

    def one(data: bytes) -> None:
        # Names from a file offer: one safe component always, idempotent; a tree is
        # planned into safe components or refused with the writer's own error.
        text = data.decode("utf-8", "replace")
        safe = sanitise_name(text)
        assert is_safe_component(safe.name), safe
        assert sanitise_name(safe.name).name == safe.name
        entries = [TreeEntry(line, 1) for line in text.split("\n")[:100]]
        try:
            plan = plan_tree(entries, limits)
        except TransferRefused:
            return
        for entry in plan.entries:
            assert all(is_safe_component(part) for part in entry.parts), entry

    return one


TARGETS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "codec": _codec,
    "relay_wire": _relay_wire,
    "handshake": _handshake,
    "screen": _screen,
    "record": _record,
    "file_names": _file_names,
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.targets {{{','.join(TARGETS)}}} [libFuzzer flags]")
    with atheris.instrument_imports(include=list(_INSTRUMENTED)):
        one = TARGETS[argv[1]]()
    atheris.Setup([argv[0], *argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
