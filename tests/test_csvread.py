"""Reading CSV and text files: encodings, delimiters, refusals, line numbers, streaming."""

from __future__ import annotations

import codecs
import io
import json
import random
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kundreg_tui.domain import csvread
from kundreg_tui.domain.csvread import (
    MAX_FIELD_LENGTH,
    CsvReadError,
    ReadSettings,
    Record,
    detect_encoding,
    open_csv,
    open_text,
    preview_lines,
    sniff_delimiter,
    sniff_settings,
    strip_excel_guard,
)

DATA = Path(__file__).parent / "data"
SPECTRUM = Path("/work/shared/data/csv-spectrum")


def records(source: object, settings: ReadSettings | None = None) -> list[Record]:
    return list(open_csv(source, settings).iter_records())  # type: ignore[arg-type]


def values(source: object, settings: ReadSettings | None = None) -> list[list[str]]:
    return [r.values for r in records(source, settings)]


def refusal(source: object, settings: ReadSettings | None = None) -> CsvReadError:
    with pytest.raises(CsvReadError) as info:
        src = open_csv(source, settings)  # type: ignore[arg-type]
        list(src.iter_records())
    return info.value


# --------------------------------------------------------------------------------------------
# Encodings


class TestDetectEncoding:
    def test_utf8_bom(self) -> None:
        guess = detect_encoding(codecs.BOM_UTF8 + b"a;b\n")
        assert (guess.name, guess.bom_len) == ("utf-8-sig", 3)
        assert "BOM" in guess.reason

    def test_utf16_boms(self) -> None:
        assert detect_encoding(codecs.BOM_UTF16_LE + "a".encode("utf-16-le"))[::2] == (
            "utf-16-le",
            2,
        )
        assert detect_encoding(codecs.BOM_UTF16_BE + "a".encode("utf-16-be"))[::2] == (
            "utf-16-be",
            2,
        )

    def test_utf32_bom_is_not_taken_for_utf16(self) -> None:
        assert detect_encoding(codecs.BOM_UTF32_LE + "a".encode("utf-32-le")).name == "utf-32-le"

    def test_utf8_whole(self) -> None:
        data = "Namn;Ort\nÅsa;Örebro\n".encode()
        guess = detect_encoding(data[:10], data)
        assert guess.name == "utf-8"
        assert guess.reason == "Hela filen är giltig UTF-8."

    def test_cp1252_fallback_names_the_byte(self) -> None:
        data = "Namn;Ort\nÅsa;Örebro\n".encode("cp1252")
        guess = detect_encoding(data, data)
        assert guess.name == "cp1252"
        assert "0xC5" in guess.reason and "position 9" in guess.reason

    def test_bytes_cp1252_leaves_undefined_read_as_latin1(self) -> None:
        data = b"Namn\nF\x81rst\n"
        guess = detect_encoding(data, data)
        assert guess.name == "latin-1"
        assert data.decode(guess.name)  # every byte decodes

    def test_whole_input_decides_not_just_the_sample(self) -> None:
        # Valid UTF-8 in the first 64 KiB, a Windows-1252 "Ö" at the very end.
        data = b"a;b\n" + b"x;y\n" * 20_000 + "Ö;z\n".encode("cp1252")
        sample = data[: csvread.HEAD_SIZE]
        assert detect_encoding(sample).name == "utf-8"  # the sample alone looks fine
        guess = detect_encoding(sample, data)
        assert guess.name == "cp1252"
        assert f"position {len(data) - 4}" in guess.reason

    def test_whole_from_path_and_stream(self, tmp_path: Path) -> None:
        data = b"a\n" * 1000 + "Ö\n".encode("cp1252")
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        assert detect_encoding(data[:100], path).name == "cp1252"
        assert detect_encoding(data[:100], str(path)).name == "cp1252"
        stream = io.BytesIO(data)
        stream.seek(5)
        assert detect_encoding(data[:100], stream).name == "cp1252"
        assert stream.tell() == 5  # put back where it was

    def test_multibyte_character_split_between_chunks(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(csvread, "CHUNK_SIZE", 7)
        data = "abcdefÖÄÅ\n".encode() * 50
        assert detect_encoding(data[:3], data).name == "utf-8"
        bad = "abcdefÖ".encode() + b"\xff" + b"x" * 20
        guess = detect_encoding(bad[:3], bad)
        assert guess.name == "cp1252"
        assert "position 8" in guess.reason and "0xFF" in guess.reason

    def test_truncated_utf8_at_end_is_not_utf8(self) -> None:
        data = b"abc\xc3"
        assert detect_encoding(data, data).name == "cp1252"

    def test_sample_cut_mid_character_is_still_utf8(self) -> None:
        assert detect_encoding("abcÖ".encode()[:-1]).name == "utf-8"

    def test_utf16_without_bom(self) -> None:
        assert detect_encoding("Namn\tOrt\r\nÅsa\tLund\r\n".encode("utf-16-le")).name == "utf-16-le"
        assert detect_encoding("Namn\tOrt\r\nÅsa\tLund\r\n".encode("utf-16-be")).name == "utf-16-be"


# --------------------------------------------------------------------------------------------
# Real-world files


class TestFixtures:
    def test_swedish_excel_cp1252_semicolon_crlf(self) -> None:
        path = DATA / "excel_sv_cp1252.csv"
        settings = sniff_settings(path)
        assert (settings.encoding, settings.delimiter) == ("cp1252", ";")
        assert "Windows-1252" in settings.encoding_reason
        assert "Semikolon" in settings.delimiter_reason
        source = open_csv(path)
        assert source.encoding == "cp1252"
        assert source.header == ["Kundnummer", "Kundnamn", "Förnamn", "Efternamn", "Ort", "E-post"]
        got = list(source.iter_records())
        assert got[0] == Record(
            2, ["1001", "Åsa Öberg", "Åsa", "Öberg", "Örebro", "asa@exempel.se"], None
        )
        assert got[1].values[4] == "Västerås"
        assert got[2].values[1] == "Kaffe; te & så"  # quoted delimiter
        assert [r.line for r in got] == [2, 3, 4]
        assert all("\r" not in v for r in got for v in r.values)

    def test_utf16le_bom_tab(self) -> None:
        path = DATA / "utf16le_tab.txt"
        settings = sniff_settings(path)
        assert (settings.encoding, settings.delimiter) == ("utf-16-le", "\t")
        source = open_csv(path)
        assert source.header == ["Kundnummer", "Namn", "Ort"]  # no BOM in the first name
        assert values(path) == [["1", "Åsa Öberg", "Örebro"], ["2", "Žofie Ďurková", "Malmö"]]
        assert source.preview(2) == ["Kundnummer\tNamn\tOrt", "1\tÅsa Öberg\tÖrebro"]

    def test_utf8_bom_with_sep_line(self) -> None:
        path = DATA / "utf8_bom_sep.csv"
        settings = sniff_settings(path)
        assert settings.encoding == "utf-8-sig"
        assert settings.delimiter == ";" and settings.skip_sep_line
        assert settings.header_row == 2 and settings.data_row == 3
        source = open_csv(path)
        assert source.header == ["E-post", "Förnamn", "Telefon"]
        assert source.header_line == 2
        got = list(source.iter_records())
        assert got == [
            Record(3, ["nils@epost.com", "Nils", "070123456"], None),
            Record(4, ["stina@epost.com", "Stina", "0701122333"], None),
        ]

    def test_sep_line_wins_over_counting_and_is_skipped_even_with_explicit_delimiter(self) -> None:
        data = b"sep=,\na;b,c\n1;2,3\n"
        assert open_csv(data).header == ["a;b", "c"]
        source = open_csv(data, ReadSettings(delimiter=";"))
        assert source.settings.skip_sep_line
        assert source.header == ["a", "b,c"]

    def test_quoted_sep_line_with_trailing_delimiters(self) -> None:
        # Excel re-saving a file with a sep line may pad it with delimiters.
        assert open_csv(b'"sep=;";;\na;b;c\n1;2;3\n').header == ["a", "b", "c"]

    def test_utf8_bom_without_override(self) -> None:
        data = codecs.BOM_UTF8 + "Namn,Ort\nÅsa,Lund\n".encode()
        assert open_csv(data).header == ["Namn", "Ort"]
        # Overriding the encoding to plain utf-8 still drops the BOM.
        assert open_csv(data, ReadSettings(encoding="utf-8")).header == ["Namn", "Ort"]

    def test_newlines_in_quoted_fields_with_line_numbers(self) -> None:
        got = records(DATA / "newlines_in_quotes.csv")
        assert [(r.line, r.values[0]) for r in got] == [(2, "1"), (4, "2"), (7, "3")]
        assert got[0].values[2] == "c/o Berg\nStorgatan 1"
        assert got[1].values[1] == 'Bo "Bosse" Ek'
        assert got[1].values[2] == "Lilla vägen 2\nLgh 1102\n3 tr"

    def test_newlines_in_quoted_fields_crlf(self) -> None:
        data = (DATA / "newlines_in_quotes.csv").read_bytes().replace(b"\n", b"\r\n")
        got = records(data)
        assert [r.line for r in got] == [2, 4, 7]
        assert got[0].values[2] == "c/o Berg\r\nStorgatan 1"  # inside quotes kept as written
        assert got[2].values == ["3", "Cecilia", "Torget 3", "Lund"]

    def test_ragged_rows_are_flagged_not_refused(self) -> None:
        got = records(DATA / "ragged.csv")
        assert got == [
            Record(2, ["1", "2", "3", "4"], None),
            Record(3, ["5", "6", "7", "8", "9"], "Rad 3 har 5 fält, rubriken har 4."),
            Record(4, ["10", "11"], "Rad 4 har 2 fält, rubriken har 4."),
            Record(5, ["12", "13", "14", "15"], None),  # trailing empty fields are fine
        ]

    def test_unterminated_quote_names_the_line_it_starts_on(self) -> None:
        error = refusal(DATA / "unterminated_quote.csv")
        assert error.line == 5
        assert str(error).startswith("Rad 5: ett citattecken")
        assert "avslutas aldrig" in str(error)


# --------------------------------------------------------------------------------------------
# Refusals


class TestRefusals:
    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\n\n",
            b"  \r\n ",
            codecs.BOM_UTF8,
            codecs.BOM_UTF16_LE,
            codecs.BOM_UTF16_LE + "\r\n".encode("utf-16-le"),
            b";;;\n;;\n",
            b"sep=;\r\n",
        ],
        ids=["empty", "newlines", "spaces", "bom8", "bom16", "bom16-newline", "delimiters", "sep"],
    )
    def test_empty(self, data: bytes) -> None:
        assert str(refusal(data)) == "Filen är tom."

    def test_empty_file_on_disk(self, tmp_path: Path) -> None:
        path = tmp_path / "tom.csv"
        path.write_bytes(b"")
        assert str(refusal(path)) == "Filen är tom."
        with pytest.raises(CsvReadError, match="Filen är tom"):
            sniff_settings(path)

    @pytest.mark.parametrize("data", [b"Namn;Ort", b"Namn;Ort\r\n", b"Namn;Ort\n\n;;\n"])
    def test_header_only(self, data: bytes) -> None:
        error = refusal(data)
        assert str(error) == "Filen har bara en rubrikrad och inga rader med kunder."
        assert error.line == 1

    def test_binary_file(self) -> None:
        png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
        error = refusal(png)
        assert "binärfil" in str(error) and "NUL" in str(error)
        with pytest.raises(CsvReadError, match="binärfil"):
            sniff_settings(png)

    def test_nul_byte_later_in_the_file_names_its_line(self) -> None:
        rows = b"".join(b"%d;Namn %d\n" % (i, i) for i in range(10_000))
        assert len(rows) > csvread.HEAD_SIZE
        data = b"Nr;Namn\n" + rows + b"10000;Tr\x00asig\n" + b"10001;Sist\n"
        source = open_csv(data)  # the first 64 KiB are clean
        with pytest.raises(CsvReadError) as info:
            list(source.iter_records())
        assert info.value.line == 10_002
        assert str(info.value).startswith("Rad 10002 innehåller ett NUL-tecken")

    def test_nul_in_first_lines(self) -> None:
        error = refusal(b"a;b\n1;2\n3;\x004\n")
        assert error.line == 3
        assert "NUL" in str(error)

    def test_xlsx_renamed_to_csv(self, tmp_path: Path) -> None:
        openpyxl = pytest.importorskip("openpyxl")
        book = openpyxl.Workbook()
        book.active.append(["Kundnummer", "Namn"])
        book.active.append([1, "Åsa"])
        path = tmp_path / "kunder.csv"
        book.save(path)
        error = refusal(path)
        assert str(error).startswith(
            "Det här är en Excel-fil, inte CSV. Spara den som CSV (UTF-8) i Excel, eller "
        )
        with pytest.raises(CsvReadError, match="Excel-fil"):
            sniff_settings(path)

    def test_xls_ole_renamed(self) -> None:
        data = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 600
        assert "Excel-fil (äldre .xls-format)" in str(refusal(data))

    def test_ods(self) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        assert "OpenDocument" in str(refusal(buffer.getvalue()))

    def test_duplicate_column_names(self) -> None:
        error = refusal(b"Namn;E-post;Ort;e-post;Namn\n1;2;3;4;5\n")
        assert error.line == 1
        assert str(error) == (
            "Rubrikraden (rad 1) har samma kolumnnamn flera gånger: ”Namn” (kolumn 1, 5); "
            "”E-post” (kolumn 2, 4). Ge kolumnerna olika namn, eller läs filen utan rubrikrad."
        )

    def test_duplicate_names_allowed_without_header(self) -> None:
        got = values(b"Namn;Namn\n1;2\n", ReadSettings(has_header=False))
        assert got == [["Namn", "Namn"], ["1", "2"]]

    def test_unnamed_columns_are_not_duplicates(self) -> None:
        source = open_csv(b"Namn;;Ort;;\n1;x;2;;\n")
        assert source.header == ["Namn", "", "Ort"]
        assert [r.values for r in source.iter_records()] == [["1", "x", "2"]]

    def test_field_too_long_names_the_line(self) -> None:
        long = "x" * (MAX_FIELD_LENGTH + 1)
        data = f"Namn;Anteckningar\nA;kort\nB;{long}\n".encode()
        error = refusal(data)
        assert error.line == 3
        assert str(error).startswith("Rad 3: ett fält har 10\u00a0001 tecken")

    def test_field_at_the_limit_is_fine(self) -> None:
        data = f"Namn;Anteckningar\nA;{'x' * MAX_FIELD_LENGTH}\n".encode()
        assert len(values(data)[0][1]) == MAX_FIELD_LENGTH

    def test_header_field_too_long(self) -> None:
        assert refusal(("x" * (MAX_FIELD_LENGTH + 5) + ";b\n1;2\n").encode()).line == 1

    def test_unterminated_quote_swallowing_a_big_file(self) -> None:
        # The open quote eats the rest of the file; the csv module's own field limit stops it
        # long before the end, and the message still names the line where the field started.
        data = b'Namn;Ort\nA;Lund\nB;"Ume\n' + b"C;Kiruna\n" * 20_000
        error = refusal(data)
        assert error.line == 3
        assert "citattecken" in str(error)

    def test_unterminated_quote_in_the_last_line(self) -> None:
        error = refusal(b'a,b\n1,2\n3,"4\n')
        assert error.line == 3
        assert "avslutas aldrig" in str(error)

    def test_unterminated_quote_in_header(self) -> None:
        error = refusal(b'"a,b\n1,2\n')
        assert error.line == 1

    def test_bad_quoting_is_a_row_problem(self) -> None:
        got = records(b'a,b\n1,"x"y\n2,"ok"\n3,"z" \n4,5\n')
        assert got[0].line == 2 and got[0].values == []
        assert got[0].problem is not None and got[0].problem.startswith("Rad 2: felaktigt")
        assert got[1] == Record(3, ["2", "ok"], None)
        assert got[2].line == 4 and got[2].problem is not None
        assert got[3] == Record(5, ["4", "5"], None)

    def test_bad_quoting_spanning_lines(self) -> None:
        got = records(b'a,b\n1,"x\ny"z\n2,3\n')
        assert got[0].problem is not None and got[0].problem.startswith("Rad 2–3: felaktigt")
        assert got[1] == Record(4, ["2", "3"], None)

    def test_bad_quoting_in_header_refuses(self) -> None:
        error = refusal(b'"a"x,b\n1,2\n')
        assert error.line == 1
        assert str(error).startswith("Rubrikraden kan inte läsas.")

    def test_missing_file(self, tmp_path: Path) -> None:
        error = refusal(tmp_path / "finns-inte.csv")
        assert str(error).startswith("Filen finns inte:")

    def test_directory(self, tmp_path: Path) -> None:
        assert "är en mapp" in str(refusal(tmp_path))

    def test_wrong_encoding_override_names_the_line(self) -> None:
        data = ("Namn;Ort\n" + "Anna;Lund\n" * 3000 + "Åsa;Örebro\n").encode("cp1252")
        error = refusal(data, ReadSettings(encoding="utf-8"))
        assert error.line == 3002
        assert str(error) == (
            "Filen kan inte läsas som utf-8 (rad 3002). Välj en annan teckenkodning."
        )

    def test_wrong_encoding_override_in_the_header(self) -> None:
        error = refusal("Ort;Namn\nx;y\n".encode("cp1252").replace(b"O", b"\xd6"),
                        ReadSettings(encoding="utf-8"))  # fmt: skip
        assert error.line == 1

    def test_wrong_override_that_decodes_is_the_users_choice(self) -> None:
        got = values("Namn\nÅsa\n".encode(), ReadSettings(encoding="cp1252"))
        assert got == [["Ã…sa"]]

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            (ReadSettings(delimiter=""), "Avgränsaren"),
            (ReadSettings(delimiter=";;"), "Avgränsaren"),
            (ReadSettings(delimiter="\n"), "Avgränsaren"),
            (ReadSettings(delimiter='"'), "Avgränsaren"),
            (ReadSettings(quotechar="''"), "Citattecknet"),
            (ReadSettings(start_row=0), "Startraden"),
            (ReadSettings(encoding="klingon-8"), "Okänd teckenkodning: klingon-8"),
        ],
    )
    def test_invalid_settings(self, settings: ReadSettings, message: str) -> None:
        assert message in str(refusal(b"a;b\n1;2\n", settings))


