"""``kundreg import FILE|-`` on both databases: exit statuses, the JSON report, --dry-run, --strict,
--map, --empty-clears, --all-new, paste from standard input and a Windows-1252 file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from kundreg_tui.__main__ import main
from kundreg_tui.domain.database import read_conn
from kundreg_tui.domain.models import batch_table, customer_table

pytestmark = pytest.mark.pg

NILS_STINA = ("epost,förnamn,eftenamn,telefonnummer\n"
              "nils@epost.com,Nils,Karlsson,070123456\n"
              "stina@epost.com,Stina,Olsson,0701122333\n")


def run(db_url: str, *args: str, stdin: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, "import", *args], input=stdin, catch_exceptions=False)


def report(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def stored(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with read_conn(engine) as conn:
        return {r.number: dict(r._mapping) for r in conn.execute(
            sa.select(customer_table).where(customer_table.c.deleted_at.is_(None)))}


def batches(engine: sa.Engine) -> int:
    with read_conn(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(batch_table)).scalar_one())


def write(tmp_path: Path, name: str, data: str | bytes, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return str(path)


class TestPaste:
    def test_nils_and_stina_from_stdin(self, engine: sa.Engine, db_url: str) -> None:
        result = run(db_url, "-", "--json", stdin=NILS_STINA)
        assert result.exit_code == 0, result.output
        data = report(result)
        assert data["ok"] is True and data["committed"] is True and isinstance(data["batch_id"], int)
        assert data["counts"] == {"new": 2, "updated": 0, "unchanged": 0, "error": 0}
        assert data["rows"] == [{"line": 2, "class": "new", "number": "1001", "reason": ""},
                                {"line": 3, "class": "new", "number": "1002", "reason": ""}]
        assert data["encoding"] == "utf-8" and data["delimiter"] == ","
        assert stored(engine)["1001"]["name"] == "Nils Karlsson"
        again = report(run(db_url, "-", "--json", stdin=NILS_STINA))
        assert again["counts"] == {"new": 0, "updated": 0, "unchanged": 2, "error": 0}
        assert again["committed"] is False  # nothing to write

    def test_stdin_in_windows_1252(self, engine: sa.Engine, db_url: str) -> None:
        text = "epost;förnamn;efternamn;stad\nåsa@exempel.se;Åsa;Öberg;Göteborg\n"
        result = run(db_url, "-", "--json", stdin=text.encode("cp1252"))
        assert result.exit_code == 0, result.output
        assert report(result)["encoding"] == "cp1252"
        (customer,) = stored(engine).values()
        assert (customer["name"], customer["city"]) == ("Åsa Öberg", "Göteborg")

    def test_stdin_with_bom_and_tabs(self, engine: sa.Engine, db_url: str) -> None:
        text = "\ufeffkundnummer\tnamn\n10\tTio AB\n"
        result = run(db_url, "-", stdin=text.encode("utf-8"))
        assert result.exit_code == 0, result.output
        assert stored(engine)["10"]["name"] == "Tio AB"

    def test_format_line_without_keys_is_refused(self, engine: sa.Engine, db_url: str) -> None:
        result = run(db_url, "-", "--json", stdin="förnamn,efternamn\nNils,Karlsson\n")
        assert result.exit_code == 2
        data = report(result)
        assert data["ok"] is False and "kundnummer, epost eller båda" in data["error"]
        assert batches(engine) == 0

    def test_only_a_format_line(self, engine: sa.Engine, db_url: str) -> None:
        result = run(db_url, "-", stdin="epost,namn\n")
        assert result.exit_code == 2 and "bara en rubrikrad" in result.stderr


class TestExitStatus:
    def test_rows_in_error_exit_1_and_the_rest_is_imported(self, engine: sa.Engine, db_url: str,
                                                           tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnummer;Kundnamn;E-post\n1;Ett AB;ett@a.se\n2;Två AB;inte-en-adress\n"
                                        "3;Tre AB;tre@a.se\n")
        result = run(db_url, path)
        assert result.exit_code == 1
        assert "rad 3:" in result.stderr and "Ogiltig e-postadress" in result.stderr
        assert sorted(stored(engine)) == ["1", "3"]

    def test_strict_imports_nothing(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnummer;Kundnamn\n1;Ett AB\n1;Ett igen AB\n2;Två AB\n")
        result = run(db_url, path, "--strict", "--json")
        assert result.exit_code == 1
        data = report(result)
        assert data["committed"] is False and data["counts"] == {"new": 1, "updated": 0, "unchanged": 0, "error": 2}
        assert stored(engine) == {} and batches(engine) == 0

    def test_dry_run_writes_nothing(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnummer;Kundnamn\n1;Ett AB\n2;Två AB\n")
        result = run(db_url, path, "--dry-run", "--json")
        assert result.exit_code == 0
        data = report(result)
        assert data["dry_run"] is True and data["committed"] is False and data["counts"]["new"] == 2
        assert [r["number"] for r in data["rows"]] == ["1", "2"]
        assert stored(engine) == {} and batches(engine) == 0
        text = run(db_url, path, "--dry-run")
        assert text.exit_code == 0 and "Provkörning" in text.stdout

    @pytest.mark.parametrize(("data", "message"), [
        (b"", "tom"),
        (b"Kundnummer;Kundnamn\n", "bara en rubrikrad"),
        (b'Kundnummer;Kundnamn\n1;"Ett AB\n2;Tv\xc3\xa5 AB\n', "avslutas aldrig"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 300, "Excel"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, ""),
        (b"Kundnummer;Kundnamn;kundnamn\n1;a;b\n", "samma kolumnnamn"),
        (b"Kundnummer;Kundnamn\n1;Ett\x00AB\n", "NUL"),
        (b"Kundnummer;Kundnamn\n1;" + b"y" * 20_000 + b"\n", "fler än"),
    ])
    def test_unreadable_input_exit_2(self, engine: sa.Engine, db_url: str, tmp_path: Path,
                                     data: bytes, message: str) -> None:
        path = write(tmp_path, "in.csv", data)
        result = run(db_url, path, "--json")
        assert result.exit_code == 2, result.output
        out = report(result)
        assert out["ok"] is False and message.lower() in out["error"].lower()
        assert stored(engine) == {} and batches(engine) == 0

    def test_missing_file_exit_2(self, db_url: str, tmp_path: Path) -> None:
        result = run(db_url, str(tmp_path / "finns-inte.csv"))
        assert result.exit_code == 2 and "finns inte" in result.stderr

    def test_ragged_rows_are_row_errors(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnummer;Kundnamn;Ort\n1;Ett AB;Umeå\n2;Två AB\n")
        data = report(run(db_url, path, "--json"))
        assert [(r["line"], r["class"]) for r in data["rows"]] == [(2, "new"), (3, "error")]
        assert "Rad 3 har 2 fält" in data["rows"][1]["reason"]


class TestOptions:
    def test_cp1252_semicolon_file(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        text = "Kundnummer;Kundnamn;Adress;Postnummer;Ort\r\n1;Åkesson & Söner AB;Östra gatan 1;12345;Örebro\r\n"
        path = write(tmp_path, "excel.csv", text, encoding="cp1252")
        result = run(db_url, path, "--json")
        assert result.exit_code == 0, result.output
        data = report(result)
        assert (data["encoding"], data["delimiter"]) == ("cp1252", ";")
        customer = stored(engine)["1"]
        assert (customer["name"], customer["postal_code"], customer["city"]) == ("Åkesson & Söner AB", "123 45", "Örebro")

    def test_encoding_and_delimiter_options(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.txt", "Kundnummer|Kundnamn\n1|Ått AB\n", encoding="latin-1")
        result = run(db_url, path, "--encoding", "latin-1", "--delimiter", "|")
        assert result.exit_code == 0, result.output
        assert stored(engine)["1"]["name"] == "Ått AB"

    def test_map_confirms_and_overrides(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kund nr;Företagsnamnet;Mejl;Fax\n7;Sju AB;sju@a.se;08-1\n")
        refused = run(db_url, path)
        assert refused.exit_code == 2 and "--map" in refused.stderr
        result = run(db_url, path, "--json", "--map", "Kund nr=kundnummer,2=namn,Mejl=epost,Fax=-")
        assert result.exit_code == 0, result.output
        customer = stored(engine)["7"]
        assert (customer["name"], customer["email"], customer["phone"]) == ("Sju AB", "sju@a.se", "")

    def test_map_with_an_unknown_field(self, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnummer;Namn\n1;Ett\n")
        result = run(db_url, path, "--map", "Namn=skostorlek")
        assert result.exit_code == 2 and "okänt fält" in result.stderr

    def test_no_header_and_start_row(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Export från Annat System\n1;Ett AB;Umeå\n2;Två AB;Luleå\n")
        result = run(db_url, path, "--no-header", "--start-row", "2", "--map", "1=kundnummer,2=namn,3=ort")
        assert result.exit_code == 0, result.output
        assert stored(engine)["2"]["city"] == "Luleå"
        assert run(db_url, path, "--no-header").exit_code == 2  # columns must be named with --map

    def test_empty_clears(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        run(db_url, write(tmp_path, "a.csv", "Kundnummer;Kundnamn;Telefon\n1;Ett AB;08-123 45\n"))
        keep = write(tmp_path, "b.csv", "Kundnummer;Kundnamn;Telefon\n1;Ett AB;\n")
        assert report(run(db_url, keep, "--json"))["counts"]["unchanged"] == 1
        assert stored(engine)["1"]["phone"] == "08-123 45"
        cleared = report(run(db_url, keep, "--json", "--empty-clears"))
        assert cleared["counts"]["updated"] == 1
        assert stored(engine)["1"]["phone"] == ""

    def test_all_new(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnamn;Ort\nEtt AB;Umeå\nTvå AB;Luleå\n")
        refused = run(db_url, path, "--json")
        assert refused.exit_code == 2 and "--all-new" in report(refused)["error"]
        result = run(db_url, path, "--all-new", "--json")
        assert result.exit_code == 0
        assert [r["number"] for r in report(result)["rows"]] == ["1001", "1002"]

    def test_text_report(self, engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
        path = write(tmp_path, "k.csv", "Kundnummer;Kundnamn\n1;Ett AB\n")
        result = run(db_url, path)
        assert result.exit_code == 0
        assert "1 nya, 0 uppdaterade, 0 oförändrade, 0 fel" in result.stdout and "Importen är klar" in result.stdout
