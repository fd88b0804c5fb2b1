"""A throw-away PostgreSQL 15 server for the test suite.

Each test session gets its own server: ``initdb`` into a fresh temporary directory, a
``postgres`` process listening on 127.0.0.1 only (on a free port, no unix socket), trust
authentication, and durability switched off for speed. ``stop()`` (also run at exit and from
fixture finalizers) shuts it down and removes the directory.

PostgreSQL refuses to run as root. When the tests run as root (here and in CI), ``initdb``
and ``postgres`` are started as the ``postgres`` OS user (``KUNDREG_PG_USER`` overrides) by
``subprocess`` itself (``user=``/``group=``/``extra_groups=``), so neither ``su`` nor
``runuser`` is needed; the temporary directory is chowned to that user. Run as any other
user, they run as that user.

Environment:

* ``KUNDREG_PG_BIN``  -- directory holding initdb/postgres (default: Debian's
  /usr/lib/postgresql/15/bin, then ``PATH`` if that holds version 15).
* ``KUNDREG_PG_USER`` -- OS user to run the server as when we are root (default ``postgres``).
* ``KUNDREG_PG_KEEP=1`` -- keep the data directory and log after the session (for debugging).
* ``CI`` -- when set (``true``), missing binaries are an error, never a skip.

The binaries are installed by ``scripts/ensure-postgres.sh``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

PG_MAJOR = 15
DEBIAN_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
SUPERUSER = "kundreg"
DEFAULT_DB = "kundreg_test"
HOST = "127.0.0.1"

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_PORT_ATTEMPTS = 4

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Durability is worthless for a server that lives for one test session.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "100",
    "shared_buffers": "64MB",
    "checkpoint_timeout": "1h",
    "max_wal_size": "1GB",
    "autovacuum": "off",
    "logging_collector": "off",
    "lc_messages": "C",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "timezone": "UTC",
}


class PgNotAvailable(RuntimeError):
    """The PostgreSQL 15 binaries are not on this machine."""


class PgServerError(RuntimeError):
    """The test server could not be set up, started, used or stopped."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _pg_version(bin_dir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    return m.group(0) if m else None