# --------------------------------------------------------------------------------------------
# Settings: delimiter, start row, header row


class TestSettings:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("a;b;c\n1;2;3\n", ";"),
            ("a,b,c\n1,2,3\n", ","),
            ("a\tb\tc\n1\t2\t3\n", "\t"),
            ("a|b|c\n1|2|3\n", "|"),
            # A comma inside quotes does not count.
            ('"Namn, kund";Ort\n"Berg, Anna";Lund\n', ";"),
            # More semicolons than commas in the header.
            ("Namn, efternamn;Ort;Telefon\nA;B;C\n", ";"),
            # Equal in the header: consistency over the following lines decides.
            ("a;b,c\n1;2\n3;4\n", ";"),
            ("a;b,c\n1,2\n3,4\n", ","),
            # Equal and consistent: the order of preference (semicolon first, as Swedish Excel).
            ("a;b,c\n1;2,3\n", ";"),
        ],
    )
    def test_sniff_delimiter(self, text: str, expected: str) -> None:
        assert sniff_delimiter(text)[0] == expected

    def test_sniff_delimiter_consistency_beats_header_count(self) -> None:
        # Commas in the column names, semicolons between the columns.
        text = "Namn, kund;Adress, gata;Ort, stad\n" + "Anna;Storg 1;Lund\n" * 10
        assert sniff_delimiter(text)[0] == ";"

    def test_sniff_delimiter_none_found(self) -> None:
        delimiter, why = sniff_delimiter("epost\nanna@x.se\n", default=",")
        assert delimiter == ","
        assert "en enda kolumn" in why

    def test_sniff_reason(self) -> None:
        assert sniff_delimiter("a;b;c\n")[1] == "Semikolon (;) förekommer 2 gånger i rubrikraden."
        assert sniff_delimiter("a,b\n")[1] == "Komma (,) förekommer 1 gång i rubrikraden."

    def test_start_row_skips_title_lines(self) -> None:
        data = b"Kundlista 2024-05-01\nExporterad av X\nNr;Namn\n1;Anna\n2;Bo\n"
        settings = sniff_settings(data, start_row=3)
        assert settings.delimiter == ";" and settings.start_row == 3
        source = open_csv(data, settings)
        assert source.header == ["Nr", "Namn"] and source.header_line == 3
        assert [(r.line, r.values) for r in source.iter_records()] == [
            (4, ["1", "Anna"]),
            (5, ["2", "Bo"]),
        ]

    def test_no_header_start_row_2_as_the_seeds_say(self) -> None:
        # "Om du har rubriker i första raden bör du välja att starta importen från rad 2."
        data = b"Nr;Namn\n1;Anna\n2;Bo\n"
        settings = ReadSettings(has_header=False, start_row=2)
        assert settings.header_row is None and settings.data_row == 2
        source = open_csv(data, settings)
        assert source.header == ["Kolumn 1", "Kolumn 2"]
        assert source.header_line is None
        assert [(r.line, r.values) for r in source.iter_records()] == [
            (2, ["1", "Anna"]),
            (3, ["2", "Bo"]),
        ]

    def test_no_header_from_row_1(self) -> None:
        source = open_csv(b"1;Anna\n2;Bo;x\n", ReadSettings(has_header=False))
        assert source.header == ["Kolumn 1", "Kolumn 2"]
        got = list(source.iter_records())
        assert got[0] == Record(1, ["1", "Anna"], None)
        assert got[1].problem == "Rad 2 har 3 fält, första raden har 2."

    def test_header_row_properties(self) -> None:
        assert ReadSettings().header_row == 1 and ReadSettings().data_row == 2
        assert ReadSettings(skip_sep_line=True).header_row == 2
        assert ReadSettings(start_row=4, skip_sep_line=True).first_row == 4

    def test_start_row_past_the_end(self) -> None:
        error = refusal(b"a;b\n1;2\n", ReadSettings(start_row=9))
        assert str(error) == "Det finns inga rader att läsa från rad 9."

    def test_quotechar_none(self) -> None:
        got = values(b'a;b\n"x;y"\n', ReadSettings(delimiter=";", quotechar=None))
        assert got == [['"x', 'y"']]

    def test_other_quotechar(self) -> None:
        assert values(b"a;b\n'x;y';z\n", ReadSettings(quotechar="'")) == [["x;y", "z"]]

    def test_blank_rows_are_skipped_and_counted(self) -> None:
        source = open_csv(b"a;b\n1;2\n\n;\n3;4\n\n;;\n")
        got = list(source.iter_records())
        assert [(r.line, r.values) for r in got] == [(2, ["1", "2"]), (5, ["3", "4"])]
        assert source.blank_rows == 4

    def test_values_are_raw(self) -> None:
        assert values(b"a;b\n  x ; y\t\n") == [["  x ", " y\t"]]

    def test_header_is_stripped(self) -> None:
        assert open_csv(b" Namn ;\tOrt \n1;2\n").header == ["Namn", "Ort"]

    def test_lone_cr_line_ends(self) -> None:
        got = records(b"a;b\r1;2\r3;4\r")
        assert [(r.line, r.values) for r in got] == [(2, ["1", "2"]), (3, ["3", "4"])]

    def test_no_trailing_newline(self) -> None:
        assert values(b"a;b\n1;2") == [["1", "2"]]


