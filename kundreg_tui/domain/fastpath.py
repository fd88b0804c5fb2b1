"""Column-wise validation for the import's million-row path.

``validation.validate_customer(raw, partial=True)`` decides what a value becomes; this module gets
the same answer for a whole chunk of rows at C speed. For each check it first asks one question of
all the values at once (one joined string: is it ASCII or NFC, does it hold a control, bidi or
odd whitespace character, a value with a space at either end, a value longer than a limit; one
regular expression for every e-mail, phone number, postal code or customer number of the chunk;
one look-up per distinct Kundtyp or Land) and only where the answer is "not sure" does it fall
back to the library's own per-value functions (``clean``, ``check_*``, ``phone_warning``), on the
fewest values it can find by halving the group. The fast answers are only ever "this value is
already in its normal form and valid"; everything else is decided by ``validation``.

:func:`validate_rows` is the entry point; :class:`ChunkResult` holds the outcome per column and the
errors and warnings per row, and :meth:`ChunkResult.row` gives one row in the shape of
``validate_customer`` (the property tests compare the two).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kundreg_tui.domain.fields import FIELD_BY_NAME, FIELD_NAMES, KIND_COMPANY, KIND_PERSON
from kundreg_tui.domain.text import fold, natural_key, swedish_key
from kundreg_tui.domain.validation import (
    _PHONE_FAST,
    FieldError,
    check_country,
    check_email,
    check_kind,
    check_number,
    check_org_number,
    check_postal_code,
    check_vat,
    clean,
    phone_warning,
)
from kundreg_tui.i18n import _

__all__ = ["CHECK_ORDER", "ChunkResult", "KeyCache", "given", "validate_rows"]

ROW_SEP = "\x1e"
CELL_SEP = "\x1f"
# The order in which ``validate_customer`` runs its checks (errors are reported in it).
CHECK_ORDER = ("number", "kind", "country", "org_number", "vat_number", "email", "postal_code", "name")
_FIELD_POS = {n: i for i, n in enumerate(FIELD_NAMES)}
_CHECK_POS = {n: i for i, n in enumerate(CHECK_ORDER)}
# Fields whose length the joined-text check bounds; the others are bounded by their own checks.
_TEXT_FIELDS = ("name", "first_name", "last_name", "address", "city", "reference", "notes", "email")
_SMALL_GROUP = 8

# Everything ``clean`` would change or refuse, other than a space at either end: controls (C0 but
# the two separators, DEL, C1), bidi embeddings/overrides/isolates, and every whitespace character
# but the space (all of which ``str.strip`` removes at the ends).
_ODD_CHARS = re.compile(
    "[\x00-\x1d\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u202a-\u202e\u2066-\u2069]"
)
# The same for Latin-1 text as a byte table: odd bytes become 0, both separators 0x1f.
_BYTE_TABLE = bytes(
    0 if (b < 0x1E or 0x7F <= b <= 0xA0) else (0x1F if b in (0x1E, 0x1F) else b) for b in range(256)
)

# Values already in their one stored form (ASCII digits only: the library decides anything else).
_NUMBER_FAST = re.compile(r"[\w\-+/]{1,32}(?:\x00[\w\-+/]{1,32})*")
_EMAIL_ONE = (r"[A-Za-z0-9_%+\-]++(?:\.[A-Za-z0-9_%+\-]++)*+@"
              r"(?:(?!-)[A-Za-z0-9\-]{1,63}+(?<!-)\.)++[A-Za-z]{2,24}+")
_EMAIL_FAST = re.compile(f"{_EMAIL_ONE}(?:\\x00{_EMAIL_ONE})*")
_PHONE_ONE = r"(?:\+46|0)7[0-9][ \-]?+[0-9]{3}[ \-]?+[0-9]{2}[ \-]?+[0-9]{2}"
_PHONE_FAST_ALL = re.compile(f"{_PHONE_ONE}(?:\\x00{_PHONE_ONE})*")
_POSTAL_SE = re.compile(r"[0-9]{3} [0-9]{2}(?:\x00[0-9]{3} [0-9]{2})*")
_VAT_SE = re.compile(r"SE[0-9]{10}01")
_ORG10_ALL = re.compile(r"[0-9]{6}-[0-9]{4}(?:\x00[0-9]{6}-[0-9]{4})*")
_PNR12_ALL = re.compile(r"(?:1[89]|20)[0-9]{6}-[0-9]{4}(?:\x00(?:1[89]|20)[0-9]{6}-[0-9]{4})*")
# Luhn over a pair of digits in a doubled/plain position pair: "ab" -> digitsum(2a) + b.
_LUHN_PAIR = {f"{a}{b}": (2 * a) // 10 + (2 * a) % 10 + b for a in range(10) for b in range(10)}
# The same over three digits in doubled/plain/doubled and plain/doubled/plain positions.
_DIGIT = {str(d): d for d in range(10)}
_LUHN_212 = {f"{a}{b}{c}": (2 * a) // 10 + (2 * a) % 10 + b + (2 * c) // 10 + (2 * c) % 10
             for a in range(10) for b in range(10) for c in range(10)}
_LUHN_121 = {f"{a}{b}{c}": a + (2 * b) // 10 + (2 * b) % 10 + c for a in range(10) for b in range(10) for c in range(10)}
_DATE_OK: dict[str, bool] = {}
_PHONE_CACHE: dict[tuple[str, str], str | None] = {}


def given(value: str | None) -> bool:
    """An import cell counts as given when it holds more than whitespace."""
    return bool(value) and not value.isspace()  # type: ignore[union-attr]


def _luhn10(v: str, a: int, b: int, c: int, d: int, e: int) -> bool:
    p = _LUHN_PAIR
    return (p[v[a:a + 2]] + p[v[b:b + 2]] + p[v[c:c + 2]] + p[v[d:d + 2]] + p[v[e:e + 2]]) % 10 == 0


def _date_ok(yyyymmdd: str) -> bool:
    ok = _DATE_OK.get(yyyymmdd)
    if ok is None:
        try:
            datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
            ok = True
        except ValueError:
            ok = False
        if len(_DATE_OK) < 200_000:
            _DATE_OK[yyyymmdd] = ok
    return ok


def _phone_warning(value: str, country: str) -> str | None:
    if _PHONE_FAST.match(value):
        return None
    key = (value, country)
    if key in _PHONE_CACHE:
        return _PHONE_CACHE[key]
    warning = phone_warning(value, country)
    if len(_PHONE_CACHE) < 50_000:
        _PHONE_CACHE[key] = warning
    return warning


@dataclass
class ChunkResult:
    """The outcome for a chunk of rows.

    ``cols[field][i]``: the value of row ``i`` as ``validate_customer`` leaves it in ``values`` ("" when
    the cell was not given, or when it could not be cleaned); ``errors[i]``: (phase, order, field,
    message), phase 0 for ``clean`` and 1 for the checks; ``warnings[i]``: messages; ``blank``: rows
    with nothing given (skipped by the import).
    """

    fields: list[str]
    empty_clears: bool
    cols: dict[str, list[str]]
    present: dict[str, list[bool]] | None  # given and cleaned, per field (None: every non-empty value)
    errors: dict[int, list[tuple[int, int, str, str]]] = field(default_factory=dict)
    warnings: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    blank: set[int] = field(default_factory=set)

    def reason(self, i: int) -> str:
        """The row's errors joined, in the order ``validate_customer`` reports them."""
        errs = self.errors.get(i)
        if not errs:
            return ""
        return "; ".join(e[3] for e in sorted(errs, key=lambda e: (e[0], e[1])))

    def warning(self, i: int) -> str:
        return "; ".join(w for _f, w in self.warnings.get(i, ()))

    def row(self, i: int) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """Row ``i`` as (values, errors, warnings), the shape of ``validate_customer``."""
        errs = {e[2]: e[3] for e in sorted(self.errors.get(i, ()), key=lambda e: (e[0], e[1]))}
        values: dict[str, str] = {}
        for name in self.fields:
            if self.is_present(name, i):
                values[name] = self.cols[name][i]
        return values, errs, dict(self.warnings.get(i, ()))

    def is_present(self, name: str, i: int) -> bool:
        if self.present is not None and name in self.present:
            return self.present[name][i]
        return self.empty_clears or self.cols[name][i] != ""


