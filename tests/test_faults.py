"""Faults, as real processes against a real SQLite file and the real PostgreSQL server.

A busy register, a file or folder the operator may not write, a read-only file system and a full
disk each end in a clear message for the user (``faults.explain``): no traceback, exit status 2
from the command line, and nothing half done.

Tests run as root here and in CI, and root writes whatever the file mode says. The permission
tests therefore run their child process as root *without* the capabilities that override file
permissions (``setpriv --bounding-set=-dac_override,...``): it is then held to the file's mode
bits like any operator. Run as an ordinary user, the child needs no such help.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kundreg_tui.domain import faults
from kundreg_tui.domain.database import make_engine, migrate, write_tx
from kundreg_tui.domain.faults import DatabaseFault, as_fault, explain
from kundreg_tui.domain.register import RegisterError, RegisterService

ROOT = Path(__file__).resolve().parent.parent
STEP_TIMEOUT = 20.0
SHORT_BUSY_MS = 1000
PASTE = "epost,förnamn,efternamn\nanna.berg@exempel.se,Anna,Berg\nbo.ek@exempel.se,Bo,Ek\n"

# A child that holds the write lock (BEGIN IMMEDIATE / the writers' advisory lock) until told.
HOLDER = r"""
import sys
from kundreg_tui.domain.database import make_engine, write_tx
engine = make_engine(sys.argv[1])
with write_tx(engine) as conn:
    print("holding", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""

# A child that tries one create through the service with a short busy timeout.
CREATE = r"""
import json, sys, time
import kundreg_tui.domain.database as database
database.BUSY_TIMEOUT_MS = int(sys.argv[2])
from kundreg_tui.domain.register import RegisterError, RegisterService
svc = RegisterService(database.make_engine(sys.argv[1]), actor="op-busy")
t0 = time.monotonic()
try:
    svc.create({"name": "Väntande AB", "email": "vantande@exempel.se"})
    out = {"ok": True}
except Exception as exc:
    out = {"ok": False, "type": type(exc).__name__, "kind": getattr(exc, "kind", None),
           "register_error": isinstance(exc, RegisterError), "message": str(exc)}
out["waited"] = time.monotonic() - t0
print(json.dumps(out), flush=True)
"""

# The command line, with a short busy timeout and optionally a database that cannot grow.
CLI = r"""
import sys
import kundreg_tui.domain.database as database
database.BUSY_TIMEOUT_MS = int(sys.argv[1])
if sys.argv[2] == "full":
    import sqlalchemy as sa
    make = database.make_engine

    def make_engine(url, **kw):
        engine = make(url, **kw)

        @sa.event.listens_for(engine, "connect")
        def _no_room(dbapi_conn, _record):
            pages = dbapi_conn.execute("PRAGMA main.page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA main.max_page_count = {pages}")

        return engine

    database.make_engine = make_engine
from kundreg_tui.__main__ import main
main(sys.argv[3:], prog_name="kundreg")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "KUNDREG_LANG": "sv", "LANG": "C.UTF-8"}


def run_cli(*args: str, stdin: str = "", busy_ms: int = SHORT_BUSY_MS, mode: str = "plain",
            prefix: list[str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), sys.executable, "-c", CLI, str(busy_ms), mode, *args],
                          input=stdin, capture_output=True, text=True, env=_env(), cwd=cwd,
                          timeout=STEP_TIMEOUT * 2)


def assert_clear(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2, the message on stderr, no traceback, no driver error."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err and "OperationalError" not in err and "sqlite3." not in err, err
    assert err.startswith("kundreg: "), err
    for word in words:
        assert word in err, (word, err)
    return err


class Proc:
    """A child process whose lines are read by a thread, so that every wait is bounded."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=_env(), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def line(self, timeout: float = STEP_TIMEOUT) -> str:
        try:
            text = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"no answer within {timeout} s")
        if not text:
            self.proc.wait(5)
            assert self.proc.stderr is not None
            pytest.fail(f"child ended early (rc={self.proc.returncode}): {self.proc.stderr.read()}")
        return text.strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.kill()


def snapshot(engine: sa.Engine) -> tuple[object, ...]:
    """Everything a write would change: customers, the number series, history, batches."""
    with engine.connect() as conn:
        return (
            conn.exec_driver_sql("SELECT count(*), max(id), max(version) FROM customer").one(),
            conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'next_customer_number'").scalar(),
            conn.exec_driver_sql("SELECT count(*), max(id) FROM change").one(),
            conn.exec_driver_sql("SELECT count(*) FROM batch").scalar(),
        )


