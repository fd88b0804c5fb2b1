"""Which customer field a file column holds: suggestions from the header, and the paste format line.

A header is matched after :func:`normalise_header` (case, accents, spacing and punctuation folded)
against a list of Swedish and English names for each field (:data:`SYNONYMS`), the field names
themselves and the field labels (Swedish and the current translation). A known name is an *exact*
suggestion; a near miss (a typo such as ``kundummer`` or ``eftenamn``, found with rapidfuzz) or a
compound ending in a known name (``Fakturaadress``) is suggested with ``exact=False`` so that the
UI asks before using it. A field is suggested for one column at most.

Nothing here reads files or touches the database; remembering a confirmed mapping is done
elsewhere, keyed by :func:`header_signature`.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from rapidfuzz import fuzz, process

from kundreg_tui.domain.csvread import PASTE_DELIMITERS, sniff_delimiter
from kundreg_tui.domain.fields import FIELDS, field_label
from kundreg_tui.i18n import _, current_language

__all__ = [
    "FUZZY_CUTOFF",
    "KEY_FIELDS",
    "SCORE_EXACT",
    "SCORE_GENERAL",
    "SCORE_NUMBERED",
    "SCORE_SUFFIX",
    "SYNONYMS",
    "FormatLine",
    "Suggestion",
    "header_signature",
    "match_header",
    "normalise_header",
    "parse_format_line",
    "parse_format_names",
    "suggest_mapping",
]

#: Fields that find an existing customer; a paste format line needs one of them.
KEY_FIELDS: tuple[str, ...] = ("number", "email")

#: Known names of each field (Swedish and English), as people write them in headers.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": (
        "kundnummer", "kundnr", "kund nr", "kund-nr", "kundnr.", "kund id", "kundid",
        "kundnumber", "customer number", "customer no", "customer nr", "customer id",
        "customerid", "client id", "client number", "account number",
        "nummer", "nr", "number", "no", "id",
    ),
    "kind": (
        "kundtyp", "typ", "type", "customer type", "kundkategori", "kind",
    ),
    "name": (
        "kundnamn", "namn", "name", "företag", "company", "företagsnamn", "company name",
        "customer name", "firma", "firmanamn", "organisationsnamn", "organisation name",
        "organization name", "business name", "fullständigt namn", "full name",
    ),
    "first_name": (
        "förnamn", "fornamn", "first name", "first", "firstname", "given name", "givenname",
        "fname", "tilltalsnamn",
    ),
    "last_name": (
        "efternamn", "last name", "last", "lastname", "surname", "family name", "familyname",
        "lname",
    ),
    "org_number": (
        "organisationsnummer", "orgnr", "org nr", "org.nr", "org-nr", "orgnummer",
        "org nummer", "organisationsnr", "organisationsnummer / personnummer",
        "personnummer", "pnr", "persnr", "pers nr", "personnr", "organisation number",
        "organization number", "org number", "org no", "company id", "company number",
        "company registration number", "registration number", "corporate id",
        "personal number", "personal identity number", "identity number",
        "org. or personal number",
    ),
    "vat_number": (
        "momsregistreringsnummer", "momsregnr", "momsreg nr", "momsnr", "moms nr",
        "momsnummer", "vat", "vat number", "vat no", "vat nr", "vat id", "vatid",
        "vat registration number", "moms", "eu vat", "eu vat number",
    ),
    "email": (
        "epost", "e-post", "e-postadress", "epostadress", "email", "e-mail", "mail",
        "mailadress", "mejl", "mejladress", "email address", "e-mail address",
        "e-mailadress", "emailadress",
    ),
    "phone": (
        "telefon", "telefonnummer", "tel", "tel nr", "telnr", "tfn", "phone", "phone number",
        "telephone", "telephone number", "mobile", "mobil", "mobilnummer", "mobiltelefon",
        "mobile phone", "mobile number", "cell", "cellphone", "cell phone",
    ),
    "address": (
        "adress", "address", "gatuadress", "street", "street address", "utdelningsadress",
        "address line 1", "adressrad 1", "adress 1", "address 1",
    ),
    "postal_code": (
        "postnummer", "postnr", "zip", "zip code", "zipcode", "postal code", "postcode",
        "post code",
    ),
    "city": (
        "ort", "stad", "postort", "city", "town", "ort stad",
    ),
    "country": (
        "land", "country", "landskod", "country code",
    ),
    "reference": (
        "er referens", "referens", "reference", "your reference", "er ref", "ref",
        "contact", "contact person", "kontaktperson", "kontakt",
    ),
    "notes": (
        "anteckningar", "anteckning", "notes", "note", "kommentar", "kommentarer", "comment",
        "comments", "övrigt", "memo",
    ),
}  # fmt: skip

#: Known names that a longer header may end in (``Fakturaadress``, ``Kontakt e-post``). Names
#: that end many unrelated words (``nummer``, ``namn``, ``id``, ``ort``) are left out on purpose.
_SAFE_SUFFIXES: dict[str, str] = {
    "adress": "address",
    "address": "address",
    "epost": "email",
    "epostadress": "email",
    "email": "email",
    "emailadress": "email",
    "mailadress": "email",
    "telefon": "phone",
    "telefonnummer": "phone",
    "mobilnummer": "phone",
    "phone": "phone",
    "postnummer": "postal_code",
    "postnr": "postal_code",
    "zipcode": "postal_code",
    "referens": "reference",
    "anteckningar": "notes",
    "kommentar": "notes",
}

#: Lowest rapidfuzz ratio (0–100) for a near miss. ``kundummer``→``kundnummer`` scores 95,
#: ``eftenamn``→``efternamn`` 94, ``epst``→``epost`` 89.
FUZZY_CUTOFF = 85.0
#: Shortest name (after compacting) that takes part in fuzzy matching.
_FUZZY_MIN_LENGTH = 4

#: Scores: a known name 100; a short, general one (``id``, ``namn``, ``tel``) 90, so that a
#: more specific header (``Kundnummer``, or the near miss ``Kundummer``) wins a collision; a near
#: miss its rapidfuzz ratio (85–99); a name with a number (``Telefon 2``) 88; a compound 80.
SCORE_EXACT = 100.0
SCORE_GENERAL = 90.0
SCORE_NUMBERED = 88.0
SCORE_SUFFIX = 80.0

#: Known names so general that a more specific column should win (compacted).
_GENERAL = frozenset(
    {
        "id", "nr", "no", "nummer", "number", "typ", "type", "kind", "namn", "name", "first",
        "last", "mail", "tel", "cell", "ref", "kontakt", "contact", "moms", "vat", "note",
        "memo", "stad", "town", "land",
    }
)  # fmt: skip

_SEPARATORS = re.compile(r"[\W_]+")  # anything but letters and digits
_TRAILING_NUMBER = re.compile(r"^(.*\D)\s*\d+$")
_FOLD = str.maketrans({"æ": "ae", "ø": "o", "ß": "ss", "đ": "d", "ł": "l", "þ": "th"})


class Suggestion(NamedTuple):
    """The field suggested for one column (``None``: ignore the column)."""

    column_index: int
    header: str
    field: str | None
    score: float
    exact: bool


class FormatLine(NamedTuple):
    """A parsed paste format line. Unpacks as ``delimiter, fields, problems``."""

    delimiter: str
    fields: list[str | None]
    problems: list[str]


def normalise_header(header: str) -> str:
    """A header folded for matching: ``" E-Post_Adress "`` → ``"e post adress"``.

    NFKC, case-folded, accents removed (``å ä ö`` → ``a a o``, ``é`` → ``e``, ``æ ø`` →
    ``ae o``), a BOM and surrounding quotes dropped, and every run of spaces, underscores,
    hyphens, dots and other punctuation (anything but letters and digits) collapsed to one space.
    """
    text = unicodedata.normalize("NFKC", header).replace("\ufeff", "").casefold().translate(_FOLD)
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return _SEPARATORS.sub(" ", text).strip()


def _compact(header: str) -> str:
    return normalise_header(header).replace(" ", "")


@lru_cache(maxsize=4)
def _known_names(language: str) -> dict[str, str]:
    """Compact name → field, for the synonyms, field names and labels (current language)."""
    names: dict[str, str] = {}
    for spec in FIELDS:
        for name in (spec.name, spec.label, field_label(spec.name)):
            names.setdefault(_compact(name), spec.name)
    for field_name, synonyms in SYNONYMS.items():
        for synonym in synonyms:
            names.setdefault(_compact(synonym), field_name)
    names.pop("", None)
    return names


def _known() -> dict[str, str]:
    return _known_names(current_language())


@lru_cache(maxsize=4)
def _fuzzy_choices(language: str) -> tuple[list[str], list[str]]:
    names = _known_names(language)
    keys = [k for k in names if len(k) >= _FUZZY_MIN_LENGTH]
    return keys, [names[k] for k in keys]


def match_header(header: str) -> tuple[str | None, float, bool]:
    """The field one header names: ``(field or None, score 0–100, exact)``.

    In order: a known name; names joined by ``/`` that all mean the same field (``Ort/Stad``,
    ``Org.nr/Pers.nr``); a known name with a trailing number (``Telefon 2``); a near miss;
    a compound ending in a known name.
    """
    known = _known()
    key = _compact(header)
    if not key:
        return None, 0.0, False
    field_name = known.get(key)
    if field_name is not None:
        return field_name, SCORE_GENERAL if key in _GENERAL else SCORE_EXACT, True
    if "/" in header:
        parts = {known.get(_compact(part)) for part in header.split("/") if _compact(part)}
        if len(parts) == 1 and None not in parts:
            return parts.pop(), SCORE_EXACT, True
    numbered = _TRAILING_NUMBER.match(normalise_header(header))
    if numbered:
        field_name = known.get(numbered.group(1).replace(" ", ""))
        if field_name is not None:
            return field_name, SCORE_NUMBERED, False
    if len(key) >= _FUZZY_MIN_LENGTH:
        keys, fields = _fuzzy_choices(current_language())
        best = process.extractOne(key, keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
        if best is not None:
            return fields[best[2]], float(best[1]), False
    for suffix in sorted(_SAFE_SUFFIXES, key=len, reverse=True):
        if key.endswith(suffix) and len(key) > len(suffix):
            return _SAFE_SUFFIXES[suffix], SCORE_SUFFIX, False
    return None, 0.0, False


def suggest_mapping(headers: Sequence[str]) -> list[Suggestion]:
    """Suggest a field for every column of a header row (one :class:`Suggestion` per column).

    A field goes to one column at most: the column with the best score keeps it (the leftmost on
    a tie); the others get ``None``. ``exact=False`` marks a guess the user must confirm.
    """
    matches = [match_header(h) for h in headers]
    winner: dict[str, int] = {}
    for index, (field_name, score, _exact) in enumerate(matches):
        if field_name is None:
            continue
        held = winner.get(field_name)
        if held is None or score > matches[held][1]:
            winner[field_name] = index
    out: list[Suggestion] = []
    for index, (header, (field_name, score, exact)) in enumerate(
        zip(headers, matches, strict=True)
    ):
        if field_name is not None and winner.get(field_name) == index:
            out.append(Suggestion(index, header, field_name, score, exact))
        else:
            out.append(Suggestion(index, header, None, 0.0, False))
    return out


def header_signature(headers: Iterable[str]) -> str:
    """A stable key for a header row, to remember a confirmed mapping for files like it.

    Headers that only differ in case, accents, spacing or punctuation get the same signature;
    order and number of columns count.
    """
    joined = "\x1f".join(normalise_header(h) for h in headers)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def parse_format_line(line: str, delimiter: str | None = None) -> FormatLine:
    """Parse the paste import's format line, e.g. ``epost,förnamn,efternamn,adress,stad``.

    The delimiter (comma, semicolon or tab) is sniffed unless given; pass the one the data is
    read with (``CsvSource.settings.delimiter``) to be sure both agree. Each name becomes a field
    (typos such as ``kundummer`` or ``eftenamn`` are accepted); an empty name skips the column.
    ``problems`` lists what prevents the import (translated): an unknown name, a field named
    twice, neither kundnummer nor epost.
    """
    text = line.removeprefix("\ufeff").strip("\r\n")
    if delimiter is None:
        delimiter, _why = sniff_delimiter(text + "\n", PASTE_DELIMITERS, default=",")
    names = next(csv.reader([text], delimiter=delimiter), [])
    fields, problems = parse_format_names(names)
    return FormatLine(delimiter, fields, problems)


def parse_format_names(names: Sequence[str]) -> tuple[list[str | None], list[str]]:
    """The fields and problems of format line names already split (e.g. ``CsvSource.header``
    of :func:`~kundreg_tui.domain.csvread.open_text`); see :func:`parse_format_line`."""
    fields: list[str | None] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name.strip():
            fields.append(None)
            continue
        field_name, _score, _exact = match_header(name)
        if field_name is None:
            problems.append(
                _("Formatraden: okänt fältnamn ”{name}” (kolumn {column}).").format(
                    name=name.strip(), column=index + 1
                )
            )
            fields.append(None)
            continue
        if field_name in seen:
            problems.append(
                _("Formatraden: {field} står två gånger (kolumn {first} och {second}).").format(
                    field=field_label(field_name), first=seen[field_name] + 1, second=index + 1
                )
            )
            fields.append(None)
            continue
        seen[field_name] = index
        fields.append(field_name)
    if not any(f in KEY_FIELDS for f in fields):
        problems.append(_("Formatraden måste innehålla kundnummer, epost eller båda."))
    return fields, problems
