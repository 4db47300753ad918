"""``deskhand-relay init DIR``: a ready-to-run relay directory.

Writes what is missing, never replaces what exists::

    DIR/relay.toml        the relay's settings (TLS, database, organisation, limits)
    DIR/relay.sqlite3     (created by the relay on first start)
    DIR/org/              the organisation key (deskhand-relay org create), if none
    DIR/tls/relay.key     a fresh ECDSA P-256 key, mode 0600
    DIR/tls/relay.crt     a self-signed certificate for it (hostnames and IPs as SANs)
    DIR/relay.pin         the pin clients need: sha256:<SPKI hash>
    DIR/client.toml       settings for user clients and technician apps

The pin is the SHA-256 of the certificate's public key, so renewing the
certificate on the same key (``init DIR --renew-certificate``) keeps every
client's pin valid.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.errors import DeskhandError
from common.keyfiles import ORG_KEY_FILE, ORG_PUBLIC_FILE, load_org_public_key
from common.net.tls import format_spki_pin, spki_sha256
from relay.admin import AdminError, create_org


__all__ = ["main", "make_certificate", "write_relay_directory"]

PROG = "deskhand-relay init"
CONFIG_FILE = "relay.toml"
CLIENT_FILE = "client.toml"
PIN_FILE = "relay.pin"
TLS_DIR = "tls"
KEY_FILE = "relay.key"
CERT_FILE = "relay.crt"
ORG_DIR = "org"
DATABASE_FILE = "relay.sqlite3"
_DAY = datetime.timedelta(days=1)


class _Fail(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Fail(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Write a ready relay directory: config, keys, pin.")
    parser.add_argument("dir", metavar="DIR", type=Path)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8443, help="TCP port (%(default)s)")
    parser.add_argument(
        "--hostname",
        action="append",
        default=None,
        metavar="NAME",
        help="a DNS name or IP clients use (repeatable; default: this machine's name)",
    )
    parser.add_argument("--org-name", help="organisation name for a new org key (default: DIR)")
    parser.add_argument("--days", type=int, default=825, help="certificate validity (%(default)s)")
    parser.add_argument(
        "--renew-certificate",
        action="store_true",
        help="issue a new certificate on the existing key (the pin stays the same)",
    )
    return parser


def main(argv: list[str], *, now: Callable[[], float] = time.time) -> int:
    """Run ``init``; 0 on success, 2 after one line on stderr."""
    try:
        args = _parser().parse_args(argv)
        if not 1 <= args.days <= 3650:
            raise _Fail("--days must be between 1 and 3650")
        if not 1 <= args.port <= 65535:
            raise _Fail("--port must be between 1 and 65535")
        names = args.hostname or [socket.getfqdn() or "localhost"]
        lines = write_relay_directory(
            args.dir,
            host=args.host,
            port=args.port,
            hostnames=names,
            org_name=args.org_name,
            days=args.days,
            renew=args.renew_certificate,
            now=now(),
        )
    except _Fail as exc:
        print(f"deskhand-relay: error: {exc} (see '{PROG} --help')", file=sys.stderr)
        return 2
    except (AdminError, DeskhandError, ValueError) as exc:
        print(f"deskhand-relay: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"deskhand-relay: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def make_certificate(
    key: ec.EllipticCurvePrivateKey, hostnames: list[str], now: float, days: int
) -> x509.Certificate:
    """A self-signed TLS server certificate for ``key`` naming ``hostnames``.

    IP addresses become IP SANs, everything else DNS SANs; ``localhost``,
    127.0.0.1 and ::1 are always included so loopback tests work.
    """
    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in [*hostnames, "localhost", "127.0.0.1", "::1"]:
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name not in dns:
                dns.append(name)
        else:
            if ip not in ips:
                ips.append(ip)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, (dns or ["deskhand-relay"])[0][:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Deskhand relay"),
        ]
    )
    start = datetime.datetime.fromtimestamp(now, datetime.UTC) - _DAY
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + days * _DAY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` with ``data``; never replaces a file (O_EXCL)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    _write_new(tmp, data)
    os.replace(tmp, path)


def _config_text(host: str, port: int) -> str:
    return f"""\
# Deskhand relay settings, written by 'deskhand-relay init'.
# Precedence: this file < DESKHAND_RELAY_<NAME> environment variables < --flags.
# Relative paths are relative to this file.

host = "{host}"
port = {port}

# TLS 1.3 only; clients pin the key (see relay.pin). Plain ws:// is refused
# on anything but loopback.
tls_certificate = "{TLS_DIR}/{CERT_FILE}"
tls_key = "{TLS_DIR}/{KEY_FILE}"

