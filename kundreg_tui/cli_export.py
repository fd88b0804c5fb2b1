"""``kundreg export``: the Kundlista screen's exports, headless, for scripts and cron.

The same engine and rules as the screen (:mod:`kundreg_tui.domain.export`): a file is written
through a temporary file beside it and renamed at the end, an existing file is only replaced
after a question (or with ``--force``), and nothing is left behind when the export fails or is
interrupted. Silent on success unless asked (``--json``) or run in a terminal.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import click

from kundreg_tui.i18n import _, ngettext

FORMATS = ("csv", "xlsx", "excel-csv", "text")
SORTS = ("number", "name", "city", "email", "phone")


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


@click.command("export", help=_(
    "Exportera kundregistret: Kundinformation som CSV, Kundlista för Excel eller en utskrift."))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help=_("csv: Kundinformation som CSV (alla fält, för ett annat system). "
                     "xlsx / excel-csv: Kundlista för Excel. text: utskrift."))
@click.option("--output", "-o", default="-", show_default=True, metavar="FIL",
              help=_("Filen att skriva; - är standard ut."))
@click.option("--search", "query", default="", metavar="TEXT",
              help=_("Bara kunderna som sökningen visar (som sökfältet i registret)."))
@click.option("--delimiter", default=None, metavar="TECKEN",
              help=_("Avgränsare för CSV: , ; | eller tab (standard: , för csv och ; för excel-csv)."))
@click.option("--sort", "sort_column", type=click.Choice(SORTS), default="number", show_default=True,
              help=_("Ordning: som kolumnen i registret."))
@click.option("--descending", is_flag=True, help=_("Omvänd ordning."))
@click.option("--force", "-f", is_flag=True, help=_("Skriv över en befintlig fil utan att fråga."))
@click.option("--page-width", type=click.IntRange(60, 1000), default=132, show_default=True,
              help=_("Utskrift: tecken per rad."))
@click.option("--page-lines", type=click.IntRange(10, 1000), default=60, show_default=True,
              help=_("Utskrift: rader per sida."))
@click.option("--json", "as_json", is_flag=True,
              help=_("Skriv en rapport i JSON (till standard fel när listan går till standard ut)."))
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, output: str, query: str, delimiter: str | None,
               sort_column: str, descending: bool, force: bool, page_width: int, page_lines: int,
               as_json: bool) -> None:
    # The help text is given above, through _(), so that --lang en translates it.
    from sqlalchemy.exc import SQLAlchemyError

    from kundreg_tui.__main__ import _service
    from kundreg_tui.domain.export import (
        ExportCancelled,
        ExportError,
        ExportKind,
        ExportRequest,
        Scope,
        check_target,
        count_customers,
        export_to_path,
        export_to_stream,
        parse_delimiter,
    )
    from kundreg_tui.domain.register import Sort

    kind = ExportKind(fmt)
    if delimiter is not None:
        if not kind.is_csv:
            raise click.UsageError(_("--delimiter gäller bara csv och excel-csv."))
        try:
            delimiter = parse_delimiter(delimiter)
        except ExportError as exc:
            raise click.BadParameter(str(exc), param_hint="--delimiter") from exc
    to_stdout = output == "-"
    stdout: IO[bytes] = sys.stdout.buffer
    if to_stdout and kind is ExportKind.EXCEL and stdout.isatty():
        raise _fail(_("En XLSX-fil kan inte visas i terminalen: ange en fil med --output."))
    target = None if to_stdout else Path(output).expanduser()
    overwrite = force
    if target is not None:
        problem = check_target(target)
        if problem:
            raise _fail(problem)
        if target.exists() and not force:
            if not sys.stdin.isatty():
                raise _fail(_("{path} finns redan. Använd --force för att skriva över den.").format(
                    path=target))
            if not click.confirm(_("{path} finns redan. Skriva över den?").format(path=target),
                                 default=False, err=True):
                raise _fail(_("Inget exporterades."))
            overwrite = True

    service = _service(ctx.obj["db"] if ctx.obj else None)
    request = ExportRequest(kind=kind, scope=Scope.SHOWN if query.strip() else Scope.ALL,
                            query=query, sort=Sort(sort_column, descending), delimiter=delimiter,
                            page_width=page_width, page_lines=page_lines)
    show_bar = target is not None and sys.stderr.isatty() and not as_json
    try:
        if target is None:
            out: IO[bytes] = _TerminalSafe(stdout) if stdout.isatty() else stdout  # type: ignore[assignment]
            count = export_to_stream(service, request, out)
            out.flush()
            path_text, size = "-", None
        elif show_bar:
            total = count_customers(service, request)
            with click.progressbar(length=total, label=_("Exporterar"), file=sys.stderr) as bar:
                last = [0]

                def progress(done: int, _total: int) -> None:
                    bar.update(done - last[0])
                    last[0] = done

                result = export_to_path(service, request, target, overwrite=overwrite,
                                        progress=progress)
            count, path_text, size = result.count, str(result.path), result.bytes_written
        else:
            result = export_to_path(service, request, target, overwrite=overwrite)
            count, path_text, size = result.count, str(result.path), result.bytes_written
    except BrokenPipeError:
        # The reader went away (``| head``): not an error, and no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        ctx.exit(0)
        return
    except ExportCancelled as exc:
        raise _fail(str(exc)) from exc
    except ExportError as exc:
        raise _fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise _fail(_("Registret kunde inte läsas: {e}").format(e=getattr(exc, "orig", None) or exc)) from exc

    report: dict[str, Any] = {"format": kind.value, "count": count, "output": path_text,
                              "bytes": size, "search": query, "sort": sort_column,
                              "descending": descending}
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False), err=to_stdout)
    elif sys.stderr.isatty():
        message = ngettext("{n} kund exporterades till {path}", "{n} kunder exporterades till {path}",
                           count).format(n=count, path=path_text if target else _("standard ut"))
        click.echo(message, err=True)


class _TerminalSafe(io.RawIOBase):
    """Standard out when it is a terminal: control characters are shown, never sent as commands."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.held = ""  # a CR at the end of a write, until we know whether LF follows

    def writable(self) -> bool:
        return True

    def _emit(self, text: str, final: bool = False) -> None:
        from kundreg_tui.domain.text import visible

        text = self.held + text
        self.held = ""
        if text.endswith("\r") and not final:
            text, self.held = text[:-1], "\r"
        text = text.replace("\r\n", "\n").replace("\f", "\n")
        self.stream.write(visible(text, keep_newlines=True).encode("utf-8"))

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._emit(self.decoder.decode(data))
        return len(data)

    def flush(self) -> None:
        if not self.closed:
            self._emit(self.decoder.decode(b"", final=True), final=True)
            self.stream.flush()
