"""``kundreg import FILE|-``: the import engine headless, for scripts and cron.

Exit status: 0 every row imported (or nothing to do), 1 some rows were in error (the rest were
imported, unless ``--strict``), 2 the input could not be read or the import could not start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from kundreg_tui.i18n import _

EXIT_OK, EXIT_ROW_ERRORS, EXIT_UNREADABLE = 0, 1, 2
JSON_CLASS = {"new": "new", "update": "updated", "same": "unchanged", "error": "error"}


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


def _fail(message: str, as_json: bool, code: int = EXIT_UNREADABLE) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    else:
        click.echo(_("kundreg import: {m}").format(m=message), err=True)
    sys.exit(code)


@click.command("import")
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
    from kundreg_tui.domain.csvread import CsvReadError, ReadSettings, open_csv, open_text
    from kundreg_tui.domain.importer import ImportError_, ImportOptions, ImportPlan
    from kundreg_tui.domain.mapping import parse_format_line, suggest_mapping

    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t", "semikolon": ";", "komma": ","}.get(delimiter.lower(), delimiter)
    service = _service(ctx.obj["db"])
    label = _("standard in") if file == "-" else Path(file).name
    try:
        if file == "-":
            data = sys.stdin.buffer.read()
            text = data.decode(encoding or "utf-8-sig")
            source = open_text(text, delimiter)
            if not mapping:
                fmt = parse_format_line(text.splitlines()[0] if text else "", source.settings.delimiter)
                if fmt.problems:
                    _fail(" ".join(fmt.problems), as_json)
                fields: list[str | None] = list(fmt.fields)
            else:
                fields = [None] * len(source.header)
        else:
            settings = ReadSettings(encoding=encoding, delimiter=delimiter, start_row=start_row,
                                    has_header=not no_header)
            source = open_csv(Path(file), settings)
            fields = [None] * len(source.header)
            if not no_header and not mapping:
                unsure = []
                for s in suggest_mapping(source.header):
                    fields[s.column_index] = s.field
                    if s.field and not s.exact:
                        unsure.append(f"{s.header}={s.field}")
                if unsure:
                    _fail(_("kolumnrubriker som bara liknar ett fält måste bekräftas med --map: {m}").format(
                        m=",".join(unsure)), as_json)
        if mapping:
            chosen = parse_map(mapping, source.header)
            if file != "-" and not no_header:
                for s in suggest_mapping(source.header):
                    if s.exact and s.column_index not in chosen:
                        chosen[s.column_index] = s.field
            fields = [chosen.get(i) for i in range(len(source.header))]
        options = ImportOptions(empty_clears=empty_clears, all_new=all_new,
                                source="paste" if file == "-" else "cli", label=label)
        with ImportPlan(service.engine, options) as plan:
            counts = plan.build(source.iter_records(), fields)
            errors = counts.get("error", 0)
            committed = False
            batch_id = None
            if not dry_run and not (strict and errors) and (counts["new"] or counts["update"]):
                receipt = plan.commit()
                committed = True
                batch_id = receipt.batch_id
            rows = list(plan.rows(only_errors=not as_json))
    except CsvReadError as exc:
        _fail(str(exc), as_json)
        return
    except ImportError_ as exc:
        _fail(str(exc), as_json)
        return
    report: dict[str, Any] = {
        "ok": errors == 0,
        "file": file,
        "encoding": source.encoding,
        "delimiter": source.settings.delimiter,
        "dry_run": dry_run,
        "committed": committed,
        "batch_id": batch_id,
        "counts": {JSON_CLASS[k]: v for k, v in counts.items()},
        "rows": [{"line": r.line, "class": JSON_CLASS[r.cls], "number": r.number, "reason": r.reason,
                  **({"warning": r.warning} if r.warning else {})} for r in rows],
    }
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        from kundreg_tui.domain.text import visible

        c = report["counts"]
        click.echo(_("{new} nya, {updated} uppdaterade, {unchanged} oförändrade, {error} fel").format(**c))
        for r in rows:
            if r.cls == "error":
                click.echo(visible(_("rad {line}: {reason}").format(line=r.line, reason=r.reason)), err=True)
        if dry_run:
            click.echo(_("Provkörning: inget sparades."))
        elif strict and errors:
            click.echo(_("Inget importerades eftersom det fanns fel (--strict)."))
        elif committed:
            click.echo(_("Importen är klar (import nr {id}).").format(id=batch_id))
    sys.exit(EXIT_ROW_ERRORS if errors else EXIT_OK)
