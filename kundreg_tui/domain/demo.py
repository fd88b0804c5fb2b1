"""Realistic Swedish demo customers (faker ``sv_SE``), fast enough for a million.

Faker is slow per call, so it fills pools of names, streets and cities once; rows are then
combined from the pools with a seeded ``random.Random``: the same seed gives the same register.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kundreg_tui.domain.database import fill_tx
from kundreg_tui.domain.fields import FIELD_NAMES, KIND_COMPANY, KIND_PERSON
from kundreg_tui.domain.keys import derived_columns
from kundreg_tui.domain.models import customer_table, meta_table
from kundreg_tui.domain.register import FIRST_NUMBER, NEXT_NUMBER_KEY
from kundreg_tui.domain.text import fold, swedish_key

COLUMNS = [*FIELD_NAMES, "number_key", "name_key", "city_key", "email_key", "search_key",
           "version", "created_at", "updated_at"]


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


class DemoFactory:
    def __init__(self, seed: int = 1) -> None:
        from faker import Faker

        fake = Faker("sv_SE")
        fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.first = sorted({fake.first_name() for _ in range(1500)})
        self.last = sorted({fake.last_name() for _ in range(1500)})
        self.streets = sorted({fake.street_name() for _ in range(1500)})
        self.cities = sorted({fake.city() for _ in range(400)})
        self.company_words = sorted({fake.last_name() for _ in range(600)})
        self.suffixes = ["AB", "HB", "KB", "Handelsbolag", "& Söner AB", "Konsult AB", "Bygg AB",
                         "Ekonomi AB", "Design", "Service AB", "i Sverige AB", "Fastigheter AB"]
        self.domains = ["exempel.se", "example.com", "post.se", "mejl.se", "foretag.se", "test.nu"]

    def _org(self, person: bool) -> str:
        rng = self.rng
        if person:
            y = rng.randint(1940, 2004)
            body = f"{y % 100:02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
            return f"{y // 100}{body[:6]}-{body[6:]}{_luhn_digit(body)}"
        body = f"{rng.choice('25789')}{rng.randint(2, 9)}{rng.randint(0, 9_999_999):07d}"
        return f"{body[:6]}-{body[6:]}{_luhn_digit(body)}"

    def values(self, number: int) -> dict[str, str]:
        rng = self.rng
        person = rng.random() < 0.4
        first, last = rng.choice(self.first), rng.choice(self.last)
        if person:
            name = f"{first} {last}"
            email = f"{first}.{last}.{number}@{rng.choice(self.domains)}".lower()
        else:
            name = f"{rng.choice(self.company_words)} {rng.choice(self.suffixes)}"
            email = f"info.{number}@{rng.choice(self.domains)}"
        postal = f"{rng.randint(100, 989)} {rng.randint(0, 99):02d}"
        return {
            "number": str(number),
            "kind": KIND_PERSON if person else KIND_COMPANY,
            "name": name,
            "first_name": first if person else "",
            "last_name": last if person else "",
            "org_number": self._org(person) if rng.random() < 0.8 else "",
            "vat_number": "",
            "email": email.replace("å", "a").replace("ä", "a").replace("ö", "o").replace(" ", ""),
            "phone": f"07{rng.randint(0, 9)}-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            "address": f"{rng.choice(self.streets)} {rng.randint(1, 120)}",
            "postal_code": postal,
            "city": rng.choice(self.cities),
            "country": "SE",
            "reference": "" if person else f"{rng.choice(self.first)} {rng.choice(self.last)}",
            "notes": "",
        }


def demo_rows(count: int, start: int, seed: int = 1) -> Iterator[tuple[Any, ...]]:
    factory = DemoFactory(seed)
    ts = datetime.now(UTC)
    for i in range(count):
        values = factory.values(start + i)
        derived = derived_columns(values)
        yield (*values.values(), *derived.values(), 1, ts, ts)


def _pool_rows(factory: DemoFactory) -> dict[str, list[tuple[Any, ...]]]:
    """Pools of finished values with their keys, so that SQLite only has to pick and join."""

    def mail(v: str) -> str:
        return fold(v).replace(" ", "").replace("'", "")

    rng = random.Random(11)
    # Both keys are made character by character, so a name's key is its words' keys joined by a
    # space: each word is keyed once (the tests hold every stored key to derived_columns).
    words = {w for pool in (factory.first, factory.last, factory.company_words, factory.suffixes)
             for part in pool for w in part.split(" ")}
    sk = {w: swedish_key(w) for w in words}
    fo = {w: fold(w) for w in words}
    ml = {w: mail(w) for w in (*factory.first, *factory.last)}

    def keys(name: str) -> tuple[str, str]:
        parts = name.split(" ")
        return " ".join(sk[w] for w in parts), " ".join(fo[w] for w in parts)

    people = []
    for i in range(50_000):
        first, last = rng.choice(factory.first), rng.choice(factory.last)
        name = f"{first} {last}"
        people.append((i, name, *keys(name), f"{ml[first]}.{ml[last]}.", first, last))
    companies = []
    for i in range(20_000):
        name = f"{rng.choice(factory.company_words)} {rng.choice(factory.suffixes)}"
        ref = f"{rng.choice(factory.first)} {rng.choice(factory.last)}"
        companies.append((i, name, *keys(name), ref, "", ""))
    cities = [(i, v, swedish_key(v), "", "", "", "") for i, v in enumerate(factory.cities)]
    addresses = [(i, f"{rng.choice(factory.streets)} {rng.randint(1, 120)}", "", "", "", "", "")
                 for i in range(20_000)]
    phones = [(i, f"07{rng.randint(0, 9)}-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
               "", "", "", "", "") for i in range(20_000)]
    postals = [(i, f"{rng.randint(100, 989)} {rng.randint(0, 99):02d}", "", "", "", "", "") for i in range(10_000)]
    domains = [(i, v, "", "", "", "", "") for i, v in enumerate(factory.domains)]
    orgs = [(i, o, o.replace("-", ""), "", "", "", "") for i, o in enumerate(factory._org(False) for _ in range(5000))]
    pnrs = [(i, o, o.replace("-", ""), "", "", "", "") for i, o in enumerate(factory._org(True) for _ in range(5000))]
    return {"p_person": people, "p_company": companies, "p_city": cities, "p_addr": addresses,
            "p_phone": phones, "p_postal": postals, "p_domain": domains, "p_org": orgs, "p_pnr": pnrs}


# Row i of the demo is made inside SQLite from the pools: each pick is a hash of i. The names
# (with their e-mail) are picked once per row into a materialised step, so the e-mail is made once.
_SQLITE_DEMO = """
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :count - 1),
r AS (
  SELECT i, :start + i AS num, ((i * 2654435761 + :seed) % 1000003) % 10 < 4 AS person,
         ((i + :seed) * 2246822519 + 3266489917) % 4294967291 AS h1,
         ((i + :seed) * 3266489917 + 668265263) % 4294967279 AS h2,
         ((i + :seed) * 668265263 + 374761393) % 4294967231 AS h3
  FROM s
),
q AS MATERIALIZED (
  SELECT r.*, CASE WHEN person THEN n.d ELSE 'info.' END || num || '@' || d.a AS em,
         n.a AS na, n.b AS nb, n.c AS nc, n.d AS nd, n.e AS ne, n.f AS nf
  FROM r JOIN p_name n ON n.i = CASE WHEN person THEN r.h1 % :n_person ELSE 1000000 + r.h3 % :n_company END
  JOIN p_domain d ON d.i = (r.h1 / 3) % :n_domain
)
INSERT INTO {target} (number, kind, name, first_name, last_name, org_number, vat_number, email,
  phone, address, postal_code, city, country, reference, notes, number_key, name_key, city_key,
  email_key, search_key, version, created_at, updated_at)
