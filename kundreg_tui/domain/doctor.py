"""``kundreg doctor``: is the register healthy, and what to do when it is not.

Checks the database (``PRAGMA quick_check`` / ``integrity_check`` on SQLite; a connection and a
few sanity queries on PostgreSQL), the migrations (the schema's revision against the newest one),
the permissions of the file, its folder and its ``-wal``/``-shm`` files (a group of operators
sharing the register; personal data readable by everybody), the size of the WAL file, the journal
mode and the free disk space. Every finding that is not OK says what to do.

The doctor looks, it does not repair, and it does not create a register that is missing: it opens
the database with a plain connection (no migration, no journal-mode change). Only
``checkpoint()`` (``kundreg doctor --checkpoint``) writes: it empties the WAL file.
"""

from __future__ import annotations

import shlex
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from kundreg_tui.domain.database import current_revision, head_revision, resolve_url
from kundreg_tui.domain.faults import (
    CORRUPT,
    classify,
    describe_file,
    explain,
    human_size,
    permission_advice,
    side_files,
    sqlite_path,
    write_problem,
)
from kundreg_tui.i18n import _

OK, WARNING, PROBLEM = "ok", "warning", "problem"
WAL_WARN_BYTES = 64 * 1024 * 1024
FREE_WARN_BYTES = 50 * 1024 * 1024
TABLES = ("customer", "change", "batch", "meta")
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Finding:
    check: str  # database | connection | migrations | permissions | wal | journal | space | data
    level: str  # ok | warning | problem
    message: str
    fix: str = ""


@dataclass
class Report:
    target: str
    backend: str  # sqlite | postgresql
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, level: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, message, fix))

    @property
    def problems(self) -> int:
        return sum(1 for f in self.findings if f.level == PROBLEM)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == WARNING)

    @property
    def healthy(self) -> bool:
        return not self.problems and not self.warnings

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.healthy, "target": self.target, "backend": self.backend,
                "problems": self.problems, "warnings": self.warnings,
                "findings": [asdict(f) for f in self.findings]}


def _plain_engine(url: str) -> sa.Engine:
    """A connection as it comes: no migration, no journal-mode change, no pool."""
    if url.startswith("sqlite"):
        return sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT_S})
    if url.startswith("postgresql"):
        return sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    return sa.create_engine(url, poolclass=NullPool)


def run_checks(db: str | None, *, full: bool = False, wal_warn_bytes: int = WAL_WARN_BYTES,
               free_warn_bytes: int = FREE_WARN_BYTES) -> Report:
    """Every check on the register ``db`` (``--db``: a SQLite path or a PostgreSQL URL)."""
    url = resolve_url(db)
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    report = Report(parsed.render_as_string(hide_password=True), backend)
    path = sqlite_path(parsed)
    if backend == "sqlite" and path is not None:
        report.target = str(path)
        if not path.exists():
            report.add("database", PROBLEM, _("Registret finns inte: {path}").format(path=path),
                       _("Det skapas när kundreg startar första gången. Har du angett rätt fil (--db / "
                         "KUNDREG_DB)?"))
            return report
        _check_permissions(report, path)
        _check_wal_size(report, path, wal_warn_bytes)
        _check_space(report, path.parent, free_warn_bytes)
    engine = _plain_engine(url)
    try:
        if backend == "sqlite":
            if not _check_sqlite(report, engine, path, full):
                return report
        elif backend == "postgresql":
            if not _check_postgresql(report, engine):
                return report
        _check_migrations(report, engine)
        _check_data(report, engine)
    finally:
        engine.dispose()
    return report


# ------------------------------------------------------------------------------ SQLite
def _check_sqlite(report: Report, engine: sa.Engine, path: Path | None, full: bool) -> bool:
    check = "integrity_check" if full else "quick_check"
    try:
        with engine.connect() as conn:
            mode = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar() or "").lower()
            rows = [str(r[0]) for r in conn.exec_driver_sql(f"PRAGMA {check}").all()]
    except sa.exc.DBAPIError as exc:
        if classify(exc) == CORRUPT:
            rows, mode = [str(exc.orig)], "?"
        else:
            report.add("database", PROBLEM, explain(exc, engine),
                       _("Kontrollera behörigheterna ovan och att --db pekar på registret."))
            return False
    target = path or Path(str(engine.url.database))
    if rows == ["ok"]:
        report.add("database", OK, _("Databasen: {check} hittade inga fel.").format(check=check))
    else:
        shown = "; ".join(rows[:5]) + (" …" if len(rows) > 5 else "")
        report.add("database", PROBLEM, _("Databasen är skadad: {check}: {errors}").format(
            check=check, errors=shown),
            _("Stoppa alla som använder registret och kopiera filen (med {name}-wal) till en säker plats. "
              "Återställ sedan från senaste säkerhetskopia, eller rädda det som går med "
              "sqlite3 {path} .recover > räddning.sql").format(name=target.name, path=shlex.quote(str(target))))
        return False
    if mode == "wal":
        report.add("journal", OK, _("Journalläge: WAL (läsare och skrivare stänger inte ute varandra)."))
    else:
        report.add("journal", WARNING, _("Journalläget är {mode}, inte WAL: läsare och skrivare stänger ute "
                                         "varandra.").format(mode=mode or "?"),
                   _("kundreg slår på WAL när det öppnar registret, om mappen är skrivbar och filsystemet "
                     "är lokalt (inte NFS/SMB). Starta kundreg en gång, eller kör när ingen använder "
                     "registret: sqlite3 {path} 'PRAGMA journal_mode=WAL'").format(path=shlex.quote(str(target))))
    return True


