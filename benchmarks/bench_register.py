"""Benchmark: the Kundregister screen on registers of 10k, 100k and 1M customers.

    .venv/bin/python benchmarks/bench_register.py [--sizes 10000,100000,1000000] [--repeat 3]

For each size a register is made once with ``kundreg demo`` (cached in benchmarks/data/), then a
fresh process runs the real app headless (Textual's ``run_test``, 120×40) and measures:

- start: from spawning the process to the first frame holding a filled table (every visible row
  drawn from data);
- page-down: one ``pagedown`` until the frame showing the next page;
- search: one keystroke in the search field until the frame showing the filtered table (its
  first page; ``search_count`` until the exact count is in the status line as well);
- sort: one sort change (``2``: Kundnamn) until the frame showing the table in the new order;
- peak RSS of that process.

Each figure is printed with its ratio to the same figure at the smallest size, measured in the same
run (the targets: at 1M first table ≤ 1.5 s, each keystroke ≤ 100 ms, peak RSS ≤ 250 MB, and every
figure within 2× of the 10k one). Medians over ``--repeat`` processes.

Keys are put straight into the driver's queue, as a terminal's bytes would be, and timed until the
first frame the app composes once the table holds the result (the app's ``_display``; headless, the
frame is composed but not written). Pilot's ``press`` is not used for timed keys: it also waits
until the process looks idle, so it would add the count that runs after the rows are shown.
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
from textual import events
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

async def main():
    app = KundregApp(RegisterService(open_engine(sys.argv[1])))
    # Every frame the app composes for the terminal (headless: composed, not written).
    frames = []
    display = app._display
    def recording_display(screen, renderable):
        display(screen, renderable)
        if renderable is not None:
            frames.append(time.perf_counter())
    app._display = recording_display

    async def painted(cond, timeout=60.0):
        # The time of the first frame composed once ``cond`` holds: the moment the user sees it.
        start = time.perf_counter()
        while not cond():
            await asyncio.sleep(0.001)
            if time.perf_counter() - start > timeout:
                raise TimeoutError
        seen = time.perf_counter()
        while not frames or frames[-1] < seen:
            await asyncio.sleep(0.001)
            if time.perf_counter() - seen > timeout:
                raise TimeoutError
        return next(f for f in frames if f >= seen)

    def key(name, char=None):
        # Straight to the driver's queue, as a terminal's key arrives. (Pilot.press also waits
        # until the process looks idle, so it would time the count running after the rows.)
        started = time.perf_counter()
        app._driver.send_message(events.Key(name, char))
        return started

    async with app.run_test(size=(120, 40)) as pilot:
        table = None
        def ready():
            nonlocal table
            try:
                table = app.screen.query_one("#customers", PagedTable)
            except Exception:
                return False
            return visible_loaded(table) and not table.is_loading
        shown = await painted(ready)
        out["start"] = time.time() - T0 - (time.perf_counter() - shown)
        await pilot.pause(0.5)
        # page-down
        first = table.row_key_at(int(table.scroll_offset.y))
        t = key("pagedown")
        out["page_down"] = await painted(
            lambda: visible_loaded(table) and table.row_key_at(int(table.scroll_offset.y)) != first) - t
        await pilot.pause(0.5)
        # one search keystroke (focus the field first; the keystroke is what is measured)
        await pilot.press("slash")
        await pilot.pause(0.3)
        t = key("k", "k")
        out["search"] = await painted(
            lambda: app.screen.query_text == "k" and not table.is_loading and visible_loaded(table)) - t
        out["search_count"] = await painted(lambda: not app.screen._count_pending) - t
        out["search_rows"] = table.row_count
        await pilot.press("escape")
        # clear the search again
        search = app.screen.query_one("#search")
        search.value = ""
        await painted(lambda: app.screen.query_text == "" and not table.is_loading
                      and not app.screen._count_pending and visible_loaded(table))
        table.focus()
        await pilot.pause(0.5)
        # sort change
        first = table.row_key_at(0)
        t = key("2", "2")
        out["sort"] = await painted(
            lambda: not table.is_loading and visible_loaded(table) and table.row_key_at(0) != first) - t
        await pilot.pause(0.5)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))

out = {}
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
