"""An import's rows read and validated a chunk at a time: in the plan's own process, or, for a big
file, in a child process beside it.

Reading (``csvread``) and validating (``fastpath``) are pure Python and take about half of a
plan's work; the other half (look-ups and staging in the register, classification) needs the
plan's connection. With two processes both halves run at once on two cores, which threads in
one process cannot (the GIL). The child gets the file's path and the settings the user saw,
reads it exactly as ``CsvSource.iter_records`` would, and sends each prepared chunk (pickled,
length-prefixed) through its stdout; a read error is sent in its place, in order, so the plan
fails where it would have in-process. The pipe's buffer keeps the child at most a chunk or two
ahead, so memory stays flat; a child whose parent is gone dies on its next write.

This module imports neither SQLAlchemy nor the importer, so the child starts in a few tenths of
a second.
"""

from __future__ import annotations

import collections
import gc
import itertools
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import IO, Any, Protocol

from kundreg_tui.domain.fastpath import CELL_SEP, ChunkResult, validate_rows
from kundreg_tui.i18n import _, current_language

CHUNK = 8192
#: Smaller chunks first: the first look-ups start sooner, so the two threads overlap from the start.
FIRST_CHUNKS = (1024, 2048, 4096)
#: Rows a plan reads itself while its child process starts (the first chunks and one more).
HEAD_ROWS = sum(FIRST_CHUNKS) + CHUNK
#: Files at least this big are read in a child process (``KUNDREG_IMPORT_PROCESS``: "0" never,
#: "1" always, for tests).
PROCESS_MIN_BYTES = 4 << 20

_LINE, _VALUES, _PROBLEM = attrgetter("line"), attrgetter("values"), attrgetter("problem")
_HEAD = struct.Struct("<Q")


class RecordLike(Protocol):
    line: int
    values: list[str]
    problem: str | None


@dataclass
class Chunk:
    """A chunk of input rows, validated, waiting for its look-ups."""

    result: ChunkResult
    problems: dict[int, str]
    lines: list[int]
    numbers: list[str | None]
    knums: list[str | None]
    kmails: list[str | None]
    payloads: list[str]
    order: list[int]  # the rows that are staged (blank ones left out)
    live: list[int]  # the rows that can be matched (no problem, no invalid value)


def number_int(number: str) -> int | None:
    return int(number) if number.isdigit() and number.isascii() and len(number) < 19 else None


class Preparer:
    """Validates chunks of records for one mapping; counts the blank rows it leaves out and
    remembers typed numbers at or above ``next_number`` (skipped when numbers are handed out)."""

    def __init__(self, mapping: Sequence[str | None], empty_clears: bool, next_number: int) -> None:
        self.width = len(mapping)
        idx = [i for i, f in enumerate(mapping) if f]
        self.names: list[str] = [f for f in (mapping[i] for i in idx) if f is not None]
        self.project: Callable[[Sequence[str]], Sequence[str]] | None
        if len(idx) == 1:
            only = idx[0]
            self.project = lambda v: (v[only],)
        elif idx == list(range(self.width)):
            self.project = None
        else:
            self.project = itemgetter(*idx)
        self.empty_clears = empty_clears
        self.next_number = next_number
        self.blank_rows = 0
        self.typed_high: set[int] = set()

    def prepare(self, chunk: list[RecordLike]) -> Chunk:
        """A chunk validated (column by column), with its staged values and its keys."""
        names, width, project = self.names, self.width, self.project
        problems: dict[int, str] = {}
        if any(map(_PROBLEM, chunk)):
            vals: list[Sequence[str]] = []
            for j, record in enumerate(chunk):
                values = record.values
                if record.problem:
                    problems[j] = record.problem
                    values = (list(values) + [""] * width)[:width]
                vals.append(values)
        else:
            vals = list(map(_VALUES, chunk))
        rows: Sequence[Sequence[str]] = vals if project is None else list(map(project, vals))
        result = validate_rows(names, rows, empty_clears=self.empty_clears)
        cols = result.cols
        n = len(rows)
        keep = [j for j in range(n) if j not in result.blank or j in problems] if result.blank else None
        if keep is not None:
            self.blank_rows += n - len(keep)
        payloads = list(map(CELL_SEP.join, zip(*(cols[f] for f in names), strict=True))) if len(names) > 1 \
            else list(cols[names[0]])
        numbers: list[str | None]
        knums: list[str | None]
        kmails: list[str | None]
        if "number" in cols:
            ncol = cols["number"]
            numbers = [v or None for v in ncol]
            joined = "\x00".join(ncol)
            knums = [v or None for v in joined.lower().split("\x00")] if joined.isascii() \
                else [v.casefold() or None for v in ncol]
            low = len(str(self.next_number))
            for v in ncol:
                if len(v) >= low and v.isdigit():
                    num = number_int(v)
                    if num is not None and num >= self.next_number:
                        self.typed_high.add(num)
        else:
            numbers = knums = [None] * n
        if "email" in cols:
            ecol = cols["email"]
            joined = "\x00".join(ecol)
            kmails = [v or None for v in (joined.lower().split("\x00") if joined.isascii()
                                         else [v.casefold() for v in ecol])]
        else:
            kmails = [None] * n
        order = list(keep) if keep is not None else list(range(n))
        errors = result.errors
        live = [j for j in order if j not in problems and j not in errors] if (errors or problems) else order
        return Chunk(result, problems, list(map(_LINE, chunk)), numbers, knums, kmails, payloads, order, live)

    def chunks(self, records: Iterable[RecordLike], *, small_first: bool = True) -> Iterator[Chunk]:
        """The records prepared a chunk at a time (``FIRST_CHUNKS`` first, unless not
        ``small_first``, then ``CHUNK`` rows each)."""
        it = iter(records)
        sizes = itertools.chain(FIRST_CHUNKS if small_first else (), itertools.repeat(CHUNK))
        for size in sizes:
            chunk = list(itertools.islice(it, size))
            if not chunk:
                return
            yield self.prepare(chunk)


