"""An import killed at any moment leaves the register exactly as it was before it or exactly as
after it.

A real process runs an import (the engine, or the ``kundreg import`` command) on a register of a few
tens of thousands of customers, and the test sends it SIGKILL at a random moment: while it starts,
reads and classifies the file, while it commits, or while it checkpoints afterwards. After each kill
the register must equal, column for column (timestamps apart), either the register before the
import or the register after a complete run of the same import, and SQLite's ``integrity_check``
must say ``ok``. Many kills, bounded in time; then the import must still go through.
"""

from __future__ import annotations

import csv
import hashlib
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from kundreg_tui.domain.csvread import open_csv
from kundreg_tui.domain.database import make_engine, migrate
from kundreg_tui.domain.demo import fill_demo
from kundreg_tui.domain.importer import ImportOptions, ImportPlan
from kundreg_tui.domain.mapping import suggest_mapping

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
REGISTER = 20_000
ROWS = 20_000
KILLS = 20
TIME_BUDGET_S = 42.0

CHILD = r"""
import sys
from pathlib import Path
from kundreg_tui.domain.csvread import open_csv
from kundreg_tui.domain.database import make_engine
from kundreg_tui.domain.importer import ImportOptions, ImportPlan
from kundreg_tui.domain.mapping import suggest_mapping
url, path = sys.argv[1], sys.argv[2]
engine = make_engine(url)
print("read", flush=True)
source = open_csv(Path(path))
fields = [s.field for s in suggest_mapping(source.header)]
with ImportPlan(engine, ImportOptions(source="cli", label="kill.csv"), actor="kill") as plan:
    print("build", flush=True)
    plan.build(source.iter_records(), fields)
    print("commit", flush=True)
    plan.commit()
    print("committed", flush=True)
print("closed", flush=True)
"""

FIELDS = ["number", "kind", "name", "first_name", "last_name", "org_number", "vat_number", "email", "phone",
          "address", "postal_code", "city", "country", "reference", "notes"]
HEADERS = ["Kundnummer", "Kundtyp", "Kundnamn", "Förnamn", "Efternamn", "Organisationsnummer",
           "Momsregistreringsnummer", "E-post", "Telefon", "Adress", "Postnummer", "Ort", "Land", "Er referens",
           "Anteckningar"]


