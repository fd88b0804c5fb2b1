"""Kund: the form for Ny kund and for editing a customer."""

from __future__ import annotations

from typing import ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, Select, Static, TextArea

from kundreg_tui.domain.fields import (
    FIELD_BY_NAME,
    FIELD_NAMES,
    FIELDS,
    KIND_COMPANY,
    KIND_PERSON,
    kind_label,
)
from kundreg_tui.domain.models import CustomerRecord
from kundreg_tui.domain.register import RegisterService, StaleError, ValidationFailed
from kundreg_tui.domain.text import describe_char, visible
from kundreg_tui.domain.validation import ValidationResult, validate_customer
from kundreg_tui.i18n import _
from kundreg_tui.ui import Refused, SafeInput, SafeTextArea, plain, safe, tell

FORM_FIELDS = [f for f in FIELDS if f.name != "kind"]
KINDS = (KIND_COMPANY, KIND_PERSON)


def shown(value: str, multiline: bool) -> str:
    """A stored value as an editor may hold it: control and bidi characters made visible.

    Only data written around the register's rules (raw SQL by another program) has any.
    """
    return visible(value, keep_newlines=multiline)


def refused_message(name: str, char: str) -> str:
    # The same words as the validation's, naming the field.
    return _("{field}: otillåtet tecken {char} (styr- eller riktningstecken)").format(
        field=FIELD_BY_NAME[name].label_text, char=describe_char(char))


