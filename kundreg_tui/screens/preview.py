"""Förhandsgranskning: every input row, classified, paged from the plan (shared by both imports).

One row per input row: Rad, Status in words (Ny / Uppdateras / Oförändrad / Fel), Kundnummer (the
number a new customer will get), one column per mapped field, Orsak. A new customer's values are
green, a value equal to the stored one shows ``/``, a changed value shows ``ny ← nuvarande``.
Colours live in ``styles/import.tcss`` (the ``preview--*`` component classes), never here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Select, Static

from kundreg_tui.domain.fields import field_label, kind_label
from kundreg_tui.domain.importer import (
    ERROR,
    NEW,
    SAME,
    UPDATE,
    ImportError_,
    ImportPlan,
    StalePlan,
)
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.screens.import_progress import PreviewResult, StepBar
from kundreg_tui.ui import plain, safe, tell, thousands
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row

ALL = "all"
FILTERS: tuple[str, ...] = (ALL, NEW, UPDATE, SAME, ERROR)
ARROW = " ← "


def status_word(cls: str) -> str:
    return {NEW: _("Ny"), UPDATE: _("Uppdateras"), SAME: _("Oförändrad"), ERROR: _("Fel")}.get(cls, _("Fel"))


def counts_line(counts: dict[str, int]) -> str:
    """``3 nya · 1 uppdateras · 0 oförändrade · 1 fel``."""
    new, update, same, error = (counts.get(c, 0) for c in (NEW, UPDATE, SAME, ERROR))
    return " · ".join([
        ngettext("{n} ny", "{n} nya", new).format(n=thousands(new)),
        _("{n} uppdateras").format(n=thousands(update)),
        ngettext("{n} oförändrad", "{n} oförändrade", same).format(n=thousands(same)),
        _("{n} fel").format(n=thousands(error)),
    ])


class PreviewTable(PagedTable):
    """The preview's rows; the classes below colour them (see styles/import.tcss)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "preview--new",
        "preview--same",
        "preview--changed",
        "preview--error",
        "preview--warning",
        "preview--status-new",
        "preview--status-update",
        "preview--status-same",
        "preview--status-error",
    }


class PreviewSource:
    """Rows of one class (or all) of a plan, a page at a time (runs in the table's worker)."""

    def __init__(self, plan: ImportPlan, cls: str | None) -> None:
        self.plan = plan
        self.cls = cls
        self.fields = [f for f in plan.fields if f != "number"]

    def row_count(self) -> int:
        return self.plan.count(self.cls)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        with self.plan.lock:
            if self.plan.conn is None:  # the plan was closed: the import was left
                return []
            rows = self.plan.preview(self.cls, offset, limit)
        return [self.row(r) for r in rows]

    @staticmethod
    def _shown(field: str, value: str) -> str:
        return kind_label(value) if field == "kind" and value else value

    def row(self, r: dict[str, Any]) -> Row:
        cls = r.get("cls") or ERROR
        cells: dict[str, str] = {"line": str(r["line"]), "status": status_word(cls)}
        classes: dict[str, str] = {"status": f"preview--status-{cls}"}
        if cls == NEW:
            cells["number"] = r.get("f_number") or ""
            classes["number"] = "preview--new"
        elif cls in (UPDATE, SAME):
            cells["number"] = r.get("o_number") or r.get("f_number") or ""
        else:
            cells["number"] = r.get("f_number") or ""
        changes: dict[str, list[str]] = {}
        if cls == UPDATE and r.get("changes"):
            try:
                changes = json.loads(r["changes"])
            except ValueError:
                changes = {}
        empty = _("(tomt)")
        for name in self.fields:
            value = r.get(f"f_{name}")
            key = f"f_{name}"
            if value is None:  # not given: the stored value stays
                continue
            if cls == NEW:
                if value:
                    cells[key] = self._shown(name, value)
                    classes[key] = "preview--new"
            elif cls in (UPDATE, SAME):
                if name in changes:
                    old, new = changes[name]
                    cells[key] = (self._shown(name, new) or empty) + ARROW + (self._shown(name, old) or empty)
                    classes[key] = "preview--changed"
                else:
                    cells[key] = "/"
                    classes[key] = "preview--same"
            else:
                cells[key] = self._shown(name, value)
        if cls == ERROR:
            cells["reason"] = r.get("reason") or ""
            classes["reason"] = "preview--error"
        elif r.get("warning"):
            cells["reason"] = "⚠ " + r["warning"]
            classes["reason"] = "preview--warning"
        return Row(key=r["seq"], cells=cells, cell_classes=classes)