# ---------------------------------------------------------------------------------------- busy
@pytest.mark.pg
def test_busy_register_fails_clearly_and_changes_nothing(service: RegisterService, db_url: str,
                                                         procs: list[Proc]) -> None:
    """One process holds the write lock longer than the others' busy timeout: their writes (the
    service, and ``kundreg import`` on the command line) wait that long, then fail with a message
    that says the register is busy and nothing was saved; nothing is changed. Once the lock is
    released, the same import succeeds."""
    service.create({"name": "Österlund Bygg AB", "email": "info@osterlund.se"})
    before = snapshot(service.engine)
    holder = Proc(HOLDER, db_url)
    procs.append(holder)
    assert holder.line() == "holding"
    creator = Proc(CREATE, db_url, str(SHORT_BUSY_MS))
    procs.append(creator)
    cli = run_cli("--db", db_url, "import", "-", stdin=PASTE)
    got = json.loads(creator.line())
    assert got["ok"] is False, got
    assert got["type"] == "DatabaseFault" and got["kind"] == faults.BUSY and got["register_error"], got
    assert "upptaget" in got["message"] and "Inget sparades" in got["message"], got
    assert "locked" not in got["message"] and "lock timeout" not in got["message"], got
    assert SHORT_BUSY_MS / 1000 * 0.8 <= got["waited"] < 10, got
    assert_clear(cli, "Registret är upptaget", "Inget sparades", "Försök igen")
    assert snapshot(service.engine) == before
    holder.send("release")
    assert holder.line() == "released"
    ok = run_cli("--db", db_url, "import", "-", stdin=PASTE)
    assert ok.returncode == 0, ok.stderr
    assert service.count() == 3


# ---------------------------------------------------------------------------------------- permissions
def _unprivileged_prefix(tmp_path: Path) -> list[str]:
    """A command prefix that makes the child obey file permissions (see the module docstring)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot run a child that obeys file permissions")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable", "--"]
    probe = tmp_path / "probe"
    probe.write_text("")
    probe.chmod(0o444)
    code = f"""
try:
    open({str(probe)!r}, "a")
    print("allowed")
except PermissionError:
    print("denied")