# Accounts, sign-in tokens and the help-request queue. For PostgreSQL:
# database_url = "postgresql+psycopg://deskhand@db/deskhand"
database_url = "sqlite:///{DATABASE_FILE}"

# The organisation directory: technicians get its revocation list at sign-in,
# and 'deskhand-relay account disable' revokes the account's certificates in it.
org_dir = "{ORG_DIR}"

# Who may claim a pairing code: "login" (signed-in technicians only), "anyone".
code_claims = "login"

# Limits (the defaults are shown; every one can be changed here).
# max_connections = 1000
# max_connections_per_address = 20
# address_rate = 120                 # conversations per address per rate_window
# account_rate = 120                 # authenticated actions per account per rate_window
# rate_window = 60.0
# account_claims_per_window = 10     # claims per account per account_claim_window
# account_claim_window = 600.0
# login_failures_before_lockout = 5  # per account, within failure_window
# claim_failures_before_lockout = 10 # per account, within failure_window
# login_failures_per_address = 20    # within failure_window
# failure_window = 900.0
# lockout_duration = 900.0
# max_queued = 200                   # help requests in the queue
# max_requests_per_address = 3
# max_request_text = 4000            # bytes of name + description + category
# max_system_summary = 16384
# request_ttl = 14400.0              # an unclaimed request expires after this
# resume_window = 600.0              # a user who went away may come back within this
# token_ttl = 3600.0
# check_interval = 5.0               # disabled accounts are cut off within this
"""


def _client_text(url: str, pin: str, org_key: str) -> str:
    return f"""\
# Deskhand client settings (user clients and technician apps), written by
# 'deskhand-relay init'. Give this file to every client of this relay.
relay_url = "{url}"
relay_pin = "{pin}"
org_key = "{org_key}"
"""


def write_relay_directory(
    directory: Path,
    *,
    host: str,
    port: int,
    hostnames: list[str],
    org_name: str | None,
    days: int,
    renew: bool,
    now: float,
) -> list[str]:
    """Create what is missing in ``directory``; return the lines to print.

    Raises:
        AdminError, ValueError, OSError: with a printable message.
    """
    report: list[str] = []
    directory.mkdir(parents=True, exist_ok=True)
    tls_dir = directory / TLS_DIR
    tls_dir.mkdir(exist_ok=True)
    org_dir = directory / ORG_DIR

    if (org_dir / ORG_KEY_FILE).exists():
        report.append(f"kept the organisation key in {org_dir}")
    else:
        create_org(org_dir, org_name or directory.resolve().name, int(now))
        report.append(f"created an organisation key in {org_dir} (keep {ORG_KEY_FILE} offline)")
    org_key = load_org_public_key(org_dir / ORG_PUBLIC_FILE).hex()

    key_path, cert_path = tls_dir / KEY_FILE, tls_dir / CERT_FILE
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key")
        key = loaded
        report.append(f"kept the TLS key {key_path}")
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(key_path, pem, 0o600)
        report.append(f"created a TLS key {key_path}")
    if cert_path.exists() and not renew:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        report.append(f"kept the TLS certificate {cert_path}")
    else:
        cert = make_certificate(key, hostnames, now, days)
        _replace(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        report.append(
            f"wrote a self-signed TLS certificate {cert_path} for {', '.join(hostnames)},"
            f" valid {days} days"
        )
    pin = format_spki_pin(spki_sha256(cert.public_bytes(serialization.Encoding.DER)))
    _replace(directory / PIN_FILE, (pin + "\n").encode("ascii"))

    config_path = directory / CONFIG_FILE
    if config_path.exists():
        report.append(f"kept the settings {config_path}")
    else:
        _write_new(config_path, _config_text(host, port).encode("utf-8"))
        report.append(f"wrote the settings {config_path}")
    url_host = hostnames[0]
    if ":" in url_host:
        url_host = f"[{url_host}]"
    client_path = directory / CLIENT_FILE
    if client_path.exists():
        report.append(f"kept the client settings {client_path}")
    else:
        url = f"wss://{url_host}:{port}/v1/peer"
        _write_new(client_path, _client_text(url, pin, org_key).encode("utf-8"))
        report.append(f"wrote the client settings {client_path}")
    report += [
        "",
        f"relay pin (clients need this): {pin}",
        f"start the relay:  deskhand-relay --config {config_path}",
        f"add a technician: deskhand-relay account create NAME --config {config_path}",
    ]
    return report