SELECT CAST(num AS TEXT), CASE WHEN person THEN 'person' ELSE 'company' END, na,
  CASE WHEN person THEN ne ELSE '' END, CASE WHEN person THEN nf ELSE '' END,
  o.a, '', em, ph.a, ad.a, po.a, c.a, 'SE', CASE WHEN person THEN '' ELSE nd END, '',
  printf('%020d', num), nb, c.b, em,
  nc || char(31) || num || char(31) || em || char(31) || o.a || char(31) || o.b, 1, :ts, :ts
FROM q
JOIN p_city c ON c.i = (q.h2 / 13) % :n_city
JOIN p_addr ad ON ad.i = (q.h3 / 11) % :n_addr
JOIN p_phone ph ON ph.i = (q.h2 / 7) % :n_phone
JOIN p_postal po ON po.i = (q.h1 / 17) % :n_postal
JOIN p_o o ON o.i = CASE WHEN q.h3 % 5 = 0 THEN -1 WHEN person THEN 1000000 + (q.h2 / 19) % :n_pnr
                ELSE (q.h2 / 19) % :n_org END
"""

# Customers after the first chunk are made from that chunk (``demo_base``), which is cheaper
# than picking from the pools again: each takes the name, kind, org. number and e-mail pattern of
# one base row, the address of another and the phone of a third (all three picked by hash,
# differently for each chunk), with its own number in the e-mail, keys and search key. The base is
# cut into three narrow tables first, with the fixed parts of the e-mail and the search key apart
# (an e-mail is "<pattern><number>@<domain>"; a search key "<name>\x1f<number>\x1f<e-mail>\x1f<org>\x1f
# <org digits>"), so that a picked row is small and a copy only joins strings.
_SQLITE_DEMO_PARTS = [
    """CREATE TEMP TABLE demo_who AS SELECT kind, name, first_name, last_name, org_number, reference, name_key,
         substr(email, 1, instr(email, '@') - 1 - length(number)) AS em_pre, substr(email, instr(email, '@')) AS em_post,
         substr(search_key, 1, instr(search_key, char(31))) AS sk_pre,
         char(31) || org_number || char(31) || replace(org_number, '-', '') AS sk_post
       FROM demo_base ORDER BY rowid""",
    "CREATE TEMP TABLE demo_where AS SELECT address, postal_code, city, city_key FROM demo_base ORDER BY rowid",
    "CREATE TEMP TABLE demo_phone AS SELECT phone FROM demo_base ORDER BY rowid",
]
_SQLITE_DEMO_COPY = """
INSERT INTO customer (number, kind, name, first_name, last_name, org_number, vat_number, email,
  phone, address, postal_code, city, country, reference, notes, number_key, name_key, city_key,
  email_key, search_key, version, created_at, updated_at)
