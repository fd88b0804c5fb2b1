"""Load: several operators at once, as real processes, for a bounded time.

WRITERS processes create and update customers through ``RegisterService`` while READERS processes
count, page and search, all against one SQLite file / one PostgreSQL database, for SECONDS. No
operation may fail (no "database is locked", no OperationalError, no fault of any kind), and
afterwards the register must hold exactly what the writers say they wrote.

The children are forked from the test process (real processes, with the modules already loaded,
so that they start at once); none of the test's connections crosses the fork.

The numbers (operations per second held, p50/p95/max wait per operation, errors) are printed
(``pytest -s``) and written to ``<pytest tmp dir>/kundreg-load-<db>.json``.
``KUNDREG_LOAD_SECONDS`` changes the duration (default 6).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from kundreg_tui.domain.database import BUSY_TIMEOUT_MS
from kundreg_tui.domain.register import RegisterService

pytestmark = [pytest.mark.pg, pytest.mark.slow]

WRITERS = 4
READERS = 2
SECONDS = float(os.environ.get("KUNDREG_LOAD_SECONDS", "6"))
START_TIMEOUT = 30.0  # all children connected

def work(url: str, role: str, index: int, seconds: float, go: Any, pipe: Any) -> None:
    """One operator, in a process of its own (forked: the modules are loaded already)."""
    import random

    from kundreg_tui.domain.database import make_engine

    engine = make_engine(url)
    svc = RegisterService(engine, actor=f"{role}{index}")
    svc.count()  # connected
    pipe.send("ready")
    if not go.wait(START_TIMEOUT):
        pipe.send(json.dumps({"role": role, "index": index, "errors": ["no go"]}))
        return
    rnd = random.Random(index)
    cities = ["Umeå", "Åre", "Örebro", "Malmö", "Luleå", "Göteborg"]
    ops = {"create": 0, "update": 0, "read": 0}
    waits: list[float] = []
    errors: list[str] = []
    mine: list[tuple[int, int]] = []  # (id, version) of the customers this writer created
    numbers: list[str] = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        t0 = time.perf_counter()
        try:
            if role == "writer":
                if mine and rnd.random() < 0.4:
                    k = rnd.randrange(len(mine))
                    cid, version = mine[k]
                    rec = svc.get(cid)
                    assert rec is not None
                    new = svc.update(cid, {**rec.values(), "city": rnd.choice(cities),
                                           "notes": f"ändring {n}"}, version)
                    mine[k] = (cid, new.version)
                    ops["update"] += 1
                else:
                    rec = svc.create({"name": f"Lastkund {index}-{n} AB", "email": f"w{index}n{n}@exempel.se",
                                      "city": rnd.choice(cities), "phone": "070-123 45 67"})
                    mine.append((rec.id, rec.version))
                    numbers.append(rec.number)
                    ops["create"] += 1
            else:
                total = svc.count()
                svc.page(offset=rnd.randrange(max(total, 1)), limit=50)
                svc.count(rnd.choice(["lastkund", "umeå", "w1n", "ore"]))
                ops["read"] += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        waits.append(time.perf_counter() - t0)
    engine.dispose()
    pipe.send(json.dumps({"role": role, "index": index, "ops": ops, "waits": waits, "errors": errors,
                          "numbers": numbers, "updates": {str(c): v for c, v in mine}}))


class Child:
    def __init__(self, url: str, role: str, index: int, go: Any) -> None:
        ctx = mp.get_context("fork")
        self.role = role
        self.pipe, child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=work, args=(url, role, index, SECONDS, go, child_end), daemon=True)
        self.proc.start()
        child_end.close()

    def receive(self, deadline: float) -> str:
        if not self.pipe.poll(max(deadline - time.monotonic(), 0.1)):
            pytest.fail(f"{self.role}: no answer in time (exit code {self.proc.exitcode})")
        try:
            return str(self.pipe.recv())
        except EOFError:
            pytest.fail(f"{self.role} ended early (exit code {self.proc.exitcode})")

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        self.pipe.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def test_many_operators_for_a_while(service: RegisterService, db_url: str, children: list[Child],
                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    backend = service.engine.dialect.name
    for i in range(200):  # something to read from the start
        service.create({"name": f"Förkund {i}", "city": "Umeå"})
    # No connection of ours may cross the fork: each child opens its own engine.
    service.engine.dispose()
    go = mp.get_context("fork").Event()
    for i in range(WRITERS):
        children.append(Child(db_url, "writer", i, go))
    for i in range(READERS):
        children.append(Child(db_url, "reader", i, go))
    deadline = time.monotonic() + START_TIMEOUT
    for child in children:
        assert child.receive(deadline) == "ready"
    started = time.monotonic()
    go.set()
    deadline = time.monotonic() + SECONDS + 60
    results = [json.loads(child.receive(deadline)) for child in children]
    elapsed = time.monotonic() - started
    for child in children:
        child.proc.join(30)
        assert child.proc.exitcode == 0, (child.role, child.proc.exitcode)

    writes = [w for r in results if r["role"] == "writer" for w in r["waits"]]
    reads = [w for r in results if r["role"] == "reader" for w in r["waits"]]
    errors = [e for r in results for e in r["errors"]]
    created = sum(r["ops"]["create"] for r in results)
    updated = sum(r["ops"]["update"] for r in results)
    read_ops = sum(r["ops"]["read"] for r in results)
    numbers = [n for r in results for n in r["numbers"]]
    summary = {
        "backend": backend, "writers": WRITERS, "readers": READERS, "seconds": SECONDS,
        "elapsed_s": round(elapsed, 2),
        "writes": created + updated, "creates": created, "updates": updated, "reads": read_ops,
        "write_ops_per_s": round((created + updated) / SECONDS, 1),
        "read_ops_per_s": round(read_ops / SECONDS, 1),
        "write_wait_ms": {"p50": round(percentile(writes, 50) * 1000, 1),
                          "p95": round(percentile(writes, 95) * 1000, 1),
                          "max": round(max(writes, default=0) * 1000, 1)},
        "read_wait_ms": {"p50": round(percentile(reads, 50) * 1000, 1),
                         "p95": round(percentile(reads, 95) * 1000, 1),
                         "max": round(max(reads, default=0) * 1000, 1)},
        "errors": len(errors), "error_samples": errors[:5],
    }
    out = tmp_path_factory.getbasetemp() / f"kundreg-load-{backend}.json"
    out.write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    print(f"\nLOAD {backend}: {WRITERS} writers + {READERS} readers for {SECONDS:g} s: "
          f"{summary['write_ops_per_s']} writes/s (p95 wait {summary['write_wait_ms']['p95']} ms, "
          f"max {summary['write_wait_ms']['max']} ms), {summary['read_ops_per_s']} reads/s "
          f"(p95 {summary['read_wait_ms']['p95']} ms), errors {len(errors)} -> {out}")

    assert errors == [], errors  # no "database is locked", no OperationalError, no fault
    assert created > 0 and updated > 0 and read_ops > 0, summary
    # Every writer waited its turn, within the busy timeout.
    assert summary["write_wait_ms"]["max"] < BUSY_TIMEOUT_MS, summary
    # What the writers say they wrote is what the register holds.
    assert service.count() == 200 + created
    assert len(set(numbers)) == len(numbers) == created
    assert sorted(map(int, numbers)) == list(range(1201, 1201 + created))
    with service.engine.connect() as conn:
        logged: dict[str, int] = dict(conn.execute(sa.text(
            "SELECT action, count(*) FROM change WHERE actor LIKE :who GROUP BY action"), {"who": "writer%"}).all())
    assert logged == {"create": created, "update": updated}
    for r in results:
        for cid, version in r["updates"].items():
            rec = service.get(int(cid))
            assert rec is not None and rec.version == version