# --------------------------------------------------------------------------------------------
# Excel formula guard


class TestExcelGuard:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("'=SUMMA(A1:A3)", "=SUMMA(A1:A3)"),
            ("'+46701234567", "+46701234567"),
            ("'-5", "-5"),
            ("'@home", "@home"),
            ("'\tx", "\tx"),
            ("'\rx", "\rx"),
            ("'\nx", "\nx"),
            ("''t Hooft", "'t Hooft"),
            ("'t Hooft", "'t Hooft"),  # not something the export writes: left alone
            ("'", "'"),
            ("''", "'"),
            ("", ""),
            ("=A1", "=A1"),
            ("Anna", "Anna"),
            ("''=x", "'=x"),  # exactly one is stripped
        ],
    )
    def test_strip(self, value: str, expected: str) -> None:
        assert strip_excel_guard(value) == expected

    @given(st.text(max_size=20))
    @example("'")
    @example("'t Hooft")
    @example("=1+1")
    def test_inverse_of_the_export_guard(self, value: str) -> None:
        guarded = "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n", "'") else value
        assert strip_excel_guard(guarded) == value

    def test_applied_by_default_to_a_file_with_a_bom(self) -> None:
        # A UTF-8 BOM is the signature of "Kundlista för Excel": its guard is undone.
        data = b"\xef\xbb\xbfNamn;Telefon;Notering\n'=HYPERLINK(x);'+4670;'t Hooft\n"
        assert values(data) == [["=HYPERLINK(x)", "+4670", "'t Hooft"]]

    def test_not_applied_by_default_without_a_bom(self) -> None:
        # "Kundinformation som CSV" writes values as they are: nothing to undo.
        data = b"Namn;Telefon\n'=x;'+4670\n"
        assert values(data) == [["'=x", "'+4670"]]

    def test_first_value_of_a_row(self) -> None:
        assert values(b"a;b\n'-1;x\n", ReadSettings(excel_guard=True)) == [["-1", "x"]]

    def test_can_be_turned_off(self) -> None:
        data = b"Namn;Telefon\n'=x;'+4670\n"
        assert values(data, ReadSettings(excel_guard=False)) == [["'=x", "'+4670"]]

    def test_not_applied_to_pasted_text_by_default(self) -> None:
        source = open_text("epost,namn\na@x.se,'=x\n")
        assert [r.values for r in source.iter_records()] == [["a@x.se", "'=x"]]