class _Chunk:
    def __init__(self, fields: Sequence[str], rows: Sequence[Sequence[str]], empty_clears: bool) -> None:
        self.fields = list(fields)
        self.k = len(self.fields)
        self.n = len(rows)
        self.rows = rows
        self.empty_clears = empty_clears
        self.errors: dict[int, list[tuple[int, int, str, str]]] = {}
        self.warnings: dict[int, list[tuple[str, str]]] = {}
        self.blank: set[int] = set()
        # Cells that were not given (only tracked off the fast path, where "" says it).
        self.absent: dict[str, set[int]] = {}
        # Cells whose clean failed (so not in values).
        self.failed: dict[str, set[int]] = {}
        self.slow_rows: dict[int, list[str]] = {}

    # ------------------------------------------------------------------ errors
    def error(self, i: int, phase: int, name: str, message: str) -> None:
        order = _FIELD_POS[name] if phase == 0 else _CHECK_POS.get(name, 99)
        self.errors.setdefault(i, []).append((phase, order, name, message))

    # ------------------------------------------------------------------ phase 1: clean
    def _text_ok(self, payloads: Sequence[str]) -> bool:
        """True when every value of these rows is already what ``clean`` makes of it (lengths apart,
        checked per column in ``_lengths``): no control, bidi or odd whitespace character, no space
        at either end, NFC. Latin-1 text (Swedish, almost always) is checked as bytes."""
        n = len(payloads)
        big = ROW_SEP.join(payloads)
        checked: bytes | str
        try:
            # Every Latin-1 string is NFC (the range holds no combining mark).
            checked = big.encode("latin-1").translate(_BYTE_TABLE)
        except UnicodeEncodeError:
            if not unicodedata.is_normalized("NFC", big) or _ODD_CHARS.search(big):
                return False
            checked = big.replace(ROW_SEP, CELL_SEP)
            if checked.count(CELL_SEP) != n * self.k - 1:
                return False  # a value holds a separator
            return not (" \x1f" in checked or "\x1f " in checked or checked[:1] == " " or checked[-1:] == " ")
        if b"\x00" in checked or checked.count(b"\x1f") != n * self.k - 1:
            return False
        return not (b"\x1f " in checked or b" \x1f" in checked or checked[:1] == b" " or checked[-1:] == b" ")

    def _lengths(self, cols: dict[str, list[str]], payload_max: int) -> None:
        """Text longer than its field allows: those rows get the library's answer (``clean``)."""
        long_rows: set[int] = set()
        for name in self.fields:
            if name not in _TEXT_FIELDS:
                continue  # bounded by its own check
            limit = FIELD_BY_NAME[name].max_length
            if limit >= payload_max:
                continue
            col = cols[name]
            if max(map(len, col)) > limit:
                long_rows.update(i for i, v in enumerate(col) if len(v) > limit)
        for i in sorted(long_rows - set(self.slow_rows)):
            self._clean_slow(i)
            for name, value in zip(self.fields, self.slow_rows[i], strict=True):
                cols[name][i] = value

    def _clean_slow(self, i: int) -> None:
        row = self.rows[i]
        out: list[str] = []
        any_given = False
        for name, raw in zip(self.fields, row, strict=True):
            if given(raw):
                any_given = True
            elif self.empty_clears:
                raw = ""
            else:
                self.absent.setdefault(name, set()).add(i)
                out.append("")
                continue
            try:
                out.append(clean(name, raw))
            except FieldError as exc:
                self.failed.setdefault(name, set()).add(i)
                self.error(i, 0, exc.field, exc.message)
                out.append("")
        if not any_given:
            self.blank.add(i)
            self.errors.pop(i, None)
        self.slow_rows[i] = out

    def _clean_range(self, payloads: Sequence[str], lo: int, hi: int) -> None:
        if self._text_ok(payloads[lo:hi]):
            return
        if hi - lo <= _SMALL_GROUP:
            for i in range(lo, hi):
                self._clean_slow(i)
            return
        mid = (lo + hi) // 2
        self._clean_range(payloads, lo, mid)
        self._clean_range(payloads, mid, hi)

    # ------------------------------------------------------------------ phase 2: checks
    def _group(self, idx: list[int], col: list[str], fast: Callable[[str], bool],
               slow: Callable[[int], None]) -> None:
        """Run ``fast`` on the joined values of ``idx``; halve the group until it passes or is small."""
        if not idx:
            return
        if fast("\x00".join([col[i] for i in idx])):
            return
        if len(idx) <= _SMALL_GROUP:
            for i in idx:
                slow(i)
            return
        mid = len(idx) // 2
        self._group(idx[:mid], col, fast, slow)
        self._group(idx[mid:], col, fast, slow)

    def _ok_cells(self, name: str, col: list[str]) -> list[int]:
        """Rows whose cell has a value to check (given, non-empty, cleaned)."""
        failed = self.failed.get(name)
        blank = self.blank
        if not failed and not blank:
            return list(range(len(col))) if "" not in col else [i for i, v in enumerate(col) if v]
        return [i for i, v in enumerate(col) if v and i not in blank and not (failed and i in failed)]

    def _exact(self, name: str, col: list[str], i: int, check: Callable[..., str], *args: Any) -> None:
        """The library's own answer for one cell: ``clean`` (idempotent), then ``check``."""
        try:
            value = clean(name, col[i])
        except FieldError as exc:
            self.failed.setdefault(name, set()).add(i)
            self.error(i, 0, exc.field, exc.message)
            col[i] = ""
            return
        col[i] = value
        try:
            col[i] = check(value, *args)
        except FieldError as exc:
            self.error(i, 1, exc.field, exc.message)

    def run(self) -> ChunkResult:
        n, k = self.n, self.k
        rows = self.rows
        payloads = list(map(CELL_SEP.join, rows)) if k > 1 else [r[0] for r in rows]
        if n:
            self._clean_range(payloads, 0, n)
        # Fast rows: a cell is given iff non-empty; a row with nothing is blank.
        empty = CELL_SEP * (k - 1)
        if empty in payloads:
            for i, p in enumerate(payloads):
                if p == empty and i not in self.slow_rows:
                    self.blank.add(i)
                    if self.empty_clears:
                        pass
        if self.slow_rows:
            rows = list(rows)
            for i, cleaned in self.slow_rows.items():
                rows[i] = cleaned
        cols: dict[str, list[str]] = dict(zip(self.fields, map(list, zip(*rows, strict=True)), strict=True)) \
            if n else {f: [] for f in self.fields}
        if n:
            self._lengths(cols, max(map(len, payloads)))
        self._checks(cols)
        present: dict[str, list[bool]] | None = None
        if self.absent or self.failed or self.empty_clears:
            present = {}
            for name in self.fields:
                absent = self.absent.get(name, set())
                failed = self.failed.get(name, set())
                if self.empty_clears:
                    present[name] = [i not in absent and i not in failed for i in range(n)]
                else:
                    present[name] = [bool(v) and i not in failed for i, v in enumerate(cols[name])]
        for i in self.blank:
            self.errors.pop(i, None)
            self.warnings.pop(i, None)
        return ChunkResult(self.fields, self.empty_clears, cols, present, self.errors, self.warnings, self.blank)

    def _given_cells(self, name: str, col: list[str]) -> list[int]:
        """Rows where the field is in ``values`` (given and cleaned), empty included when it clears."""
        failed = self.failed.get(name, set())
        absent = self.absent.get(name, set())
        blank = self.blank
        if self.empty_clears:
            return [i for i in range(len(col)) if i not in failed and i not in absent and i not in blank]
        return [i for i, v in enumerate(col) if v and i not in failed and i not in blank]

    def _checks(self, cols: dict[str, list[str]]) -> None:
        fields = set(self.fields)
        if "number" in fields:
            col = cols["number"]
            self._group(self._ok_cells("number", col), col, lambda j: _NUMBER_FAST.fullmatch(j) is not None,
                        lambda i: self._exact("number", col, i, check_number))
        kinds: list[str] | None = None
        if "kind" in fields:
            kinds = self._distinct("kind", cols["kind"], check_kind)
        countries: list[str] | None = None
        if "country" in fields:
            countries = self._distinct("country", cols["country"], check_country)
        if "org_number" in fields:
            self._org_numbers(cols["org_number"], kinds)
        if "vat_number" in fields:
            col = cols["vat_number"]
            for i in self._ok_cells("vat_number", col):
                v = col[i]
                if not (len(v) == 14 and _VAT_SE.fullmatch(v) and _luhn10(v, 2, 4, 6, 8, 10)):
                    self._exact("vat_number", col, i, check_vat)
        if "email" in fields:
            col = cols["email"]
            self._group(self._ok_cells("email", col), col, lambda j: _EMAIL_FAST.fullmatch(j) is not None,
                        lambda i: self._exact("email", col, i, check_email))
        country_of: Callable[[int], str]
        if countries is not None:
            ctry = countries
            country_of = lambda i: ctry[i] or "SE"  # noqa: E731
            all_se = all(c in ("", "SE") for c in set(ctry))
        else:
            country_of = lambda i: "SE"  # noqa: E731
            all_se = True
        if "postal_code" in fields:
            col = cols["postal_code"]
            cells = self._ok_cells("postal_code", col)
            if not all_se:
                other = [i for i in cells if country_of(i) != "SE"]
                for i in other:
                    self._exact("postal_code", col, i, check_postal_code, country_of(i))
                cells = [i for i in cells if country_of(i) == "SE"]
            self._group(cells, col, lambda j: _POSTAL_SE.fullmatch(j) is not None,
                        lambda i: self._exact("postal_code", col, i, check_postal_code, "SE"))
        if "name" in fields:
            col = cols["name"]
            if self.empty_clears:
                for i in self._given_cells("name", col):
                    if col[i] == "":
                        self._name_rule(cols, i)
        if "phone" in fields:
            col = cols["phone"]

            def slow_phone(i: int) -> None:
                try:
                    col[i] = clean("phone", col[i])
                except FieldError as exc:
                    self.failed.setdefault("phone", set()).add(i)
                    self.error(i, 0, exc.field, exc.message)
                    col[i] = ""
                    return
                warning = _phone_warning(col[i], country_of(i))
                if warning:
                    self.warnings.setdefault(i, []).append(("phone", warning))

            self._group(self._ok_cells("phone", col), col, lambda j: _PHONE_FAST_ALL.fullmatch(j) is not None,
                        slow_phone)


    def _org_numbers(self, col: list[str], kinds: list[str] | None) -> None:
        """Organisation / personal numbers already in their stored form (``NNNNNN-NNNN`` for a
        Företag, ``ÅÅÅÅMMDD-NNNN``) with a right check digit (and a real date) stay as they are; the
        library decides every other value."""
        cells = self._ok_cells("org_number", col)
        if not cells:
            return
        short = [i for i in cells if len(col[i]) == 11]
        long_ = [i for i in cells if len(col[i]) == 13] if len(short) < len(cells) else []
        slow = [i for i in cells if len(col[i]) not in (11, 13)] if len(short) + len(long_) < len(cells) else []
        if short and kinds is not None:
            slow += [i for i in short if kinds[i] == KIND_PERSON]
            short = [i for i in short if kinds[i] != KIND_PERSON]
        t212, t121, digit = _LUHN_212, _LUHN_121, _DIGIT
        for group, pattern, pos in ((short, _ORG10_ALL, (0, 3, 7, 10)), (long_, _PNR12_ALL, (2, 5, 9, 12))):
            if not group:
                continue
            values = [col[i] for i in group]
            if pattern.fullmatch("\x00".join(values)) is None:
                ok = [pattern.fullmatch(v) is not None for v in values]
                slow += [i for i, good in zip(group, ok, strict=True) if not good]
                group = [i for i, good in zip(group, ok, strict=True) if good]
                values = [col[i] for i in group]
            a, b, c, d = pos
            bad = [(t212[v[a:a + 3]] + t121[v[b:b + 3]] + t212[v[c:c + 3]] + digit[v[d]]) % 10 for v in values]
            slow += [i for i, r in zip(group, bad, strict=True) if r]
            if a == 2:  # a personal number: its date must exist
                slow += [i for i, r in zip(group, bad, strict=True) if not r and not _date_ok(col[i][:8])]
        for i in slow:
            kind = (kinds[i] or KIND_COMPANY) if kinds is not None else KIND_COMPANY
            self._exact("org_number", col, i, check_org_number, kind)

    def _distinct(self, name: str, col: list[str], check: Callable[[str], str]) -> list[str]:
        """Few distinct values (Kundtyp, Land): the library's answer once per distinct value."""
        cells = self._given_cells(name, col)
        if not cells:
            return col
        answers: dict[str, tuple[str, tuple[int, str, str] | None]] = {}
        for value in {col[i] for i in cells}:
            try:
                cleaned = clean(name, value)
            except FieldError as exc:
                answers[value] = ("", (0, exc.field, exc.message))
                continue
            try:
                answers[value] = (check(cleaned), None)
            except FieldError as exc:
                answers[value] = (cleaned, (1, exc.field, exc.message))
        for i in cells:
            value, err = answers[col[i]]
            col[i] = value
            if err is not None:
                if err[0] == 0:
                    self.failed.setdefault(name, set()).add(i)
                self.error(i, err[0], err[1], err[2])
        return col

    def _name_rule(self, cols: dict[str, list[str]], i: int) -> None:
        """``validate_customer``'s rule for a name given empty: Förnamn Efternamn, or an error."""
        if any(e[2] == "name" for e in self.errors.get(i, ())):
            return
        parts = []
        for other in ("first_name", "last_name"):
            if other in cols and (self.empty_clears or cols[other][i]) and i not in self.failed.get(other, set()) \
                    and i not in self.absent.get(other, set()):
                if cols[other][i]:
                    parts.append(cols[other][i])
        joined = " ".join(parts)
        spec = FIELD_BY_NAME["name"]
        if len(joined) > spec.max_length:
            self.error(i, 1, "name", _("{field}: högst {n} tecken").format(field=spec.label_text, n=spec.max_length))
        elif joined:
            cols["name"][i] = joined
        else:
            self.error(i, 1, "name", _("Kundnamn måste anges"))