def _has_binaries(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def find_pg_bin() -> Path | None:
    """The directory with PostgreSQL 15's initdb/pg_ctl/postgres, or None."""
    override = os.environ.get("KUNDREG_PG_BIN")
    candidates = [Path(override)] if override else [DEBIAN_BIN]
    if not override:
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for bin_dir in candidates:
        if not _has_binaries(bin_dir):
            continue
        version = _pg_version(bin_dir)
        if version and version.split(".")[0] == str(PG_MAJOR):
            return bin_dir
    return None


def missing_message() -> str:
    where = os.environ.get("KUNDREG_PG_BIN") or str(DEBIAN_BIN)
    return (
        f"PostgreSQL {PG_MAJOR} binaries (initdb, pg_ctl, postgres) not found in {where}; "
        "install them with `scripts/ensure-postgres.sh` (Debian package postgresql-15)"
    )


def require_pg_bin() -> Path:
    """The binaries' directory; raise PgNotAvailable when they are missing (always loud)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        msg = missing_message()
        if in_ci():
            msg = f"CI is set: PostgreSQL tests must not silently skip in CI. {msg}"
        raise PgNotAvailable(msg)
    return bin_dir


def start_or_skip() -> PgServer:
    """For a pytest fixture: a started server; skip when the binaries are missing, except
    under CI, where that fails loudly. A server that is there but fails to start is an error.
    """
    import pytest

    try:
        bin_dir = require_pg_bin()
    except PgNotAvailable as exc:
        if in_ci():
            raise
        pytest.skip(str(exc))
    server = PgServer(bin_dir)
    server.start()
    return server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _traversable_by_others(path: Path) -> bool:
    """Can another user reach into ``path`` (every ancestor has o+x)?"""
    for p in [path, *path.parents]:
        try:
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


STALE_AFTER_S = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: Path) -> None:
    """Remove ``kundreg-pg-*`` directories left by sessions that were SIGKILLed: older than
    an hour, no live postmaster, not kept on purpose (KUNDREG_PG_KEEP)."""
    now = time.time()
    for d in base.glob("kundreg-pg-*"):
        try:
            if now - d.stat().st_mtime < STALE_AFTER_S or (d / "KEEP").exists():
                continue
            pidfile = d / "data" / "postmaster.pid"
            if pidfile.exists():
                first = pidfile.read_text().split("\n", 1)[0].strip()
                if first.isdigit() and _pid_alive(int(first)):
                    continue
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            continue


_live: set[PgServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            pass


class PgServer:
    """One PostgreSQL 15 server in a temporary directory.

    >>> server = PgServer(); server.start()
    >>> server.url          # postgresql+psycopg://kundreg@127.0.0.1:PORT/kundreg_test
    >>> url = server.create_database("kundreg_mod_x"); ...; server.drop_database("kundreg_mod_x")
    >>> server.stop()
    """

    def __init__(self, bin_dir: Path | None = None, *, keep: bool | None = None) -> None:
        self.bin_dir = bin_dir or require_pg_bin()
        self.keep = (
            (os.environ.get("KUNDREG_PG_KEEP", "") not in ("", "0")) if keep is None else keep
        )
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.datadir: Path | None = None
        self.logfile: Path | None = None
        self.startup_seconds: float | None = None
        self.initdb_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # When root: the uid/gid the server runs as (subprocess user=/group=), else None.
        self._uid: int | None = None
        self._gid: int | None = None

    # -- public API ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the session database ``kundreg_test``."""
        return self.url_for(DEFAULT_DB)

    def url_for(self, dbname: str) -> str:
        self._require_running()
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = DEFAULT_DB) -> str:
        """libpq connection string for psycopg.connect()."""
        self._require_running()
        return f"host={HOST} port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=10"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> PgServer:
        if self.running:
            return self
        t0 = time.monotonic()
        self._make_tmpdir()
        try:
            self._initdb()
            self.initdb_seconds = time.monotonic() - t0
            self._launch()
            self._admin_execute(f'CREATE DATABASE "{DEFAULT_DB}" TEMPLATE template0')
        except BaseException:
            # Keep the directory so the log in the error message can still be read.
            self._shutdown()
            _live.discard(self)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Shut the server down and remove its directory (idempotent)."""
        try:
            self._shutdown()
        finally:
            _live.discard(self)
            if self.tmpdir is not None and not self.keep:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def create_database(self, name: str) -> str:
        """A fresh, empty database (``TEMPLATE template0``); returns its SQLAlchemy URL."""
        self._check_name(name)
        self._admin_execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any sessions still connected to it."""
        self._check_name(name)
        self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self.running else "stopped"
        return f"<PgServer {state} dir={self.tmpdir} log={self.logfile}>"

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        if not _IDENT_RE.match(name):
            raise ValueError(f"not a plain database name: {name!r}")

    def _require_running(self) -> None:
        if not self.running:
            raise PgServerError(f"the PostgreSQL test server is not running ({self!r})")

    def _make_tmpdir(self) -> None:
        base = Path(tempfile.gettempdir())
        if os.geteuid() == 0:
            user = os.environ.get("KUNDREG_PG_USER", "postgres")
            import pwd

            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                raise PgServerError(
                    f"running as root, but there is no OS user {user!r} to run PostgreSQL as "
                    "(PostgreSQL refuses to run as root; the postgresql-15 package creates "
                    "'postgres', or set KUNDREG_PG_USER)"
                ) from None
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            if not _traversable_by_others(base):
                base = Path("/tmp")
        sweep_stale(base)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="kundreg-pg-", dir=base))
        if self._uid is not None and self._gid is not None:
            os.chown(self.tmpdir, self._uid, self._gid)
        os.chmod(self.tmpdir, 0o700)
        self.datadir = self.tmpdir / "data"
        self.logfile = self.tmpdir / "postgres.log"
        if self.keep:
            (self.tmpdir / "KEEP").touch()
        _live.add(self)

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "TZ": "UTC",
        }
        if self.tmpdir is not None:
            env["HOME"] = str(self.tmpdir)
        return env

    def _run(self, args: list[str], what: str) -> None:
        proc = subprocess.run(
            args,
            cwd=self.tmpdir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            user=self._uid,
            group=self._gid,
            extra_groups=None if self._uid is None else [],
        )
        if proc.returncode != 0:
            raise PgServerError(
                f"{what} failed (exit {proc.returncode}) in {self.tmpdir}:\n"
                f"$ {' '.join(args)}\n{proc.stdout}{proc.stderr}"
            )

    def _initdb(self) -> None:
        assert self.datadir is not None
        locale = "C.UTF-8" if _has_c_utf8() else "C"
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.datadir),
                "-U", SUPERUSER,
                "-A", "trust",
                "-E", "UTF8",
                f"--locale={locale}",
                "--lc-messages=C",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )  # fmt: skip

    def _launch(self) -> None:
        assert self.datadir is not None and self.logfile is not None
        last_error: PgServerError | None = None
        for _ in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            args = [str(self.bin_dir / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
            for key, value in SERVER_SETTINGS.items():
                args += ["-c", f"{key}={value}"]
            setpriv = shutil.which("setpriv")
            if setpriv:
                # If this Python process dies without cleaning up (SIGKILL), the server gets
                # SIGINT (fast shutdown) instead of lingering.
                args = [setpriv, "--pdeathsig", "INT", "--", *args]
            with open(self.logfile, "ab") as log:
                self._proc = subprocess.Popen(
                    args,
                    cwd=self.tmpdir,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Own session: a Ctrl-C in the terminal goes to pytest, which stops us.
                    start_new_session=True,
                    user=self._uid,
                    group=self._gid,
                    extra_groups=None if self._uid is None else [],
                )
            try:
                self._wait_ready()
                return
            except PgServerError as exc:
                self._shutdown()
                last_error = exc
                log_text = _tail(self.logfile, 20)
                if "could not bind" in log_text or "Address already in use" in log_text:
                    continue  # someone took the port meanwhile: try another one
                raise
        assert last_error is not None
        raise last_error

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.datadir is not None
        pidfile = self.datadir / "postmaster.pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise self._error(f"postgres exited with code {code} during start-up")
            try:
                # Line 8 of postmaster.pid is the postmaster's status ("ready" when it is).
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    break
            except (OSError, UnicodeDecodeError):
                pass
            time.sleep(0.01)
        else:
            raise self._error(f"postgres not ready after {START_TIMEOUT_S:.0f} s")
        try:
            self._admin_execute("SELECT 1")
        except Exception as exc:
            raise self._error(f"postgres started but does not accept connections: {exc}") from exc

    def _admin_execute(self, sql: str) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
                conn.execute(sql.encode())
        except psycopg.Error as exc:
            raise self._error(f"{sql!r} failed: {exc}") from exc

    def _error(self, message: str) -> PgServerError:
        return PgServerError(
            f"{message}\nPostgreSQL test server: port {self.port}, data {self.datadir}\n"
            f"log file: {self.logfile}\n--- last lines of the log ---\n{_tail(self.logfile)}"
            if self.logfile
            else message
        )

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # SIGINT: fast shutdown; SIGQUIT: immediate; SIGKILL: last resort.
        for sig, wait in (
            (signal.SIGINT, STOP_TIMEOUT_S),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
        raise PgServerError(f"postgres (pid {proc.pid}) would not stop; log file: {self.logfile}")


_c_utf8: bool | None = None


def _has_c_utf8() -> bool:
    """C.UTF-8 gives lower()/upper()/ILIKE on å, ä, ö; plain C folds ASCII only."""
    global _c_utf8
    if _c_utf8 is None:
        try:
            out = subprocess.run(
                ["locale", "-a"], capture_output=True, text=True, timeout=10
            ).stdout
            _c_utf8 = any(line.lower() in ("c.utf8", "c.utf-8") for line in out.splitlines())
        except (OSError, subprocess.SubprocessError):
            _c_utf8 = False
    return _c_utf8
