"""Admin commands: the organisation key, technician certificates, revocation.

``deskhand-relay org ...`` and ``deskhand-relay cert ...`` land here::

    org create DIR [--name ORG]            new org key, empty registry, fresh list
    cert issue --org-dir DIR --tech-id ID --name NAME --out TECHDIR
               [--roles technician] [--days 30] [--public-key HEX]
    cert list --org-dir DIR [--json]
    cert revoke --org-dir DIR SERIAL
    cert crl --org-dir DIR [--out FILE]    re-sign the revocation list

An organisation directory holds::

    org.key           Ed25519 private key, PKCS#8 PEM, mode 0600 (keep offline)
    org.pub           the public key as 64 hex digits (pin it in client configs)
    org.json          {"format": 1, "name", "key_id", "public_key", "created_at"}
    issued.json       {"format": 1, "certificates": [{serial, tech_id, name, roles,
                       public_key, fingerprint, not_before, not_after, issued_at,
                       revoked_at}]}
    revocations.crl   the latest signed revocation list

User clients refuse revocation lists older than 4 hours (``MAX_CRL_AGE``).
A relay whose ``org_dir`` holds ``org.key`` re-signs the list at every
sign-in (:func:`fresh_revocations`); where the key is kept offline, run
``cert crl`` every hour or so and publish the file to the relay. Commands
that sign a list hold ``.lock`` in the directory, so a revocation is never
lost to a concurrent re-signing, and each list is dated after the last one.

Every failure prints one line to stderr and returns 2.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.atomic_write import write_file_atomically
from common.crypto.identity import (
    MAX_CERT_VALIDITY,
    MAX_CRL_AGE,
    PUBLIC_KEY_BYTES,
    OrgKey,
    RevocationList,
    SignedRevocationList,
    TechnicianCredential,
    check_display_name,
    key_fingerprint,
)
from common.errors import DeskhandError, ProtocolError
from common.keyfiles import (
    CERT_FILE,
    CRL_FILE,
    ORG_KEY_FILE,
    ORG_PUBLIC_FILE,
    TECH_KEY_FILE,
    load_org_key,
    load_technician_key,
    save_org_key,
    save_org_public_key,
    save_technician_credential,
)
from common.protocol.codec import decode_as


__all__ = [
    "ISSUED_FILE",
    "ORG_INFO_FILE",
    "PROG",
    "AdminError",
    "create_org",
    "main",
    "revoke_technician",
]

PROG = "deskhand-relay"
ORG_INFO_FILE = "org.json"
ISSUED_FILE = "issued.json"
_FORMAT = 1
_DAY = 24 * 3600
# A revoked serial stays listed this long after its certificate expires, so a
# verifier whose clock lags still sees it; after that expiry alone refuses it.
_KEEP_REVOKED_AFTER_EXPIRY = 7 * _DAY


class _Fail(Exception):
    """An expected failure: the message is printed as it is."""


AdminError = _Fail
"""Raised by the functions other commands reuse (:func:`create_org`,
:func:`revoke_technician`); its message can be printed as it is."""


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus an error and calls sys.exit(); we want one
    # line and a return code, and --help must not end the caller's process.
    def error(self, message: str) -> NoReturn:
        raise _Fail(f"{message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def main(argv: list[str], *, now: Callable[[], float] = time.time) -> int:
    """Run one admin command.

    Args:
        argv: the arguments after the program name; argv[0] is "org" or "cert".
        now: the clock, unix seconds (tests pass a fixed one).

    Returns:
        0 on success, 2 on any error (after one line on stderr).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace, int], None] = args.handler
        handler(args, int(now()))
    except _Exit as exc:
        return exc.status
    except _Fail as exc:
        return _error(str(exc))
    except FileExistsError as exc:
        return _error(f"{exc.filename} already exists; refusing to overwrite it")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")
    except (ValueError, DeskhandError) as exc:
        return _error(str(exc))
    return 0


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Manage the organisation key and certificates.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{org,cert}")

    org = groups.add_parser("org", help="the organisation signing key")
    org_cmds = org.add_subparsers(dest="command", required=True, metavar="{create}")
    create = org_cmds.add_parser("create", help="create an organisation key in DIR")
    create.add_argument("dir", metavar="DIR", type=Path)
    create.add_argument("--name", help="organisation name shown to users (default: DIR's name)")
    create.set_defaults(handler=_org_create)

    cert = groups.add_parser("cert", help="technician certificates")
    cert_cmds = cert.add_subparsers(
        dest="command", required=True, metavar="{issue,list,revoke,crl}"
    )

    issue = cert_cmds.add_parser("issue", help="certify a technician")
    _add_org_dir(issue)
    issue.add_argument("--tech-id", required=True, help="account id, e.g. jane@acme")
    issue.add_argument("--name", required=True, help="display name shown to users")
    issue.add_argument(
        "--roles", default="technician", help="comma-separated (default: %(default)s)"
    )
    issue.add_argument("--days", type=int, default=30, help="validity, 1-30 (default: %(default)s)")
    issue.add_argument("--out", required=True, type=Path, metavar="TECHDIR")
    issue.add_argument(
        "--public-key", metavar="HEX", help="certify this existing key instead of making one"
    )
    issue.set_defaults(handler=_cert_issue)

    listing = cert_cmds.add_parser("list", help="list issued certificates")
    _add_org_dir(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_cert_list)

    revoke = cert_cmds.add_parser("revoke", help="revoke a certificate and re-sign the list")
    _add_org_dir(revoke)
    revoke.add_argument("serial", metavar="SERIAL", type=int)
    revoke.set_defaults(handler=_cert_revoke)

    crl = cert_cmds.add_parser("crl", help="re-sign the revocation list (run every few hours)")
    _add_org_dir(crl)
    crl.add_argument("--out", type=Path, metavar="FILE", help="also write the list here")
    crl.set_defaults(handler=_cert_crl)
    return parser