def preview_columns(fields: Sequence[str], rows: int = 0) -> list[Column]:
    # Wide enough for the line numbers of ``rows`` rows (a quoted field may span lines: rare).
    line_width = max(4, len(str(rows + 10)) + 1)
    columns = [
        Column("line", _("Rad"), width=line_width, align="right", sortable=False),
        Column("status", _("Status"), width=10, sortable=False),
        Column("number", _("Kundnummer"), width=10, sortable=False),
    ]
    columns += [Column(f"f_{name}", field_label(name), ratio=2, min_width=10, sortable=False)
                for name in fields if name != "number"]
    columns.append(Column("reason", _("Orsak"), ratio=3, min_width=16, sortable=False))
    return columns


class PreviewScreen(Screen[PreviewResult]):
    """Dismisses with the Receipt after a commit, ``"rebuild"`` for a fresh preview, or ``None``
    (Ändra importdata: back with everything kept)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "confirm", _("Bekräfta import"), id="confirm", priority=True),
        Binding("escape", "back", _("Ändra importdata"), id="back"),
        Binding("1", "filter('all')", _("Visa alla"), show=False),
        Binding("2", "filter('new')", _("Visa nya"), show=False),
        Binding("3", "filter('update')", _("Visa de som uppdateras"), show=False),
        Binding("4", "filter('same')", _("Visa oförändrade"), show=False),
        Binding("5", "filter('error')", _("Visa fel"), show=False),
        Binding("f", "focus_filter", _("Filter"), id="filter", key_display="1–5/f"),
    ]

    def __init__(self, plan: ImportPlan, *, confirm_label: str | None = None, steps: Sequence[str] = (),
                 step: int = 0, label: str = "") -> None:
        super().__init__()
        self.plan = plan
        self.confirm_label = confirm_label or _("Bekräfta import")
        self.steps = list(steps) or [_("Förhandsgranskning")]
        self.step = step
        self.label = label
        self.filter = ALL
        self.committing = False
        self.title = _("Förhandsgranskning")
        self.sub_title = safe(label)
        # The confirm key says what the seed calls it ("Slutför import" in the file wizard).
        # ``_bindings`` is this screen's own copy of the class bindings.
        keymap = self._bindings.key_to_bindings
        for key, bindings in list(keymap.items()):
            keymap[key] = [replace(b, description=self.confirm_label) if b.id == "confirm" else b
                           for b in bindings]

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepBar(self.steps, self.step, id="steps")
        yield Static("", id="preview-banner", classes="banner")
        with Horizontal(id="preview-top"):
            yield Static(Content(counts_line(self.plan.counts)), id="preview-counts")
            yield Label(Content(_("Visa")), id="preview-filter-label")
            yield Select(self._filter_options(), value=ALL, allow_blank=False, compact=True,
                         id="preview-filter")
        yield Static(Content(_(
            "Grönt = ny kund · / = samma som i registret · ny ← nuvarande = ändras · "
            "tomt = inte angivet, behålls")), id="preview-legend")
        yield PreviewTable(preview_columns(self.plan.fields, self.plan.count() + self.plan.blank_rows),
                           id="preview-table")
        yield Static("", id="preview-detail")
        yield Footer()

    def _filter_options(self) -> list[tuple[Content, str]]:
        names = {ALL: _("Alla"), NEW: _("Nya"), UPDATE: _("Uppdateras"), SAME: _("Oförändrade"),
                 ERROR: _("Fel")}
        return [(Content(f"{i + 1} {names[f]} ({thousands(self.plan.count(None if f == ALL else f))})"), f)
                for i, f in enumerate(FILTERS)]

    @property
    def table(self) -> PreviewTable:
        return self.query_one("#preview-table", PreviewTable)

    def on_mount(self) -> None:
        self.query_one("#preview-banner").display = False
        self.query_one("#preview-detail").display = False
        self.table.set_source(PreviewSource(self.plan, None), keep_position=False)
        self.table.focus()
        if self.plan.blank_rows:
            self._banner(ngettext("{n} tom rad hoppades över.", "{n} tomma rader hoppades över.",
                                  self.plan.blank_rows).format(n=thousands(self.plan.blank_rows)), "warning")
        if self.plan.count(NEW) + self.plan.count(UPDATE) == 0:
            self._banner(_("Det finns inget att importera: inga nya kunder och inga ändringar."), "warning")

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#preview-banner", Static)
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    @on(PagedTable.Reloaded, "#preview-table")
    def _reloaded(self, event: PagedTable.Reloaded) -> None:
        if event.row_count == 0:
            detail = self.query_one("#preview-detail", Static)
            detail.update(Content(_("Inga rader i det här urvalet.")))
            detail.set_classes("")
            detail.display = True

    @on(PagedTable.CursorMoved, "#preview-table")
    def _cursor_moved(self, event: PagedTable.CursorMoved) -> None:
        """The row under the cursor in full (the columns may crop): its values, the reason."""
        row = self.table.row_at(event.row_index)
        detail = self.query_one("#preview-detail", Static)
        if row is None:
            return
        status = str(row.cells.get("status", ""))
        parts = []
        if row.cells.get("number"):
            parts.append(f"{_('Kundnummer')} {row.cells['number']}")
        for name in self.plan.fields:
            value = str(row.cells.get(f"f_{name}", ""))
            if name != "number" and value and value != "/":
                parts.append(f"{field_label(name)}: {value}")
        if row.cell_classes and any(c == "preview--same" for c in row.cell_classes.values()) \
                and status == status_word(SAME):
            parts.append(_("allt angivet är samma som i registret"))
        reason = str(row.cells.get("reason", ""))
        if reason:
            parts.append(reason)
        detail.update(plain(_("Rad {line} · {status}: {details}").format(
            line=row.cells.get("line", ""), status=status, details=" · ".join(parts))))
        error = status == status_word(ERROR)
        detail.set_classes("-error" if error else "-warning" if reason else "")
        detail.display = True

    # ------------------------------------------------------------------ filter
    def action_filter(self, cls: str) -> None:
        self.query_one("#preview-filter", Select).value = cls

    def action_focus_filter(self) -> None:
        self.query_one("#preview-filter", Select).focus()

    @on(Select.Changed, "#preview-filter")
    def _filter_changed(self, event: Select.Changed) -> None:
        value = str(event.value)
        if value == self.filter or value not in FILTERS:
            return
        self.filter = value
        self.table.set_source(PreviewSource(self.plan, None if value == ALL else value), keep_position=False)

    # ------------------------------------------------------------------ back / confirm
    def action_back(self) -> None:
        if self.committing:
            return
        self.dismiss(None)

    def action_confirm(self) -> None:
        if self.committing:
            return
        counts = self.plan.counts
        if counts.get(NEW, 0) + counts.get(UPDATE, 0) == 0:
            message = _("Det finns inget att importera: inga nya kunder och inga ändringar.")
            self._banner(message, "warning")
            tell(self.app, message, severity="warning")
            return
        from kundreg_tui.screens.confirm import ConfirmScreen

        details = counts_line(counts)
        if counts.get(ERROR, 0):
            details += "\n" + ngettext("Raden med fel hoppas över.", "Raderna med fel hoppas över.",
                                       counts[ERROR])
        details += "\n" + _("Allt sparas i en enda transaktion och kan ångras från kvittensen.")

        def answer(choice: str | None) -> None:
            if choice == "yes":
                self._start_commit()

        new, update = counts.get(NEW, 0), counts.get(UPDATE, 0)
        if new and update:
            question = _("Skapa {new} och uppdatera {update}?").format(
                new=ngettext("{n} ny kund", "{n} nya kunder", new).format(n=thousands(new)),
                update=ngettext("{n} kund", "{n} kunder", update).format(n=thousands(update)))
        elif new:
            question = ngettext("Skapa {n} ny kund?", "Skapa {n} nya kunder?", new).format(n=thousands(new))
        else:
            question = ngettext("Uppdatera {n} kund?", "Uppdatera {n} kunder?", update).format(n=thousands(update))
        self.app.push_screen(ConfirmScreen(
            self.confirm_label,
            question,
            [("j", _("Ja, importera"), "yes"), ("n", _("Nej"), "no")],
            details,
        ), answer)

    def _start_commit(self) -> None:
        self.committing = True
        self._banner(_("Importerar …"), "ok")
        self._commit()

    @work(thread=True, exclusive=True, group="import-commit")
    def _commit(self) -> None:
        try:
            receipt = self.plan.commit()
        except StalePlan as exc:
            self.app.call_from_thread(self._stale, str(exc))
        except ImportError_ as exc:
            self.app.call_from_thread(self._failed, str(exc))
        except Exception as exc:  # a database fault: nothing was written (one transaction)
            self.app.call_from_thread(self._failed, _("Importen misslyckades, inget sparades: {e}").format(e=exc))
        else:
            self.app.call_from_thread(self.dismiss, receipt)

    def _failed(self, message: str) -> None:
        self.committing = False
        self._banner(message)
        tell(self.app, message, severity="error")

    def _stale(self, message: str) -> None:
        self.committing = False
        self._banner(message)
        from kundreg_tui.screens.confirm import ConfirmScreen

        def answer(choice: str | None) -> None:
            if choice == "rebuild":
                self.dismiss("rebuild")

        self.app.push_screen(ConfirmScreen(
            _("Registret har ändrats"), message,
            [("n", _("Ny förhandsgranskning"), "rebuild"), ("a", _("Avbryt"), "cancel")],
        ), answer)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("confirm", "back") and self.committing:
            return None
        return True
