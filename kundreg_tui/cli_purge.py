"""``kundreg purge --older-than DAYS``: erase for good the customers that have lain in the trash
longer than DAYS (for cron). The customer numbers stay as tombstones and are never handed out
again; the personal data is gone from the database, its WAL file and the history.

Exit status: 0 done (or nothing to do), 1 erased but the WAL file could not be emptied (someone
kept the register open; run ``kundreg doctor --checkpoint`` later), 2 the database could not be used.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from kundreg_tui.i18n import _, ngettext

SHOWN_NUMBERS = 50


def _numbers(numbers: list[str]) -> str:
    text = ", ".join(numbers[:SHOWN_NUMBERS])
    if len(numbers) > SHOWN_NUMBERS:
        text += " " + _("och {n} till").format(n=len(numbers) - SHOWN_NUMBERS)
    return text


@click.command("purge", help=_("Radera kunder i papperskorgen för gott (personuppgifterna försvinner, kundnumret blir kvar)."))
@click.option("--older-than", "days", type=click.IntRange(0), required=True, metavar=_("DAGAR"),
              help=_("Radera kunder som har legat i papperskorgen längre än så många dagar."))
@click.option("--dry-run", is_flag=True, help=_("Visa vilka kunder som skulle raderas, men radera inget."))
@click.option("--json", "as_json", is_flag=True, help=_("Skriv en rapport i JSON."))
@click.pass_context
def purge_cmd(ctx: click.Context, days: int, dry_run: bool, as_json: bool) -> None:
    """Radera kunder i papperskorgen för gott (personuppgifterna försvinner, kundnumret blir kvar)."""
    from kundreg_tui.__main__ import _service
    from kundreg_tui.domain.database import DatabaseError
    from kundreg_tui.domain.erase import purge, purgeable

    try:
        service = _service(ctx.obj["db"])
        if dry_run:
            numbers = [e.number for e in purgeable(service.engine, days)]
            batch_id, truncated = None, None
        else:
            result = purge(service.engine, days)
            numbers, batch_id, truncated = result.numbers, result.batch_id, result.wal_truncated
    except (DatabaseError, click.ClickException) as exc:
        if not as_json:
            raise
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        click.echo(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
        sys.exit(2)
    code = 1 if truncated is False else 0
    if as_json:
        report: dict[str, Any] = {"ok": code == 0, "dry_run": dry_run, "older_than_days": days,
                                  "count": len(numbers), "numbers": numbers, "batch_id": batch_id,
                                  "wal_truncated": truncated}
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        sys.exit(code)
    n = len(numbers)
    if not numbers:
        click.echo(_("Inga kunder har legat i papperskorgen längre än {d} dagar.").format(d=days))
    elif dry_run:
        click.echo(ngettext("Provkörning: {n} kund har legat i papperskorgen längre än {d} dagar och skulle "
                            "raderas för gott: {numbers}",
                            "Provkörning: {n} kunder har legat i papperskorgen längre än {d} dagar och skulle "
                            "raderas för gott: {numbers}", n).format(n=n, d=days, numbers=_numbers(numbers)))
        click.echo(_("Inget raderades."))
    else:
        click.echo(ngettext("{n} kund raderades för gott (i papperskorgen längre än {d} dagar): {numbers}",
                            "{n} kunder raderades för gott (i papperskorgen längre än {d} dagar): {numbers}",
                            n).format(n=n, d=days, numbers=_numbers(numbers)))
        if truncated is False:
            click.echo(_("Varning: WAL-filen kunde inte tömmas eftersom någon har registret öppet; gamla "
                         "kopior av de raderade uppgifterna kan ligga kvar i den tills den töms. Kör "
                         "kundreg doctor --checkpoint senare."), err=True)
    sys.exit(code)