# --------------------------------------------------------------------------------------------
# Sources, streaming, progress, preview


class TestSources:
    def test_path_str_bytes_stream(self, tmp_path: Path) -> None:
        data = "Namn;Ort\nÅsa;Örebro\n".encode()
        path = tmp_path / "k.csv"
        path.write_bytes(data)
        expected = [["Åsa", "Örebro"]]
        assert values(path) == expected
        assert values(str(path)) == expected
        assert values(data) == expected
        assert values(bytearray(data)) == expected
        assert values(io.BytesIO(data)) == expected
        assert values(io.StringIO(data.decode())) == expected

    def test_iterating_twice_reads_again(self, tmp_path: Path) -> None:
        path = tmp_path / "k.csv"
        path.write_bytes(b"a;b\n1;2\n3;4\n")
        source = open_csv(path)
        first = list(source.iter_records())
        assert list(source.iter_records()) == first
        assert source.preview_records(1) == first[:1]
        assert list(source.iter_records()) == first

    def test_caller_stream_is_not_closed(self) -> None:
        stream = io.BytesIO(b"a;b\n1;2\n")
        source = open_csv(stream)
        list(source.iter_records())
        list(source.iter_records())
        assert not stream.closed

    def test_non_seekable_stream_is_read_once(self) -> None:
        class Pipe(io.RawIOBase):
            def __init__(self, data: bytes) -> None:
                self._data = io.BytesIO(data)

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
                chunk = self._data.read(min(len(buffer), 1000))
                buffer[: len(chunk)] = chunk
                return len(chunk)

        rows = b"".join(b"%d;x\n" % i for i in range(30_000))
        source = open_csv(io.BufferedReader(Pipe(b"Nr;Namn\n" + rows)))
        assert source.total_bytes is None
        got = list(source.iter_records())
        assert len(got) == 30_000 and got[-1] == Record(30_001, ["29999", "x"], None)
        with pytest.raises(RuntimeError):
            list(source.iter_records())

    def test_progress(self, tmp_path: Path) -> None:
        path = tmp_path / "big.csv"
        path.write_bytes(b"Nr;Namn\n" + b"".join(b"%d;Namn\n" % i for i in range(300_000)))
        source = open_csv(path)
        assert source.total_bytes == path.stat().st_size
        seen = []
        for index, _record in enumerate(source.iter_records()):
            if index % 50_000 == 0:
                seen.append(source.bytes_read)
        assert seen == sorted(seen) and seen[0] < seen[-1] < source.total_bytes
        assert source.bytes_read == source.total_bytes

    def test_progress_of_text(self) -> None:
        text = "epost;namn\na@x.se;A\nb@x.se;B\n"
        source = open_text(text)
        assert source.total_bytes == len(text)
        list(source.iter_records())
        assert source.bytes_read == len(text)

    def test_preview_lines(self) -> None:
        data = "sep=;\r\nNamn;Ort\r\nÅsa;Ö\x1brebro\r\n\r\nBo;Lund".encode("cp1252")
        source = open_csv(data)
        assert source.preview() == ["sep=;", "Namn;Ort", "Åsa;Ö\x1brebro", "", "Bo;Lund"]
        assert source.preview(2) == ["sep=;", "Namn;Ort"]

    def test_preview_with_the_wrong_encoding_shows_replacement_characters(self) -> None:
        data = "Namn\nÅsa\n".encode("cp1252")
        with pytest.raises(CsvReadError, match="utf-8"):
            open_csv(data, ReadSettings(encoding="utf-8"))
        # The wizard can still show the lines, so that the user sees why.
        assert preview_lines(data, "utf-8") == ["Namn", "\ufffdsa"]
        assert preview_lines(data) == ["Namn", "Åsa"]
        assert preview_lines(DATA / "utf16le_tab.txt", count=1) == ["Kundnummer\tNamn\tOrt"]

    def test_preview_of_a_big_file_drops_the_cut_line(self) -> None:
        data = b"a;b\n" + b"1234567;abcdefgh\n" * 10_000
        lines = open_csv(data).preview(100_000)
        assert lines[0] == "a;b" and all(line == "1234567;abcdefgh" for line in lines[1:])
        assert len(lines) < 10_001

    def test_encoding_is_reported(self) -> None:
        source = open_csv("a;b\nÅ;Ä\n".encode("cp1252"))
        assert source.encoding == "cp1252"
        assert source.settings.encoding == "cp1252"
        assert "Windows-1252" in source.encoding_reason
        chosen = open_csv(b"a;b\n1;2\n", ReadSettings(encoding="latin-1"))
        assert chosen.encoding_reason == "Vald teckenkodning."

    def test_streaming_memory_does_not_grow_with_file_size(self, tmp_path: Path) -> None:
        def peak(rows: int) -> int:
            path = tmp_path / f"{rows}.csv"
            with path.open("w", encoding="utf-8") as f:
                f.write("Nr;Namn;Ort;E-post\n")
                for i in range(rows):
                    f.write(f"{i};Företag {i} AB;Örebro;info{i}@exempel.se\n")
            source = open_csv(path)
            tracemalloc.start()
            try:
                for _record in source.iter_records():
                    pass
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

        small, big = peak(2_000), peak(20_000)
        assert big < small * 1.5 + 256 * 1024

    def test_many_rows(self, tmp_path: Path) -> None:
        # 200 000 rows of 10 fields read in one streamed pass (speed: benchmarks/bench_import.py).
        path = tmp_path / "many.csv"
        row = "{};Företag {} AB;Åsa;Öberg;asa{}@exempel.se;070-123 45 67;Storgatan 1;123 45;Örebro;SE\n"
        with path.open("w", encoding="utf-8") as f:
            f.write("Nr;Namn;Förnamn;Efternamn;E-post;Telefon;Adress;Postnummer;Ort;Land\n")
            f.writelines(row.format(i, i, i) for i in range(200_000))
        count = sum(1 for _ in open_csv(path).iter_records())
        assert count == 200_000