def _add_org_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org-dir", required=True, type=Path, metavar="DIR")


# --- the organisation directory --------------------------------------------------


def _write_json(path: Path, value: Any) -> None:
    write_file_atomically(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode())


def _format_time(t: int) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


class _Org:
    """An organisation directory: its key, name and registry of issued certificates."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        if not (directory / ORG_KEY_FILE).is_file():
            raise _Fail(
                f"no organisation key in {directory} ({ORG_KEY_FILE} not found);"
                f" create one with '{PROG} org create DIR'"
            )
        self.key = load_org_key(directory / ORG_KEY_FILE)
        info = self._read_json(ORG_INFO_FILE)
        name = info.get("name") if isinstance(info, dict) else None
        if not isinstance(name, str):
            raise _Fail(f"{directory / ORG_INFO_FILE} is damaged (no organisation name)")
        if info.get("key_id") != self.key.key_id.hex():
            raise _Fail(f"{directory / ORG_INFO_FILE} does not describe the key in {ORG_KEY_FILE}")
        self.name = name
        self.certificates = self._read_registry()

    def _read_json(self, name: str) -> Any:
        path = self.dir / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _Fail(f"{path} is missing") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Fail(f"{path} is not valid JSON") from None

    def _read_registry(self) -> list[dict[str, Any]]:
        path = self.dir / ISSUED_FILE
        registry = self._read_json(ISSUED_FILE)
        entries = registry.get("certificates") if isinstance(registry, dict) else None
        if not isinstance(entries, list):
            raise _Fail(f"{path} is damaged (no certificate list)")
        fields: dict[str, type | tuple[type, ...]] = {
            "serial": int,
            "tech_id": str,
            "name": str,
            "not_after": int,
            "revoked_at": (int, type(None)),
        }
        for entry in entries:
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), t) for k, t in fields.items()
            ):
                raise _Fail(f"{path} is damaged (an entry lacks {', '.join(fields)})")
        return entries

    def save_registry(self) -> None:
        _write_json(self.dir / ISSUED_FILE, {"format": _FORMAT, "certificates": self.certificates})

    def find(self, serial: int) -> dict[str, Any]:
        for entry in self.certificates:
            if entry["serial"] == serial:
                return entry
        raise _Fail(f"no certificate with serial {serial} in {self.dir / ISSUED_FILE}")

    def next_serial(self) -> int:
        # Serials are never reused: revoked entries stay in the registry.
        return max((e["serial"] for e in self.certificates), default=0) + 1

    def sign_revocations(self, now: int) -> tuple[bytes, int]:
        """Sign and write a fresh revocation list; return it and how many serials it holds."""
        serials = [
            e["serial"]
            for e in self.certificates
            if e["revoked_at"] is not None and e["not_after"] + _KEEP_REVOKED_AFTER_EXPIRY > now
        ]
        # Never date a list at or before the one it replaces: clients keep the
        # newest they saw, so order must follow signing order.
        previous = _issued_at(self.dir)
        issued_at = now if previous is None or now > previous else previous + 1
        crl = self.key.sign_revocations(serials, issued_at)
        write_file_atomically(self.dir / CRL_FILE, crl)
        return crl, len(serials)


def _issued_at(directory: Path) -> int | None:
    try:
        signed = decode_as(SignedRevocationList, (directory / CRL_FILE).read_bytes())
        return decode_as(RevocationList, signed.body).issued_at
    except (OSError, ProtocolError):
        return None


@contextlib.contextmanager
def _org_lock(directory: Path) -> Iterator[None]:
    """Hold the organisation directory's lock (one signer of the list at a time)."""
    if not directory.is_dir():
        yield  # _Org says what is missing
        return
    with (directory / ".lock").open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def fresh_revocations(directory: Path, now: int, *, min_age: int = 60) -> bytes | None:
    """The organisation's revocation list, re-signed now if this machine holds the key.

    The relay calls this at every sign-in and token renewal, so technicians
    always carry a list minutes old. A list younger than ``min_age`` seconds
    is handed out as it is (a burst of sign-ins signs once).

    Returns:
        The encoded list, or None when there is none to read.
    """
    try:
        with _org_lock(directory):
            previous = _issued_at(directory)
            if (directory / ORG_KEY_FILE).is_file() and (
                previous is None or now - previous >= min_age
            ):
                try:
                    crl, _ = _Org(directory).sign_revocations(now)
                    return crl
                except (AdminError, OSError, ValueError):
                    pass  # a damaged directory: hand out what is there
            return (directory / CRL_FILE).read_bytes()
    except OSError:
        return None


