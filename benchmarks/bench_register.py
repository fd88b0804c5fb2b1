"""Benchmark: the Kundregister screen on registers of 10k, 100k and 1M customers.

    .venv/bin/python benchmarks/bench_register.py [--sizes 10000,100000,1000000] [--repeat 3]

For each size a register is made once with ``kundreg demo`` (cached in benchmarks/data/), then a
fresh process runs the real app headless (Textual's ``run_test``, 120×40) and measures:

- start: from spawning the process to the first filled table (all visible rows drawn from data);
- page-down: one ``pagedown`` until every visible row is drawn from data;
- search: one keystroke in the search field until the filtered table is drawn;
- sort: one sort change (``2``: Kundnamn) until the table is drawn in the new order;
- peak RSS of that process.

Each figure is printed with its ratio to the same figure at the smallest size, measured in the same
run (the targets: at 1M first table ≤ 1.5 s, each keystroke ≤ 100 ms, peak RSS ≤ 250 MB, and every
figure within 2× of the 10k one). Medians over ``--repeat`` processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"

CHILD = r"""
import asyncio, json, resource, sys, time
T0 = float(sys.argv[2])
from kundreg_tui.domain.database import open_engine
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.app import KundregApp
from kundreg_tui.widgets.pagedtable import PagedTable

def visible_loaded(table):
    if table.row_count == 0:
        return False
    top = int(table.scroll_offset.y)
    height = max(1, table.scrollable_content_region.height - 1)
    last = min(table.row_count, top + height)
    return all(table.row_at(i) is not None for i in range(top, last))

async def wait(pilot, cond, timeout=30.0):
    start = time.perf_counter()
    while not cond():
        await asyncio.sleep(0.002)
        if time.perf_counter() - start > timeout:
            raise TimeoutError
    return time.perf_counter() - start

async def main():
    app = KundregApp(RegisterService(open_engine(sys.argv[1])))
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        table = None
        def ready():
            nonlocal table
            try:
                table = app.screen.query_one("#customers", PagedTable)
            except Exception:
                return False
            return visible_loaded(table) and not table.is_loading
        await wait(pilot, ready)
        out["start"] = time.time() - T0
        await pilot.pause(0.2)
        # page-down
        t = time.perf_counter()
        first = table.row_key_at(int(table.scroll_offset.y))
        await pilot.press("pagedown")
        await wait(pilot, lambda: visible_loaded(table) and table.row_key_at(int(table.scroll_offset.y)) != first)
        out["page_down"] = time.perf_counter() - t
        await pilot.pause(0.2)
        # one search keystroke (focus the field first; the keystroke is what is measured)
        await pilot.press("slash")
        await pilot.pause(0.1)
        before = table.row_key_at(0)
        t = time.perf_counter()
        await pilot.press("k")
        await wait(pilot, lambda: app.screen.query_text == "k" and not table.is_loading and visible_loaded(table))
        out["search"] = time.perf_counter() - t
        await wait(pilot, lambda: not app.screen._count_pending)
        out["search_count"] = time.perf_counter() - t
        out["search_rows"] = table.row_count
        await pilot.press("escape")
        # clear the search again
        search = app.screen.query_one("#search")
        search.value = ""
        await wait(pilot, lambda: app.screen.query_text == "" and not table.is_loading
                   and not app.screen._count_pending and visible_loaded(table))
        table.focus()
        await pilot.pause(0.2)
        # sort change
        t = time.perf_counter()
        first = table.row_key_at(0)
        await pilot.press("2")
        await wait(pilot, lambda: not table.is_loading and visible_loaded(table) and table.row_key_at(0) != first)
        out["sort"] = time.perf_counter() - t
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))

asyncio.run(main())
"""


def register(size: int) -> Path:
    """The shared demo register of ``size`` customers (made once by ``kundreg demo``)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import register as shared_register

    return Path(shared_register(size))


def run_once(db: Path) -> dict[str, float]:
    env = {**os.environ, "TERM": "xterm-256color"}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(db), repr(t0)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(proc.stdout + proc.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        db = register(size)
        runs = [run_once(db) for _ in range(args.repeat)]
        results[size] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    base = results[sizes[0]]
    keys = [("start", "s"), ("page_down", "ms"), ("search", "ms"), ("search_count", "ms"), ("sort", "ms"),
            ("rss_mb", "MB")]
    print(f"\nKundregister, medians of {args.repeat} runs; ratio = figure / figure at {sizes[0]:,}\n")
    print(f"| customers | {' | '.join(f'{k} ({u})' for k, u in keys)} |")
    print("|---:|" + "---:|" * len(keys))
    for size in sizes:
        cells = []
        for key, unit in keys:
            value = results[size][key]
            shown = value * 1000 if unit == "ms" else value
            cells.append(f"{shown:.0f} ({value / base[key]:.2f}×)" if unit == "ms" else
                         f"{shown:.2f} ({value / base[key]:.2f}×)")
        print(f"| {size:,} | {' | '.join(cells)} |")
    matched = ", ".join(f"{int(results[s]['search_rows']):,}" for s in sizes)
    print(f"\n(search 'k' matched {matched} rows)")


if __name__ == "__main__":
    main()