"""
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"setpriv does not work here: {exc}")
    finally:
        probe.unlink()
    if done.stdout.strip() != "denied":
        pytest.skip(f"cannot drop the capability to override file permissions here: {done.stderr.strip()}")
    return prefix


def _register(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "kunder.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    RegisterService(engine, actor="test").create({"name": "Anna Berg", "email": "anna@exempel.se"})
    engine.dispose()  # the last connection checkpoints and removes -wal and -shm
    assert not Path(f"{path}-wal").exists()
    return path


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(conn.execute("SELECT count(*) FROM customer").fetchone()[0])


def test_register_file_the_operator_cannot_write(tmp_path: Path) -> None:
    prefix = _unprivileged_prefix(tmp_path)
    path = _register(tmp_path / "reg")
    path.chmod(0o444)
    proc = run_cli("--db", str(path), "import", "-", stdin=PASTE, prefix=prefix)
    err = assert_clear(proc, "får inte skriva i registerfilen", str(path), "Inget sparades",
                       "chgrp kundreg", "chmod 660", "chmod 2770", "skrivbar för gruppen", "-wal")
    assert "r--r--r--" in err  # the file's mode, so the operator sees why
    path.chmod(0o600)
    assert _count(path) == 1


def test_register_folder_the_operator_cannot_write(tmp_path: Path) -> None:
    """WAL needs the folder: SQLite creates kunder.db-wal and -shm beside the register."""
    prefix = _unprivileged_prefix(tmp_path)
    path = _register(tmp_path / "reg")
    path.parent.chmod(0o555)
    try:
        proc = run_cli("--db", str(path), "import", "-", stdin=PASTE, prefix=prefix)
    finally:
        path.parent.chmod(0o755)
    assert_clear(proc, "får inte skapa filer i mappen", "kunder.db-wal", "Inget sparades", "chmod 2770")
    assert _count(path) == 1


def test_read_only_file_system(tmp_path: Path) -> None:
    """The register on a file system mounted read-only (a read-only bind mount of its folder)."""
    path = _register(tmp_path / "reg")
    view = tmp_path / "view"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(path.parent), str(view)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.strip()}")
        proc = run_cli("--db", str(view / path.name), "import", "-", stdin=PASTE)
        assert_clear(proc, "skrivskyddat", "Inget sparades")
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)
    assert _count(path) == 1


# ---------------------------------------------------------------------------------------- disk full
def _many_rows(n: int) -> str:
    lines = ["epost,förnamn,efternamn,adress,stad"]
    lines += [f"kund{i}@exempel.se,Förnamn{i},Efternamn{i},Storgatan {i},Umeå" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_database_that_cannot_grow_is_full(tmp_path: Path) -> None:
    """SQLITE_FULL made deterministic: PRAGMA max_page_count at the current size."""
    path = _register(tmp_path / "reg")
    proc = run_cli("--db", str(path), "import", "-", stdin=_many_rows(400), mode="full")
    assert_clear(proc, "Disken är full", "Inget sparades", "Frigör utrymme")
    assert _count(path) == 1


def test_disk_full_on_a_tiny_tmpfs(tmp_path: Path) -> None:
    """A real full disk: a 2 MB tmpfs, filled up but for a little room."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        folder = mnt / "reg"
        path = _register(folder)
        junk = mnt / "junk"
        with open(junk, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        # Room for the -shm and a few WAL frames, not for 2000 customers.
        with open(junk, "r+b") as f:
            f.truncate(max(junk.stat().st_size - 160 * 1024, 0))
        proc = run_cli("--db", str(path), "import", "-", stdin=_many_rows(2000))
        assert_clear(proc, "Disken är full", "Inget sparades", "Ledigt på")
        junk.unlink()
        assert _count(path) == 1
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---------------------------------------------------------------------------------------- PostgreSQL
def test_postgresql_server_that_cannot_be_reached(tmp_path: Path) -> None:
    proc = run_cli("--db", "postgresql://kundreg@127.0.0.1:9/kundreg", "list")
    assert_clear(proc, "Kan inte ansluta till PostgreSQL-servern 127.0.0.1:9", "KUNDREG_DB")


# ---------------------------------------------------------------------------------------- the messages
def _wrap(err: BaseException) -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("INSERT INTO customer ...", {}, err)


def test_explain_says_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "kunder.db"
    db.write_bytes(b"")
    busy = explain(_wrap(sqlite3.OperationalError("database is locked")), db)
    assert "upptaget" in busy and "Inget sparades" in busy and "INSERT" not in busy
    full = explain(_wrap(sqlite3.OperationalError("database or disk is full")), db)
    assert "Disken är full" in full and str(db) in full
    broken = explain(_wrap(sqlite3.DatabaseError("database disk image is malformed")), db)
    assert "skadad" in broken and "kundreg doctor" in broken
    import psycopg

    url = "postgresql+psycopg://anna@db.exempel.se:5432/kunder"
    lock = as_fault(_wrap(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")), url)
    assert lock is not None and lock.kind == faults.BUSY and isinstance(lock, RegisterError)
    denied = explain(sa.exc.ProgrammingError("SELECT", {}, psycopg.errors.InsufficientPrivilege(
        "permission denied for table customer")), url)
    assert "anna" in denied and "GRANT" in denied
    standby = as_fault(sa.exc.InternalError("UPDATE", {}, psycopg.errors.ReadOnlySqlTransaction(
        "cannot execute UPDATE in a read-only transaction")), url)
    assert standby is not None and standby.kind == faults.READONLY
    # Not a fault: a bug or a refusal the caller handles stays what it is.
    assert as_fault(sa.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))) is None
    assert as_fault(ValueError("x")) is None
    assert explain(ValueError("vanligt fel")) == "vanligt fel"


def test_permission_advice_for_a_group_of_operators(tmp_path: Path) -> None:
    db = tmp_path / "kunder.db"
    db.write_bytes(b"")
    Path(f"{db}-wal").write_bytes(b"")
    advice = faults.permission_advice(db)
    assert f"chgrp kundreg {tmp_path} {db} {db}-wal" in advice
    assert f"chmod 660 {db} {db}-wal" in advice
    assert f"chmod 2770 {tmp_path}" in advice
    assert "-shm" in advice and "skrivbar för gruppen" in advice
    assert stat.S_IMODE(db.stat().st_mode)  # the advice changed nothing


def test_write_tx_raises_a_fault_not_the_drivers_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: a second writer on a short busy timeout gets a DatabaseFault (a RegisterError)."""
    import kundreg_tui.domain.database as database

    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 300)
    url = f"sqlite:///{tmp_path / 'kunder.db'}"
    first, second = make_engine(url), make_engine(url)
    migrate(first)
    try:
        with write_tx(first):
            t0 = time.monotonic()
            with pytest.raises(DatabaseFault) as caught:
                RegisterService(second, actor="b").create({"name": "Bo Ek"})
            assert 0.25 <= time.monotonic() - t0 < 5
        assert caught.value.kind == faults.BUSY
        assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
        assert RegisterService(second, actor="b").create({"name": "Bo Ek"}).number == "1001"
    finally:
        first.dispose()
        second.dispose()