# ---------------------------------------------------------------------------- the child process
class ChildFailed(Exception):
    """The child process stopped without an answer (killed, or a fault it could not report)."""


def _send(out: IO[bytes], message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEAD.pack(len(data)))
    out.write(data)
    out.flush()


def _child_main() -> None:
    """Entry of the child: arguments pickled on stdin; messages pickled on stdout."""
    from kundreg_tui.domain.csvread import CsvReadError, open_csv
    from kundreg_tui.i18n import set_language

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the message stream
    gc.disable()  # millions of short-lived objects, none of them cyclic; memory stays flat
    args = pickle.load(sys.stdin.buffer)
    set_language(args["lang"])
    try:
        source = open_csv(args["path"], args["settings"])
        preparer = Preparer(args["mapping"], args["empty_clears"], args["next_number"])
        records = source.iter_records()
        if args["skip"]:  # rows the plan reads itself
            collections.deque(itertools.islice(records, args["skip"]), 0)
        for chunk in preparer.chunks(records, small_first=False):  # type: ignore[arg-type]
            chunk.result.cols = {}  # the plan needs the rows' values as staged, not per column
            chunk.result.present = None
            _send(out, ("chunk", chunk, source.bytes_read))
        _send(out, ("end", preparer.blank_rows, preparer.typed_high, source.blank_rows, source.bytes_read))
    except CsvReadError as exc:
        _send(out, ("read-error", exc.message, exc.line))
    except BrokenPipeError:
        os._exit(1)  # the plan is gone
    except BaseException as exc:
        try:
            _send(out, ("fault", f"{type(exc).__name__}: {exc}"))
        except BrokenPipeError:
            os._exit(1)


class ChildChunks:
    """Chunks of a file prepared by a child process, in order, after the first ``skip`` records
    (which the caller reads itself). ``on_read(bytes_read)`` follows its progress; after the last
    chunk, ``blank_rows`` / ``typed_high`` (the Preparer's) and
    ``source_blank_rows`` (the reader's) hold the child's counts."""

    def __init__(self, path: str | os.PathLike[str], settings: Any, mapping: Sequence[str | None],
                 empty_clears: bool, next_number: int, on_read: Callable[[int], None] | None = None,
                 read_error: Callable[[str, int | None], Exception] | None = None, skip: int = 0) -> None:
        self.on_read = on_read
        self.read_error = read_error
        self.blank_rows = 0
        self.source_blank_rows = 0
        self.typed_high: set[int] = set()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the package, however it was found here
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from kundreg_tui.domain.chunks import _child_main; _child_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self.proc.stdin is not None
        try:
            pickle.dump({"path": os.fspath(path), "settings": settings, "mapping": list(mapping),
                         "empty_clears": empty_clears, "next_number": next_number,
                         "lang": current_language(), "skip": skip},
                        self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.close()
        except OSError:
            self.close()
            raise ChildFailed(_("läsprocessen startade inte")) from None

    def _receive(self) -> tuple[Any, ...]:
        stdout = self.proc.stdout
        assert stdout is not None
        head = stdout.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise ChildFailed(_("läsprocessen stannade oväntat"))
        size = _HEAD.unpack(head)[0]
        data = stdout.read(size)
        if len(data) < size:
            raise ChildFailed(_("läsprocessen stannade oväntat"))
        message: tuple[Any, ...] = pickle.loads(data)
        return message

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            message = self._receive()
            kind = message[0]
            if kind == "chunk":
                if self.on_read:
                    self.on_read(message[2])
                yield message[1]
            elif kind == "end":
                _kind, self.blank_rows, self.typed_high, self.source_blank_rows, read = message
                if self.on_read:
                    self.on_read(read)
                return
            elif kind == "read-error":
                if self.read_error is not None:
                    raise self.read_error(message[1], message[2])
                raise ChildFailed(message[1])
            else:
                raise ChildFailed(message[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def use_child(source: Any) -> bool:
    """Whether a ``CsvSource`` is read in a child process: a file (not a stream or text) big enough
    to gain from it, unless ``KUNDREG_IMPORT_PROCESS`` says otherwise."""
    path = getattr(source, "path", None)
    if path is None:
        return False
    mode = os.environ.get("KUNDREG_IMPORT_PROCESS", "")
    if mode in ("0", "1"):
        return mode == "1"
    return (source.total_bytes or 0) >= PROCESS_MIN_BYTES
