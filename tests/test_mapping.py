"""Header → field suggestions, the paste format line, header signatures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kundreg_tui import i18n
from kundreg_tui.domain.csvread import open_text
from kundreg_tui.domain.fields import FIELD_NAMES, FIELDS
from kundreg_tui.domain.mapping import (
    FUZZY_CUTOFF,
    SCORE_EXACT,
    SYNONYMS,
    FormatLine,
    Suggestion,
    _compact,
    header_signature,
    match_header,
    normalise_header,
    parse_format_line,
    parse_format_names,
    suggest_mapping,
)

# The synonyms the product asks for, field by field.
REQUIRED = {
    "number": [
        "kundnummer", "kundnr", "kund nr", "customer number", "customer no", "customer id",
        "nummer", "id",
    ],
    "kind": ["kundtyp", "typ", "type"],
    "name": ["kundnamn", "namn", "name", "företag", "company", "företagsnamn"],
    "first_name": ["förnamn", "fornamn", "first name", "first", "firstname", "given name"],
    "last_name": ["efternamn", "last name", "last", "lastname", "surname", "family name"],
    "org_number": [
        "organisationsnummer", "orgnr", "org nr", "personnummer", "pnr", "organisation number",
        "company id",
    ],
    "vat_number": ["momsregistreringsnummer", "momsnr", "vat", "vat number", "moms"],
    "email": ["epost", "e-post", "e-postadress", "epostadress", "email", "e-mail", "mail"],
    "phone": ["telefon", "telefonnummer", "tel", "phone", "mobile", "mobil", "mobilnummer"],
    "address": ["adress", "address", "gatuadress", "street"],
    "postal_code": ["postnummer", "postnr", "zip", "zip code", "postal code", "postcode"],
    "city": ["ort", "stad", "postort", "city", "town"],
    "country": ["land", "country"],
    "reference": ["er referens", "referens", "reference", "contact", "kontaktperson"],
    "notes": ["anteckningar", "anteckning", "notes", "note", "kommentar", "comment"],
}  # fmt: skip
REQUIRED_CASES = [(name, field) for field, names in REQUIRED.items() for name in names]


class TestNormalise:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("  E-Post  ", "e post"),
            ("Kund_Nr.", "kund nr"),
            ("KUNDNUMMER", "kundnummer"),
            ("Förnamn", "fornamn"),
            ("Ort/Stad", "ort stad"),
            ("Org.nr", "org nr"),
            ("\ufeffNamn", "namn"),
            ('"Telefon"', "telefon"),
            ("E‑post", "e post"),  # non-breaking hyphen (U+2011), NFKC
            ("Straße", "strasse"),
            ("Zip   code", "zip code"),
            ("ÅÄÖ åäö", "aao aao"),
            ("Postnr:", "postnr"),
            ("", ""),
            ("---", ""),
        ],
    )
    def test_examples(self, header: str, expected: str) -> None:
        assert normalise_header(header) == expected

    @given(st.text(max_size=30))
    def test_idempotent(self, header: str) -> None:
        once = normalise_header(header)
        assert normalise_header(once) == once
        assert once == once.strip() and "  " not in once


class TestMatchHeader:
    @pytest.mark.parametrize(("header", "field"), REQUIRED_CASES)
    def test_required_synonyms(self, header: str, field: str) -> None:
        found, score, exact = match_header(header)
        assert (found, exact) == (field, True)
        assert score >= 90

    @pytest.mark.parametrize(("header", "field"), REQUIRED_CASES)
    def test_any_case_spacing_and_punctuation(self, header: str, field: str) -> None:
        variants = [
            header.upper(),
            f"  {header.title()} ",
            header.replace(" ", "_"),
            header.replace(" ", "-"),
            header.replace(" ", ". "),
            f"{header}:",
        ]
        for variant in variants:
            assert match_header(variant)[0] == field, variant

    @pytest.mark.parametrize(
        ("header", "field"),
        [
            # The typos of the seeds.
            ("kundummer", "number"),
            ("eftenamn", "last_name"),
            ("telefonummer", "phone"),
            # Other near misses.
            ("Kundnumer", "number"),
            ("Efternman", "last_name"),
            ("Förnman", "first_name"),
            ("Adres", "address"),
            ("Postnumer", "postal_code"),
            ("E-pst", "email"),
            ("Anteckninagr", "notes"),
            ("Telefonnumer", "phone"),
        ],
    )
    def test_typos_are_suggested_but_not_exact(self, header: str, field: str) -> None:
        found, score, exact = match_header(header)
        assert found == field
        assert exact is False
        assert FUZZY_CUTOFF <= score < SCORE_EXACT

    @pytest.mark.parametrize(
        ("header", "field"),
        [
            ("Fakturaadress", "address"),
            ("Leveransadress", "address"),
            ("Kontakt e-post", "email"),
            ("Faktura-epost", "email"),
            ("Mobiltelefonnummer", "phone"),
            ("Adress 2", "address"),
            ("Telefon 2", "phone"),
            ("E-post2", "email"),
        ],
    )
    def test_compounds_and_numbered_are_guesses(self, header: str, field: str) -> None:
        found, _score, exact = match_header(header)
        assert (found, exact) == (field, False)

    @pytest.mark.parametrize(
        "header",
        [
            "", "   ", "Kolumn 1", "Status", "Datum", "Belopp", "Fakturanummer", "Mellannamn",
            "Lang", "Kort", "Saldo", "Skapad", "x", "Kommun", "Kategori id", "Namm",
        ],
    )  # fmt: skip
    def test_unknown_headers_are_ignored(self, header: str) -> None:
        assert match_header(header) == (None, 0.0, False)

    @pytest.mark.parametrize("spec", FIELDS, ids=lambda spec: spec.name)
    def test_own_field_names_and_labels(self, spec: object) -> None:
        # The export writes these; an export must import back column for column.
        name, label = spec.name, spec.label  # type: ignore[attr-defined]
        assert match_header(name)[0:3:2] == (name, True)
        assert match_header(label)[0:3:2] == (name, True)

    def test_names_joined_with_slash(self) -> None:
        assert match_header("Org.nr/Pers.nr") == ("org_number", SCORE_EXACT, True)
        assert match_header("Ort / Stad")[0] == "city"
        assert match_header("Telefon/Mobil")[0] == "phone"
        assert match_header("Namn/Ort")[0] is None  # two different fields: no guess

    def test_synonym_table_is_consistent(self) -> None:
        owner: dict[str, str] = {}
        for field, names in SYNONYMS.items():
            assert field in FIELD_NAMES
            for name in names:
                key = _compact(name)
                assert owner.setdefault(key, field) == field, (name, owner[key], field)
        for field, required in REQUIRED.items():
            listed = {_compact(s) for s in SYNONYMS[field]}
            assert {_compact(name) for name in required} <= listed, field

    def test_english_labels_follow_the_language(self) -> None:
        try:
            i18n.set_language("en")
            assert match_header("E-mail")[0] == "email"
            assert match_header("Kundnummer")[0] == "number"  # Swedish still known
        finally:
            i18n.set_language("sv")


class TestSuggestMapping:
    def test_swedish_excel_header(self) -> None:
        headers = ["Kundnummer", "Kundnamn", "Förnamn", "Efternamn", "Ort", "E-post", "Saldo"]
        got = suggest_mapping(headers)
        assert [s.field for s in got] == [
            "number", "name", "first_name", "last_name", "city", "email", None,
        ]  # fmt: skip
        assert got[0] == Suggestion(0, "Kundnummer", "number", SCORE_EXACT, True)
        assert got[6] == Suggestion(6, "Saldo", None, 0.0, False)

    def test_english_header(self) -> None:
        headers = [
            "Customer ID", "Company", "First Name", "Last Name", "VAT number", "Email",
            "Phone", "Street", "ZIP", "City", "Country", "Notes",
        ]  # fmt: skip
        assert [s.field for s in suggest_mapping(headers)] == [
            "number", "name", "first_name", "last_name", "vat_number", "email", "phone",
            "address", "postal_code", "city", "country", "notes",
        ]  # fmt: skip

    def test_typos_in_a_file_header(self) -> None:
        got = suggest_mapping(["kundummer", "epost", "eftenamn", "telefonummer"])
        assert [(s.field, s.exact) for s in got] == [
            ("number", False),
            ("email", True),
            ("last_name", False),
            ("phone", False),
        ]

    def test_collision_best_score_wins(self) -> None:
        got = suggest_mapping(["Kundummer", "Kundnummer"])
        assert [s.field for s in got] == [None, "number"]

    def test_collision_specific_beats_general(self) -> None:
        assert [s.field for s in suggest_mapping(["ID", "Kundnummer"])] == [None, "number"]
        assert [s.field for s in suggest_mapping(["Namn", "Kundnamn"])] == [None, "name"]
        assert [s.field for s in suggest_mapping(["Tel", "Telefon 2"])] == ["phone", None]

    def test_near_miss_beats_general_name(self) -> None:
        assert [s.field for s in suggest_mapping(["ID", "Kundummer"])] == [None, "number"]

    def test_collision_tie_leftmost_wins(self) -> None:
        assert [s.field for s in suggest_mapping(["Företag", "Kundnamn"])] == ["name", None]
        assert [s.field for s in suggest_mapping(["E-post", "Email"])] == ["email", None]

    def test_collision_numbered_and_compound(self) -> None:
        got = suggest_mapping(["Adress 2", "Fakturaadress", "Adress"])
        assert [s.field for s in got] == [None, None, "address"]

    def test_loser_is_not_exact(self) -> None:
        got = suggest_mapping(["Telefon", "Mobil"])
        assert got[1] == Suggestion(1, "Mobil", None, 0.0, False)

    @given(
        st.lists(st.sampled_from([n for names in SYNONYMS.values() for n in names]), max_size=12)
    )
    def test_a_field_is_never_suggested_twice(self, headers: list[str]) -> None:
        got = suggest_mapping(headers)
        assert [s.column_index for s in got] == list(range(len(headers)))
        fields = [s.field for s in got if s.field]
        assert len(fields) == len(set(fields))
        # Every field named by some header is suggested for one of them.
        assert set(fields) == {match_header(h)[0] for h in headers}

    def test_empty(self) -> None:
        assert suggest_mapping([]) == []


class TestFormatLine:
    @pytest.mark.parametrize(
        ("line", "fields"),
        [
            ("epost,förnamn,efternamn,adress,stad",
             ["email", "first_name", "last_name", "address", "city"]),
            ("epost,kundummer,förnamn,adress,stad",
             ["email", "number", "first_name", "address", "city"]),
            ("kundnummer,förnamn,efternamn", ["number", "first_name", "last_name"]),
            ("epost,förnamn,eftenamn,telefonnummer",
             ["email", "first_name", "last_name", "phone"]),
        ],
    )  # fmt: skip
    def test_seed_lines(self, line: str, fields: list[str]) -> None:
        assert parse_format_line(line) == FormatLine(",", fields, [])  # type: ignore[arg-type]

    @pytest.mark.parametrize("delimiter", [";", "\t", ","])
    def test_delimiters(self, delimiter: str) -> None:
        line = delimiter.join(["epost", "förnamn", "efternamn", "telefon"])
        delim, fields, problems = parse_format_line(line)
        assert delim == delimiter
        assert fields == ["email", "first_name", "last_name", "phone"]
        assert problems == []

    def test_explicit_delimiter(self) -> None:
        assert parse_format_line("epost;namn", delimiter=";").fields == ["email", "name"]

    def test_spacing_case_bom_and_line_end(self) -> None:
        got = parse_format_line("\ufeff E-post , Förnamn ,KUNDNR\r\n")
        assert got == FormatLine(",", ["email", "first_name", "number"], [])

    def test_single_key_column(self) -> None:
        assert parse_format_line("epost") == FormatLine(",", ["email"], [])
        assert parse_format_line("kundnummer").fields == ["number"]

    def test_needs_number_or_email(self) -> None:
        delimiter, fields, problems = parse_format_line("förnamn,efternamn,telefon")
        assert fields == ["first_name", "last_name", "phone"]
        assert problems == ["Formatraden måste innehålla kundnummer, epost eller båda."]

    def test_unknown_name(self) -> None:
        got = parse_format_line("epost,skostorlek,förnamn")
        assert got.fields == ["email", None, "first_name"]
        assert got.problems == ["Formatraden: okänt fältnamn ”skostorlek” (kolumn 2)."]

    def test_empty_name_skips_the_column(self) -> None:
        assert parse_format_line("epost,,förnamn") == FormatLine(
            ",", ["email", None, "first_name"], []
        )

    def test_field_twice(self) -> None:
        got = parse_format_line("epost,förnamn,e-post")
        assert got.fields == ["email", "first_name", None]
        assert got.problems == ["Formatraden: E-post står två gånger (kolumn 1 och 3)."]

    def test_empty_line(self) -> None:
        got = parse_format_line("")
        assert got.fields == []
        assert got.problems == ["Formatraden måste innehålla kundnummer, epost eller båda."]

    def test_names_from_the_pasted_text(self) -> None:
        source = open_text("\n epost ;förnamn;eftenamn\nnils@epost.com;Nils;Karlsson\n")
        assert source.header == ["epost", "förnamn", "eftenamn"]
        assert parse_format_names(source.header) == (["email", "first_name", "last_name"], [])
        assert parse_format_names(["namn"]) == (
            ["name"],
            ["Formatraden måste innehålla kundnummer, epost eller båda."],
        )

    def test_quoted_names(self) -> None:
        assert parse_format_line('"epost","er referens"').fields == ["email", "reference"]


class TestSignature:
    def test_stable_and_forgiving(self) -> None:
        a = header_signature(["Kundnummer", "E-post", "Förnamn"])
        assert a == header_signature([" KUNDNUMMER", "e_post", "Fornamn "])
        assert len(a) == 32 and int(a, 16) >= 0
        # Fixed value: the signature is stored, so it must not change between versions.
        assert a == header_signature(("kundnummer", "e post", "fornamn"))

    def test_order_and_count_matter(self) -> None:
        base = header_signature(["Namn", "Ort"])
        assert base != header_signature(["Ort", "Namn"])
        assert base != header_signature(["Namn", "Ort", ""])
        assert base != header_signature(["Namn Ort"])

    def test_known_value(self) -> None:
        import hashlib

        expected = hashlib.sha256(b"namn\x1fort").hexdigest()[:32]
        assert header_signature(["Namn", "Ort"]) == expected
