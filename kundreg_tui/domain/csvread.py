"""Reading a CSV or text file robustly, streamed.

The import wizard, the paste import and the CLI read their input through this module. It knows
nothing about customers: it turns bytes into records of strings, with the physical line number of
each record, and refuses input that is not a CSV file with a message a user can act on.

Overview
--------
* :func:`detect_encoding` decides the encoding: a BOM decides; else strict UTF-8 over the whole
  input (streamed in chunks, never loaded into memory); else Windows-1252 (what Swedish Excel
  writes), or ISO-8859-1 if the file has bytes Windows-1252 does not define.
* :func:`sniff_settings` proposes :class:`ReadSettings` (encoding, delimiter, Excel's ``sep=``
  line) for a file; the UI shows them and lets the user change each one.
* :func:`open_csv` / :func:`open_text` return a :class:`CsvSource` whose
  :meth:`CsvSource.iter_records` streams :class:`Record` objects. Memory does not grow with the
  size of the file.

Line numbers
------------
Every line number in this module is a 1-based *physical* line of the input, as an editor shows it,
counting a skipped ``sep=`` line and the rows before ``start_row`` too. A record whose quoted field
holds line breaks spans several physical lines; it is reported by the line where it starts.

Start row and header row
------------------------
``ReadSettings.start_row`` is the physical line where reading starts; the lines before it are
skipped unread (a title line of some other program's export, say). ``ReadSettings.has_header``
says that the first record read is the header row (column names) and the data starts after it.
The seeds' advice "om du har rubriker i första raden bör du välja att starta importen från rad 2"
is therefore either ``has_header=True, start_row=1`` (header in line 1, data from line 2, columns
named after the header) or ``has_header=False, start_row=2`` (line 1 skipped, columns unnamed:
"Kolumn 1", "Kolumn 2", …). :attr:`ReadSettings.header_row` and :attr:`ReadSettings.data_row`
give the line numbers for the UI to show.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, NamedTuple, TextIO, cast

from kundreg_tui.i18n import _, ngettext

__all__ = [
    "DELIMITERS",
    "MAX_FIELD_LENGTH",
    "PASTE_DELIMITERS",
    "CsvReadError",
    "CsvSource",
    "EncodingGuess",
    "ReadSettings",
    "Record",
    "Source",
    "delimiter_label",
    "detect_encoding",
    "open_csv",
    "open_text",
    "preview_lines",
    "sniff_delimiter",
    "sniff_settings",
    "strip_excel_guard",
]

# A path (str or PathLike), the bytes of a file, or an open stream (binary or text).
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | TextIO

#: Delimiters proposed for a file, in order of preference on a tie.
DELIMITERS: tuple[str, ...] = (";", ",", "\t", "|")
#: Delimiters proposed for pasted text (the paste format line), in order of preference on a tie.
PASTE_DELIMITERS: tuple[str, ...] = (",", ";", "\t")
#: Longest field accepted. No customer field is longer than 4,000 characters; a field over this
#: limit almost always means a quote that is never closed.
MAX_FIELD_LENGTH = 10_000
#: Lines read and checked at once by :meth:`CsvSource.iter_records`.
BATCH_LINES = 256
#: How much of the input is read up front: magic numbers, binary check, sniffing, preview.
HEAD_SIZE = 64 * 1024
#: Chunk size for streaming the whole input (encoding check, parsing).
CHUNK_SIZE = 1024 * 1024
#: Lines used to judge a delimiter's consistency.
SNIFF_LINES = 20

# Marks the header record inside the reading loop (never seen outside this module).
_HEADER = "\x00header"
_GUARD_NEXT = frozenset("=+-@\t\r\n'")
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    # UTF-32 before UTF-16: the UTF-32 LE BOM starts with the UTF-16 LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)
# Bytes Windows-1252 leaves undefined (Python's cp1252 codec refuses them).
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEP_LINE = re.compile(r'^"?sep=(.)"?[,;\t|]*\r?\n?$', re.IGNORECASE)


class CsvReadError(Exception):
    """The input cannot be read as CSV. ``message`` is for the user (already translated)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


class EncodingGuess(NamedTuple):
    """The encoding chosen for an input, why, and how many bytes of BOM it starts with."""

    name: str
    reason: str
    bom_len: int = 0


class Record(NamedTuple):
    """One data record.

    ``line`` is the physical line where the record starts; ``values`` are the fields as read
    (raw: not trimmed, not normalised; the Excel guard undone when the settings say so);
    ``problem`` is a translated message when the record cannot be used as it stands, else
    ``None``. A record with a problem is still yielded: one bad row never refuses the whole file.

    Without a problem ``values`` has exactly one entry per header column (empty fields past the
    last column, as in ``a;b;;``, are dropped). With one, it has as many as the row had (wrong
    number of fields), or none (bad quoting: the csv module gives no fields).
    """

    line: int
    values: list[str]
    problem: str | None = None


