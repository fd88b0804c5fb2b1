"""``kundreg doctor``: checks the register and says what to do about each problem.

Exit status: 0 all is well, 1 there are warnings or problems.
"""

from __future__ import annotations

import json
import sys

import click

from kundreg_tui.i18n import _


@click.command("doctor", help=_("Kontrollera registret: databasen, migreringar, behörigheter, WAL-filen och diskutrymmet."))
@click.option("--full", is_flag=True, help=_("Kör PRAGMA integrity_check (grundligare, långsammare) i stället för quick_check."))
@click.option("--checkpoint", is_flag=True,
              help=_("Töm WAL-filen först (PRAGMA wal_checkpoint(TRUNCATE)); det enda doctor ändrar."))
@click.option("--json", "as_json", is_flag=True, help=_("Skriv resultatet i JSON."))
@click.pass_context
def doctor_cmd(ctx: click.Context, full: bool, checkpoint: bool, as_json: bool) -> None:
    """Kontrollera registret: databasen, migreringar, behörigheter, WAL-filen och diskutrymmet."""
    from kundreg_tui.domain import doctor
    db = ctx.obj["db"]
    if checkpoint:
        import sqlalchemy as sa

        from kundreg_tui.domain.faults import explain

        try:
            busy, frames, _copied = doctor.checkpoint(db)
        except sa.exc.DBAPIError as exc:
            click.echo(_("kundreg doctor: {m}").format(m=explain(exc, db)), err=True)
        else:
            if busy:
                click.echo(_("WAL-filen kunde inte tömmas helt: någon läser registret just nu. Försök igen "
                             "senare."), err=True)
            elif not as_json:
                click.echo(_("WAL-filen är tömd ({n} sidor kopierades till registret).").format(n=frames))
    report = doctor.run_checks(db, full=full)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        sys.exit(report.exit_code)
    click.echo(_("kundreg doctor: {target}").format(target=report.target))
    width = max(len(doctor.level_word(level)) for level in (doctor.OK, doctor.WARNING, doctor.PROBLEM))
    indent = " " * (width + 4)
    for f in report.findings:
        _block(f"  {doctor.level_word(f.level).ljust(width)}  ", f.message, indent)
        if f.fix and f.level != doctor.OK:
            _block(indent + _("Åtgärd: "), f.fix, indent + "  ")
    if report.healthy:
        click.echo(_("Allt ser bra ut."))
    else:
        click.echo(doctor.summary(report))
    sys.exit(report.exit_code)


def _block(first: str, text: str, indent: str) -> None:
    """Text for a terminal, control characters made visible; later lines indented."""
    from kundreg_tui.domain.text import visible

    lines = visible(text, keep_newlines=True).splitlines() or [""]
    click.echo(first + lines[0])
    for line in lines[1:]:
        click.echo(indent + line)
