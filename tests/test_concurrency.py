"""Several operators at once, as real processes against one SQLite file and one PostgreSQL database.

Each test starts small Python processes (``python -c``) that talk to the test over their
standard streams: a child says what it has done ("opened", "holding", ...) and waits for "go" where
the test must decide the order. Every wait is bounded, so a lock-up fails instead of hanging.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kundreg_tui.domain.database import BUSY_TIMEOUT_MS
from kundreg_tui.domain.register import RegisterService

pytestmark = pytest.mark.pg

ROOT = Path(__file__).resolve().parent.parent
STEP_TIMEOUT = 8.0  # seconds for one expected line

CHILD = r"""
import sys, time
import sqlalchemy as sa
from kundreg_tui.domain.database import make_engine, write_tx
from kundreg_tui.domain.models import customer_table
from kundreg_tui.domain.register import RegisterService, StaleError

url, mode, *args = sys.argv[1:]
engine = make_engine(url)
svc = RegisterService(engine, actor="op-" + mode)


def say(*parts):
    print(*parts, flush=True)


def wait_go():
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)


say("ready")
if mode == "edit":  # open a customer (as the form does), then save a new city when told
    rec = svc.get(int(args[0]))
    say("opened", rec.version)
    wait_go()
    try:
        new = svc.update(rec.id, {**rec.values(), "city": args[1]}, rec.version)
        say("saved", new.version)
    except StaleError:
        say("stale")
elif mode == "hold":  # change a customer in a write transaction and keep it open
    wait_go()
    with write_tx(engine) as conn:
        conn.execute(sa.update(customer_table).where(customer_table.c.id == int(args[0]))
                     .values(notes="held"))
        say("holding")
        time.sleep(float(args[1]))
    say("released")
elif mode == "slow-create":  # a real create whose transaction stays open a while
    log = svc._log

    def slow(conn, rows):
        log(conn, rows)
        say("holding")
        time.sleep(float(args[0]))

    svc._log = slow
    wait_go()
    say("created", svc.create({"name": "Långsam AB"}).number)
elif mode == "create":
    wait_go()
    t0 = time.monotonic()
    rec = svc.create({"name": args[0], "email": args[0] + "@exempel.se"})
    say("created", rec.number, f"{time.monotonic() - t0:.3f}")
elif mode == "update":
    wait_go()
    t0 = time.monotonic()
    rec = svc.get(int(args[0]))
    new = svc.update(rec.id, {**rec.values(), "city": args[1]}, rec.version)
    say("saved", new.version, f"{time.monotonic() - t0:.3f}")
elif mode == "read":
    wait_go()
    t0 = time.monotonic()
    n = svc.count()
    rows = svc.page(limit=50)
    found = svc.count("bygg")
    say("read", n, len(rows), found, f"{time.monotonic() - t0:.3f}")
