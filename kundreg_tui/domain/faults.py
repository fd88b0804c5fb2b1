"""Database faults told in words an operator can act on.

A busy register, a read-only or full disk, a file the operator may not write, a PostgreSQL server
that cannot be reached: the drivers say these in their own words (``sqlite3.OperationalError:
attempt to write a readonly database``). ``explain(exc)`` turns them into a Swedish message (through
``_``) that says what happened, that nothing was saved, and what to do. ``as_fault`` gives the same
as a ``DatabaseFault`` (a ``RegisterError`` with a ``kind``), which ``write_tx`` and ``read_conn``
raise instead of the driver's error; the command line and the screens show its text as it is.

The domain never imports Textual or Rich; this module neither.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shlex
import shutil
import sqlite3
import stat
from pathlib import Path

import sqlalchemy as sa

from kundreg_tui.domain.database import DatabaseError, current_actor
from kundreg_tui.domain.register import RegisterError
from kundreg_tui.i18n import _

BUSY = "busy"  # another writer held the register longer than the busy timeout
READONLY = "readonly"  # the file, its folder or the file system is read-only for us
PERMISSION = "permission"  # the operating system or PostgreSQL refused us
FULL = "full"  # disk full (SQLITE_FULL, ENOSPC, PostgreSQL 53100)
CANNOT_OPEN = "cannot_open"  # no such folder, file or database
CORRUPT = "corrupt"
IO = "io"
CONNECTION = "connection"  # the PostgreSQL server cannot be reached
AUTH = "auth"
LOST = "lost"  # the connection broke in the middle
CONFLICT = "conflict"  # serialization failure / deadlock: try again
OTHER = "other"

GROUP = "kundreg"  # the group name suggested for a team of operators

Where = sa.Engine | sa.URL | str | Path | None


class DatabaseFault(DatabaseError, RegisterError):
    """A database fault, told for the user (``str(fault)``); ``kind`` is one of the kinds above."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------------------------ classifying
def _driver_error(exc: BaseException) -> BaseException:
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    return orig if isinstance(orig, BaseException) else exc


