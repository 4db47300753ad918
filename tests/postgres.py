"""A private PostgreSQL server for the tests: initdb into a temporary folder, one per session.

The server listens on a Unix socket in its own folder and nowhere else
(``listen_addresses = ''``: no TCP at all), trusts whoever can reach that
socket (the folder is mode 0700), and runs with fsync off (its data is thrown
away). ``initdb`` and ``postgres`` refuse to run as root, so as root they run
as the ``postgres`` user (which Debian's package creates) through ``setpriv``,
and the folder belongs to that user.

Only the process started here is ever signalled, by its pid; every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg


__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir"]

SUPERUSER = "deskhand"
_BINARIES = ("initdb", "postgres")
_DEBIAN_ROOT = Path("/usr/lib/postgresql")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries (or a user to run them as) are not on this machine."""


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or None.

    In order: ``DESKHAND_PG_BINDIR``; the PATH; Debian's
    ``/usr/lib/postgresql/<version>/bin``, newest version first.
    """
    override = os.environ.get("DESKHAND_PG_BINDIR")
    candidates: list[Path] = [Path(override)] if override else []
    found = [shutil.which(name) for name in _BINARIES]
    if all(found):
        # Debian links some of them into /usr/local/bin or wraps them: use the real folder.
        candidates.append(Path(os.path.realpath(str(found[0]))).parent)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.name)) or (0,)

    if _DEBIAN_ROOT.is_dir():
        versions = sorted(_DEBIAN_ROOT.iterdir(), key=version, reverse=True)
        candidates += [v / "bin" for v in versions]
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _BINARIES):
            return bindir
    return None


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root, and there is no 'postgres' user to run initdb as")


class PostgresServer:
    """initdb + postgres in a fresh temporary folder, stopped (by pid) and removed on exit.

    Args:
        bindir: where ``initdb`` and ``postgres`` are (default: :func:`find_bindir`).
        start_timeout: how long initdb, and then the server's start, may take each.
    """

    def __init__(self, bindir: Path | None = None, *, start_timeout: float = 60.0) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL's server is not installed (no initdb/postgres on the PATH or in"
                f" {_DEBIAN_ROOT}/<version>/bin); on Debian: apt-get install postgresql"
            )
        self.bindir = found
        self.start_timeout = start_timeout
        self.user = _run_as()
        self.base: Path | None = None
        self.socket_dir = Path()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.version = 0
        self._names = itertools.count(1)

    def __repr__(self) -> str:
        return f"PostgresServer(pid={self.pid}, socket_dir={str(self.socket_dir)!r})"

    # --- starting and stopping ---

    def _argv(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bindir / program), *args]
        if self.user is None:
            return argv
        # setpriv execs (no child process in between), so our pid is the server's.
        return [
            "setpriv",
            f"--reuid={self.user.pw_uid}",
            f"--regid={self.user.pw_gid}",
            "--init-groups",
            "--",
            *argv,
        ]

    def start(self) -> PostgresServer:
        # A short path: the socket's (dir/.s.PGSQL.5432) must fit in 107 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="deskhand-pg-"))
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.socket_dir = self.base
        data = self.base / "data"
        log = self.base / "server.log"
        env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        initdb = subprocess.run(
            self._argv(
                "initdb",
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ),
            cwd=self.base,
            env=env,
            capture_output=True,
            text=True,
            timeout=self.start_timeout,
            check=False,
        )
        if initdb.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()}")
        with open(log, "wb") as out:
            # Unix socket only (no TCP), no fsync: nothing here must survive the session.
            self.proc = subprocess.Popen(
                self._argv(
                    "postgres",
                    "-D",
                    str(data),
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "TimeZone=UTC",
                ),
                cwd=self.base,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                text = log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"postgres exited at start-up:\n{text}")
            try:
                with self._admin() as admin:
                    row = admin.execute("SHOW server_version_num").fetchone()
                    self.version = int(str(row[0])) if row else 0
                    break
            except psycopg.OperationalError as exc:  # until it accepts connections
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not accept connections: {exc}") from None
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT) of the server started here, then remove its folder."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                proc.kill()
                proc.wait(timeout=5.0)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- databases ---

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection to the maintenance database (closed by ``with``)."""
        return psycopg.connect(
            host=str(self.socket_dir),
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server (over its Unix socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def create_database(self) -> tuple[str, str]:
        """A new empty database: (its name, its SQLAlchemy URL)."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        # PostgreSQL 15 copies a template through the WAL by default: 0.25 s a database
        # here, against 0.02 s for a file copy (cheap with fsync off).
        options = " STRATEGY = FILE_COPY" if self.version >= 150000 else ""
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"{options}')
        return name, self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending whatever connections a test left open to it."""
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