SELECT CAST(b.n AS TEXT), b.kind, b.name, b.first_name, b.last_name, b.org_number, '', b.em,
  p.phone, l.address, l.postal_code, l.city, 'SE', b.reference, '',
  printf('%020d', b.n), b.name_key, l.city_key, b.em, b.sk_pre || b.n || char(31) || b.em || b.sk_post,
  1, :ts, :ts
FROM (SELECT w.*, s.rowid AS rid, :start + s.rowid - 1 AS n, w.em_pre || (:start + s.rowid - 1) || w.em_post AS em
      FROM demo_phone s JOIN demo_who w ON w.rowid = (s.rowid * 48271 + :k0) % :n_base + 1
      WHERE s.rowid <= :count) b
JOIN demo_where l ON l.rowid = (b.rid * 7919 + :k1) % :n_base + 1
JOIN demo_phone p ON p.rowid = (b.rid * 104729 + :k2) % :n_base + 1
ORDER BY b.rid
"""

_DEMO_INDEXES = ["ix_customer_search", "ix_customer_email_live", "ix_customer_live_number", "ix_customer_live_name", "ix_customer_live_city",
                 "ix_customer_live_email", "ix_customer_live_phone"]


def _fill_sqlite(conn: sa.Connection, count: int, start: int, seed: int,
                 progress: Callable[[int, int], None] | None, chunk: int) -> None:
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    factory = DemoFactory(seed)
    dbapi.execute("PRAGMA cache_size=-1048576")  # 1 GiB while the rows go in
    dbapi.execute("PRAGMA temp.cache_size=-262144")
    dbapi.execute("PRAGMA threads=2")
    pools = _pool_rows(factory)
    for table, rows in pools.items():
        dbapi.execute(f"DROP TABLE IF EXISTS temp.{table}")
        dbapi.execute(f"CREATE TEMP TABLE {table} (i INTEGER PRIMARY KEY, a, b, c, d, e, f)")
        dbapi.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    # People and companies in one pool, org. and personal numbers (and none) in another: one
    # primary-key look-up each, instead of a UNION built again for every chunk.
    for table, parts in (("p_name", ("p_person", "p_company")), ("p_o", ("p_org", "p_pnr"))):
        dbapi.execute(f"DROP TABLE IF EXISTS temp.{table}")
        dbapi.execute(f"CREATE TEMP TABLE {table} (i INTEGER PRIMARY KEY, a, b, c, d, e, f)")
        dbapi.execute(f"INSERT INTO {table} SELECT * FROM {parts[0]} "
                      f"UNION ALL SELECT i + 1000000, a, b, c, d, e, f FROM {parts[1]}")
    dbapi.execute("INSERT INTO p_o VALUES (-1, '', '', '', '', '', '')")
    empty = dbapi.execute("SELECT count(*) FROM customer").fetchone()[0] == 0
    index_sql: list[str] = []
    if empty:  # building the indexes once over sorted data beats keeping them up row by row
        for name in _DEMO_INDEXES:
            sql = dbapi.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
            if sql:
                index_sql.append(sql[0])
                dbapi.execute(f"DROP INDEX {name}")
    sizes = {f"n_{table[2:]}": len(rows) for table, rows in pools.items()}
    ts = str(datetime.now(UTC).replace(tzinfo=None))
    base = min(chunk, count)
    for table in ("demo_base", "demo_who", "demo_where", "demo_phone"):
        dbapi.execute(f"DROP TABLE IF EXISTS temp.{table}")
    dbapi.execute("CREATE TEMP TABLE demo_base AS SELECT * FROM customer WHERE 0")
    dbapi.execute(_SQLITE_DEMO.format(target="demo_base"),
                  {"count": base, "start": start, "seed": seed, "ts": ts, **sizes})
    columns = ", ".join(COLUMNS)
    dbapi.execute(f"INSERT INTO customer ({columns}) SELECT {columns} FROM demo_base ORDER BY rowid")
    for sql in _SQLITE_DEMO_PARTS:
        dbapi.execute(sql)
    dbapi.execute("DROP TABLE temp.demo_base")
    done = base
    if progress:
        progress(done, count)
    while done < count:
        n = min(chunk, count - done)
        k = done // chunk
        added = dbapi.execute(_SQLITE_DEMO_COPY, {
            "count": n, "start": start + done, "ts": ts, "n_base": base,
            "k0": k * 69069 + 3 * seed, "k1": k * 2654435761 + seed, "k2": k * 40503 + 17 * seed}).rowcount
        assert added == n, (added, n)
        done += n
        if progress:
            progress(done, count)
    for table in ("demo_who", "demo_where", "demo_phone"):
        dbapi.execute(f"DROP TABLE temp.{table}")
    # The new rows leave the big cache for the file before the indexes are built: with a small
    # cache (and the sort's runs in temporary files, ``fill_tx``) SQLite sorts an index in two
    # threads (1.6 s instead of 2.6 s an index at 1M).
    dbapi.execute("PRAGMA cache_size=-16384")
    for sql in index_sql:
        dbapi.execute(sql)


def fill_demo(engine: Engine, count: int, seed: int = 1,
              progress: Callable[[int, int], None] | None = None, chunk: int = 100_000) -> int:
    """Add ``count`` demo customers numbered after the register's series; returns how many."""
    with fill_tx(engine) as conn:
        value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == NEXT_NUMBER_KEY)).scalar()
        top = conn.execute(sa.select(sa.func.max(customer_table.c.id))).scalar() or 0
        start = max(int(value) if value else FIRST_NUMBER, FIRST_NUMBER + top)
        if value:
            conn.execute(sa.update(meta_table).where(meta_table.c.key == NEXT_NUMBER_KEY)
                         .values(value=str(start + count)))
        else:
            conn.execute(sa.insert(meta_table).values(key=NEXT_NUMBER_KEY, value=str(start + count)))
        if engine.dialect.name == "sqlite":
            _fill_sqlite(conn, count, start, seed, progress, chunk)
            return count
        rows = demo_rows(count, start, seed)
        done = 0
        while done < count:
            batch = [next(rows) for _ in range(min(20_000, count - done))]
            conn.execute(sa.insert(customer_table), [dict(zip(COLUMNS, r, strict=True)) for r in batch])
            done += len(batch)
            if progress:
                progress(done, count)
    return count
