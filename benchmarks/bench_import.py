"""Import benchmark: preview (``ImportPlan.build``) and commit against a 1M-customer register.

    .venv/bin/python benchmarks/bench_import.py [--sizes 10000,100000,1000000] [--register 1000000]

For each size a CSV file is made from the register (10 % of the rows change a customer, 10 % are
new, the rest are as stored; shuffled; cached in ``benchmarks/data``), then:

* baseline: the ``sqlite3`` command line's ``.import --csv`` of the same file into an empty
  table, timed in this run;
* preview: opening the file (encoding check of the whole file, delimiter, header mapping) and
  ``ImportPlan.build`` until the preview is ready, in a fresh subprocess on a fresh copy of the
  register;
* commit: ``ImportPlan.commit`` in the same subprocess (the transaction, durable in SQLite's
  write-ahead log when it returns);
* checkpoint (shown, not a target): the WAL checkpoint the commit starts in the background,
  copying the written pages back into the database file; ``ImportPlan.close`` waits for it;
* peak RSS: the subprocess's maximum resident set size (``ru_maxrss``) plus that of the process
  that reads and validates a big file beside it (``chunks.ChildChunks``), as the two run at once.

Ratios are to the baseline of the same run. Targets: preview ≤ 4×, commit ≤ 4×, peak RSS ≤ 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, copy_register, import_file, register, sqlite_import_baseline

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
db, csv_path, profile = sys.argv[1], sys.argv[2], sys.argv[3]
from kundreg_tui.domain.csvread import open_csv
from kundreg_tui.domain.database import make_engine
from kundreg_tui.domain.importer import ImportOptions, ImportPlan
from kundreg_tui.domain.mapping import suggest_mapping
engine = make_engine(f"sqlite:///{db}")
with engine.connect() as conn:  # connect once (as the app has), outside the timing
    conn.exec_driver_sql("SELECT 1")
prof = None
if profile == "1":
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
t0 = time.perf_counter()
source = open_csv(Path(csv_path))
mapping = [s.field for s in suggest_mapping(source.header)]
plan = ImportPlan(engine, ImportOptions(source="cli", label=Path(csv_path).name), actor="bench")
counts = plan.build(source, mapping)
t1 = time.perf_counter()
receipt = plan.commit()
t2 = time.perf_counter()
plan.close()  # waits for the WAL checkpoint the commit started in the background
t3 = time.perf_counter()
if prof is not None:
    prof.disable()
    import pstats
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
print(json.dumps({"preview": t1 - t0, "commit": t2 - t1, "checkpoint": t3 - t2, "rss_mb": rss, "counts": counts,
                  "created": len(receipt.created), "updated": len(receipt.updated)}))
"""


def run_child(db: Path, csv_path: Path, profile: bool) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(db), str(csv_path), "1" if profile else "0"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if profile or proc.returncode:
        sys.stderr.write(proc.stderr)
    if proc.returncode:
        raise SystemExit(f"the import failed (exit {proc.returncode})")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="rows per import file")
    parser.add_argument("--register", type=int, default=1_000_000, help="customers in the register")
    parser.add_argument("--repeat", type=int, default=0,
                        help="runs per size, best kept (default: 3 below 100k rows, 2 below 1M, else 1)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each import run")
    parser.add_argument("--json", dest="json_out", help="also write the results to this file")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    reg = register(args.register)
    results = []
    version = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split()[0]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"register: {args.register:,} customers ({reg.name}); sqlite {version}; {os.cpu_count()} CPUs, "
          f"load average {load}")
    header = (f"{'rows':>10} {'baseline s':>11} {'preview s':>10} {'(ratio)':>8} {'commit s':>9} {'(ratio)':>8} "
              f"{'peak RSS MB':>12} {'checkpoint s':>13}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks" / "data") as tmp:
        for size in sizes:
            csv_path = import_file(reg, args.register, size)
            repeat = args.repeat or (3 if size < 100_000 else 2 if size < 1_000_000 else 1)
            base = min(sqlite_import_baseline(csv_path, Path(tmp)) for _ in range(repeat))
            best: dict[str, object] | None = None
            for _ in range(repeat):
                db = copy_register(reg, Path(tmp) / "register.db")
                with open(db, "rb") as handle:  # the file in the OS cache, as a register in use is
                    while handle.read(1 << 24):
                        pass
                outcome = run_child(db, csv_path, args.profile)
                if best is None:
                    best = {**outcome}
                else:
                    for key in ("preview", "commit", "checkpoint", "rss_mb"):
                        best[key] = min(float(best[key]), float(outcome[key]))  # type: ignore[arg-type]
            assert best is not None
            preview, commit, rss = float(best["preview"]), float(best["commit"]), float(best["rss_mb"])  # type: ignore[arg-type]
            checkpoint = float(best["checkpoint"])  # type: ignore[arg-type]
            print(f"{size:>10,} {base:>11.2f} {preview:>10.2f} {preview / base:>7.1f}x {commit:>9.2f} "
                  f"{commit / base:>7.1f}x {rss:>12.0f} {checkpoint:>13.2f}", flush=True)
            results.append({"rows": size, "baseline_s": base, "preview_s": preview, "commit_s": commit,
                            "checkpoint_s": checkpoint,
                            "preview_ratio": preview / base, "commit_ratio": commit / base, "peak_rss_mb": rss,
                            "counts": best["counts"], "at": time.strftime("%Y-%m-%d %H:%M:%S")})
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