engine.dispose()
say("done")
"""


class Child:
    def __init__(self, url: str, mode: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KUNDREG_LANG": "sv"}
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, mode, *args],
            cwd=ROOT, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        # A thread reads the lines, so that a wait for one line has a time limit.
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            self._lines.put(text)
        self._lines.put("")

    def line(self, timeout: float = STEP_TIMEOUT) -> list[str]:
        try:
            text = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"{self.mode}: no answer within {timeout} s; stderr: {self.stderr()}")
        if not text:
            pytest.fail(f"{self.mode}: ended early (rc={self.proc.wait(5)}): {self.stderr()}")
        return text.split()

    def expect(self, word: str, timeout: float = STEP_TIMEOUT) -> list[str]:
        got = self.line(timeout)
        assert got[0] == word, (self.mode, got, self.stderr() if got[0] == "" else "")
        return got[1:]

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        self.expect("done")
        rc = self.proc.wait(STEP_TIMEOUT)
        err = self.stderr()
        assert rc == 0, err
        assert "locked" not in err and "Traceback" not in err, err

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()
        for stream in (child.proc.stdin, child.proc.stderr):
            if stream is not None:
                stream.close()


def start(children: list[Child], url: str, mode: str, *args: str) -> Child:
    child = Child(url, mode, *args)
    children.append(child)
    return child


def test_busy_timeout_is_generous() -> None:
    assert BUSY_TIMEOUT_MS >= 5000


# ------------------------------------------------------------------------------ optimistic locking
def test_two_operators_first_save_wins(service: RegisterService, db_url: str,
                                       children: list[Child]) -> None:
    rec = service.create({"name": "Österlund Bygg AB", "city": "Åre"})
    a = start(children, db_url, "edit", str(rec.id), "Umeå")
    b = start(children, db_url, "edit", str(rec.id), "Luleå")
    for child in (a, b):
        child.expect("ready")
        assert child.expect("opened") == ["1"]
    a.go()
    assert a.expect("saved") == ["2"]
    b.go()
    assert b.expect("stale") == []
    a.finish()
    b.finish()
    got = service.get(rec.id)
    assert got is not None
    assert got.city == "Umeå" and got.version == 2
    updates = [e for e in service.history(rec.id) if e.action == "update"]
    assert len(updates) == 1 and updates[0].actor == "op-edit"
    assert updates[0].changes == {"city": ["Åre", "Umeå"]}


def test_two_operators_save_at_the_same_moment(service: RegisterService, db_url: str,
                                               children: list[Child]) -> None:
    rec = service.create({"name": "Österlund Bygg AB", "city": "Åre"})
    a = start(children, db_url, "edit", str(rec.id), "Umeå")
    b = start(children, db_url, "edit", str(rec.id), "Luleå")
    for child in (a, b):
        child.expect("ready")
        child.expect("opened")
    a.go()
    b.go()
    results = sorted([a.line()[0], b.line()[0]])
    assert results == ["saved", "stale"]
    a.finish()
    b.finish()
    got = service.get(rec.id)
    assert got is not None and got.version == 2 and got.city in ("Umeå", "Luleå")
    assert len([e for e in service.history(rec.id) if e.action == "update"]) == 1


# ------------------------------------------------------------------------------ readers and writers
def test_reader_is_never_blocked_by_a_writer(service: RegisterService, db_url: str,
                                             children: list[Child]) -> None:
    for name in ("Österlund Bygg AB", "Anna Berg", "Berg Bygg HB"):
        rec = service.create({"name": name})
    writer = start(children, db_url, "hold", str(rec.id), "4")
    reader = start(children, db_url, "read")
    writer.expect("ready")
    reader.expect("ready")
    writer.go()
    writer.expect("holding")
    reader.go()
    count, shown, found, elapsed = reader.expect("read", timeout=3.0)
    assert writer.proc.poll() is None  # the write transaction was still open
    assert (int(count), int(shown), int(found)) == (3, 3, 2)
    assert float(elapsed) < 1.5, f"a read waited {elapsed} s for a writer"
    reader.finish()
    writer.expect("released")
    writer.finish()
    got = service.get(rec.id)
    assert got is not None and got.notes == "held"


def test_second_writer_waits_then_succeeds(service: RegisterService, db_url: str,
                                           children: list[Child]) -> None:
    """Writers take turns (SQLite: BEGIN IMMEDIATE and the busy timeout; PostgreSQL: the same
    turn-taking), even when they touch different customers; the second then succeeds."""
    held = service.create({"name": "Anna Berg"})
    other = service.create({"name": "Bo Ek", "city": "Åre"})
    holder = start(children, db_url, "hold", str(held.id), "1.5")
    second = start(children, db_url, "update", str(other.id), "Umeå")
    holder.expect("ready")
    second.expect("ready")
    holder.go()
    holder.expect("holding")
    t0 = time.monotonic()
    second.go()
    version, _elapsed = second.expect("saved")
    waited = time.monotonic() - t0
    holder.expect("released")
    holder.finish()
    second.finish()
    assert 0.5 < waited < BUSY_TIMEOUT_MS / 1000, waited
    got_held, got_other = service.get(held.id), service.get(other.id)
    assert got_held is not None and got_other is not None
    assert got_held.notes == "held"
    assert (got_other.city, got_other.version, int(version)) == ("Umeå", 2, 2)


def test_concurrent_creates_take_different_numbers(service: RegisterService, db_url: str,
                                                   children: list[Child]) -> None:
    """A create waiting for another create gets the next number, never a clash."""
    slow = start(children, db_url, "slow-create", "1.5")
    fast = start(children, db_url, "create", "snabb")
    slow.expect("ready")
    fast.expect("ready")
    slow.go()
    slow.expect("holding")
    fast.go()
    number_fast, _elapsed = fast.expect("created")
    (number_slow,) = slow.expect("created")
    slow.finish()
    fast.finish()
    assert sorted([number_slow, number_fast]) == ["1001", "1002"]
    assert service.count() == 2
    assert service.next_number() == "1003"


def test_many_writers_at_once(service: RegisterService, db_url: str, children: list[Child]) -> None:
    writers = [start(children, db_url, "create", f"kund{i}") for i in range(4)]
    for w in writers:
        w.expect("ready")
    for w in writers:
        w.go()
    got = [w.expect("created")[0] for w in writers]
    for w in writers:
        w.finish()
    assert sorted(got) == ["1001", "1002", "1003", "1004"]
    assert service.count() == 4


def test_sqlite_database_is_locked_never_reaches_the_user(sqlite_engine: sa.Engine,
                                                          children: list[Child]) -> None:
    """BEGIN IMMEDIATE + busy timeout: a writer never fails with 'database is locked'."""
    url = sqlite_engine.url.render_as_string(hide_password=False)
    service = RegisterService(sqlite_engine, actor="test")
    a = service.create({"name": "Anna"})
    b = service.create({"name": "Bo"})
    holder = start(children, url, "hold", str(a.id), "1")
    writers = [start(children, url, "update", str(c.id), "Umeå") for c in (a, b)]
    for child in (holder, *writers):
        child.expect("ready")
    holder.go()
    holder.expect("holding")
    for w in writers:
        w.go()
    versions = [int(w.expect("saved")[0]) for w in writers]
    holder.expect("released")
    holder.finish()
    for w in writers:
        w.finish()
    assert versions == [2, 2]
    assert [r.city for r in service.page()] == ["Umeå", "Umeå"]
