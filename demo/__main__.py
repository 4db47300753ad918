"""``python -m demo`` / ``deskhand-demo``: try Deskhand on one machine.

Usage::

    deskhand-demo [--xvfb] [--smoke SECONDS] [--data-dir DIR]

It sets up a relay the way an IT department would, with the relay's own
commands, in the data directory:

- ``deskhand-relay init DATA/relay``: settings, an organisation key
  ("Demo IT"), a TLS key and self-signed certificate, and its pin;
- ``deskhand-relay account create demo``: a technician account, with a fresh
  password printed on screen (``reset-password`` when it already exists);
- ``deskhand-relay cert issue --tech-id demo``: the certificate users verify,
  tied to the account by its name (the account name is the certificate's
  ``tech_id``, so disabling the account revokes the certificate).

It then starts the relay on 127.0.0.1 (a free port, TLS), writes the
settings both apps need (``DATA/client.toml`` and ``DATA/technician.toml``:
the relay's URL and pin), starts the user's window and the technician's
console (signed in already: the demo hands it the password on standard
input), and prints what to do. Ctrl+C (or SIGTERM) stops everything it
started.

``--smoke N`` is the unattended check: the relay's /healthz must answer
(over the pinned TLS certificate), the technician console must have signed
in, the three programs must still be alive after N seconds and must stop
cleanly; it prints one JSON line and exits 0, or 1 if anything failed.
``--xvfb`` runs the windows on a private Xvfb server, for machines without a
desktop.

Exit status: 0 on success or Ctrl+C, 1 when a program died or a check
failed, 2 for bad arguments or a failed setup step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn


__all__ = ["main"]

PROG = "deskhand-demo"
ORG_NAME = "Demo IT"
TECH_NAME = "Demo Technician"
ACCOUNT = "demo"  # the account name is also the certificate's tech_id
DEVICE_NAME = "Demo computer"
SIGNED_IN_LINE = f"signed in as {ACCOUNT} "
# Easy to read and type: no 0/o, 1/l/i.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
ADMIN_TIMEOUT = 60.0
HTTP_TIMEOUT = 5.0
_POLL = 0.2
_EXIT_FAILED = 1
_EXIT_USAGE = 2
# Run the programs from this checkout even when it is not installed.
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DemoError(Exception):
    """A setup step failed; the message is printed as it is."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise DemoError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run a relay and both Deskhand apps on this machine.")
    parser.add_argument(
        "--xvfb", action="store_true", help="show the windows on a private Xvfb (no desktop needed)"
    )
    parser.add_argument(
        "--smoke",
        type=float,
        metavar="SECONDS",
        help="unattended check: keep the apps running this long, verify, stop, report JSON",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep the demo organisation, credential and logs here (default: a fresh temp dir)",
    )
    return parser


def _say(text: str = "") -> None:
    print(text, flush=True)


