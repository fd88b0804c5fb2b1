"""Shared set-up for the benchmarks: a cached demo register and import files made from it.

* :func:`register` builds a SQLite register of ``n`` demo customers once with ``fill_demo``
  (cached as ``benchmarks/data/demo_<n>.db``; the folder is git-ignored) and checks a cached
  file before using it.
* :func:`import_file` writes a CSV file of ``rows`` rows against that register, as another
  system would export it (Swedish headers, comma-separated, UTF-8): 10 % of the rows change a customer
  (phone, address, city and postal code, name or e-mail), 10 % are new customers (half with a
  typed number, half without), the rest are customers exactly as stored. Rows come in a
  shuffled order, so that lookups get no help from the file being sorted like the register.
* :func:`sqlite_import_baseline` times the ``sqlite3`` command line's ``.import --csv`` of the
  same file into an empty table (the yardstick the import is measured against).
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
HEADERS = ["Kundnummer", "Kundtyp", "Kundnamn", "Förnamn", "Efternamn", "Organisationsnummer",
           "Momsregistreringsnummer", "E-post", "Telefon", "Adress", "Postnummer", "Ort", "Land",
           "Er referens", "Anteckningar"]
FIELDS = ["number", "kind", "name", "first_name", "last_name", "org_number", "vat_number", "email",
          "phone", "address", "postal_code", "city", "country", "reference", "notes"]
KIND_WORDS = {"company": "Företag", "person": "Privatperson"}
FILE_VERSION = 2  # bump when the generated files change


def _valid_register(path: Path, count: int) -> bool:
    if not path.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            n = con.execute("SELECT count(*) FROM customer").fetchone()[0]
            batches = con.execute("SELECT count(*) FROM batch").fetchone()[0]
            ok = con.execute("PRAGMA quick_check").fetchone()[0] == "ok" if count <= 100_000 else True
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return bool(n == count and batches == 0 and ok)


def register(count: int, log: bool = True) -> Path:
    """A SQLite register of ``count`` demo customers (built once, then cached)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"demo_{count}.db"
    if _valid_register(path, count):
        return path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    from kundreg_tui.domain.database import make_engine, migrate
    from kundreg_tui.domain.demo import fill_demo

    started = time.monotonic()
    if log:
        print(f"building a register of {count:,} customers in {path} (once) …", flush=True)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    fill_demo(engine, count, seed=1)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    if log:
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    return path


def copy_register(source: Path, target: Path) -> Path:
    """A private copy of a cached register (an import writes to it), on disk before it is used:
    otherwise the copy's hundreds of MB still being written out slow the measured writes (a
    10k-row commit was seen to take 0.2 s or 1 s depending on it)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    os.sync()
    return target


def import_file(register_path: Path, register_size: int, rows: int, seed: int = 7) -> Path:
    """A CSV file of ``rows`` rows: 80 % unchanged, 10 % changed, 10 % new (cached)."""
    path = DATA / f"import_{rows}_vs_{register_size}_v{FILE_VERSION}.csv"
    if path.exists():
        return path
    rng = random.Random(seed)
    n_new = rows // 10
    n_changed = rows // 10
    n_existing = rows - n_new
    if n_existing > register_size:
        raise SystemExit(f"a file of {rows:,} rows needs a register of {n_existing:,} or more")
    ids = sorted(rng.sample(range(1, register_size + 1), n_existing))
    changed = set(rng.sample(range(n_existing), n_changed))
    con = sqlite3.connect(f"file:{register_path}?mode=ro", uri=True)
    out_rows: list[list[str]] = []
    cols = ", ".join(FIELDS)
    wanted = set(ids)
    position = 0
    streets = ["Storgatan", "Kungsgatan", "Drottninggatan", "Åsvägen", "Östra Långgatan", "Ringvägen"]
    cities = [("Göteborg", "411 03"), ("Malmö", "211 20"), ("Umeå", "903 25"), ("Luleå", "972 31"),
              ("Västerås", "722 15"), ("Örebro", "702 10")]
    for row in con.execute(f"SELECT id, {cols} FROM customer ORDER BY id"):
        if row[0] not in wanted:
            continue
        values = dict(zip(FIELDS, row[1:], strict=True))
        if position in changed:
            what = rng.randrange(5)
            if what == 0:
                values["phone"] = f"070-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
            elif what == 1:
                values["address"] = f"{rng.choice(streets)} {rng.randint(1, 99)}"
            elif what == 2:
                values["city"], values["postal_code"] = rng.choice(cities)
            elif what == 3:
                values["name"] = values["name"] + " Ny"
            else:
                values["email"] = f"bytt.{values['number']}@nyadress.se"
        position += 1
        out_rows.append(_csv_values(values))
    con.close()
    first = ["Anna", "Björn", "Cecilia", "Dragan", "Elin", "Åsa", "Örjan", "Märta"]
    last = ["Andersson", "Berg", "Çelik", "Dahl", "Ek", "Ågren", "Öberg", "Lindqvist"]
    for i in range(n_new):
        person = i % 2 == 0
        fn, ln = rng.choice(first), rng.choice(last)
        values = {f: "" for f in FIELDS}
        values.update({
            "number": str(5_000_000 + i) if i % 4 < 2 else "",
            "kind": "person" if person else "company",
            "name": f"{fn} {ln}" if person else f"{ln} Nya Bolag AB",
            "first_name": fn if person else "",
            "last_name": ln if person else "",
            "email": f"ny.kund.{i}@nykund.se",
            "phone": f"073-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            "address": f"{rng.choice(streets)} {rng.randint(1, 99)}",
            "country": "SE",
        })
        values["city"], values["postal_code"] = rng.choice(cities)
        out_rows.append(_csv_values(values))
    rng.shuffle(out_rows)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADERS)
        writer.writerows(out_rows)
    tmp.replace(path)
    return path


def _csv_values(values: dict[str, str]) -> list[str]:
    out = [values[f] for f in FIELDS]
    out[1] = KIND_WORDS.get(values["kind"], values["kind"])
    return out


def sqlite_import_baseline(csv_path: Path, workdir: Path | None = None) -> float:
    """Seconds for ``sqlite3 DB ".import --csv FILE t"`` into an empty table of the file's columns."""
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        raise SystemExit("the sqlite3 command line is needed for the baseline (apt-get install sqlite3)")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "baseline.db"
        columns = ", ".join(f'"c{i}" TEXT' for i in range(len(HEADERS)))
        subprocess.run([sqlite, str(db), f"CREATE TABLE t ({columns});"], check=True)
        started = time.perf_counter()
        subprocess.run([sqlite, str(db), f".import --csv --skip 1 '{csv_path}' t"], check=True)
        elapsed = time.perf_counter() - started
        con = sqlite3.connect(db)
        count = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
    expected = sum(1 for _ in open(csv_path, encoding="utf-8")) - 1
    if count != expected:
        raise SystemExit(f"baseline imported {count} rows, expected {expected}")
    return elapsed
