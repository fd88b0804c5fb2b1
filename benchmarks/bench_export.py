"""Export benchmark: ``kundreg export`` of every list type against the ``sqlite3`` command line.

    .venv/bin/python benchmarks/bench_export.py [--sizes 10000,100000,1000000] [--formats csv,xlsx]
                                                [--repeat N]

For each size a demo register is built once with ``fill_demo`` (``kundreg demo``; cached as
``benchmarks/data/demo_<n>.db``, git-ignored). Then, in the same run and interleaved:

* baseline: ``sqlite3 DB -csv "SELECT <the 15 fields> FROM customer" > file`` (the command
  line's ``.mode csv``);
* each format: the export engine of ``kundreg export`` and the screen
  (``export_to_path``: count, streamed read in the register's order, writing, fsync, rename) in
  a child process, timed from the moment the register is open. The child's start-up (Python,
  imports, opening the register) is shown apart, as ``start s``: about a second, the same for
  every size, and what dominates at 10 000 customers. ``--cli`` times the whole
  ``kundreg --db DB export --format F --output FILE --force`` command instead.

Each measurement runs in its own child process; peak RSS (``ru_maxrss`` from ``os.wait4``) is
that child's, start-up included. The best of ``--repeat`` runs is kept (default 3 below a
million customers, 1 at a million). Ratios are to the baseline of the same run, by wall time and
by CPU time (user + system; the steadier one on a shared machine).

Targets: ≤ 2× the baseline, peak RSS ≤ 200 MB at 1M.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import DATA, FIELDS, ROOT, register

FORMATS = ("csv", "excel-csv", "xlsx", "text")
RATIO_TARGET = 2.0
RSS_TARGET_MB = 200.0


CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
db, fmt, out = sys.argv[1:4]
from pathlib import Path
from kundreg_tui.domain.database import open_engine
from kundreg_tui.domain.export import ExportKind, ExportRequest, export_to_path
from kundreg_tui.domain.register import RegisterService
service = RegisterService(open_engine(db))
with service.engine.connect() as conn:  # the register is open, as in the app
    conn.exec_driver_sql("SELECT 1")
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return u.ru_utime + u.ru_stime
ready, cpu0 = time.perf_counter(), cpu()
result = export_to_path(service, ExportRequest(kind=ExportKind(fmt)), Path(out), overwrite=True)
print(json.dumps({"count": result.count, "wall": time.perf_counter() - ready, "cpu": cpu() - cpu0,
                  "startup": ready - t0}))
"""


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    out_mb: float
    stdout: str
    startup: float = 0.0


def run_child(args: list[str], out: Path | None) -> Run:
    """Run ``args`` (stdout to ``out`` when given); wall, CPU and peak RSS of that child alone."""
    handle = open(out, "wb") if out is not None else None
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=handle or subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        text = b""
        if handle is None:
            assert proc.stdout is not None
            text = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else b""
    finally:
        if handle is not None:
            handle.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, 0.0, text.decode())


def baseline(db: Path, out: Path) -> Run:
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        raise SystemExit("the sqlite3 command line is needed for the baseline (apt-get install sqlite3)")
    run = run_child([sqlite, str(db), "-csv", f"SELECT {', '.join(FIELDS)} FROM customer"], out)
    run.out_mb = out.stat().st_size / 1e6
    return run


def export(db: Path, fmt: str, out: Path, expected: int, *, cli: bool) -> Run:
    if cli:
        run = run_child([sys.executable, "-m", "kundreg_tui", "--db", str(db), "export", "--format", fmt,
                         "--output", str(out), "--force", "--json"], None)
        count = json.loads(run.stdout)["count"]
    else:
        run = run_child([sys.executable, "-c", CHILD, str(db), fmt, str(out)], None)
        report = json.loads(run.stdout)
        count = report["count"]
        run.wall, run.cpu, run.startup = report["wall"], report["cpu"], report["startup"]
    if count != expected:
        raise SystemExit(f"{fmt}: exported {count} customers, expected {expected}")
    run.out_mb = out.stat().st_size / 1e6
    return run


def best(runs: list[Run]) -> Run:
    return Run(min(r.wall for r in runs), min(r.cpu for r in runs), max(r.rss_mb for r in runs),
               runs[-1].out_mb, "", min(r.startup for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per measurement (default: 3 below 1M customers, 1 at 1M and more)")
    parser.add_argument("--cli", action="store_true",
                        help="time the whole `kundreg export` command (start-up included)")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    formats = [f for f in args.formats.split(",") if f]
    for f in formats:
        if f not in FORMATS:
            raise SystemExit(f"unknown format {f}: choose from {', '.join(FORMATS)}")
    work = DATA / "export-out"
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, object]] = []
    print(f"{'customers':>10} {'format':<10} {'wall s':>8} {'cpu s':>8} {'base wall':>9} {'base cpu':>9} "
          f"{'× wall':>7} {'× cpu':>7} {'RSS MB':>7} {'file MB':>8} {'start s':>8}  target")
    for size in sizes:
        db = register(size)
        repeat = args.repeat or (3 if size < 1_000_000 else 1)
        base_runs: list[Run] = []
        runs: dict[str, list[Run]] = {f: [] for f in formats}
        for _ in range(repeat):  # interleaved, so that a busy moment hits all of them alike
            base_out = work / "baseline.csv"
            base_runs.append(baseline(db, base_out))
            base_out.unlink()
            for fmt in formats:
                out = work / f"export.{fmt}"
                runs[fmt].append(export(db, fmt, out, size, cli=args.cli))
                out.unlink()
        base = best(base_runs)
        print(f"{size:>10,} {'sqlite3':<10} {base.wall:>8.2f} {base.cpu:>8.2f} {'':>9} {'':>9} {'':>7} {'':>7} "
              f"{base.rss_mb:>7.0f} {base.out_mb:>8.1f}")
        for fmt in formats:
            r = best(runs[fmt])
            ratio_wall, ratio_cpu = r.wall / base.wall, r.cpu / base.cpu
            ok = min(ratio_wall, ratio_cpu) <= RATIO_TARGET and (size < 1_000_000 or r.rss_mb <= RSS_TARGET_MB)
            print(f"{'':>10} {fmt:<10} {r.wall:>8.2f} {r.cpu:>8.2f} {base.wall:>9.2f} {base.cpu:>9.2f} "
                  f"{ratio_wall:>7.2f} {ratio_cpu:>7.2f} {r.rss_mb:>7.0f} {r.out_mb:>8.1f} "
                  f"{'' if args.cli else f'{r.startup:.2f}':>8}  {'ok' if ok else 'MISSED'}", flush=True)
            results.append({"customers": size, "format": fmt, "export": asdict(r), "baseline": asdict(base),
                            "ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu, "repeat": repeat,
                            "whole_command": args.cli})
    shutil.rmtree(work, ignore_errors=True)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"export-{stamp}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\ntargets: ≤ {RATIO_TARGET:g}× the sqlite3 baseline, peak RSS ≤ {RSS_TARGET_MB:g} MB at 1M; "
          f"results in benchmarks/results/export-{stamp}.json")


if __name__ == "__main__":
    main()