# --------------------------------------------------------------------------------------------
# Pasted text


class TestPaste:
    @pytest.mark.parametrize("delimiter", [",", ";", "\t"])
    def test_seed_example(self, delimiter: str) -> None:
        text = (
            "epost,förnamn,eftenamn,telefonnummer\n"
            "nils@epost.com,Nils,Karlsson,070123456\n"
            "stina@epost.com,Stina,Olsson,0701122333\n"
        ).replace(",", delimiter)
        source = open_text(text)
        assert source.settings.delimiter == delimiter
        assert source.encoding is None
        assert source.header == ["epost", "förnamn", "eftenamn", "telefonnummer"]
        assert [r.values for r in source.iter_records()] == [
            ["nils@epost.com", "Nils", "Karlsson", "070123456"],
            ["stina@epost.com", "Stina", "Olsson", "0701122333"],
        ]

    def test_explicit_delimiter(self) -> None:
        source = open_text("epost;namn,x\na;b,c\n", delimiter=";")
        assert source.header == ["epost", "namn,x"]

    def test_single_column(self) -> None:
        source = open_text("epost\nanna@x.se\n")
        assert source.settings.delimiter == ","
        assert [r.values for r in source.iter_records()] == [["anna@x.se"]]

    @pytest.mark.parametrize("text", ["", "   \n\n"])
    def test_empty(self, text: str) -> None:
        with pytest.raises(CsvReadError, match="^Texten är tom.$"):
            open_text(text)

    def test_format_line_only(self) -> None:
        with pytest.raises(CsvReadError, match="^Texten har bara en rubrikrad"):
            open_text("epost,förnamn\n")

    def test_nul(self) -> None:
        with pytest.raises(CsvReadError, match="Rad 2 innehåller ett NUL-tecken") as info:
            list(open_text("epost\na\x00b\n").iter_records())
        assert "Texten" in str(info.value)

    def test_crlf_and_blank_lines(self) -> None:
        source = open_text("epost,namn\r\n\r\na@x.se,A\r\n  \r\nb@x.se,B")
        got = list(source.iter_records())
        assert [(r.line, r.values) for r in got][0] == (3, ["a@x.se", "A"])
        assert got[-1] == Record(5, ["b@x.se", "B"], None)