@dataclass(frozen=True)
class ReadSettings:
    """How a file is read. ``None`` for encoding or delimiter means "detect".

    * ``encoding``: a Python codec name (``utf-8``, ``utf-8-sig``, ``cp1252``, ``utf-16-le``…).
      A BOM at the start of the input is skipped whatever the encoding.
    * ``delimiter``: one character (``;`` ``,`` tab ``|`` or any other).
    * ``start_row``: 1-based physical line where reading starts; earlier lines are skipped.
    * ``has_header``: the first record read is the header row (the column names).
    * ``quotechar``: the quote character, or ``None`` for a file without quoting.
    * ``skip_sep_line``: line 1 is Excel's ``sep=;`` line; it is skipped (line numbers still count
      it).
    * ``excel_guard``: undo the export's formula neutralisation (see :func:`strip_excel_guard`);
      ``None`` (the default) decides from the input: on for a file that starts with a UTF-8 BOM
      (the signature of "Kundlista för Excel"), off otherwise, so that "Kundinformation som CSV"
      (no BOM, values written as they are) imports back unchanged
      on every data value.
    * ``encoding_reason`` / ``delimiter_reason``: why the detected values were chosen (for the
      UI; not part of equality).
    """

    encoding: str | None = None
    delimiter: str | None = None
    has_header: bool = True
    start_row: int = 1
    quotechar: str | None = '"'
    skip_sep_line: bool = False
    excel_guard: bool | None = None
    encoding_reason: str = field(default="", compare=False)
    delimiter_reason: str = field(default="", compare=False)

    @property
    def first_row(self) -> int:
        """The physical line of the first record read (header or data)."""
        return max(self.start_row, 2 if self.skip_sep_line else 1)

    @property
    def header_row(self) -> int | None:
        """The physical line of the header row, or ``None`` without one."""
        return self.first_row if self.has_header else None

    @property
    def data_row(self) -> int:
        """The physical line where the data starts (assuming a header on one line)."""
        return self.first_row + 1 if self.has_header else self.first_row

    def validate(self) -> None:
        """Raise :class:`CsvReadError` for settings that cannot work."""
        if self.delimiter is not None and (
            len(self.delimiter) != 1 or self.delimiter in "\r\n" or self.delimiter == self.quotechar
        ):
            raise CsvReadError(
                _("Avgränsaren måste vara ett enda tecken, inte radbrytning eller citattecken.")
            )
        if self.quotechar is not None and (len(self.quotechar) != 1 or self.quotechar in "\r\n"):
            raise CsvReadError(_("Citattecknet måste vara ett enda tecken."))
        if self.start_row < 1:
            raise CsvReadError(_("Startraden måste vara 1 eller större."))
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise CsvReadError(
                    _("Okänd teckenkodning: {encoding}").format(encoding=self.encoding)
                ) from None


def strip_excel_guard(value: str) -> str:
    """Undo the export's formula neutralisation of one value.

    The Excel export prepends one ``'`` to a value that starts with ``=`` ``+`` ``-`` ``@``, tab,
    CR, LF or ``'``. This strips exactly one leading ``'`` when the character after it is one of
    those, which is the exact inverse: ``'=SUM(A1)`` → ``=SUM(A1)``, ``''t Hooft`` → ``'t Hooft``,
    while ``'t Hooft`` (not something the export writes) is left as it is.
    """
    if value[:1] == "'" and value[1:2] in _GUARD_NEXT:
        return value[1:]
    return value


def _thousands(number: int) -> str:
    """``10000`` → ``10 000`` (Swedish digit grouping, no-break space)."""
    return f"{number:,}".replace(",", "\u00a0")


def delimiter_label(delimiter: str) -> str:
    """A human name for a delimiter, for the UI and for messages."""
    names = {
        ";": _("semikolon (;)"),
        ",": _("komma (,)"),
        "\t": _("tabb"),
        "|": _("lodstreck (|)"),
        " ": _("mellanslag"),
    }
    return names.get(delimiter, delimiter)


# --------------------------------------------------------------------------------------------
# Encoding


def _bom(sample: bytes) -> EncodingGuess | None:
    for bom, name, label in _BOMS:
        if sample.startswith(bom):
            return EncodingGuess(
                name, _("Filen börjar med en BOM för {encoding}.").format(encoding=label), len(bom)
            )
    return None