def _status(entry: dict[str, Any], now: int) -> str:
    if entry["revoked_at"] is not None:
        return "revoked"
    if now >= entry["not_after"]:
        return "expired"
    if now < entry.get("not_before", now):
        return "not yet valid"
    return "valid"


# --- commands --------------------------------------------------------------------


def create_org(directory: Path, org_name: str, now: int) -> OrgKey:
    """Create an organisation directory: key, public key, info, registry and list.

    Raises:
        AdminError: the directory already holds an organisation.
        ValueError: the name cannot go in a certificate.
    """
    for name in (ORG_KEY_FILE, ISSUED_FILE):
        if (directory / name).exists():
            raise _Fail(f"{directory / name} already exists; refusing to replace an organisation")
    check_display_name(org_name, "organisation name")
    directory.mkdir(parents=True, exist_ok=True)
    key = OrgKey.generate()
    save_org_key(directory / ORG_KEY_FILE, key)
    save_org_public_key(directory / ORG_PUBLIC_FILE, key.public_bytes)
    _write_json(
        directory / ORG_INFO_FILE,
        {
            "format": _FORMAT,
            "name": org_name,
            "key_id": key.key_id.hex(),
            "public_key": key.public_bytes.hex(),
            "created_at": now,
        },
    )
    _write_json(directory / ISSUED_FILE, {"format": _FORMAT, "certificates": []})
    write_file_atomically(directory / CRL_FILE, key.sign_revocations([], now))
    return key


def revoke_technician(directory: Path, tech_id: str, now: int) -> list[int]:
    """Revoke every unrevoked certificate issued to ``tech_id``; re-sign the list.

    The list is re-signed even when nothing was revoked, so it is fresh.

    Returns:
        The serials revoked now.

    Raises:
        AdminError: the organisation directory is missing or damaged.
    """
    with _org_lock(directory):
        org = _Org(directory)
        revoked = []
        for entry in org.certificates:
            if entry["tech_id"] == tech_id and entry["revoked_at"] is None:
                entry["revoked_at"] = now
                revoked.append(int(entry["serial"]))
        if revoked:
            org.save_registry()
        org.sign_revocations(now)
    return revoked


def _org_create(args: argparse.Namespace, now: int) -> None:
    directory: Path = args.dir
    org_name: str = args.name if args.name is not None else directory.resolve().name
    key = create_org(directory, org_name, now)
    print(f"created organisation {org_name!r} in {directory} (key id {key.key_id.hex()})")
    print(f"  keep {directory / ORG_KEY_FILE} offline; pin this public key in client configs:")
    print(f"  {key.public_bytes.hex()}")