class Child:
    """One process the demo started; stopped only by its pid."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path | None) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Terminate, wait at most timeout, then kill; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def tail(self, lines: int = 15) -> str:
        if self.log is None:
            return ""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Demo:
    """Everything the demo starts, stopped in reverse order."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_dir = data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.display: str | None = None
        self.relay_url = ""
        self.relay_port = 0
        self._logs: list[IO[bytes]] = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.env = env

    # --- processes ---

    def _spawn(
        self, name: str, argv: Sequence[str], *, stdin_line: str | None = None, **kwargs: Any
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "wb")  # closed in stop_all()
        self._logs.append(log)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdin_line is None else subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=self.env,
            # Own session: Ctrl+C reaches only the demo, which stops the
            # programs in order (apps first, so their sessions close cleanly).
            start_new_session=True,
            **kwargs,
        )
        if stdin_line is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write((stdin_line + "\n").encode("utf-8"))
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def stop_all(self) -> dict[str, int]:
        """Stop every child, newest first; returns their exit statuses."""
        statuses: dict[str, int] = {}
        for child in reversed(self.children):
            statuses[child.name] = child.stop()
        for log in self._logs:
            log.close()
        return statuses

    # --- steps ---

    def start_xvfb(self) -> None:
        """Start Xvfb on a free display and point the apps at it."""
        executable = shutil.which("Xvfb")
        if executable is None:
            raise DemoError("--xvfb needs Xvfb (on Debian/Ubuntu: apt-get install xvfb)")
        read_fd, write_fd = os.pipe()
        try:
            child = self._spawn(
                "xvfb",
                [
                    executable,
                    "-displayfd",
                    str(write_fd),
                    "-screen",
                    "0",
                    "1920x1080x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        try:
            number = _read_display_number(read_fd, child)
        finally:
            os.close(read_fd)
        self.display = f":{number}"
        self.env["DISPLAY"] = self.display
        self.env["QT_QPA_PLATFORM"] = "xcb"
        self.env.pop("WAYLAND_DISPLAY", None)

    def _admin(self, *args: str, stdin: str | None = None) -> str:
        """Run one relay admin command; returns its output."""
        argv = self._python("-m", "relay", *args)
        what = " ".join(args[:2])
        try:
            done = subprocess.run(
                argv,
                env=self.env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=ADMIN_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"'relay {what}' did not finish in time") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise DemoError(f"'relay {what}' failed: {detail[-1] if detail else done.returncode}")
        return done.stdout

    @property
    def relay_dir(self) -> Path:
        return self.data_dir / "relay"

    @property
    def tech_dir(self) -> Path:
        return self.data_dir / "technician"

    def prepare_relay(self) -> str:
        """The relay directory, the demo account and its certificate; returns the password."""
        relay_dir = self.relay_dir
        config = relay_dir / "relay.toml"
        if not config.exists():
            self._admin(
                "init", str(relay_dir), "--host", "127.0.0.1", "--hostname", "127.0.0.1",
                "--org-name", ORG_NAME,
            )  # fmt: skip
        password = new_password()
        listed = json.loads(self._admin("account", "list", "--json", "--config", str(config)))
        exists = any(a.get("name") == ACCOUNT for a in listed if isinstance(a, dict))
        if exists:
            self._admin("account", "enable", ACCOUNT, "--config", str(config))
            self._admin(
                "account", "reset-password", ACCOUNT, "--password-stdin", "--config", str(config),
                stdin=password + "\n",
            )  # fmt: skip
        else:
            self._admin(
                "account", "create", ACCOUNT, "--display-name", TECH_NAME, "--password-stdin",
                "--config", str(config), stdin=password + "\n",
            )  # fmt: skip
        issue = ["cert", "issue", "--org-dir", str(relay_dir / "org"), "--tech-id", ACCOUNT]
        issue += ["--name", TECH_NAME, "--out", str(self.tech_dir)]
        existing = _technician_public_key(self.tech_dir)
        if existing is not None:
            # Renew the kept key's certificate: it and its revocation list age.
            issue += ["--public-key", existing]
        self._admin(*issue)
        return password

    def start_relay(self) -> Child:
        child = self._spawn(
            "relay",
            self._python(
                "-m", "relay", "--config", str(self.relay_dir / "relay.toml"),
                "--host", "127.0.0.1", "--port", "0",
            ),
        )  # fmt: skip
        assert child.log is not None
        event = _wait_for_listening(child, child.log, START_TIMEOUT)
        self.relay_url = str(event["url"])
        self.relay_port = int(event["port"])
        return child

    def write_app_settings(self) -> tuple[Path, Path]:
        """client.toml and technician.toml for this run's relay URL; returns their paths."""
        relay_dir = self.relay_dir
        pin = (relay_dir / "relay.pin").read_text(encoding="ascii").strip()
        org_key = (relay_dir / "org" / "org.pub").read_text(encoding="ascii").strip()
        client = self.data_dir / "client.toml"
        client.write_text(
            "# Written by deskhand-demo for this run's relay.\n"
            f'relay_url = "{self.relay_url}"\nrelay_pin = "{pin}"\norg_key = "{org_key}"\n',
            encoding="utf-8",
        )
        technician = self.data_dir / "technician.toml"
        technician.write_text(
            "# Written by deskhand-demo for this run's relay.\n"
            f'relay_url = "{self.relay_url}"\nrelay_pin = "{pin}"\n'
            f'credential = "technician"\naccount = "{ACCOUNT}"\ndata_dir = "reports"\n',
            encoding="utf-8",
        )
        return client, technician

    def healthz(self) -> dict[str, Any]:
        # The relay's self-signed certificate is the one trusted: a pin, for stdlib TLS.
        context = ssl.create_default_context(cafile=str(self.relay_dir / "tls" / "relay.crt"))
        url = f"https://127.0.0.1:{self.relay_port}/healthz"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT, context=context) as response:
            body: dict[str, Any] = json.loads(response.read())
        return body

    def start_apps(self, password: str) -> tuple[Child, Child]:
        client_toml, technician_toml = self.write_app_settings()
        client = self._spawn(
            "client",
            self._python("-m", "client", "--config", str(client_toml), "--device", DEVICE_NAME),
        )
        technician = self._spawn(
            "technician",
            self._python("-m", "technician", "--config", str(technician_toml), "--password-stdin"),
            stdin_line=password,
        )
        return client, technician


def new_password() -> str:
    """A fresh demo password, like demo-k7pq-x3mh-a9tz."""
    groups = ("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4)) for _ in range(3))
    return "demo-" + "-".join(groups)


def _technician_public_key(tech_dir: Path) -> str | None:
    key_file = tech_dir / "technician.key"
    if not key_file.exists():
        return None
    from common.keyfiles import load_technician_key

    try:
        key = load_technician_key(tech_dir)
    except (OSError, ValueError) as exc:
        raise DemoError(f"{key_file}: {exc}") from None
    return key.public_key().public_bytes_raw().hex()


def _read_display_number(read_fd: int, child: Child) -> int:
    # Xvfb writes "N\n" to the -displayfd pipe once it accepts clients.
    deadline = time.monotonic() + START_TIMEOUT
    data = b""
    while not data.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([read_fd], [], [], _POLL)
        if ready:
            chunk = os.read(read_fd, 64)
            if not chunk:
                break
            data += chunk
        elif not child.alive:
            break
    text = data.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise DemoError(f"Xvfb did not start: {child.tail(3) or 'no display number'}")
    return int(text)


def _wait_for_listening(child: Child, log: Path, timeout: float) -> dict[str, Any]:
    """Read the relay's log until its "listening" line, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") == "listening":
                        return event
        if not child.alive:
            raise DemoError(f"the relay exited at start-up: {child.tail(3)}")
        time.sleep(_POLL)
    raise DemoError(f"the relay did not start listening within {timeout:g} s")


def _print_steps(demo: Demo, password: str) -> None:
    _say()
    _say(f"Deskhand demo is running. Relay: {demo.relay_url} (TLS, pinned)")
    if demo.display:
        _say(f"Windows are on the private X display {demo.display} (Xvfb).")
    _say(f"Data and logs: {demo.data_dir}")
    _say(
        f'Technician account: "{ACCOUNT}", password: {password}'
        f" (the console is signed in already; you need it only after signing out)."
    )
    _say()
    _say("Ask for help, as the user (window “Deskhand — remote help”):")
    _say("  1) Click “Request help…”, confirm you contacted your IT support yourself,")
    _say("     describe the problem and send the request.")
    _say("Help, as the technician (window “Deskhand technician”, Queue tab):")
    _say("  2) The request appears in the queue at once. Select it and click Claim (Ctrl+Enter).")
    _say(
        "  3) Both windows show the same verification number. The user checks it and clicks Allow."
    )
    _say("  4) The user's screen appears in the new tab (on one machine: this desktop, both")
    _say(
        "     windows included). Click \u201cAsk for control\u201d; once the user allows it, clicks"
    )
    _say("     and keys in the picture act on the user's desktop (here: your own pointer).")
    _say("  5) Chat in the Chat panel on the right; keep notes in Notes.")
    _say("  6) Click “End session…”, fill in the form: the report is saved as a JSON line in")
    _say(f"     {demo.data_dir / 'reports' / 'reports.jsonl'} (the relay keeps no records yet).")
    _say("Phone support instead: the user clicks “Show a code for phone support” and reads")
    _say("the code; type it under “Connect by code” in the technician window.")
    _say("The user can click Stop at any time to end everything at once.")
    _say()
    _say("Press Ctrl+C here to stop everything.")


def _watch(demo: Demo, relay: Child, apps: Sequence[Child]) -> int:
    """Wait until both windows are closed or the relay dies."""
    reported: set[str] = set()
    while True:
        if not relay.alive:
            _say(f"The relay stopped unexpectedly:\n{relay.tail()}")
            return _EXIT_FAILED
        for app in apps:
            if not app.alive and app.name not in reported:
                reported.add(app.name)
                status = app.proc.returncode
                _say(f"The {app.name} window closed (exit status {status}).")
                if status != 0:
                    _say(app.tail())
        if all(not app.alive for app in apps):
            return 0 if all(app.proc.returncode == 0 for app in apps) else _EXIT_FAILED
        time.sleep(_POLL)


def _smoke(demo: Demo, relay: Child, apps: Sequence[Child], seconds: float) -> int:
    summary: dict[str, Any] = {"event": "smoke", "seconds": seconds, "display": demo.display}
    try:
        summary["health"] = demo.healthz()
        summary["healthz"] = summary["health"].get("status") == "ok"
    except (OSError, ValueError) as exc:
        summary["healthz"] = False
        summary["health_error"] = str(exc)
    children = [relay, *apps]
    technician = next(app for app in apps if app.name == "technician")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and all(child.alive for child in children):
        time.sleep(_POLL)
    # Signing in takes a moment on a slow machine: wait for it a bit longer.
    late = time.monotonic() + START_TIMEOUT
    while not _signed_in(technician) and technician.alive and time.monotonic() < late:
        time.sleep(_POLL)
    summary["technician_signed_in"] = _signed_in(technician)
    summary["alive"] = {child.name: child.alive for child in children}
    statuses = demo.stop_all()
    summary["exit_status"] = {child.name: statuses[child.name] for child in children}
    summary["ok"] = (
        summary["healthz"]
        and summary["technician_signed_in"]
        and all(summary["alive"].values())
        and all(status == 0 for status in summary["exit_status"].values())
    )
    if not summary["ok"]:
        for child in children:
            if child.tail():
                print(f"--- {child.name} log (tail) ---\n{child.tail()}", file=sys.stderr)
    summary["data_dir"] = str(demo.data_dir)
    _say(json.dumps(summary))
    return 0 if summary["ok"] else _EXIT_FAILED


def _signed_in(technician: Child) -> bool:
    """The console logged its sign-in as the demo account."""
    if technician.log is None:
        return False
    try:
        return SIGNED_IN_LINE in technician.log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _data_dir(requested: Path | None) -> tuple[Path, bool]:
    """The data directory, and whether it is a temporary one to remove afterwards."""
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="deskhand-demo-")), True
    try:
        requested.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot use {requested} as the data directory: {exc.strerror}") from None
    return requested.resolve(), False


def _run(args: argparse.Namespace) -> int:
    data_dir, temporary = _data_dir(args.data_dir)
    demo = Demo(data_dir)
    status = _EXIT_FAILED
    try:
        if args.xvfb:
            demo.start_xvfb()
        _say("Setting up the demo relay, organisation and technician account…")
        password = demo.prepare_relay()
        relay = demo.start_relay()
        apps = demo.start_apps(password)
        if args.smoke is not None:
            status = _smoke(demo, relay, apps, args.smoke)
        else:
            _print_steps(demo, password)
            status = _watch(demo, relay, apps)
    except KeyboardInterrupt:
        _say("\nStopping…")
        status = 0
    finally:
        # A second Ctrl+C must not leave programs behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop_all()
        if temporary and status == 0:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif temporary:
            print(f"{PROG}: kept {data_dir} for inspection (logs/)", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    # Ctrl+C and SIGTERM both stop everything the demo started. SIGINT is set
    # explicitly too: a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        args = _parser().parse_args(argv)
        if args.smoke is not None and not 0 < args.smoke <= 3600:
            raise DemoError("--smoke must be between 0 and 3600 seconds")
        return _run(args)
    except DemoError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