def _utf16_without_bom(sample: bytes) -> EncodingGuess | None:
    """UTF-16 text without BOM: mostly ASCII, so every other byte is NUL."""
    head = sample[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    even_nul, odd_nul = even.count(0), odd.count(0)
    if odd_nul >= 0.4 * len(odd) and even_nul <= 0.02 * len(even):
        return EncodingGuess("utf-16-le", _("Texten ser ut som UTF-16 LE utan BOM."), 0)
    if even_nul >= 0.4 * len(even) and odd_nul <= 0.02 * len(odd):
        return EncodingGuess("utf-16-be", _("Texten ser ut som UTF-16 BE utan BOM."), 0)
    return None


def _iter_chunks(
    whole: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO,
) -> Iterator[bytes]:
    if isinstance(whole, bytes | bytearray | memoryview):
        data = bytes(whole)
        for start in range(0, len(data), CHUNK_SIZE):
            yield data[start : start + CHUNK_SIZE]
        return
    if isinstance(whole, str | os.PathLike):
        with open(whole, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk
        return
    stream = whole
    position = stream.tell() if stream.seekable() else None
    try:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk
    finally:
        if position is not None:
            stream.seek(position)


def _first_invalid_utf8(chunks: Iterable[bytes]) -> tuple[int, int] | None:
    """Return (byte offset, byte value) of the first invalid UTF-8, or ``None``."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    for chunk in chunks:
        # The decoder may hold up to 3 bytes of an incomplete sequence from the last chunk; an
        # error's position counts from the start of those.
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return offset - pending + exc.start, exc.object[exc.start]
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return offset - len(exc.object) + exc.start, exc.object[exc.start]
    return None


def detect_encoding(
    sample: bytes,
    whole: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO | None = None,
) -> EncodingGuess:
    """Guess the encoding of an input from its first bytes (``sample``) and, for UTF-8, all of it.

    A BOM decides (UTF-8, UTF-16 LE/BE, UTF-32). Else the whole input (``whole``: bytes, a path,
    or a binary stream, read in chunks and put back where it was) must be strict UTF-8 to be read
    as UTF-8; without ``whole`` only the sample is checked. Else it is Windows-1252, the encoding
    Swedish Excel saves "CSV (semikolonavgränsad)" in, or ISO-8859-1 when bytes that
    Windows-1252 leaves undefined occur. UTF-16 without a BOM is recognised by its NUL bytes.
    """
    bom = _bom(sample)
    if bom is not None:
        return bom
    if b"\x00" in sample:
        utf16 = _utf16_without_bom(sample)
        if utf16 is not None:
            return utf16
    if whole is None:
        invalid = _first_invalid_utf8([sample])
        if invalid is None or invalid[0] >= len(sample) - 3:
            # Valid, or only cut off in the middle of a character at the end of the sample.
            if sample.isascii():
                return EncodingGuess("utf-8", _("Texten innehåller bara ASCII-tecken."))
            return EncodingGuess("utf-8", _("Texten är giltig UTF-8."))
        chunks: Iterable[bytes] = [sample]
    else:
        invalid = _first_invalid_utf8(_iter_chunks(whole))
        if invalid is None:
            return EncodingGuess("utf-8", _("Hela filen är giltig UTF-8."))
        chunks = _iter_chunks(whole)
    position, byte = invalid
    if any(undefined in chunk for chunk in chunks for undefined in _CP1252_UNDEFINED):
        return EncodingGuess(
            "latin-1",
            _(
                "Filen är inte UTF-8 (byte 0x{byte:02X} vid position {position}) och innehåller "
                "byte som Windows-1252 saknar; den läses som ISO-8859-1."
            ).format(byte=byte, position=position),
        )
    return EncodingGuess(
        "cp1252",
        _(
            "Filen är inte UTF-8 (byte 0x{byte:02X} vid position {position}); den läses som "
            "Windows-1252, som Excel sparar CSV i."
        ).format(byte=byte, position=position),
    )


def _is_wide(encoding: str) -> bool:
    name = codecs.lookup(encoding).name
    return name.startswith(("utf-16", "utf-32"))


# --------------------------------------------------------------------------------------------
# Refusals that the first bytes decide


def _check_head(head: bytes, encoding: str | None) -> None:
    """Refuse an empty input, an Excel file, a binary file."""
    if not head.strip(b" \t\r\n\xef\xbb\xbf\xfe\xff"):
        raise CsvReadError(_("Filen är tom."))
    if head.startswith(_XLSX_MAGIC):
        if b"opendocument.spreadsheet" in head[:200]:
            raise CsvReadError(
                _(
                    "Det här är ett OpenDocument-kalkylark (.ods), inte CSV. Spara det som "
                    "CSV (UTF-8) i ditt kalkylprogram och välj den filen i stället."
                )
            )
        raise CsvReadError(
            _(
                "Det här är en Excel-fil, inte CSV. Spara den som CSV (UTF-8) i Excel, eller "
                "exportera den som CSV från ditt kalkylprogram, och välj den filen i stället."
            )
        )
    if head.startswith(_OLE_MAGIC):
        raise CsvReadError(
            _(
                "Det här är en Excel-fil (äldre .xls-format), inte CSV. Spara den som CSV (UTF-8) "
                "i Excel, eller exportera den som CSV från ditt kalkylprogram, och välj den filen "
                "i stället."
            )
        )
    if head.startswith(b"%PDF"):
        raise CsvReadError(_("Det här är en PDF-fil, inte CSV."))
    wide = encoding is not None and _is_wide(encoding)
    nul = head.find(b"\x00") if not wide else -1
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise CsvReadError(
            _(
                "Filen innehåller NUL-tecken (första på rad {line}) och verkar vara en binärfil, "
                "inte en CSV-fil."
            ).format(line=line),
            line,
        )


# --------------------------------------------------------------------------------------------
# Sniffing


def _field_counts(text: str, delimiter: str, quotechar: str | None, limit: int) -> list[int]:
    """Fields per record in the first ``limit`` non-blank records of ``text`` (quote-aware)."""
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quotechar or '"',
        quoting=csv.QUOTE_MINIMAL if quotechar else csv.QUOTE_NONE,
        strict=False,
    )
    counts: list[int] = []
    try:
        for row in reader:
            if row:
                counts.append(len(row))
                if len(counts) >= limit:
                    break
    except csv.Error:
        pass
    return counts


def sniff_delimiter(
    text: str,
    candidates: tuple[str, ...] = DELIMITERS,
    quotechar: str | None = '"',
    default: str | None = None,
) -> tuple[str, str]:
    """Propose a delimiter for ``text`` whose first record is the header; return (delimiter, why).

    Each candidate is counted outside quotes in the header record; the candidate found there
    whose count also holds in most of the following records (up to 20) wins, then the one found
    most often in the header, then the more consistent one, then the order of ``candidates``.
    Without any candidate in the header, ``default`` (or the first candidate) is proposed.
    """
    lines = text
    if not text.endswith(("\n", "\r")):
        # Drop a last line that may have been cut off by the sample size.
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut > 0:
            lines = text[: cut + 1]
    scored: list[tuple[bool, int, float, int, str]] = []
    for order, delimiter in enumerate(candidates):
        counts = _field_counts(lines, delimiter, quotechar, SNIFF_LINES + 1)
        if not counts or counts[0] < 2:
            continue
        header, rest = counts[0], counts[1:]
        consistency = sum(1 for c in rest if c == header) / len(rest) if rest else 1.0
        scored.append((consistency >= 0.8, header - 1, consistency, -order, delimiter))
    if not scored:
        chosen = default or candidates[0]
        return chosen, _("Ingen avgränsare hittades i rubrikraden; filen läses som en enda kolumn.")
    best = max(scored)
    message = ngettext(
        "{delimiter} förekommer {count} gång i rubrikraden.",
        "{delimiter} förekommer {count} gånger i rubrikraden.",
        best[1],
    )
    return best[4], message.format(delimiter=delimiter_label(best[4]).capitalize(), count=best[1])


def _sep_line(first_line: str) -> str | None:
    """The delimiter named by Excel's ``sep=;`` line, or ``None``."""
    match = _SEP_LINE.match(first_line.lstrip("\ufeff"))
    return match.group(1) if match else None


def _decode_head(head: bytes, encoding: str, truncated: bool) -> str:
    text = head.decode(encoding, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    if truncated:
        # Drop the line cut off by the sample size (and a half character).
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut > 0:
            text = text[: cut + 1]
    return text


def _skip_lines(text: str, count: int) -> str:
    position = 0
    for _i in range(count):
        match = _LINE_BREAK.search(text, position)
        if match is None:
            return ""
        position = match.end()
    return text[position:]


def sniff_settings(source: Source, *, start_row: int = 1) -> ReadSettings:
    """Propose reading settings for a file: encoding, delimiter and Excel's ``sep=`` line.

    Raises :class:`CsvReadError` for an empty file, an Excel file, a binary file. The header is
    assumed to be in ``start_row`` (``has_header=True``); the UI lets the user change it. The
    encoding check reads the whole file (streamed); the rest looks at its first 64 KiB.
    """
    opened = _Opened.open(source)
    if opened.text is not None:
        return _sniff_decoded(_text_head(opened.text), None, start_row, DELIMITERS)
    guess = opened.guess_encoding()
    _check_head(opened.head, guess.name)
    text = _decode_head(opened.head, guess.name, opened.truncated)
    return _sniff_decoded(text, guess, start_row, DELIMITERS)


def _text_head(text: str) -> str:
    return text[:HEAD_SIZE].removeprefix("\ufeff")


def _sniff_decoded(
    text: str, guess: EncodingGuess | None, start_row: int, candidates: tuple[str, ...]
) -> ReadSettings:
    first = _LINE_BREAK.split(text, maxsplit=1)[0] if text else ""
    sep = _sep_line(first)
    encoding = guess.name if guess else None
    reason = guess.reason if guess else ""
    if sep is not None:
        return ReadSettings(
            encoding=encoding,
            delimiter=sep,
            start_row=start_row,
            skip_sep_line=True,
            encoding_reason=reason,
            delimiter_reason=_("Filens första rad anger avgränsaren: {line}").format(line=first),
        )
    delimiter, why = sniff_delimiter(_skip_lines(text, start_row - 1), candidates)
    return ReadSettings(
        encoding=encoding,
        delimiter=delimiter,
        start_row=start_row,
        encoding_reason=reason,
        delimiter_reason=why,
    )


# --------------------------------------------------------------------------------------------
# Opening sources


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (for progress)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _Opened:
    """An input opened for reading: the head (first bytes or text) and how to reopen it."""

    def __init__(self) -> None:
        self.path: str | os.PathLike[str] | None = None
        self.data: bytes | None = None
        self.stream: BinaryIO | None = None
        self.text: str | None = None
        self.head: bytes = b""
        self.truncated = False
        self.total: int | None = None
        self._stream_start = 0
        self._stream_seekable = False
        self._consumed = False

    @classmethod
    def open(cls, source: Source) -> _Opened:
        opened = cls()
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.is_dir():
                raise CsvReadError(_("{path} är en mapp, inte en fil.").format(path=source))
            try:
                with open(path, "rb") as handle:
                    opened.total = os.fstat(handle.fileno()).st_size
                    opened.head = handle.read(HEAD_SIZE)
            except FileNotFoundError:
                raise CsvReadError(_("Filen finns inte: {path}").format(path=source)) from None
            except PermissionError:
                raise CsvReadError(
                    _("Filen kan inte läsas (behörighet saknas): {path}").format(path=source)
                ) from None
            except OSError as exc:
                raise CsvReadError(
                    _("Filen kan inte läsas: {error}").format(error=exc.strerror or exc)
                ) from None
            opened.path = source
        elif isinstance(source, bytes | bytearray | memoryview):
            opened.data = bytes(source)
            opened.total = len(opened.data)
            opened.head = opened.data[:HEAD_SIZE]
        elif isinstance(source, io.TextIOBase):
            opened.text = cast(TextIO, source).read()
            opened.total = len(opened.text)
        else:
            stream = cast(BinaryIO, source)
            opened.stream = stream
            opened._stream_seekable = stream.seekable()
            if opened._stream_seekable:
                opened._stream_start = stream.tell()
                stream.seek(0, io.SEEK_END)
                opened.total = stream.tell() - opened._stream_start
                stream.seek(opened._stream_start)
            opened.head = stream.read(HEAD_SIZE)
            if opened._stream_seekable:
                stream.seek(opened._stream_start)
        if opened.text is None:
            opened.truncated = len(opened.head) >= HEAD_SIZE and opened.total != len(opened.head)
        return opened

    @property
    def reopenable(self) -> bool:
        return self.stream is None or self._stream_seekable

    def guess_encoding(self) -> EncodingGuess:
        if self.path is not None:
            return detect_encoding(self.head, self.path)
        if self.data is not None:
            return detect_encoding(self.head, self.data)
        if self.stream is not None and self._stream_seekable:
            return detect_encoding(self.head, self.stream)
        return detect_encoding(self.head)

    def binary(self) -> tuple[BinaryIO, BinaryIO | None]:
        """A fresh binary stream from the start, and the handle to close afterwards."""
        if self.path is not None:
            handle = open(self.path, "rb", buffering=CHUNK_SIZE)
            return handle, handle
        if self.data is not None:
            return io.BytesIO(self.data), None
        assert self.stream is not None
        if self._stream_seekable:
            self.stream.seek(self._stream_start)
            return self.stream, None
        if self._consumed:
            raise RuntimeError("a non-seekable stream can be read only once")
        self._consumed = True
        return cast(BinaryIO, _PrefixedStream(self.head, self.stream)), None


class _PrefixedStream(io.RawIOBase):
    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        size = len(buffer)
        if self._prefix:
            data = self._prefix[:size]
            self._prefix = self._prefix[size:]
        else:
            data = self._stream.read(size)
        buffer[: len(data)] = data
        return len(data)


# --------------------------------------------------------------------------------------------
# The source


class CsvSource:
    """An input opened for reading with settings resolved. Made by :func:`open_csv`.

    * ``header``: the column names (stripped; trailing unnamed columns dropped), or
      "Kolumn 1", "Kolumn 2", … (as many as the first data record has) without a header row.
    * ``header_line``: physical line of the header row (``None`` without one).
    * ``settings``: the settings in force, with encoding and delimiter filled in.
    * ``encoding`` / ``encoding_reason``: the encoding used and why (``None`` for text).
    * ``total_bytes`` / ``bytes_read``: progress of :meth:`iter_records` (characters for a text
      source; ``total_bytes`` is ``None`` when unknown). ``bytes_read`` runs up to a buffer
      (1 MiB) ahead of the record last yielded.
    * ``blank_rows``: empty records skipped by the last pass (lines with nothing, or only
      delimiters, as Excel leaves below a sheet's data).

    Progress and ``blank_rows`` follow the pass started last; run one pass at a time.
    """

    def __init__(self, opened: _Opened, settings: ReadSettings, *, is_text: bool) -> None:
        self._opened = opened
        self.settings = settings
        self.encoding: str | None = settings.encoding
        self.encoding_reason = settings.encoding_reason
        self.total_bytes: int | None = opened.total
        self._is_text = is_text
        self._counter: _CountingReader | None = None
        self._text_stream: io.StringIO | None = None
        self.blank_rows = 0
        self.header: list[str] = []
        self.header_line: int | None = None
        self._pending: Iterator[Record] | None = None
        self._read_elsewhere: int | None = None
        self._start()

    @property
    def path(self) -> str | os.PathLike[str] | None:
        """The file read, when the input is one (not a stream or text)."""
        return self._opened.path

    def note_read_elsewhere(self, count: int) -> None:
        """Progress of a pass run by another process (``bytes_read`` reports it)."""
        self._read_elsewhere = count

    @property
    def bytes_read(self) -> int:
        if self._read_elsewhere is not None:
            return self._read_elsewhere
        if self._counter is not None:
            return self._counter.count
        if self._text_stream is not None and not self._text_stream.closed:
            return self._text_stream.tell()
        return self.total_bytes or 0 if self._text_stream is not None else 0

    # -- reading

    def _open_lines(self) -> tuple[Iterator[str], list[io.IOBase]]:
        """Physical lines (with their line endings) from the start; opened eagerly."""
        self._read_elsewhere = None
        if self._opened.text is not None:
            stream = io.StringIO(self._opened.text, newline="")
            self._text_stream, self._counter = stream, None
            return stream, [stream]
        assert self.encoding is not None
        binary, handle = self._opened.binary()
        counter = _CountingReader(binary)
        self._counter, self._text_stream = counter, None
        buffered = io.BufferedReader(counter, buffer_size=CHUNK_SIZE)
        # Closing the wrapper closes our counting reader only, never the caller's stream.
        wrapper = io.TextIOWrapper(buffered, encoding=self.encoding, errors="strict", newline="")
        closers: list[io.IOBase] = [wrapper]
        if handle is not None:
            closers.append(cast(io.IOBase, handle))
        return wrapper, closers

    def _scan(self, *, with_header: bool) -> Generator[Record, None, None]:
        """Open the input from the start and read its records.

        With a header row, the header record is yielded first (its ``problem`` is ``_HEADER``)
        when ``with_header``, else skipped. Opening happens now; reading when iterated.
        """
        lines, closers = self._open_lines()
        return self._records(lines, closers, with_header)

    def _records(  # the hot loop, kept in one frame on purpose
        self, lines: Iterator[str], closers: list[io.IOBase], with_header: bool
    ) -> Generator[Record, None, None]:
        """The records of ``lines``, from their start.

        Lines come ``BATCH_LINES`` at a time. A batch without NUL or overlong line that parses
        without an error into one record a line (no quoted line break), with no value starting with
        the Excel guard's ``'``, is checked as a whole and its records made without a Python step
        per row; any other batch (and the header) goes through the record-by-record loop, which
        reads on past the batch to the end of a record that does, and says what is wrong where.
        """
        settings = self.settings
        new = tuple.__new__
        limit = MAX_FIELD_LENGTH
        guard = settings.excel_guard
        guard_next = _GUARD_NEXT
        header_pending = settings.has_header
        ncols = len(self.header) if not header_pending else 0
        header_word = _("rubriken") if settings.has_header else _("första raden")
        blank = 0

        def other_width(start: int, row: list[str]) -> Record:
            """A record whose field count is not the header's."""
            if len(row) > ncols and not any(row[ncols:]):
                # Trailing empty fields (``a;b;;``): Excel writes them; not a problem.
                return new(Record, (start, row[:ncols], None))
            problem = _("Rad {line} har {count} fält, {header} har {expected}.").format(
                line=start, count=len(row), header=header_word, expected=ncols
            )
            return new(Record, (start, row, problem))

        try:
            skip = settings.first_row - 1
            try:
                first = next(lines, None)
                if first is not None and first.startswith("\ufeff"):
                    first = first[1:]
                for _i in range(skip):
                    if first is None:
                        break
                    first = next(lines, None)
            except UnicodeDecodeError:
                raise self._decode_error(1) from None
            if first is None:
                return
            dialect = {
                "delimiter": settings.delimiter or ",",
                "quotechar": settings.quotechar or '"',
                "quoting": csv.QUOTE_MINIMAL if settings.quotechar else csv.QUOTE_NONE,
                "doublequote": True,
                "skipinitialspace": False,
                "strict": True,
            }
            source = itertools.chain((first,), lines)
            previous = skip  # the physical line the last record ended on
            batch: list[str] = []
            while True:
                if not header_pending and ncols:
                    # ---- a batch of lines at once
                    batch = []
                    try:
                        batch.extend(itertools.islice(source, BATCH_LINES))
                    except UnicodeDecodeError:
                        raise self._decode_error(previous + len(batch) + 1) from None
                    if not batch:
                        return
                    text = "".join(batch)
                    rows: list[list[str]] | None = None
                    if not ("\x00" in text or (len(text) > limit and max(map(len, batch)) > limit)):
                        try:
                            rows = list(csv.reader(batch, **dialect))  # type: ignore[arg-type]
                        except csv.Error:
                            rows = None
                        if rows is not None and len(rows) != len(batch):
                            rows = None  # a quoted line break: a record over several lines
                        if rows and guard and "'" in text:
                            cells = "\x1f" + "\x1f".join(itertools.chain.from_iterable(rows))
                            if "\x1f'" in cells:
                                rows = None  # a value the Excel export guarded
                    if rows is not None:
                        first_line = previous + 1
                        previous += len(batch)
                        lines_of: Iterable[int] = range(first_line, previous + 1)
                        if not all(map(any, rows)):  # blank lines: left out, counted
                            keep = [i for i, row in enumerate(rows) if any(row)]
                            blank += len(rows) - len(keep)
                            rows = [rows[i] for i in keep]
                            lines_of = [first_line + i for i in keep]
                        if not rows:
                            continue
                        if min(map(len, rows)) == max(map(len, rows)) == ncols:
                            yield from map(new, itertools.repeat(Record),
                                           zip(lines_of, rows, itertools.repeat(None)))
                            continue
                        for start, row in zip(lines_of, rows, strict=True):
                            yield new(Record, (start, row, None)) if len(row) == ncols else other_width(start, row)
                        continue
                # ---- record by record: the header, and any batch the fast path cannot take
                base = previous
                target = previous + len(batch)
                reader = csv.reader(itertools.chain(batch, source), **dialect)  # type: ignore[arg-type]
                batch = []
                next_row = reader.__next__
                while header_pending or not ncols or previous < target:
                    try:
                        row = next_row()
                    except StopIteration:
                        return
                    except csv.Error as exc:
                        start = previous + 1
                        previous = base + reader.line_num
                        outcome = self._csv_problem(start, previous, str(exc))
                        if isinstance(outcome, CsvReadError):
                            raise outcome from None
                        if header_pending:
                            raise CsvReadError(
                                _("Rubrikraden kan inte läsas. {problem}").format(problem=outcome),
                                start,
                            ) from None
                        yield new(Record, (start, [], outcome))
                        continue
                    except UnicodeDecodeError:
                        raise self._decode_error(previous + 1) from None
                    start = previous + 1
                    previous = base + reader.line_num
                    if not any(row):
                        blank += 1
                        continue
                    # One join gates the rarer checks: field length, NUL, the Excel guard.
                    joined = "\x1f".join(row)
                    if len(joined) > limit and max(map(len, row)) > limit:
                        raise self._too_long(start, row)
                    if "\x00" in joined:
                        raise self._nul_error(start)
                    if header_pending:
                        header_pending = False
                        if with_header:
                            yield new(Record, (start, row, _HEADER))
                        ncols = len(self.header)
                        continue
                    if guard and (joined[:1] == "'" or "\x1f'" in joined):
                        row = [v[1:] if v[:1] == "'" and v[1:2] in guard_next else v for v in row]
                    if not ncols:
                        ncols = len(self.header) or len(row)
                    yield new(Record, (start, row, None)) if len(row) == ncols else other_width(start, row)
        finally:
            self.blank_rows = blank
            for closer in closers:
                closer.close()

    def _decode_error(self, fallback: int) -> CsvReadError:
        line = self._decode_error_line(fallback)
        return CsvReadError(
            _(
                "Filen kan inte läsas som {encoding} (rad {line}). Välj en annan teckenkodning."
            ).format(encoding=self.encoding, line=line),
            line,
        )

    def _decode_error_line(self, fallback: int) -> int:
        """The physical line of the first byte the encoding cannot decode."""
        if not self._opened.reopenable or self.encoding is None:
            return fallback
        binary, handle = self._opened.binary()
        try:
            decoder = codecs.getincrementaldecoder(self.encoding)("strict")
            newlines = 0
            while chunk := binary.read(CHUNK_SIZE):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    offset = max(exc.start - len(decoder.getstate()[0]), 0)
                    return newlines + chunk.count(b"\n", 0, offset) + 1
                newlines += chunk.count(b"\n")
            return fallback
        finally:
            if handle is not None:
                handle.close()

    @staticmethod
    def _csv_problem(start: int, end: int, error: str) -> CsvReadError | str:
        """A record the csv module refused: a refusal of the input, or a per-row problem."""
        if "unexpected end of data" in error:
            return CsvReadError(
                _(
                    'Rad {line}: ett citattecken (") som börjar ett fält på rad {line} avslutas '
                    "aldrig; resten av filen blir en del av det fältet. Kontrollera raden."
                ).format(line=start),
                start,
            )
        if "field larger than field limit" in error:
            return CsvReadError(
                _(
                    "Rad {line}: ett fält är längre än {limit} tecken. Troligen saknas ett "
                    'avslutande citattecken (") i fältet som börjar på rad {line}.'
                ).format(line=start, limit=_thousands(MAX_FIELD_LENGTH)),
                start,
            )
        if end > start:
            return _(
                'Rad {line}–{end}: felaktigt citattecken ("): ett citerat fält som börjar på rad '
                "{line} avslutas inte med citattecken följt av avgränsare eller radslut."
            ).format(line=start, end=end)
        return _(
            'Rad {line}: felaktigt citattecken ("): efter ett avslutande citattecken måste '
            "avgränsaren eller radslutet komma."
        ).format(line=start)

    @staticmethod
    def _too_long(line: int, row: list[str]) -> CsvReadError:
        return CsvReadError(
            _(
                "Rad {line}: ett fält har {length} tecken, fler än de {limit} som tillåts. "
                'Kontrollera att citattecknen (") i filen är parade.'
            ).format(
                line=line,
                length=_thousands(max(map(len, row))),
                limit=_thousands(MAX_FIELD_LENGTH),
            ),
            line,
        )

    def _nul_error(self, line: int) -> CsvReadError:
        if self._is_text:
            message = _("Rad {line} innehåller ett NUL-tecken (0x00). Texten kan inte läsas in.")
        else:
            message = _(
                "Rad {line} innehåller ett NUL-tecken (0x00). Filen verkar vara skadad eller binär."
            )
        return CsvReadError(message.format(line=line), line)

    def _empty_error(self) -> CsvReadError:
        if self.settings.start_row > 1:
            return CsvReadError(
                _("Det finns inga rader att läsa från rad {line}.").format(
                    line=self.settings.first_row
                ),
                self.settings.first_row,
            )
        return CsvReadError(_("Texten är tom.") if self._is_text else _("Filen är tom."))

    def _start(self) -> None:
        """Read the header and the first data record: refuse what cannot be imported at all."""
        records = self._scan(with_header=True)
        try:
            first = next(records, None)
            if first is None:
                raise self._empty_error()
            if first.problem is _HEADER:
                header = [h.strip() for h in first.values]
                while len(header) > 1 and header[-1] == "":
                    header.pop()  # ``Namn;Ort;;``: trailing unnamed columns
                self._check_duplicates(header, first.line)
                self.header = header
                self.header_line = first.line
                first = next(records, None)
                if first is None:
                    raise CsvReadError(
                        _("Texten har bara en rubrikrad och inga rader med kunder.")
                        if self._is_text
                        else _("Filen har bara en rubrikrad och inga rader med kunder."),
                        self.header_line,
                    )
            else:
                width = len(first.values) or 1
                self.header = [_("Kolumn {n}").format(n=i + 1) for i in range(width)]
        except BaseException:
            records.close()
            raise
        self._pending = itertools.chain((first,), records)

    @staticmethod
    def _check_duplicates(header: list[str], line: int) -> None:
        seen: dict[str, list[int]] = {}
        for index, name in enumerate(header):
            if name:
                seen.setdefault(name.casefold(), []).append(index)
        duplicates = [(header[cols[0]], cols) for cols in seen.values() if len(cols) > 1]
        if not duplicates:
            return
        parts = [
            _("”{name}” (kolumn {columns})").format(
                name=name, columns=", ".join(str(c + 1) for c in cols)
            )
            for name, cols in duplicates
        ]
        raise CsvReadError(
            _(
                "Rubrikraden (rad {line}) har samma kolumnnamn flera gånger: {names}. Ge "
                "kolumnerna olika namn, eller läs filen utan rubrikrad."
            ).format(line=line, names="; ".join(parts)),
            line,
        )

    def iter_records(self) -> Iterator[Record]:
        """Stream the data records (header excluded) from the start of the input.

        Raises :class:`CsvReadError` for a refusal found on the way (unterminated quote, field
        too long, NUL character, undecodable byte). Each call starts a new pass from the
        beginning, except on a non-seekable stream, which can be read once.
        """
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        return self._scan(with_header=False)

    def preview_records(self, count: int) -> list[Record]:
        """The first ``count`` data records, for the wizard's live view."""
        records = self.iter_records()
        try:
            return list(itertools.islice(records, count))
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()

    def preview(self, count: int = 20) -> list[str]:
        """The first ``count`` physical lines, decoded with the current encoding, unparsed.

        Line endings are removed; undecodable bytes show as U+FFFD; control characters are left
        for the UI to make visible (``text.visible``). Item ``i`` of the list is line ``i + 1``
        of the input. Only the first 64 KiB are looked at.
        """
        return _preview(self._opened, self.encoding, count)


def _preview(opened: _Opened, encoding: str | None, count: int) -> list[str]:
    if opened.text is not None:
        text = _text_head(opened.text)
        truncated = len(opened.text) > HEAD_SIZE
    else:
        text = _decode_head(opened.head, encoding or "utf-8", False)
        truncated = opened.truncated
    lines = _LINE_BREAK.split(text)
    if truncated and len(lines) > 1:
        lines.pop()
    elif lines and lines[-1] == "":
        lines.pop()
    return lines[:count]


def preview_lines(source: Source, encoding: str | None = None, count: int = 20) -> list[str]:
    """The first ``count`` physical lines of ``source``, as :meth:`CsvSource.preview` gives them.

    For the wizard's live view when the file cannot be opened with the current settings (the
    wrong encoding, say): nothing is refused here. ``encoding=None`` detects it. Only the first
    64 KiB are looked at.
    """
    opened = _Opened.open(source)
    if opened.text is None and encoding is None:
        encoding = opened.guess_encoding().name
    elif encoding is not None:
        codecs.lookup(encoding)
    return _preview(opened, encoding, count)


def open_csv(source: Source, settings: ReadSettings | None = None) -> CsvSource:
    """Open ``source`` (a path, bytes, or a binary or text stream) for reading.

    Settings left ``None`` (encoding, delimiter) are detected, as :func:`sniff_settings` does;
    a ``sep=`` first line is always recognised and skipped. Raises :class:`CsvReadError` for what
    cannot be imported at all: empty, header only, Excel or binary file, duplicate column names,
    an unreadable header, and for refusals found in the first data record. A text stream is read
    into memory (use a path or a binary stream for big input). A non-seekable binary stream (a
    pipe) is read once, and its encoding is detected from its first 64 KiB only.
    """
    return _open(source, settings or ReadSettings(), DELIMITERS)


def _open(source: Source, settings: ReadSettings, candidates: tuple[str, ...]) -> CsvSource:
    settings.validate()
    opened = _Opened.open(source)
    if opened.text is not None:
        if not opened.text.strip():
            raise CsvReadError(_("Texten är tom."))
        text = _text_head(opened.text)
        settings = replace(settings, encoding=None, encoding_reason="")
    else:
        if settings.encoding is None:
            guess = opened.guess_encoding()
            settings = replace(settings, encoding=guess.name, encoding_reason=guess.reason)
        elif not settings.encoding_reason:
            settings = replace(settings, encoding_reason=_("Vald teckenkodning."))
        assert settings.encoding is not None
        _check_head(opened.head, settings.encoding)
        text = _decode_head(opened.head, settings.encoding, opened.truncated)
    if settings.excel_guard is None:
        settings = replace(settings, excel_guard=opened.text is None
                           and opened.head.startswith(b"\xef\xbb\xbf"))
    sniffed = _sniff_decoded(text, None, settings.start_row, candidates)
    if sniffed.skip_sep_line and not settings.skip_sep_line:
        settings = replace(settings, skip_sep_line=True)
    if settings.delimiter is None:
        settings = replace(
            settings, delimiter=sniffed.delimiter, delimiter_reason=sniffed.delimiter_reason
        )
    return CsvSource(opened, settings, is_text=opened.text is not None)


def open_text(text: str, delimiter: str | None = None, *, excel_guard: bool = False) -> CsvSource:
    """Open pasted text: line 1 is the format line (the header), the data follows.

    The delimiter, when not given, is sniffed from the format line among comma, semicolon and
    tab. Typed text is not an Excel export, so the formula guard is not undone by default.
    """
    settings = ReadSettings(delimiter=delimiter, excel_guard=excel_guard)
    return _open(io.StringIO(text), settings, PASTE_DELIMITERS)