def _reason(exc: BaseException) -> str:
    """The driver's own short message: its first line, without SQLAlchemy's SQL and links."""
    text = str(_driver_error(exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _classify_sqlite(err: sqlite3.Error) -> str:
    name = getattr(err, "sqlite_errorname", "") or ""
    text = str(err).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text:
        return BUSY
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return READONLY
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return FULL
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return CANNOT_OPEN
    if name.startswith(("SQLITE_PERM", "SQLITE_AUTH")):
        return PERMISSION
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return CORRUPT
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return IO
    return OTHER


_SQLSTATE = {
    "55P03": BUSY,  # lock_not_available (our lock_timeout on the writers' lock)
    "57014": BUSY,  # query_canceled (statement_timeout / lock_timeout)
    "53300": CONNECTION,  # too_many_connections
    "57P03": CONNECTION,  # cannot_connect_now (starting up / shutting down)
    "40001": CONFLICT,
    "40P01": CONFLICT,
    "53100": FULL,
    "25006": READONLY,  # read_only_sql_transaction (a standby, default_transaction_read_only)
    "42501": PERMISSION,  # insufficient_privilege
    "28000": AUTH,
    "28P01": AUTH,
    "3D000": CANNOT_OPEN,  # invalid_catalog_name: no such database
    "57P01": LOST,
    "57P02": LOST,
    "XX001": CORRUPT,
    "XX002": CORRUPT,
    "58030": IO,
}


def _classify_pg(err: BaseException) -> str | None:
    sqlstate = getattr(err, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate in _SQLSTATE:
            return _SQLSTATE[sqlstate]
        if sqlstate.startswith("08"):
            return LOST
        if sqlstate.startswith("28"):
            return AUTH
    text = str(err).lower()
    if "password authentication failed" in text or "no pg_hba.conf entry" in text:
        return AUTH
    if "database" in text and "does not exist" in text:
        return CANNOT_OPEN
    if any(w in text for w in ("connection refused", "could not connect", "connection failed",
                               "timeout expired", "could not translate host name", "no route to host")):
        return CONNECTION
    if any(w in text for w in ("server closed the connection", "terminating connection",
                               "consuming input failed", "connection is lost", "the connection is closed")):
        return LOST
    return OTHER if type(err).__name__ == "OperationalError" else None


def classify(exc: BaseException) -> str | None:
    """The kind of fault, or None when ``exc`` is not a database fault (a bug, a refusal)."""
    if isinstance(exc, DatabaseFault):
        return exc.kind
    err = _driver_error(exc)
    if isinstance(err, sqlite3.Error):
        if isinstance(err, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
                err, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
            return _classify_sqlite(err)
        return None
    if type(err).__module__.startswith("psycopg"):
        return _classify_pg(err)
    if isinstance(err, OSError) and err.filename:
        if err.errno in (errno.EACCES, errno.EPERM):
            return PERMISSION
        if err.errno == errno.EROFS:
            return READONLY
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return FULL
        return None
    if isinstance(exc, sa.exc.OperationalError):
        return OTHER
    return None


# ------------------------------------------------------------------------------------ where
def _url(where: Where) -> sa.URL | None:
    if isinstance(where, sa.Engine):
        return where.url
    if isinstance(where, sa.URL):
        return where
    if isinstance(where, str) and "://" in where:
        try:
            return sa.make_url(where)
        except sa.exc.ArgumentError:
            return None
    return None


def sqlite_path(where: Where) -> Path | None:
    """The register file, when ``where`` is (an engine on) a SQLite file."""
    if isinstance(where, Path):
        return where
    if isinstance(where, str) and "://" not in where:
        return Path(where)
    url = _url(where)
    if url is None or url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def describe_file(path: Path) -> str:
    """``ägare anna, grupp kundreg, rättigheter -rw-rw----``"""
    try:
        st = path.stat()
    except OSError:
        return _("finns inte")
    return _("ägare {owner}, grupp {group}, rättigheter {mode}").format(
        owner=_user_name(st.st_uid), group=_group_name(st.st_gid), mode=stat.filemode(st.st_mode))


def side_files(path: Path) -> list[Path]:
    """The ``-wal`` and ``-shm`` files SQLite keeps beside the register (WAL mode)."""
    return [Path(f"{path}-wal"), Path(f"{path}-shm")]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


# ------------------------------------------------------------------------------------ permissions
def write_problem(path: Path) -> str | None:
    """What stops the current user from writing the register ``path`` (None: nothing we can see)."""
    user = current_actor()
    folder = path.parent
    if not folder.is_dir():
        return _("Mappen {dir} finns inte.").format(dir=folder)
    if _read_only_fs(folder):
        return _("Filsystemet där registret ligger ({dir}) är skrivskyddat (monterat read-only).").format(dir=folder)
    if path.exists() and not os.access(path, os.R_OK):
        return _("Du ({user}) får inte läsa registerfilen {path} ({file}).").format(
            user=user, path=path, file=describe_file(path))
    if path.exists() and not os.access(path, os.W_OK):
        return _("Du ({user}) får inte skriva i registerfilen {path} ({file}).").format(
            user=user, path=path, file=describe_file(path))
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return _("Du ({user}) får inte skapa registret {path}: mappen {dir} ({file}) är inte skrivbar "
                 "för dig.").format(user=user, path=path, dir=folder, file=describe_file(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        return _("Du ({user}) får inte skapa filer i mappen {dir} ({file}): SQLite behöver skriva "
                 "{name}-wal och {name}-shm bredvid registret.").format(
            user=user, dir=folder, file=describe_file(folder), name=path.name)
    for side in side_files(path):
        if side.exists() and not os.access(side, os.R_OK | os.W_OK):
            return _("Du ({user}) får inte skriva i {path} ({file}), som SQLite behöver bredvid "
                     "registret.").format(user=user, path=side, file=describe_file(side))
    return None


def permission_advice(path: Path, group: str = GROUP) -> str:
    """How an administrator lets a group of operators share the register file."""
    folder = path.parent
    files = [path, *(s for s in side_files(path) if s.exists())]
    q = " ".join(shlex.quote(str(f)) for f in files)
    return _(
        "Så här delar en grupp operatörer registret (kör som administratör, byt {group} mot er grupp):\n"
        "  sudo groupadd -f {group}; sudo usermod -aG {group} ANVÄNDARNAMN\n"
        "  sudo chgrp {group} {dir} {files}\n"
        "  sudo chmod 660 {files}\n"
        "  sudo chmod 2770 {dir}\n"
        "Mappen måste också vara skrivbar för gruppen: SQLite skapar {name}-wal och {name}-shm där (WAL), "
        "och 2 i 2770 gör att de får gruppen {group}. Logga ut och in igen efter usermod."
    ).format(group=group, dir=shlex.quote(str(folder)), files=q, name=path.name)


# ------------------------------------------------------------------------------------ messages
def _busy_seconds() -> float:
    from kundreg_tui.domain import database

    return database.BUSY_TIMEOUT_MS / 1000


def _sqlite_message(kind: str, exc: BaseException, path: Path | None) -> str:
    reason = _reason(exc)
    nothing = _("Inget sparades.")
    where = str(path) if path else _("registret")
    if kind == BUSY:
        return _("Registret är upptaget: någon annan sparar just nu (en annan operatör, en import eller "
                 "en rensning) och du har väntat i {s:g} sekunder. {nothing} Försök igen om en stund."
                 ).format(s=_busy_seconds(), nothing=nothing)
    if kind in (READONLY, PERMISSION, CANNOT_OPEN):
        problem = write_problem(path) if path else None
        if problem is None:
            if kind == CANNOT_OPEN:
                problem = _("Registret {path} kan inte öppnas ({reason}).").format(path=where, reason=reason)
            else:
                problem = _("Registret {path} är skrivskyddat ({reason}).").format(path=where, reason=reason)
        text = f"{problem} {nothing}"
        if path is not None and path.parent.is_dir() and not _read_only_fs(path.parent):
            text += "\n" + permission_advice(path)
        elif path is not None and _read_only_fs(path.parent):
            text += " " + _("Flytta registret till en skrivbar disk, eller montera om disken skrivbar.")
        return text
    if kind == FULL:
        free = ""
        if path is not None:
            try:
                free = " " + _("Ledigt på {dir}: {free}.").format(
                    dir=path.parent, free=human_size(shutil.disk_usage(path.parent).free))
            except OSError:
                pass
        return _("Disken är full (eller registret har nått sin största tillåtna storlek): {path} kunde "
                 "inte växa. {nothing}{free} Frigör utrymme och försök igen; kundreg doctor visar läget."
                 ).format(path=where, nothing=nothing, free=free)
    if kind == CORRUPT:
        return _("Registerfilen {path} är skadad ({reason}). {nothing} Kör kundreg doctor och återställ "
                 "registret från en säkerhetskopia.").format(path=where, reason=reason, nothing=nothing)
    if kind == IO:
        return _("Läs- eller skrivfel på disken där registret ligger ({reason}). {nothing} Kontrollera "
                 "disken och kör kundreg doctor.").format(reason=reason, nothing=nothing)
    return _("Databasfel: {reason}. {nothing}").format(reason=reason, nothing=nothing)


def _pg_message(kind: str, exc: BaseException, url: sa.URL | None) -> str:
    reason = _reason(exc)
    nothing = _("Inget sparades.")
    user = (url.username if url is not None else None) or _("databasanvändaren")
    server = f"{url.host or 'localhost'}:{url.port or 5432}" if url is not None else "PostgreSQL"
    dbname = (url.database if url is not None else None) or ""
    if kind == BUSY:
        return _("Registret är upptaget: någon annan sparar just nu (en annan operatör, en import eller "
                 "en rensning) och du har väntat i {s:g} sekunder. {nothing} Försök igen om en stund."
                 ).format(s=_busy_seconds(), nothing=nothing)
    if kind == CONFLICT:
        return _("Ändringen krockade med en annan ändring som gjordes samtidigt och avbröts. {nothing} "
                 "Försök igen.").format(nothing=nothing)
    if kind == READONLY:
        return _("PostgreSQL-servern {server} tar bara emot läsningar (en skrivskyddad server eller "
                 "transaktion). {nothing} Anslut till primärservern, eller be administratören ta bort "
                 "default_transaction_read_only.").format(server=server, nothing=nothing)
    if kind == PERMISSION:
        return _("Databasanvändaren {user} saknar behörighet i PostgreSQL ({reason}). {nothing} En "
                 "administratör kan ge den: GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                 "public TO {user}; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {user};"
                 ).format(user=user, reason=reason, nothing=nothing)
    if kind == FULL:
        return _("Disken på PostgreSQL-servern {server} är full ({reason}). {nothing} Be serverns "
                 "administratör frigöra utrymme.").format(server=server, reason=reason, nothing=nothing)
    if kind == CANNOT_OPEN:
        return _("Databasen {db} finns inte på PostgreSQL-servern {server}. Skapa den (createdb {db}) "
                 "eller rätta --db / KUNDREG_DB.").format(db=dbname, server=server)
    if kind == AUTH:
        return _("PostgreSQL-servern {server} nekade inloggningen för {user} ({reason}). Kontrollera "
                 "användarnamn och lösenord (--db / KUNDREG_DB, ~/.pgpass).").format(
            server=server, user=user, reason=reason)
    if kind == CONNECTION:
        return _("Kan inte ansluta till PostgreSQL-servern {server} ({reason}). Kontrollera att servern "
                 "är igång och att --db / KUNDREG_DB stämmer.").format(server=server, reason=reason)
    if kind == LOST:
        return _("Förbindelsen till PostgreSQL-servern {server} bröts ({reason}). Det du höll på med "
                 "sparades inte om det inte redan var klart: kontrollera och försök igen.").format(
            server=server, reason=reason)
    if kind == CORRUPT:
        return _("PostgreSQL-servern rapporterar skadade data ({reason}). {nothing} Kontakta "
                 "databasens administratör.").format(reason=reason, nothing=nothing)
    if kind == IO:
        return _("Läs- eller skrivfel på PostgreSQL-serverns disk ({reason}). {nothing}").format(
            reason=reason, nothing=nothing)
    return _("Databasfel: {reason}. {nothing}").format(reason=reason, nothing=nothing)


def as_fault(exc: BaseException, where: Where = None) -> DatabaseFault | None:
    """``exc`` as a fault told for the user, or None when it is not a database fault."""
    if isinstance(exc, DatabaseFault):
        return exc
    kind = classify(exc)
    if kind is None:
        return None
    err = _driver_error(exc)
    if isinstance(err, OSError) and not isinstance(err, sqlite3.Error):
        target = Path(str(err.filename))
        reg = sqlite_path(where)
        if reg is not None and target in (reg, reg.parent, *side_files(reg)):
            return DatabaseFault(kind, _sqlite_message(kind, exc, reg))
        return DatabaseFault(kind, _("Kan inte skriva {path}: {reason}.").format(
            path=target, reason=err.strerror or err))
    url = _url(where)
    if type(err).__module__.startswith("psycopg") or (url is not None and url.get_backend_name() == "postgresql"):
        return DatabaseFault(kind, _pg_message(kind, exc, url))
    return DatabaseFault(kind, _sqlite_message(kind, exc, sqlite_path(where)))


def fault(exc: BaseException, where: Where = None) -> DatabaseFault:
    """``exc`` as a fault told for the user; an unknown database error becomes kind ``other``."""
    return as_fault(exc, where) or DatabaseFault(OTHER, _("Databasfel: {reason}. {nothing}").format(
        reason=_reason(exc), nothing=_("Inget sparades.")))


def explain(exc: BaseException, where: Where = None) -> str:
    """A message for the user about ``exc``: what happened, and what to do."""
    if isinstance(exc, DatabaseError | RegisterError):
        return str(exc)
    found = as_fault(exc, where)
    return str(found) if found is not None else str(exc)

