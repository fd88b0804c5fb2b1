"""Kund: the form for Ny kund and for editing a customer."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, Select, Static, TextArea

from kundreg_tui.domain.fields import FIELDS, KIND_COMPANY, KIND_PERSON, kind_label
from kundreg_tui.domain.models import CustomerRecord
from kundreg_tui.domain.register import RegisterService, StaleError, ValidationFailed
from kundreg_tui.domain.validation import validate_customer
from kundreg_tui.i18n import _
from kundreg_tui.ui import plain, tell

FORM_FIELDS = [f for f in FIELDS if f.name != "kind"]


class CustomerForm(Screen[CustomerRecord | None]):
    """Dismisses with the saved record (or ``None`` when nothing was saved)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", _("Spara"), id="save", priority=True),
        Binding("escape", "leave", _("Tillbaka"), id="back"),
        Binding("tab", "app.focus_next", _("Nästa fält"), show=False),
        Binding("shift+tab", "app.focus_previous", _("Förra fältet"), show=False),
    ]

    def __init__(self, service: RegisterService, record: CustomerRecord | None = None) -> None:
        super().__init__()
        self.service = service
        self.record = record
        self.saved: CustomerRecord | None = None
        self._initial: dict[str, str] = {}
        self._saving = False
        self.title = self._title()

    def _title(self) -> str:
        if self.record is None:
            return _("Ny kund")
        return _("Kund {number}").format(number=self.record.number)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="form-banner", classes="banner")
        with VerticalScroll(id="form"):
            with Horizontal(classes="form-row", id="row-kind"):
                yield Label(Content(_("Kundtyp")), classes="form-label")
                yield Select(
                    [(kind_label(KIND_COMPANY), KIND_COMPANY), (kind_label(KIND_PERSON), KIND_PERSON)],
                    value=self.record.kind if self.record else KIND_COMPANY,
                    allow_blank=False, id="f-kind", classes="form-input", compact=True,
                )
            for spec in FORM_FIELDS:
                with Vertical(classes="form-field", id=f"row-{spec.name}"):
                    with Horizontal(classes="form-row"):
                        label = spec.label_text + (" *" if spec.required else "")
                        yield Label(Content(label), classes="form-label")
                        yield self._editor(spec.name, spec.multiline, spec.max_length)
                    yield Static("", id=f"err-{spec.name}", classes="form-error")
        yield Footer()

    def _editor(self, name: str, multiline: bool, max_length: int) -> Widget:
        value = getattr(self.record, name) if self.record else ""
        if multiline:
            area = TextArea(value, id=f"f-{name}", classes="form-input form-multiline",
                            soft_wrap=True, tab_behavior="focus", show_line_numbers=False)
            return area
        widget = Input(value=value, id=f"f-{name}", classes="form-input", max_length=max_length,
                       compact=True)
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
        first = "f-name" if self.record is not None else "f-number"
        self.query_one(f"#{first}").focus()

    @work(thread=True, exclusive=True, group="next-number")
    def _show_next_number(self) -> None:
        number = self.service.next_number()
        self.app.call_from_thread(self._set_placeholder, number)

    def _set_placeholder(self, number: str) -> None:
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
        return self.values() != self._initial

    def show_errors(self, errors: dict[str, str], only: str | None = None) -> None:
        for spec in FORM_FIELDS:
            if only is not None and spec.name != only:
                continue
            message = errors.get(spec.name, "")
            err = self.query_one(f"#err-{spec.name}", Static)
            err.update(plain(message))
            err.display = bool(message)
            self.query_one(f"#row-{spec.name}").set_class(bool(message), "-invalid")

    def show_warnings(self, warnings: dict[str, str]) -> None:
        for name, message in warnings.items():
            err = self.query_one(f"#err-{name}", Static)
            err.update(plain("⚠ " + message))
            err.display = True
            err.add_class("-warning")

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#form-banner", Static)
        banner.update(plain(message))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    @on(Input.Blurred)
    def _validate_on_leave(self, event: Input.Blurred) -> None:
        name = (event.input.id or "").removeprefix("f-")
        if not name or name == "number" and self.record is not None:
            return
        result = validate_customer(self.values())
        if name == "name" and not self.values()["name"]:
            # Kundnamn may be given as Förnamn + Efternamn: judge it on save.
            result.errors.pop("name", None)
        self.show_errors(result.errors, only=name)
        if name in result.warnings:
            self.show_warnings({name: result.warnings[name]})

    # ------------------------------------------------------------------ saving
    def action_save(self) -> None:
        if self._saving:
            return
        result = validate_customer(self.values())
        self.show_errors(result.errors)
        if result.errors:
            first = next(iter(result.errors))
            self._banner(_("Kunden sparades inte: rätta fälten som är markerade."))
            widget = self.query_one(f"#f-{first}") if first != "kind" else self.query_one("#f-kind")
            widget.focus()
            return
        self._saving = True
        self._save(self.values())

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
        if errors:
            self.show_errors(errors)
            self._banner(_("Kunden sparades inte: rätta fälten som är markerade."))
        else:
            self._banner(message)
            tell(self.app, message, severity="error")

    def _saved(self, record: CustomerRecord) -> None:
        self._saving = False
        first_save = self.record is None
        self.record = record
        self.saved = record
        number = self.query_one("#f-number", Input)
        number.value = record.number
        number.disabled = True
        for spec in FORM_FIELDS:  # show the stored (normalised) values
            widget = self.query_one(f"#f-{spec.name}")
            value = getattr(record, spec.name)
            if isinstance(widget, TextArea):
                widget.text = value
            else:
                widget.value = value  # type: ignore[attr-defined]
        self.title = self._title()
        self._initial = self.values()
        self.show_errors({})
        if first_save:
            message = _("Kunden sparades med kundnummer {number}.").format(number=record.number)
        else:
            message = _("Ändringarna sparades.")
        self._banner(message, "ok")
        tell(self.app, message)

    # ------------------------------------------------------------------ leaving
    def action_leave(self) -> None:
        if not self.dirty:
            self.dismiss(self.saved)
            return
        from kundreg_tui.screens.confirm import ConfirmScreen

        def answer(choice: str | None) -> None:
            if choice == "discard":
                self.dismiss(self.saved)
            elif choice == "save":
                self.action_save()

        self.app.push_screen(
            ConfirmScreen(
                _("Osparade ändringar"),
                _("Du har ändringar som inte är sparade. Vill du lämna formuläret ändå?"),
                [("s", _("Spara"), "save"), ("l", _("Lämna utan att spara"), "discard"),
                 ("a", _("Fortsätt redigera"), "stay")],
                default=2,
            ),
            answer,
        )

    def check_action(self, action: str, parameters: tuple[Any, ...]) -> bool | None:
        return True