def _public_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _parse_public_key(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise _Fail("--public-key must be hexadecimal") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise _Fail("--public-key must be 64 hex digits (a raw Ed25519 public key)")
    return raw


def _cert_issue(args: argparse.Namespace, now: int) -> None:
    org = _Org(args.org_dir)
    out: Path = args.out
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if not 1 <= args.days or args.days * _DAY > MAX_CERT_VALIDITY:
        raise _Fail("--days must be between 1 and 30")
    private_key = None
    if args.public_key is not None:
        public_key = _parse_public_key(args.public_key)
        existing = out / TECH_KEY_FILE
        if existing.exists() and _public_of(load_technician_key(out)) != public_key:
            raise _Fail(f"{existing} holds a different key than --public-key")
    else:
        if (out / TECH_KEY_FILE).exists():
            raise _Fail(
                f"{out / TECH_KEY_FILE} already exists; to renew its certificate pass"
                " --public-key with that key"
            )
        private_key = TechnicianCredential.generate_key()
        public_key = _public_of(private_key)

    serial = org.next_serial()
    not_after = now + args.days * _DAY
    certificate = org.key.issue(
        serial=serial,
        tech_id=args.tech_id,
        name=args.name,
        org=org.name,
        public_key=public_key,
        roles=roles,
        not_before=now,
        not_after=not_after,
    )
    out.mkdir(parents=True, exist_ok=True)
    # Record the serial before handing the certificate out, so a failure
    # later can waste a serial but never issue one twice.
    org.certificates.append(
        {
            "serial": serial,
            "tech_id": args.tech_id,
            "name": args.name,
            "roles": roles,
            "public_key": public_key.hex(),
            "fingerprint": key_fingerprint(public_key),
            "not_before": now,
            "not_after": not_after,
            "issued_at": now,
            "revoked_at": None,
        }
    )
    org.save_registry()
    crl, _ = org.sign_revocations(now)
    if private_key is not None:
        save_technician_credential(out, TechnicianCredential(private_key, certificate, crl))
    else:
        write_file_atomically(out / CERT_FILE, certificate)
        write_file_atomically(out / CRL_FILE, crl)
    print(
        f"issued certificate {serial} to {args.tech_id} ({args.name}),"
        f" valid until {_format_time(not_after)}"
    )
    print(f"  key fingerprint {key_fingerprint(public_key)}; files in {out}")


def _cert_list(args: argparse.Namespace, now: int) -> None:
    org = _Org(args.org_dir)
    if args.json:
        rows = [{**e, "status": _status(e, now)} for e in org.certificates]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not org.certificates:
        print(f"no certificates issued by {org.name!r} yet")
        return
    table = [("SERIAL", "TECH ID", "NAME", "VALID UNTIL", "STATUS")]
    table += [
        (str(e["serial"]), e["tech_id"], e["name"], _format_time(e["not_after"]), _status(e, now))
        for e in sorted(org.certificates, key=lambda e: int(e["serial"]))
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _cert_revoke(args: argparse.Namespace, now: int) -> None:
    with _org_lock(args.org_dir):
        org = _Org(args.org_dir)
        entry = org.find(args.serial)
        if entry["revoked_at"] is not None:
            print(
                f"certificate {args.serial} was already revoked on"
                f" {_format_time(entry['revoked_at'])}"
            )
        else:
            entry["revoked_at"] = now
            org.save_registry()
            print(f"revoked certificate {args.serial} ({entry['tech_id']}, {entry['name']})")
        org.sign_revocations(now)
    print(f"  publish {org.dir / CRL_FILE} to the relay so clients learn of it")


def _cert_crl(args: argparse.Namespace, now: int) -> None:
    with _org_lock(args.org_dir):
        org = _Org(args.org_dir)
        crl, count = org.sign_revocations(now)
    written = [org.dir / CRL_FILE]
    if args.out is not None:
        write_file_atomically(args.out, crl)
        written.append(args.out)
    print(
        f"signed a revocation list ({count} revoked serials) at {_format_time(now)};"
        f" clients accept it until {_format_time(now + int(MAX_CRL_AGE))}"
    )
    print(f"  wrote {', '.join(str(p) for p in written)}")