def make_file(db: Path, path: Path, rows: int, seed: int = 3) -> None:
    """Customers as stored, 10 % of them changed, 10 % new ones; shuffled."""
    rng = random.Random(seed)
    con = sqlite3.connect(db)
    stored = con.execute(f"SELECT {', '.join(FIELDS)} FROM customer ORDER BY id LIMIT ?", (rows - rows // 10,)).fetchall()
    con.close()
    out = []
    for i, row in enumerate(stored):
        values = list(row)
        if i % 10 == 0:
            values[8] = f"070-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
            values[11] = rng.choice(["Umeå", "Luleå", "Kiruna"])
        values[1] = {"company": "Företag", "person": "Privatperson"}[values[1]]
        out.append(values)
    for i in range(rows // 10):
        out.append([str(900_000 + i) if i % 2 else "", "Företag", f"Nytt Bolag {i} AB", "", "", "", "",
                    f"ny{i}@nytt.se", "", "Nygatan 1", "123 45", "Umeå", "SE", "", ""])
    rng.shuffle(out)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(HEADERS)
        writer.writerows(out)


def snapshot_sql(conn: sa.Connection) -> str:
    """Everything an import writes, timestamps apart, as one digest."""
    parts = []
    for sql in (
        "SELECT id, " + ", ".join(FIELDS) + ", number_key, name_key, city_key, email_key, search_key, version, "
        "deleted_at IS NULL FROM customer ORDER BY id",
        "SELECT key, value FROM meta ORDER BY key",
        "SELECT id, actor, source, batch_id, customer_id, action, changes FROM change ORDER BY id",
        "SELECT id, kind, actor, source, summary, undone_at IS NULL FROM batch ORDER BY id",
    ):
        parts.append(repr([tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def snapshot(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return snapshot_sql(conn)
    finally:
        engine.dispose()


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def run_import(url: str, csv_path: Path) -> None:
    engine = make_engine(url)
    try:
        source = open_csv(csv_path)
        fields = [s.field for s in suggest_mapping(source.header)]
        with ImportPlan(engine, ImportOptions(source="cli", label="kill.csv"), actor="kill") as plan:
            plan.build(source.iter_records(), fields)
            plan.commit()
    finally:
        engine.dispose()


class Child:
    """A child process whose marker lines are read (with their times) by a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, text=True)
        self.started = time.monotonic()
        self.lines: queue.Queue[tuple[str, float]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((line.strip(), time.monotonic()))

    def wait_for(self, marker: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line, at = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line == marker:
                return at
        return None

    def kill(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def children(self) -> list[int]:
        """Processes this one started (the import's reading process), from /proc."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    found.append(int(entry.name))
        return found


def gone(pids: list[int], timeout: float) -> bool:
    """Whether the processes ended (or became zombies) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.append(pid)
        if not alive:
            return True
        time.sleep(0.05)
    return False


def engine_child(url: str, path: Path) -> Child:
    return Child([sys.executable, "-c", CHILD, url, str(path)])


def cli_child(url: str, path: Path, reader: bool = False) -> Child:
    """``kundreg import``; with ``reader``, the file is read in a child process of its own (as a big
    file is), whatever its size."""
    return Child([sys.executable, "-m", "kundreg_tui", "--db", url, "import", str(path), "--json"],
                 env={"KUNDREG_IMPORT_PROCESS": "1" if reader else "0"})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str, dict[str, float]]:
    """The register before, the import file, the digests before and after (engine, command; one
    string), and the phase times."""
    base = tmp_path_factory.mktemp("kill")
    db = base / "before.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    fill_demo(engine, REGISTER, seed=5)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    path = base / "import.csv"
    make_file(db, path, ROWS)
    before = snapshot(f"sqlite:///{db}")
    ref = base / "after.db"
    shutil.copyfile(db, ref)
    # Phase times of a complete run, for choosing kill moments.
    child = engine_child(f"sqlite:///{ref}", path)
    times = {}
    for marker in ("read", "build", "commit", "committed", "closed"):
        at = child.wait_for(marker, 120)
        assert at is not None, f"the reference import did not reach {marker}"
        times[marker] = at - child.started
    assert child.proc.wait(timeout=60) == 0
    after = snapshot(f"sqlite:///{ref}")
    assert before != after
    # The command records another actor and source: its own complete run is its after-state.
    ref_cli = base / "after-cli.db"
    shutil.copyfile(db, ref_cli)
    child = cli_child(f"sqlite:///{ref_cli}", path)
    assert child.proc.wait(timeout=120) == 0
    times["cli"] = time.monotonic() - child.started
    return db, path, before, f"{after} {snapshot(f'sqlite:///{ref_cli}')}", times


def _fresh_copy(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def test_sqlite_import_killed_at_random_moments(prepared: tuple[Path, Path, str, str, dict[str, float]],
                                                tmp_path: Path) -> None:
    db, path, before, afters, times = prepared
    after, after_cli = afters.split()
    rng = random.Random(20240501)
    started = time.monotonic()
    outcomes: list[tuple[str, str, float, str]] = []
    kills = 0
    while kills < KILLS and time.monotonic() - started < TIME_BUDGET_S:
        target = _fresh_copy(db, tmp_path / "register.db")
        url = f"sqlite:///{target}"
        window = ("any", "build", "commit", "commit", "committed", "cli")[kills % 6]
        child = cli_child(url, path, reader=kills % 12 == 5) if window == "cli" else engine_child(url, path)
        if window in ("any", "cli"):
            delay = rng.uniform(0.0, times["cli"] if window == "cli" else times["closed"] * 1.05)
            time.sleep(delay)
        else:
            marker_at = child.wait_for(window, 60)
            assert marker_at is not None, f"the import never reached {window}"
            span = {"build": times["commit"] - times["build"], "commit": times["committed"] - times["commit"],
                    "committed": times["closed"] - times["committed"]}[window]
            delay = rng.uniform(0.0, span * 1.1)
            time.sleep(max(0.0, delay - (time.monotonic() - marker_at)))
        readers = child.children()
        child.kill()
        kills += 1
        assert gone(readers, 30), "the import's reading process outlived the import"
        state = snapshot(url)
        check = integrity(target)
        complete = after_cli if window == "cli" else after
        outcomes.append((window, "before" if state == before else "after" if state == complete else "OTHER",
                         round(delay, 3), check))
        assert check == "ok", outcomes[-1]
        assert state in (before, complete), f"a kill left a register that is neither before nor after: {outcomes}"
    assert kills >= 12, f"only {kills} kills within the time budget"
    # Killed mid-way or not, the same import afterwards lands exactly the after-state.
    target = _fresh_copy(db, tmp_path / "register.db")
    child = engine_child(f"sqlite:///{target}", path)
    assert child.wait_for("commit", 60) is not None
    time.sleep((times["committed"] - times["commit"]) * 0.5)
    child.kill()
    if snapshot(f"sqlite:///{target}") == before:
        run_import(f"sqlite:///{target}", path)
    assert snapshot(f"sqlite:///{target}") == after and integrity(target) == "ok"
    seen = {o[1] for o in outcomes}
    print(f"\n{kills} kills: {sum(o[1] == 'before' for o in outcomes)} before, "
          f"{sum(o[1] == 'after' for o in outcomes)} after; phases {times}")
    assert seen <= {"before", "after"}


def test_import_killed_while_its_reader_reads(prepared: tuple[Path, Path, str, str, dict[str, float]],
                                              tmp_path: Path) -> None:
    """``kundreg import`` killed while its reading process is reading the file: the reader stops
    (it dies on its next write into the closed pipe) and the register is as before."""
    db, path, before, _afters, _times = prepared
    target = _fresh_copy(db, tmp_path / "register.db")
    child = cli_child(f"sqlite:///{target}", path, reader=True)
    deadline = time.monotonic() + 60
    readers: list[int] = []
    while not readers and child.proc.poll() is None and time.monotonic() < deadline:
        readers = child.children()
        time.sleep(0.01)
    assert readers, "the import never started its reading process"
    child.kill()
    assert gone(readers, 30), "the import's reading process outlived the import"
    assert snapshot(f"sqlite:///{target}") == before and integrity(target) == "ok"


@pytest.mark.pg
def test_postgres_import_killed_at_random_moments(pg_server: object, tmp_path: Path,
                                                  prepared: tuple[Path, Path, str, str, dict[str, float]]) -> None:
    import psycopg

    _db, path, _before, _afters, _times = prepared
    server = pg_server
    admin = server.conninfo("postgres")  # type: ignore[attr-defined]
    base = f"kill_base_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{base}"')
        conn.execute(f'CREATE DATABASE "{base}" TEMPLATE kundreg_template')
    base_url = server.url_for(base)  # type: ignore[attr-defined]
    engine = make_engine(base_url)
    fill_demo(engine, REGISTER, seed=5)
    engine.dispose()
    before = snapshot(base_url)
    names: list[str] = []

    def fresh(i: int) -> str:
        name = f"kill_{os.getpid()}_{i}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base}"')
        names.append(name)
        return str(server.url_for(name))  # type: ignore[attr-defined]

    try:
        ref_url = fresh(0)
        child = engine_child(ref_url, path)
        times = {}
        for marker in ("build", "commit", "committed", "closed"):
            at = child.wait_for(marker, 120)
            assert at is not None
            times[marker] = at - child.started
        assert child.proc.wait(timeout=60) == 0
        after = snapshot(ref_url)
        assert after != before
        rng = random.Random(7)
        outcomes = []
        started = time.monotonic()
        for i in range(1, 7):
            if time.monotonic() - started > 40:
                break
            url = fresh(i)
            child = engine_child(url, path)
            window = ("build", "commit")[i % 2]
            marker_at = child.wait_for(window, 60)
            assert marker_at is not None
            span = (times["commit"] - times["build"]) if window == "build" else (times["closed"] - times["commit"])
            time.sleep(max(0.0, rng.uniform(0, span * 1.1) - (time.monotonic() - marker_at)))
            child.kill()
            # The server rolls back the dead client's transaction; wait until its session is gone.
            deadline = time.monotonic() + 10
            name = names[-1]
            while time.monotonic() < deadline:
                with psycopg.connect(admin, autocommit=True) as conn:
                    busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                        "AND state <> 'idle'", (name,)).fetchone()
                if not busy or not busy[0]:
                    break
                time.sleep(0.1)
            state = snapshot(url)
            outcomes.append((window, "before" if state == before else "after" if state == after else "OTHER"))
            assert state in (before, after), outcomes
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in [*names, base]:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
