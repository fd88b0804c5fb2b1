"""``kundreg import FILE|-``: the import engine headless, for scripts and cron.

``FILE`` is a CSV file (encoding, delimiter and header detected unless given); ``-`` reads standard
input in the paste format: line 1 is the format line (``epost,förnamn,efternamn``), the data
follows. Both go through the same engine and rules as the screens.

Exit status: 0 every row imported (or, with ``--dry-run``, every row could be); 1 some rows are in
error (the others were imported, unless ``--strict``: then nothing was); 2 the input could not be
read or the import could not start (nothing was written).

``--json`` prints one JSON object: ``ok``, ``file``, ``encoding``, ``delimiter``, ``dry_run``,
``strict``, ``committed``, ``batch_id``, ``counts`` (``new``, ``updated``, ``unchanged``, ``error``),
``blank_rows`` and ``rows``: one entry per input row with ``line``, ``class`` (``new`` /
``updated`` / ``unchanged`` / ``error``), ``number`` (the customer number, the one a new customer
gets), ``reason`` (why a row is in error, else "") and, when there is one, ``warning``. A refusal
prints ``{"ok": false, "error": …, "line": …}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click

from kundreg_tui.i18n import _

EXIT_OK, EXIT_ROW_ERRORS, EXIT_UNREADABLE = 0, 1, 2
JSON_CLASS = {"new": "new", "update": "updated", "same": "unchanged", "error": "error"}
_DELIMITER_WORDS = {"tab": "\t", "\\t": "\t", "tabb": "\t", "semikolon": ";", "semicolon": ";",
                    "komma": ",", "comma": ",", "pipe": "|", "lodstreck": "|"}


def _field_for(name: str) -> str | None:
    from kundreg_tui.domain.fields import FIELD_BY_NAME
    from kundreg_tui.domain.mapping import match_header

    name = name.strip()
    if name in ("", "-", "ignore", "ignorera"):
        return None
    if name in FIELD_BY_NAME:
        return name
    field, _score, exact = match_header(name)
    if field is None or not exact:
        raise click.BadParameter(_("okänt fält: {name}").format(name=name), param_hint="--map")
    return field


def parse_map(spec: str, headers: list[str]) -> dict[int, str | None]:
    """``--map "Kund nr=kundnummer,3=epost,Fax=-"``: column (header or 1-based number) = field."""
    from kundreg_tui.domain.mapping import normalise_header

    out: dict[int, str | None] = {}
    wanted = {normalise_header(h): i for i, h in enumerate(headers)}
    for part in [p for p in spec.split(",") if p.strip()]:
        if "=" not in part:
            raise click.BadParameter(_("skriv KOLUMN=FÄLT, t.ex. \"Kund nr=kundnummer\""), param_hint="--map")
        column, field = part.rsplit("=", 1)
        column = column.strip()
        if column.isdigit() and 1 <= int(column) <= len(headers):
            index = int(column) - 1
        elif normalise_header(column) in wanted:
            index = wanted[normalise_header(column)]
        else:
            raise click.BadParameter(_("kolumnen finns inte: {c}").format(c=column), param_hint="--map")
        out[index] = _field_for(field)
    return out


class _Refused(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _fail(message: str, as_json: bool, line: int | None = None, code: int = EXIT_UNREADABLE) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message, "line": line}, ensure_ascii=False))
    else:
        click.echo(_("kundreg import: {m}").format(m=message), err=True)
    sys.exit(code)


def _open_stdin(data: bytes, encoding: str | None, delimiter: str | None, no_header: bool,
                start_row: int) -> tuple[Any, str]:
    """Standard input: decoded like a file (a BOM decides, else UTF-8, else Windows-1252), then read
    as pasted text (line 1 is the format line). Returns the source and the encoding used."""
    import io

    from kundreg_tui.domain.csvread import (
        CsvReadError,
        ReadSettings,
        detect_encoding,
        open_csv,
        open_text,
    )

    if no_header or start_row > 1:
        source = open_csv(io.BytesIO(data), ReadSettings(encoding=encoding, delimiter=delimiter,
                                                         start_row=start_row, has_header=not no_header))
        return source, source.encoding or ""
    if encoding is None:
        encoding = detect_encoding(data[:64 * 1024], data).name
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise CsvReadError(_("Texten kan inte läsas som {encoding}. Ange en annan med --encoding.").format(
            encoding=encoding)) from exc
    return open_text(text.removeprefix("\ufeff"), delimiter), encoding.removesuffix("-sig")


def _mapping(source: Any, stdin: bool, no_header: bool, spec: str) -> list[str | None]:
    from kundreg_tui.domain.mapping import parse_format_names, suggest_mapping

    headers: list[str] = list(source.header)
    fields: list[str | None] = [None] * len(headers)
    if stdin and not no_header:
        parsed, problems = parse_format_names(headers)
        if problems and not spec:
            raise _Refused(" ".join(problems), getattr(source, "header_line", None))
        fields = list(parsed)
    elif not no_header:
        chosen = parse_map(spec, headers) if spec else {}
        unsure = []
        for s in suggest_mapping(headers):
            if s.exact:
                fields[s.column_index] = s.field
            elif s.field and s.column_index not in chosen:
                unsure.append(f"{s.header}={s.field}")
        if unsure:
            raise _Refused(_("kolumnrubriker som bara liknar ett fält måste bekräftas med --map: {m}").format(
                m=",".join(unsure)))
    if spec:
        for index, field in parse_map(spec, headers).items():
            if field is not None:
                fields = [None if f == field else f for f in fields]
            fields[index] = field
    return fields


def _write_json(out: TextIO, head: dict[str, Any], rows: Any) -> None:
    body = json.dumps(head, ensure_ascii=False, indent=2)
    out.write(body[:-2] + ',\n  "rows": [')
    first = True
    for r in rows:
        entry: dict[str, Any] = {"line": r.line, "class": JSON_CLASS[r.cls], "number": r.number, "reason": r.reason}
        if r.warning:
            entry["warning"] = r.warning
        out.write(("\n    " if first else ",\n    ") + json.dumps(entry, ensure_ascii=False))
        first = False
    out.write("\n  ]\n}\n" if not first else "]\n}\n")


@click.command("import", help=_("Importera kunder från en CSV-fil (eller - för standard in i klistra-in-formatet)."))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--encoding", help=_("Teckenkodning (standard: BOM, annars UTF-8, annars cp1252)."))
@click.option("--delimiter", help=_("Avgränsare: ; , tab eller |  (standard: gissas från rubrikraden)."))
@click.option("--start-row", type=click.IntRange(1), default=1, show_default=True,
              help=_("Första raden som läses (rubrikraden om filen har en)."))
@click.option("--no-header", is_flag=True, help=_("Filen har ingen rubrikrad (ange kolumnerna med --map)."))
@click.option("--map", "mapping", default="", help=_("Kolumner till fält, t.ex. \"Kund nr=kundnummer,3=epost,Fax=-\"."))
@click.option("--empty-clears", is_flag=True, help=_("Tomma celler tömmer fältet (annars lämnas värdet)."))
@click.option("--all-new", is_flag=True, help=_("Skapa varje rad som ny kund (när filen saknar kundnummer och e-post)."))
@click.option("--dry-run", is_flag=True, help=_("Visa vad som skulle hända, men spara inget."))
@click.option("--strict", is_flag=True, help=_("Importera ingenting om någon rad har fel."))
@click.option("--json", "as_json", is_flag=True, help=_("Skriv en rapport i JSON."))
@click.pass_context
def import_cmd(ctx: click.Context, file: str, encoding: str | None, delimiter: str | None, start_row: int,
               no_header: bool, mapping: str, empty_clears: bool, all_new: bool, dry_run: bool,
               strict: bool, as_json: bool) -> None:
    """Importera kunder från en CSV-fil (eller - för standard in i klistra-in-formatet)."""
    from kundreg_tui.__main__ import _service
    from kundreg_tui.domain.csvread import CsvReadError, ReadSettings, open_csv
    from kundreg_tui.domain.importer import ImportError_, ImportOptions, ImportPlan, StalePlan

    if delimiter is not None:
        delimiter = _DELIMITER_WORDS.get(delimiter.lower(), delimiter)
    stdin = file == "-"
    label = _("standard in") if stdin else Path(file).name
    try:
        if stdin:
            source, read_as = _open_stdin(sys.stdin.buffer.read(), encoding, delimiter, no_header, start_row)
        else:
            if not Path(file).exists():
                raise CsvReadError(_("Filen finns inte: {f}").format(f=file))
            source = open_csv(Path(file), ReadSettings(encoding=encoding, delimiter=delimiter, start_row=start_row,
                                                       has_header=not no_header))
            read_as = source.encoding or ""
        if no_header and not mapping:
            raise _Refused(_("Utan rubrikrad måste kolumnerna anges med --map, t.ex. --map \"1=kundnummer,2=namn\"."))
        fields = _mapping(source, stdin, no_header, mapping)
    except click.BadParameter as exc:
        _fail(exc.format_message(), as_json)
    except CsvReadError as exc:
        _fail(exc.message, as_json, exc.line)
    except _Refused as exc:
        _fail(exc.message, as_json, exc.line)
    except OSError as exc:
        _fail(str(exc), as_json)
    service = _service(ctx.obj["db"])
    options = ImportOptions(empty_clears=empty_clears, all_new=all_new, source="paste" if stdin else "cli",
                            label=label)
    committed, batch_id = False, None
    with ImportPlan(service.engine, options) as plan:
        try:
            for attempt in (1, 2):
                counts = plan.build(source, fields)
                errors = counts.get("error", 0)
                if dry_run or (strict and errors) or not (counts["new"] or counts["update"]):
                    break
                try:
                    receipt = plan.commit()
                except StalePlan:
                    if attempt == 2:
                        raise
                    continue  # someone saved meanwhile: a fresh plan, once
                committed, batch_id = True, receipt.batch_id
                break
        except CsvReadError as exc:
            _fail(exc.message, as_json, exc.line)
        except ImportError_ as exc:
            message = str(exc)
            if not any(f in ("number", "email") for f in fields if f) and not all_new:
                message += " " + _("Ange --all-new för att skapa varje rad som en ny kund.")
            _fail(message, as_json)
        head: dict[str, Any] = {
            "ok": errors == 0, "file": file, "encoding": read_as, "delimiter": source.settings.delimiter,
            "dry_run": dry_run, "strict": strict, "committed": committed, "batch_id": batch_id,
            "counts": {JSON_CLASS[k]: v for k, v in counts.items()}, "blank_rows": plan.blank_rows,
        }
        if as_json:
            _write_json(sys.stdout, head, plan.rows())
            sys.stdout.flush()
        else:
            from kundreg_tui.domain.text import visible

            c = head["counts"]
            click.echo(_("{new} nya, {updated} uppdaterade, {unchanged} oförändrade, {error} fel").format(**c))
            if errors:
                for r in plan.rows(only_errors=True):
                    click.echo(visible(_("rad {line}: {reason}").format(line=r.line, reason=r.reason)), err=True)
            if dry_run:
                click.echo(_("Provkörning: inget sparades."))
            elif strict and errors:
                click.echo(_("Inget importerades eftersom det fanns fel (--strict)."))
            elif committed:
                click.echo(_("Importen är klar (import nr {id}).").format(id=batch_id))
    sys.exit(EXIT_ROW_ERRORS if errors else EXIT_OK)
