"""Pilot tests of the Kund form: validation on leaving a field and on save, Förnamn + Efternamn,
unsaved changes, a stale save, e-mail uniqueness and the customer number."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from kundreg_tui.app import KundregApp
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.screens.confirm import ConfirmScreen
from kundreg_tui.screens.customer_form import CustomerForm
from kundreg_tui.screens.register import RegisterScreen
from tests.test_app_register import (
    SIZE,
    fill,
    idle,
    move_to,
    notes,
    start,
    text_of,
)


@pytest.fixture
def sqlite_service(sqlite_engine: sa.Engine) -> RegisterService:
    return RegisterService(sqlite_engine, actor="test")


async def open_new(pilot: Pilot[Any]) -> CustomerForm:
    await start(pilot)
    await pilot.press("n")
    await idle(pilot)
    form = pilot.app.screen
    assert isinstance(form, CustomerForm)
    return form


async def open_existing(pilot: Pilot[Any], name: str) -> CustomerForm:
    await start(pilot)
    await move_to(pilot, name)
    await pilot.press("enter")
    await idle(pilot)
    form = pilot.app.screen
    assert isinstance(form, CustomerForm)
    return form


def error(form: CustomerForm, field: str) -> str:
    widget = form.query_one(f"#err-{field}", Static)
    return text_of(widget) if widget.display else ""


def field(form: CustomerForm, name: str) -> Input:
    return form.query_one(f"#f-{name}", Input)


async def type_into(pilot: Pilot[Any], form: CustomerForm, name: str, text: str) -> None:
    """Focus a field and type, key by key (the way a person does)."""
    widget = field(form, name)
    widget.focus()
    await pilot.pause()
    widget.value = ""
    await pilot.press(*text)
    await pilot.pause()


# ---------------------------------------------------------------------- validation


async def test_validation_on_leaving_a_field(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        await type_into(pilot, form, "email", "inte-en-adress")
        assert error(form, "email") == ""  # not while typing
        await pilot.press("tab")
        await pilot.pause()
        assert error(form, "email") == "Ogiltig e-postadress: inte-en-adress"
        assert form.query_one("#row-email").has_class("-invalid")
        await type_into(pilot, form, "email", "rätt@exempel.se")
        await pilot.press("tab")
        await pilot.pause()
        assert error(form, "email") == ""
        assert not form.query_one("#row-email").has_class("-invalid")
        await type_into(pilot, form, "postal_code", "12")
        await pilot.press("shift+tab")
        await pilot.pause()
        assert error(form, "postal_code") == "Postnummer ska ha fem siffror, t.ex. 123 45"
        await type_into(pilot, form, "org_number", "556036-0794")
        await pilot.press("tab")
        await pilot.pause()
        assert error(form, "org_number") == "Ogiltigt organisationsnummer (kontrollsiffran stämmer inte)"
        await type_into(pilot, form, "number", "ab cd")
        await pilot.press("tab")
        await pilot.pause()
        assert error(form, "number") == "Kundnummer får bara innehålla bokstäver, siffror och - + / _"
        # The empty Kundnamn waits for Förnamn + Efternamn: judged on save, not on leaving.
        field(form, "name").focus()
        await pilot.press("tab")
        await pilot.pause()
        assert error(form, "name") == ""


async def test_phone_is_a_warning_never_a_refusal(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        await type_into(pilot, form, "name", "Telefon AB")
        await type_into(pilot, form, "phone", "12")
        await pilot.press("tab")
        await pilot.pause()
        assert error(form, "phone").startswith("⚠ Telefonnumret ser ovanligt ut")
        assert form.query_one("#err-phone").has_class("-warning")
        await pilot.press("ctrl+s")
        await idle(pilot)
        saved = sqlite_service.find_by_number("1001")
        assert saved is not None and saved.phone == "12"


async def test_validation_on_save_marks_every_field_and_saves_nothing(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        field(form, "email").value = "fel"
        field(form, "postal_code").value = "1"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert error(form, "name") == "Kundnamn måste anges"
        assert error(form, "email") == "Ogiltig e-postadress: fel"
        assert error(form, "postal_code") == "Postnummer ska ha fem siffror, t.ex. 123 45"
        assert text_of(form.query_one("#form-banner", Static)) == (
            "Kunden sparades inte: rätta fälten som är markerade.")
        assert app.focused is field(form, "name")  # the first field in error
        assert sqlite_service.count() == 0
        # Corrected, it saves.
        field(form, "name").value = "Rättad AB"
        field(form, "email").value = "info@rattad.se"
        field(form, "postal_code").value = "11122"
        await pilot.press("ctrl+s")
        await idle(pilot)
        record = sqlite_service.find_by_number("1001")
        assert record is not None and record.postal_code == "111 22"
        assert field(form, "postal_code").value == "111 22"  # the stored form is shown
        assert error(form, "name") == error(form, "email") == ""


# ---------------------------------------------------------------------- Kundtyp, Förnamn + Efternamn


async def test_person_name_from_first_and_last_name_with_the_keyboard(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        kind = form.query_one("#f-kind", Select)
        await pilot.press("shift+tab")  # from Kundnummer back to Kundtyp
        assert app.focused is kind
        await pilot.press("enter", "down", "enter")  # open, Privatperson, choose
        await pilot.pause()
        assert kind.value == "person"
        await type_into(pilot, form, "first_name", "Åsa")
        await type_into(pilot, form, "last_name", "Öberg")
        assert field(form, "name").value == "Åsa Öberg"
        await pilot.press("ctrl+s")
        await idle(pilot)
        record = sqlite_service.find_by_number("1001")
        assert record is not None
        assert (record.kind, record.name, record.first_name, record.last_name) == (
            "person", "Åsa Öberg", "Åsa", "Öberg")


async def test_a_typed_name_is_never_overwritten(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        form.query_one("#f-kind", Select).value = "person"
        await type_into(pilot, form, "name", "Kalle Anka")
        await type_into(pilot, form, "first_name", "Karl")
        assert field(form, "name").value == "Kalle Anka"


async def test_a_company_keeps_its_own_name(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        await type_into(pilot, form, "first_name", "Kontakt")
        await type_into(pilot, form, "last_name", "Person")
        assert field(form, "name").value == ""


async def test_person_edit_follows_first_and_last_name(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_existing(pilot, "Anna Berg")
        await type_into(pilot, form, "last_name", "Lind")
        assert field(form, "name").value == "Anna Lind"


# ---------------------------------------------------------------------- leaving


async def test_escape_with_unsaved_changes_asks_stay_leave_save(sqlite_service: RegisterService) -> None:
    ids = fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_existing(pilot, "Zeta Bygg AB")
        field(form, "city").value = "Simrishamn"
        await pilot.press("escape")
        await idle(pilot)
        question = app.screen
        assert isinstance(question, ConfirmScreen)
        assert "inte är sparade" in text_of(question.query_one("#confirm-question", Static))
        # Stay: back in the form, the change kept.
        await pilot.press("a")
        await idle(pilot)
        assert app.screen is form
        assert field(form, "city").value == "Simrishamn"
        # Escape on the question is "stay" too.
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("escape")
        await idle(pilot)
        assert app.screen is form
        # Leave without saving.
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("l")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        record = sqlite_service.get(ids["Zeta Bygg AB"])
        assert record is not None and record.city == "Ystad"
        # Save and leave.
        form = await open_existing(pilot, "Zeta Bygg AB")
        field(form, "city").value = "Simrishamn"
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("s")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        record = sqlite_service.get(ids["Zeta Bygg AB"])
        assert record is not None and record.city == "Simrishamn"
        assert "Simrishamn" in [str(r) for r in _cities(app)]


def _cities(app: KundregApp) -> list[str]:
    from tests.test_app_register import cells

    return cells(app, "city")


async def test_save_and_leave_stays_when_the_save_is_refused(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        field(form, "email").value = "fel"
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("s")
        await idle(pilot)
        assert app.screen is form
        assert error(form, "email") == "Ogiltig e-postadress: fel"
        assert sqlite_service.count() == 0


async def test_escape_without_changes_leaves_at_once(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await open_existing(pilot, "Anna Berg")
        await pilot.press("escape")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)


# ---------------------------------------------------------------------- another operator


async def test_stale_save_says_so_and_overwrites_nothing(service: RegisterService) -> None:
    ids = fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_existing(pilot, "Zeta Bygg AB")
        # Another operator saves the same customer behind the form's back.
        other = service.get(ids["Zeta Bygg AB"])
        assert other is not None
        service.update(other.id, {**other.values(), "city": "Lund"}, other.version)
        field(form, "city").value = "Kiruna"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert app.screen is form
        banner = text_of(form.query_one("#form-banner", Static))
        assert "Kunden har ändrats av någon annan sedan du öppnade den. Inget sparades" in banner
        assert any("ändrats av någon annan" in n for n in notes(app))
        stored = service.get(ids["Zeta Bygg AB"])
        assert stored is not None and stored.city == "Lund"  # the other operator's value stays
        # Saving again changes nothing either.
        await pilot.press("ctrl+s")
        await idle(pilot)
        stored = service.get(ids["Zeta Bygg AB"])
        assert stored is not None and stored.city == "Lund"


async def test_save_of_a_customer_deleted_by_someone_else(service: RegisterService) -> None:
    ids = fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_existing(pilot, "Zeta Bygg AB")
        service.delete([ids["Zeta Bygg AB"]])
        field(form, "city").value = "Kiruna"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert "tagits bort av någon annan" in text_of(form.query_one("#form-banner", Static))
        assert service.count() == 4


async def test_email_already_used_by_another_customer(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        field(form, "name").value = "Dubblett AB"
        field(form, "email").value = "KONTAKT@zeta.se"  # compared case-insensitively
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert error(form, "email") == "E-postadressen KONTAKT@zeta.se används redan av en annan kund"
        assert app.focused is field(form, "email")
        assert service.count() == 5
        # Editing: the same check.
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("l")
        await idle(pilot)
        form = await open_existing(pilot, "Anna Berg")
        field(form, "email").value = "info@osterlund.se"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert error(form, "email") == "E-postadressen info@osterlund.se används redan av en annan kund"


# ---------------------------------------------------------------------- the number


async def test_number_field_disabled_when_editing(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_existing(pilot, "Zeta Bygg AB")
        number = field(form, "number")
        assert number.value == "2"
        assert number.disabled
        assert app.focused is field(form, "name")
        # Tab never lands on it.
        for _ in range(20):
            await pilot.press("tab")
            assert app.focused is not number


async def test_typed_number_is_kept_and_a_used_one_refused(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new(pilot)
        assert app.focused is field(form, "number")
        await pilot.press(*"A-7")
        field(form, "name").value = "Egen Nummer AB"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert field(form, "number").value == "A-7" and field(form, "number").disabled
        assert sqlite_service.find_by_number("A-7") is not None
        await pilot.press("escape")
        await idle(pilot)
        form = await open_new(pilot)
        field(form, "number").value = "10"
        field(form, "name").value = "Krock AB"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert error(form, "number") == "Kundnummer 10 finns redan (eller har funnits)"
        assert not field(form, "number").disabled