def _check_permissions(report: Report, path: Path) -> None:
    found = False
    problem = write_problem(path)
    if problem is not None:
        found = True
        report.add("permissions", PROBLEM, problem, permission_advice(path))
    st = path.stat()
    folder = path.parent
    dst = folder.stat()
    sides = [s for s in side_files(path) if s.exists()]
    open_to_all = [f for f in (path, *sides) if f.stat().st_mode & 0o007]
    if open_to_all:
        found = True
        files = " ".join(shlex.quote(str(f)) for f in open_to_all)
        report.add("permissions", WARNING,
                   _("Registret innehåller personuppgifter men kan läsas av alla användare på datorn: "
                     "{files}").format(files=", ".join(f"{f} ({stat.filemode(f.stat().st_mode)})" for f in open_to_all)),
                   _("Ta bort de andras rättigheter: chmod o-rwx {files}   (600 om bara du använder "
                     "registret, 660 för en grupp operatörer)").format(files=files))
    if st.st_mode & 0o060 == 0o060:  # shared with a group of operators
        group_dir_ok = dst.st_gid == st.st_gid and dst.st_mode & 0o030 == 0o030
        if not group_dir_ok:
            found = True
            report.add("permissions", WARNING,
                       _("Registret delas med en grupp ({file}), men mappen {dir} ({dirmode}) är inte "
                         "skrivbar för samma grupp: de andra kan inte skapa {name}-wal och {name}-shm.").format(
                           file=describe_file(path), dir=folder, dirmode=describe_file(folder), name=path.name),
                       permission_advice(path))
        elif not dst.st_mode & stat.S_ISGID:
            found = True
            report.add("permissions", WARNING,
                       _("Mappen {dir} saknar setgid-biten: en {name}-wal som en operatör skapar får "
                         "operatörens egen grupp, och då kan de andra inte skriva.").format(dir=folder, name=path.name),
                       _("chmod g+s {dir}").format(dir=shlex.quote(str(folder))))
        for side in sides:
            sst = side.stat()
            if sst.st_gid != st.st_gid or sst.st_mode & 0o060 != 0o060:
                found = True
                report.add("permissions", WARNING,
                           _("{side} ({file}) har inte registrets grupp och rättigheter: de andra i gruppen "
                             "kan inte skriva.").format(side=side, file=describe_file(side)),
                           permission_advice(path))
    if not found:
        report.add("permissions", OK, _("Behörigheter: {path} ({file}); mappen är skrivbar för dig.").format(
            path=path, file=describe_file(path)))


def _check_wal_size(report: Report, path: Path, limit: int) -> None:
    wal = side_files(path)[0]
    size = wal.stat().st_size if wal.exists() else 0
    if size > limit:
        report.add("wal", WARNING, _("WAL-filen {wal} är {size} (gränsen för varning är {limit}).").format(
            wal=wal, size=human_size(size), limit=human_size(limit)),
            _("Töm den med kundreg doctor --checkpoint (PRAGMA wal_checkpoint(TRUNCATE)) när få "
              "använder registret. Växer den igen har någon troligen haft registret öppet mycket "
              "länge: be dem stänga och öppna igen."))
    else:
        report.add("wal", OK, _("WAL-filen: {size}.").format(size=human_size(size)))