class CustomerForm(Screen[CustomerRecord | None]):
    """Dismisses with the saved record (or ``None`` when nothing was saved)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", _("Spara"), id="save", priority=True),
        Binding("escape", "leave", _("Tillbaka"), id="back",
                tooltip=_("Tillbaka till kundregistret (frågar först om något inte är sparat)")),
        Binding("tab", "app.focus_next", _("Nästa fält"), show=False),
        Binding("shift+tab", "app.focus_previous", _("Förra fältet"), show=False),
        Binding("f2", "history", _("Historik"), id="history", priority=True,
                tooltip=_("Historik: kundens ändringar (en ändring kan återställas)")),
    ]

    def __init__(self, service: RegisterService, record: CustomerRecord | None = None) -> None:
        super().__init__()
        self.service = service
        self.record = record
        self.saved: CustomerRecord | None = None
        self._initial: dict[str, str] = {}
        self._saving = False
        self._leave_after_save = False
        self._leaving = False
        self._auto_name = ""
        self.title = self._title()

    def _title(self) -> str:
        if self.record is None:
            return _("Ny kund")
        return _("Kund {number} — {name}").format(number=safe(self.record.number), name=safe(self.record.name))

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="form-banner", classes="banner")
        kind = self.record.kind if self.record and self.record.kind in KINDS else KIND_COMPANY
        with VerticalScroll(id="form"):
            with Horizontal(classes="form-row", id="row-kind"):
                yield Label(Content(_("Kundtyp")), classes="form-label")
                yield Select(
                    [(kind_label(KIND_COMPANY), KIND_COMPANY), (kind_label(KIND_PERSON), KIND_PERSON)],
                    value=kind, allow_blank=False, id="f-kind", classes="form-input", compact=True,
                )
            for spec in FORM_FIELDS:
                with Vertical(classes="form-field", id=f"row-{spec.name}"):
                    with Horizontal(classes="form-row"):
                        label = spec.label_text + (" *" if spec.required else "")
                        yield Label(Content(label), classes="form-label")
                        yield self._editor(spec.name, spec.multiline, spec.max_length)
                    yield Static("", id=f"err-{spec.name}", classes="form-error")
        yield Footer(compact=True, show_command_palette=False)

    def _editor(self, name: str, multiline: bool, max_length: int) -> Widget:
        value = shown(getattr(self.record, name), multiline) if self.record else ""
        if multiline:
            return SafeTextArea(value, id=f"f-{name}", classes="form-input form-multiline",
                                soft_wrap=True, tab_behavior="focus", show_line_numbers=False)
        # A value made visible may be longer than the field allows: show all of it.
        widget = SafeInput(value=value, id=f"f-{name}", classes="form-input",
                           max_length=max(max_length, len(value)), compact=True)
        if name == "number":
            if self.record is not None:
                widget.disabled = True
                widget.tooltip = _("Ett sparat kundnummer kan inte ändras")
            else:
                widget.placeholder = _("lämna tomt för nästa nummer")
        if name == "country" and not value:
            widget.value = "SE"
        return widget

    def on_mount(self) -> None:
        self._initial = self.values()
        if self.record is None:
            self._show_next_number()
        else:
            joined = " ".join(p for p in (self.record.first_name, self.record.last_name) if p)
            if self.record.kind == KIND_PERSON and self.record.name == joined:
                self._auto_name = joined
            self._warn_hidden_characters()
        first = "f-name" if self.record is not None else "f-number"
        self.query_one(f"#{first}").focus()

    def _warn_hidden_characters(self) -> None:
        """Data stored around the rules (control characters) is shown made visible, and said."""
        assert self.record is not None
        for spec in FORM_FIELDS:
            value = getattr(self.record, spec.name)
            if shown(value, spec.multiline) != value:
                self._show_field(spec.name, warning=_(
                    "{field} innehåller styr- eller riktningstecken; de visas som synliga tecken "
                    "och sparas så om du sparar.").format(field=spec.label_text))

    @work(thread=True, exclusive=True, group="next-number")
    def _show_next_number(self) -> None:
        try:
            number = self.service.next_number()
        except Exception:  # only a hint
            return
        self.app.call_from_thread(self._set_placeholder, number)

    def _set_placeholder(self, number: str) -> None:
        if self.record is None and self.is_attached:
            widget = self.query_one("#f-number", Input)
            widget.placeholder = _("lämna tomt för nästa nummer ({n})").format(n=number)

    # ------------------------------------------------------------------ values
    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        kind = self.query_one("#f-kind", Select).value
        out["kind"] = str(kind) if isinstance(kind, str) else KIND_COMPANY
        for spec in FORM_FIELDS:
            widget = self.query_one(f"#f-{spec.name}")
            out[spec.name] = widget.text if isinstance(widget, TextArea) else widget.value  # type: ignore[attr-defined]
        return out

    @property
    def dirty(self) -> bool:
        try:
            return self.values() != self._initial
        except NoMatches:
            return False

    def _show_field(self, name: str, error: str = "", warning: str = "") -> None:
        try:
            err = self.query_one(f"#err-{name}", Static)
            row = self.query_one(f"#row-{name}")
        except NoMatches:
            return
        message = error or (f"⚠ {warning}" if warning else "")
        err.update(plain(message))
        err.display = bool(message)
        err.set_class(not error and bool(warning), "-warning")
        row.set_class(bool(error), "-invalid")

    def show_result(self, result: ValidationResult, only: str | None = None) -> None:
        """Errors (and warnings) next to each field; ``only``: just that field."""
        for spec in FORM_FIELDS:
            if only is not None and spec.name != only:
                continue
            self._show_field(spec.name, result.errors.get(spec.name, ""), result.warnings.get(spec.name, ""))

    def show_errors(self, errors: dict[str, str]) -> None:
        self.show_result(ValidationResult({}, errors))

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#form-banner", Static)
        banner.update(plain(message))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    def _field_name(self, widget: Widget | None) -> str:
        name = ((widget.id if widget is not None else "") or "").removeprefix("f-")
        return name if name in FIELD_NAMES else ""

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        """Validation of a field as it is left."""
        name = self._field_name(event.widget)
        if self._leaving or self._saving or not self.is_attached or not name or name == "kind":
            return
        if name == "number" and self.record is not None:
            return
        try:
            result = validate_customer(self.values())
        except NoMatches:
            return
        if name == "name" and not self.values()["name"].strip():
            # Kundnamn may come from Förnamn + Efternamn, still to be typed: judged on save.
            result.errors.pop("name", None)
        self.show_result(result, only=name)

    @on(Refused)
    def _refused(self, event: Refused) -> None:
        event.stop()
        name = self._field_name(event.widget)
        if not name:
            return
        message = refused_message(name, event.char)
        self._show_field(name, error=message)
        tell(self.app, message, severity="warning")

    # ------------------------------------------------------------------ Förnamn + Efternamn
    def _joined_name(self) -> str:
        first = self.query_one("#f-first_name", Input).value
        last = self.query_one("#f-last_name", Input).value
        return " ".join(p for p in (first.strip(), last.strip()) if p)

    def _fill_name(self) -> None:
        """A private person's Kundnamn follows Förnamn + Efternamn until it is typed over."""
        if self.query_one("#f-kind", Select).value != KIND_PERSON:
            return
        name = self.query_one("#f-name", Input)
        if name.value.strip() not in ("", self._auto_name):
            return
        joined = self._joined_name()
        self._auto_name = joined
        if name.value != joined:
            name.value = joined
            self._show_field("name")

    @on(Input.Changed, "#f-first_name, #f-last_name")
    def _names_changed(self) -> None:
        self._fill_name()

    @on(Select.Changed, "#f-kind")
    def _kind_changed(self) -> None:
        self._fill_name()
        # Organisationsnummer or Personnummer: judge it again for the new kind.
        if self.query_one("#f-org_number", Input).value.strip():
            self.show_result(validate_customer(self.values()), only="org_number")

    # ------------------------------------------------------------------ saving
    def action_save(self) -> None:
        if self._saving:
            return
        values = self.values()
        result = validate_customer(values)
        self.show_result(result)
        if result.errors:
            self._leave_after_save = False
            first = min(result.errors, key=FIELD_NAMES.index)
            self._banner(_("Kunden sparades inte: rätta fälten som är markerade."))
            self.query_one(f"#f-{first}").focus()
            return
        self._saving = True
        self._save(values)

    @work(thread=True, exclusive=True, group="save")
    def _save(self, values: dict[str, str]) -> None:
        try:
            if self.record is None:
                record = self.service.create(values)
            else:
                record = self.service.update(self.record.id, values, self.record.version)
        except ValidationFailed as exc:
            self.app.call_from_thread(self._failed, exc.errors, "")
        except StaleError as exc:
            self.app.call_from_thread(self._failed, {}, str(exc))
        except Exception as exc:  # a database fault: tell, keep what was typed
            self.app.call_from_thread(self._failed, {}, _("Kunden kunde inte sparas: {e}").format(e=exc))
        else:
            self.app.call_from_thread(self._saved, record)

    def _failed(self, errors: dict[str, str], message: str) -> None:
        self._saving = False
        self._leave_after_save = False
        if errors:
            self.show_errors(errors)
            self._banner(_("Kunden sparades inte: rätta fälten som är markerade."))
            first = min(errors, key=lambda n: FIELD_NAMES.index(n) if n in FIELD_NAMES else 0)
            if first in FIELD_NAMES and first != "kind":
                widget = self.query_one(f"#f-{first}")
                if not widget.disabled:
                    widget.focus()
        else:
            self._banner(message)
            tell(self.app, message, severity="error")

    def _saved(self, record: CustomerRecord) -> None:
        self._saving = False
        first_save = self.record is None
        self.record = record
        self.saved = record
        number = self.query_one("#f-number", Input)
        if number.has_focus:
            self.query_one("#f-name").focus()
        number.value = safe(record.number)
        number.disabled = True
        number.tooltip = _("Ett sparat kundnummer kan inte ändras")
        for spec in FORM_FIELDS:  # show the stored (normalised) values
            widget = self.query_one(f"#f-{spec.name}")
            value = shown(getattr(record, spec.name), spec.multiline)
            if isinstance(widget, TextArea):
                widget.text = value
            else:
                widget.value = value  # type: ignore[attr-defined]
        self.title = self._title()
        self._initial = self.values()
        self.show_result(validate_customer(record.values()))  # warnings stay, errors are gone
        if first_save:
            message = _("Kunden sparades med kundnummer {number}: {name}").format(
                number=record.number, name=record.name)
        else:
            message = _("Ändringarna i {number} {name} sparades.").format(number=record.number, name=record.name)
        self._banner(message, "ok")
        tell(self.app, message)
        if self._leave_after_save:
            self._leave_after_save = False
            self._close()

    # ------------------------------------------------------------------ leaving
    def _close(self) -> None:
        self._leaving = True
        self.dismiss(self.saved)

    def action_history(self) -> None:
        record = self.saved or self.record
        if record is None:
            tell(self.app, _("En ny kund har ingen historik ännu."), severity="warning")
            return
        from kundreg_tui.screens.history import HistoryScreen

        def closed(changed: bool | None) -> None:
            if changed:
                tell(self.app, _("Kunden har ändrats i Historik: stäng formuläret och öppna kunden igen "
                                 "för att se ändringen."), severity="warning")

        self.app.push_screen(HistoryScreen(self.service, record.id), closed)

    def action_leave(self) -> None:
        if self._saving:
            return
        if not self.dirty:
            self._close()
            return
        from kundreg_tui.screens.confirm import ConfirmScreen

        def answer(choice: str | None) -> None:
            if choice == "discard":
                self._close()
            elif choice == "save":
                self._leave_after_save = True
                self.action_save()

        self.app.push_screen(
            ConfirmScreen(
                _("Osparade ändringar"),
                _("Du har ändringar som inte är sparade. Vill du lämna formuläret ändå?"),
                [("s", _("Spara och lämna"), "save"), ("l", _("Lämna utan att spara"), "discard"),
                 ("a", _("Fortsätt redigera"), "stay")],
                default=2,
            ),
            answer,
        )