# --------------------------------------------------------------------------------------------
# csv-spectrum: https://github.com/max-mapper/csv-spectrum


def _spectrum_cases() -> list[str]:
    if not (SPECTRUM / "csvs").is_dir():
        return []
    return sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv"))


def _expected(name: str, csv_bytes: bytes) -> list[dict[str, str]]:
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    if name == "location_coordinates":
        # The JSON is wrong twice: it is a bare object rather than a list of records, and its
        # phone number (1234567890) is not the one in the CSV (2095257564).
        assert isinstance(expected, dict)
        expected = [{**expected, "Contact Phone Number": "2095257564"}]
    if name == "newlines_crlf" and b"\r" not in csv_bytes:
        # The stored *_crlf files have lost their CRs (line-end conversion on checkout); the JSON
        # still expects the CRLF inside the quoted field. Compare with what the file holds, and
        # see test_spectrum_real_crlf for the file as it was meant to be.
        expected = [{k: v.replace("\r\n", "\n") for k, v in row.items()} for row in expected]
    assert isinstance(expected, list)
    return expected


@pytest.mark.parametrize("name", _spectrum_cases())
def test_csv_spectrum(name: str) -> None:
    csv_bytes = (SPECTRUM / "csvs" / f"{name}.csv").read_bytes()
    source = open_csv(csv_bytes, ReadSettings(delimiter=",", excel_guard=False))
    got = [dict(zip(source.header, r.values, strict=True)) for r in source.iter_records()]
    assert got == _expected(name, csv_bytes)
    # Detection agrees with the explicit settings.
    assert values(csv_bytes) == [r.values for r in open_csv(csv_bytes).iter_records()]