def _check_space(report: Report, folder: Path, limit: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < limit:
        report.add("space", WARNING, _("Bara {free} ledigt på disken där registret ligger ({dir}).").format(
            free=human_size(free), dir=folder),
            _("Frigör utrymme: när disken är full kan ingen ändring sparas."))
    else:
        report.add("space", OK, _("Ledigt utrymme: {free}.").format(free=human_size(free)))


def checkpoint(db: str | None) -> tuple[int, int, int]:
    """``PRAGMA wal_checkpoint(TRUNCATE)``: (busy, WAL frames, frames copied); busy=1 when a
    reader held on to an old snapshot and the WAL could not be emptied."""
    url = resolve_url(db)
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            return int(row[0]), int(row[1]), int(row[2])
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ PostgreSQL
def _check_postgresql(report: Report, engine: sa.Engine) -> bool:
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT current_setting('server_version'), current_user, current_database(), "
                "pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
                "pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()").one()
            version, user, dbname, recovery, read_only, encoding = row
            report.add("connection", OK, _("Ansluten till PostgreSQL {version}, databas {db}, som {user}.").format(
                version=version, db=dbname, user=user))
            if recovery or read_only == "on":
                report.add("connection", PROBLEM, _("Servern tar bara emot läsningar (en standby eller "
                                                    "default_transaction_read_only)."),
                           _("Anslut till primärservern, eller be administratören slå av "
                             "default_transaction_read_only."))
            if encoding != "UTF8":
                report.add("connection", WARNING, _("Databasen har teckenkodningen {enc}, inte UTF8: å, ä, ö "
                                                    "och andra tecken kan gå förlorade.").format(enc=encoding),
                           _("Skapa databasen med ENCODING 'UTF8' och flytta registret dit."))
            missing_rights: list[str] = []
            for table in TABLES:
                if conn.exec_driver_sql(f"SELECT to_regclass('{table}')").scalar() is None:
                    continue
                for right in ("SELECT", "INSERT", "UPDATE"):
                    if not conn.exec_driver_sql(f"SELECT has_table_privilege('{table}', '{right}')").scalar():
                        missing_rights.append(f"{right} ON {table}")
            if missing_rights:
                report.add("permissions", PROBLEM, _("Användaren {user} saknar rättigheter: {rights}.").format(
                    user=user, rights=", ".join(missing_rights)),
                    _("En administratör kan ge dem: GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
                      "SCHEMA public TO {user}; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "
                      "{user};").format(user=user))
            else:
                report.add("permissions", OK, _("Användaren {user} får läsa och skriva registrets tabeller.").format(
                    user=user))
    except sa.exc.DBAPIError as exc:
        report.add("connection", PROBLEM, explain(exc, engine),
                   _("Kontrollera --db / KUNDREG_DB och att servern är igång."))
        return False
    return True


# ------------------------------------------------------------------------------ both
def _known_revisions() -> list[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from kundreg_tui.domain.database import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return [rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()]


def _check_migrations(report: Report, engine: sa.Engine) -> None:
    try:
        current = current_revision(engine)
    except sa.exc.DBAPIError as exc:
        report.add("migrations", PROBLEM, explain(exc, engine))
        return
    head = head_revision()
    if current == head:
        report.add("migrations", OK, _("Schemat är på senaste versionen ({rev}).").format(rev=head))
    elif current is None:
        report.add("migrations", PROBLEM, _("Registret har inget schema (ingen migrering är körd)."),
                   _("Starta kundreg en gång, så skapas tabellerna; eller kontrollera att --db pekar på "
                     "rätt register."))
    elif current in _known_revisions():
        report.add("migrations", WARNING, _("Schemat är på version {rev}; den senaste är {head}.").format(
            rev=current, head=head),
            _("Ta en säkerhetskopia och starta sedan kundreg (eller kundreg list): schemat uppgraderas då."))
    else:
        report.add("migrations", PROBLEM, _("Schemat har versionen {rev}, som den här kundreg inte känner till "
                                            "(den senaste den känner till är {head}).").format(rev=current, head=head),
                   _("Registret har använts av en nyare kundreg: uppgradera kundreg på den här datorn."))


def _check_data(report: Report, engine: sa.Engine) -> None:
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            missing = [t for t in TABLES if t not in present]
            if missing:
                report.add("data", PROBLEM, _("Tabeller saknas: {tables}.").format(tables=", ".join(missing)),
                           _("Registret är ofullständigt: återställ från en säkerhetskopia."))
                return
            # Reads every row of the customer table: a damaged page shows as an error here.
            live, trash = conn.exec_driver_sql(
                "SELECT sum(CASE WHEN deleted_at IS NULL THEN 1 ELSE 0 END), "
                "sum(CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END) FROM customer").one()
            erased = conn.exec_driver_sql(
                "SELECT count(*) FROM customer c JOIN batch b ON b.id = c.delete_batch "
                "WHERE b.kind = 'erase'").scalar()
            dupes = conn.exec_driver_sql(
                "SELECT email_key FROM customer WHERE deleted_at IS NULL AND email_key IS NOT NULL "
                "GROUP BY email_key HAVING count(*) > 1 LIMIT 3").scalars().all()
    except sa.exc.DBAPIError as exc:
        report.add("data", PROBLEM, explain(exc, engine),
                   _("Läsningen av registret misslyckades: se felet ovan."))
        return
    report.add("data", OK, _("Kunder: {live} i registret, {trash} i papperskorgen (varav {erased} raderade "
                             "för gott).").format(live=live or 0, trash=(trash or 0), erased=erased or 0))
    if dupes:
        report.add("data", PROBLEM, _("Samma e-postadress finns hos flera kunder: {emails}.").format(
            emails=", ".join(dupes)),
            _("Indexet som ska hindra det saknas eller är skadat: ta en säkerhetskopia och rätta kunderna."))


def summary(report: Report) -> str:
    return _("Fel: {problems}. Varningar: {warnings}.").format(problems=report.problems, warnings=report.warnings)


def level_word(level: str) -> str:
    return {OK: _("OK"), WARNING: _("VARNING"), PROBLEM: _("FEL")}[level]