def validate_rows(fields: Sequence[str], rows: Sequence[Sequence[str]], *, empty_clears: bool = False) -> ChunkResult:
    """Validate ``rows`` (raw cells, one per field of ``fields``) as ``validate_customer`` would
    validate each row's given cells (partial), column by column."""
    unknown = [f for f in fields if f not in FIELD_BY_NAME]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]}")
    if len(set(fields)) != len(fields):
        raise ValueError("a field is named twice")
    return _Chunk(fields, rows, empty_clears).run()


class KeyCache:
    """Sort and search keys for repeated words (names, cities), cached; ASCII takes a short cut."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._fold: dict[str, str] = {}
        self._swedish: dict[str, str] = {}

    def fold(self, value: str) -> str:
        if value.isascii():
            return value.lower()
        out = self._fold.get(value)
        if out is None:
            out = fold(value)
            if len(self._fold) < self.limit:
                self._fold[value] = out
        return out

    def swedish(self, value: str) -> str:
        if value.isascii():
            return value.lower()
        out = self._swedish.get(value)
        if out is None:
            out = swedish_key(value)
            if len(self._swedish) < self.limit:
                self._swedish[value] = out
        return out

    @staticmethod
    def natural(value: str) -> str:
        if value.isdigit() and value.isascii():
            return value.lstrip("0").rjust(20, "0")
        return natural_key(value)

    def derived(self, values: dict[str, str]) -> dict[str, str | None]:
        """``keys.derived_columns`` with the caches."""
        email = values.get("email", "")
        org = values.get("org_number", "")
        number = values.get("number", "")
        name = values.get("name", "")
        search = "\x1f".join((self.fold(name), self.fold(number), self.fold(email), org,
                              org.replace("-", "").replace(" ", "")))
        return {
            "number_key": self.natural(number),
            "name_key": self.swedish(name),
            "city_key": self.swedish(values.get("city", "")),
            "email_key": email.casefold() or None,
            "search_key": search,
        }