@pytest.mark.parametrize("name", [n for n in _spectrum_cases() if n.endswith("_crlf")])
def test_spectrum_real_crlf(name: str) -> None:
    raw = (SPECTRUM / "csvs" / f"{name}.csv").read_bytes()
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    source = open_csv(crlf, ReadSettings(delimiter=","))
    assert [dict(zip(source.header, r.values, strict=True)) for r in source.iter_records()] == (
        expected
    )


def test_spectrum_is_present() -> None:
    if not _spectrum_cases():
        pytest.skip("csv-spectrum not available")
    assert len(_spectrum_cases()) >= 12


# --------------------------------------------------------------------------------------------


def test_domain_modules_import_neither_textual_nor_rich() -> None:
    code = (
        "import sys, kundreg_tui.domain.csvread, kundreg_tui.domain.mapping\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --------------------------------------------------------------------------------------------
# Round trip against the csv module's writer


def _field(value: str, delimiter: str) -> str:
    # csv.writer of Python 3.11 leaves a lone CR unquoted with a LF terminator; quote here.
    if any(c in value for c in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_text(
    header: list[str], rows: list[list[str]], delimiter: str, terminator: str
) -> tuple[str, list[tuple[int, list[str]]]]:
    """The file's text and its non-blank rows with the physical line each starts on."""
    parts = [delimiter.join(header) + terminator]
    line = 2
    expected: list[tuple[int, list[str]]] = []
    for row in rows:
        part = delimiter.join(_field(v, delimiter) for v in row) + terminator
        if any(row):
            expected.append((line, row))
        line += len(csvread._LINE_BREAK.findall(part))
        parts.append(part)
    return "".join(parts), expected


_cell = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@given(
    rows=st.integers(1, 4).flatmap(
        lambda n: st.lists(st.lists(_cell, min_size=n, max_size=n), min_size=1, max_size=8)
    ),
    delimiter=st.sampled_from([";", ",", "\t", "|"]),
    terminator=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_round_trip_with_line_numbers(
    rows: list[list[str]], delimiter: str, terminator: str, encoding: str
) -> None:
    header = [f"k{i}" for i in range(len(rows[0]))]
    text, expected = _csv_text(header, rows, delimiter, terminator)
    data = text.encode(encoding)
    if not expected:
        with pytest.raises(CsvReadError, match="bara en rubrikrad"):
            open_csv(data, ReadSettings(delimiter=delimiter))
        return
    source = open_csv(data, ReadSettings(delimiter=delimiter, excel_guard=False))
    assert source.header == header
    got = [(r.line, r.values) for r in source.iter_records()]
    assert got == expected


@hsettings(max_examples=30, deadline=None)
@given(
    templates=st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    delimiter=st.sampled_from([";", ",", "\t"]),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_round_trip_across_batches(
    templates: list[list[str]], seed: int, delimiter: str, terminator: str
) -> None:
    """Hundreds of rows: batches of lines read at once (``BATCH_LINES``) and batches read record
    by record (quotes, line breaks in fields, blank rows) follow each other with the right lines."""
    rnd = random.Random(seed)
    rows = [list(rnd.choice(templates)) for _ in range(rnd.randint(csvread.BATCH_LINES, 3 * csvread.BATCH_LINES))]
    for _ in range(rnd.randint(0, 5)):
        rows.insert(rnd.randrange(len(rows)), ["", "", ""])

    text, expected = _csv_text(["a", "b", "c"], rows, delimiter, terminator)
    if not expected:
        return
    source = open_csv(text.encode("utf-8"), ReadSettings(delimiter=delimiter, excel_guard=False))
    got = [(r.line, r.values) for r in source.iter_records()]
    assert got == expected
    assert source.blank_rows == len(rows) - len(expected)


class TestBatches:
    """A file longer than a batch: what the record-by-record reader finds, found past it too."""

    def _file(self, lines: list[str]) -> bytes:
        return ("nr;namn;ort\n" + "".join(lines)).encode("utf-8")

    def test_a_quoted_line_break_across_a_batch_edge(self) -> None:
        n = csvread.BATCH_LINES
        lines = [f"{i};Namn {i};Ort\n" for i in range(n - 2)]
        lines.append('x;"två\nrader";Ort\n')  # lines n .. n+1 of the file (the header is line 1)
        lines += [f"{i};Namn {i};Ort\n" for i in range(n - 2, 3 * n)]
        got = records(self._file(lines), ReadSettings(delimiter=";"))
        assert (got[n - 2].line, got[n - 2].values) == (n, ["x", "två\nrader", "Ort"])
        assert got[n - 1].line == n + 2 and got[-1].line == 3 * n + 3
        assert [r.line for r in got] == list(range(2, n)) + [n] + list(range(n + 2, 3 * n + 4))

    def test_ragged_trailing_and_blank_rows_late_in_the_file(self) -> None:
        lines = [f"{i};Namn {i};Ort\n" for i in range(600)]
        lines[300] = "300;Namn;Ort;;\n"  # trailing empty fields: fine
        lines[400] = "400;Namn\n"  # too few
        lines[500] = ";;\n"  # blank
        lines[510] = "\n"  # empty
        source = open_csv(self._file(lines), ReadSettings(delimiter=";"))
        got = list(source.iter_records())
        assert len(got) == 598 and source.blank_rows == 2
        by_line = {r.line: r for r in got}
        assert by_line[302].values == ["300", "Namn", "Ort"] and by_line[302].problem is None
        assert by_line[402].problem == "Rad 402 har 2 fält, rubriken har 3."
        assert 502 not in by_line and 512 not in by_line and by_line[513].values[0] == "511"

    def test_nul_and_overlong_fields_late_in_the_file_name_their_line(self) -> None:
        lines = [f"{i};Namn {i};Ort\n" for i in range(900)]
        nul = lines.copy()
        nul[700] = "700;Na\x00mn;Ort\n"
        assert refusal(self._file(nul), ReadSettings(delimiter=";")).line == 702
        long = lines.copy()
        long[800] = "800;" + "x" * (MAX_FIELD_LENGTH + 1) + ";Ort\n"
        err = refusal(self._file(long), ReadSettings(delimiter=";"))
        assert err.line == 802 and "10\xa0000" in err.message
        quote = lines.copy()
        quote[850] = '850;"Namn;Ort\n'  # never closed
        assert refusal(self._file(quote), ReadSettings(delimiter=";")).line == 852

    def test_the_excel_guard_late_in_the_file(self) -> None:
        lines = [f"{i};Namn {i};Ort\n" for i in range(700)]
        lines[650] = "650;'=SUMMA(A1);'Ort\n"
        got = records(self._file(lines), ReadSettings(delimiter=";", excel_guard=True))
        assert got[650].values == ["650", "=SUMMA(A1)", "'Ort"]
