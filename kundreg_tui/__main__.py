"""Command line: ``kundreg`` opens the register; sub-commands do the same work headless.

The engine is built here and the register service handed to the App (or to the command).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

import click

from kundreg_tui import i18n

# The language must be chosen before any module builds its translated strings.
_LANG_FLAG = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--lang=")), None)
if _LANG_FLAG is None and "--lang" in sys.argv[:-1]:
    _LANG_FLAG = sys.argv[sys.argv.index("--lang") + 1]
i18n.set_language(_LANG_FLAG)
_ = i18n._

EXIT_OK, EXIT_ROW_ERRORS, EXIT_UNREADABLE = 0, 1, 2


def _service(db: str | None) -> Any:
    from kundreg_tui.domain.database import DatabaseError, open_engine
    from kundreg_tui.domain.register import RegisterService

    try:
        return RegisterService(open_engine(db))
    except DatabaseError as exc:
        raise DatabaseFaultExit(str(exc)) from exc


class DatabaseFaultExit(click.ClickException):
    """A database fault (busy, read-only, disk full, no permission …) told for the user: the
    message, no traceback, exit status 2."""

    exit_code = EXIT_UNREADABLE

    def show(self, file: Any = None) -> None:
        click.echo(_("kundreg: {m}").format(m=self.format_message()), err=True)


class _Main(click.Group):
    """The top-level handler: a database fault from any command is told, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from kundreg_tui.domain.database import DatabaseError, resolve_url
            from kundreg_tui.domain.faults import as_fault

            if isinstance(exc, DatabaseError):
                raise DatabaseFaultExit(str(exc)) from exc
            try:
                where: str | None = resolve_url((ctx.obj or {}).get("db"))
            except Exception:
                where = None
            found = as_fault(exc, where)
            if found is None:
                raise
            raise DatabaseFaultExit(str(found)) from exc


def _record_json(record: Any) -> dict[str, Any]:
    data = asdict(record)
    data.pop("extra", None)
    for key in ("created_at", "updated_at"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


@click.group(cls=_Main, invoke_without_command=True, help=_("kundreg — kundregister i terminalen."),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="KUNDREG_DB", help=_("SQLite-fil eller PostgreSQL-URL (standard: en fil i din datamapp)."))
@click.option("--lang", type=click.Choice(["sv", "en"]), default=None, help=_("Språk: sv eller en."))
@click.pass_context
def main(ctx: click.Context, db: str | None, lang: str | None) -> None:
    """kundreg — kundregister i terminalen."""
    if lang:
        i18n.set_language(lang)
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    if ctx.invoked_subcommand is None:
        service = _service(db)
        from kundreg_tui.app import KundregApp

        KundregApp(service, db_label=str(service.engine.url.render_as_string(hide_password=True))).run()


@main.command("list", help=_("Lista kunder."))
@click.option("--search", "query", default="", help=_("Visa bara kunder som matchar sökningen."))
@click.option("--json", "as_json", is_flag=True, help=_("Skriv en JSON-lista med alla fält."))
@click.pass_context
def list_cmd(ctx: click.Context, query: str, as_json: bool) -> None:
    """Lista kunder."""
    from kundreg_tui.domain.text import visible

    service = _service(ctx.obj["db"])
    out = click.get_text_stream("stdout")
    if as_json:
        out.write("[")
        for i, record in enumerate(service.iter_all(query)):
            out.write(("," if i else "") + "\n" + json.dumps(_record_json(record), ensure_ascii=False))
        out.write("\n]\n")
        return
    for record in service.iter_all(query):
        # Text for a terminal: control characters made visible, never sent raw.
        out.write("\t".join(visible(v) for v in (record.number, record.name, record.city, record.email)) + "\n")


@main.command("demo", help=_("Fyll registret med påhittade svenska kunder (för demo och mätning)."))
@click.option("--count", default=1000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--seed", default=1, show_default=True)
@click.pass_context
def demo_cmd(ctx: click.Context, count: int, seed: int) -> None:
    """Fyll registret med påhittade svenska kunder (för demo och mätning)."""
    import time

    from kundreg_tui.domain.demo import fill_demo

    service = _service(ctx.obj["db"])
    started = time.monotonic()
    with click.progressbar(length=count, label=_("Skapar kunder"), file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, _total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        fill_demo(service.engine, count, seed=seed, progress=progress)
    click.echo(_("{n} kunder skapade på {s:.1f} s").format(n=count, s=time.monotonic() - started), err=True)


def _register_commands() -> None:
    from kundreg_tui.cli_doctor import doctor_cmd
    from kundreg_tui.cli_import import import_cmd
    from kundreg_tui.cli_purge import purge_cmd

    main.add_command(import_cmd)
    main.add_command(doctor_cmd)
    main.add_command(purge_cmd)
    try:
        from kundreg_tui.cli_export import export_cmd
    except ModuleNotFoundError:  # pragma: no cover - being built
        return
    main.add_command(export_cmd)


_register_commands()

if __name__ == "__main__":
    main()
