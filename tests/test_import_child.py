"""A big file is read and validated in a child process (``chunks.ChildChunks``) beside the plan's
look-ups: the plan it makes is the one made in-process, row for row; read errors come back with
their line, in order; cancelling or closing ends the child; a child that dies is a clear error."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kundreg_tui.domain import chunks
from kundreg_tui.domain.chunks import HEAD_ROWS, ChildChunks, use_child
from kundreg_tui.domain.csvread import CsvReadError, open_csv
from kundreg_tui.domain.importer import Cancelled, ImportError_, ImportOptions, ImportPlan
from kundreg_tui.domain.mapping import suggest_mapping
from kundreg_tui.domain.register import RegisterService

pytestmark = pytest.mark.pg

HEADER = "Kundnummer;Kundtyp;Kundnamn;E-post;Telefon;Postnummer;Ort;Anteckningar"


def _file(tmp_path: Path, rows: int, *, extra: str = "", encoding: str = "utf-8") -> Path:
    """A file with every kind of row: unchanged, changed, new (with and without a number), bad
    values, a ragged row, blank lines, a duplicate number, a name with markup characters."""
    lines = [HEADER]
    for i in range(rows):
        n = 1001 + i
        kind = i % 9
        if kind == 0:
            lines.append(f"{n};Företag;Bolag {n} AB;info{n}@exempel.se;08-123 45 6{i % 10};114 55;Stockholm;")
        elif kind == 1:
            lines.append(f"{n};Företag;Bolag {n} AB (nytt namn);info{n}@exempel.se;;114 55;Göteborg;ändrad")
        elif kind == 2:
            lines.append(f";Privatperson;Åsa [b]Öberg[/b] {i};asa{i}@exempel.se;070-1234567;;Umeå;")
        elif kind == 3:
            lines.append(f"{n};Företag;Bolag {n} AB;inte-en-adress;;;Malmö;")
        elif kind == 4:
            lines.append(f"{n};Företag;Bolag {n} AB;info{n}@exempel.se")  # ragged
        elif kind == 5:
            lines.append(";;;;;;;")  # blank (only delimiters)
        elif kind == 6:
            lines.append(f"{90000 + i};Företag;Ny kund {i};ny{i}@exempel.se;;;Luleå;\"citat; med semikolon\"")
        elif kind == 7:
            lines.append(f"1001;Företag;Dubblett {i};dubblett{i}@exempel.se;;;Kiruna;")
        else:
            lines.append(f"{n};Privatperson;Bolag {n} AB;info{n}@exempel.se;;123;Visby;fel postnummer")
    path = tmp_path / "kunder.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n" + extra).encode(encoding))
    return path


def _register(engine: sa.Engine, count: int) -> None:
    svc = RegisterService(engine, actor="test")
    for i in range(count):
        n = 1001 + i
        svc.create({"number": str(n), "kind": "company", "name": f"Bolag {n} AB", "email": f"info{n}@exempel.se",
                    "phone": f"08-123 45 6{i % 10}", "postal_code": "114 55", "city": "Stockholm"})


def _plan(engine: sa.Engine, path: Path, *, child: bool, monkeypatch: pytest.MonkeyPatch,
          **build: Any) -> tuple[ImportPlan, Any]:
    monkeypatch.setenv("KUNDREG_IMPORT_PROCESS", "1" if child else "0")
    source = open_csv(path)
    mapping = [s.field for s in suggest_mapping(source.header)]
    plan = ImportPlan(engine, ImportOptions(source="import", label=path.name), actor="test")
    try:
        plan.build(source, mapping, **build)
    except BaseException:
        plan.close()
        raise
    return plan, source


def test_the_files_here_reach_the_child() -> None:
    assert HEAD_ROWS < 20_000


def _outcome(plan: ImportPlan) -> tuple[Any, ...]:
    assert plan.counts == plan._count_classes()
    return (dict(plan.counts), plan.blank_rows, [tuple(vars(r).values()) for r in plan.rows()],
            plan.preview(limit=10_000), plan._peek_numbers(5))


def test_the_child_makes_the_plan_made_in_process(engine: sa.Engine, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _register(engine, 30)
    path = _file(tmp_path, 30_000)  # the plan reads chunks.HEAD_ROWS rows itself, the child the rest
    with _plan(engine, path, child=False, monkeypatch=monkeypatch)[0] as plan:
        here = _outcome(plan)
    with _plan(engine, path, child=True, monkeypatch=monkeypatch)[0] as plan:
        there = _outcome(plan)
    assert there == here
    counts = here[0]
    assert counts["same"] and counts["update"] and counts["new"] and counts["error"]


def test_progress_and_blank_rows_come_from_the_child(sqlite_engine: sa.Engine, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, 20_000, extra="\r\n\r\n")
    seen: list[int] = []
    plan, source = _plan(sqlite_engine, path, child=True, monkeypatch=monkeypatch, progress=seen.append)
    with plan:
        assert source.bytes_read == source.total_bytes == path.stat().st_size
        # The rows of delimiters only and the empty lines at the end, as the reader counts them.
        assert source.blank_rows == sum(1 for i in range(20_000) if i % 9 == 5) + 2
        assert seen and seen[-1] == plan.count() == sum(plan.counts.values())


def test_a_read_error_comes_back_with_its_line(sqlite_engine: sa.Engine, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, 20_000, extra='77;Företag;"Oavslutat citat;a@b.se;;;;\r\n78;Företag;X;x@y.se;;;;\r\n')
    messages = []
    for child in (False, True):
        with pytest.raises(CsvReadError) as info:
            _plan(sqlite_engine, path, child=child, monkeypatch=monkeypatch)
        messages.append((info.value.message, info.value.line))
    assert messages[0] == messages[1]
    assert messages[1][1] == 20_002  # the physical line where the quote opens (read by the child)


def test_a_cp1252_file_reads_the_same_in_the_child(sqlite_engine: sa.Engine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, 20_000, encoding="cp1252")
    with _plan(sqlite_engine, path, child=False, monkeypatch=monkeypatch)[0] as plan:
        here = _outcome(plan)
    plan, source = _plan(sqlite_engine, path, child=True, monkeypatch=monkeypatch)
    with plan:
        assert source.encoding == "cp1252"
        assert _outcome(plan) == here


def _started_children(monkeypatch: pytest.MonkeyPatch) -> list[ChildChunks]:
    """The reading processes the plans start, as they start."""
    made: list[ChildChunks] = []
    real = chunks.ChildChunks.__init__

    def spy(self: ChildChunks, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(chunks.ChildChunks, "__init__", spy)
    return made


def test_cancelling_ends_the_child(sqlite_engine: sa.Engine, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, 40_000)
    made = _started_children(monkeypatch)
    with pytest.raises(Cancelled):
        _plan(sqlite_engine, path, child=True, monkeypatch=monkeypatch, cancelled=lambda: True)
    assert len(made) == 1 and made[0].proc.poll() is not None


def test_a_child_that_dies_is_a_clear_error(sqlite_engine: sa.Engine, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, 40_000)
    made = _started_children(monkeypatch)

    def kill_child(done: int) -> None:
        os.kill(made[0].proc.pid, signal.SIGKILL)

    with pytest.raises(ImportError_, match="avbröts"):
        _plan(sqlite_engine, path, child=True, monkeypatch=monkeypatch, progress=kill_child)


def test_a_child_whose_plan_is_gone_stops(tmp_path: Path) -> None:
    path = _file(tmp_path, 40_000)
    source = open_csv(path)
    mapping = [s.field for s in suggest_mapping(source.header)]
    child = ChildChunks(path, source.settings, mapping, False, 1001)
    first = next(iter(child))
    assert first.order
    assert child.proc.stdout is not None
    child.proc.stdout.close()  # as when the plan's process is killed
    deadline = time.monotonic() + 30
    while child.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.proc.poll() is not None
    child.close()


def test_which_inputs_use_a_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = _file(tmp_path, 10)
    monkeypatch.delenv("KUNDREG_IMPORT_PROCESS", raising=False)
    assert not use_child(open_csv(small))  # small: not worth a process
    monkeypatch.setattr(chunks, "PROCESS_MIN_BYTES", 100)
    assert use_child(open_csv(small))
    assert not use_child(open_csv(small.read_bytes()))  # bytes, a stream or text: read here
    monkeypatch.setenv("KUNDREG_IMPORT_PROCESS", "0")
    assert not use_child(open_csv(small))
