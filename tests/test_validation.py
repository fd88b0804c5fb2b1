"""Validation of a customer's values, field by field, against the rules in PRODUCT.md."""

from __future__ import annotations

import socket
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kundreg_tui.domain.fields import FIELD_NAMES, FIELDS, KIND_COMPANY, KIND_PERSON, FieldSpec
from kundreg_tui.domain.validation import (
    CustomerData,
    ValidationResult,
    check_org_number,
    email_key,
    phone_warning,
    validate_customer,
)

ORGNR = "556677-8899"  # a valid organisation number (Luhn)
PNR_10 = "811218-9876"  # a valid personnummer, born 1981-12-18
PNR_12 = "19811218-9876"
VAT = "SE556677889901"


def check(**raw: Any) -> ValidationResult:
    return validate_customer({"name": "Test AB", **raw} if "name" not in raw else raw)


def ok(**raw: Any) -> dict[str, str]:
    result = check(**raw)
    assert result.errors == {}, result.errors
    return result.values


def error(field: str, **raw: Any) -> str:
    result = check(**raw)
    assert field in result.errors, (result.errors, result.values)
    return result.errors[field]


# ------------------------------------------------------------------------------ general
class TestGeneral:
    def test_minimal_customer_and_defaults(self) -> None:
        values = ok(name="Anna Berg")
        assert set(values) == set(FIELD_NAMES)
        assert values["kind"] == KIND_COMPANY
        assert values["country"] == "SE"
        assert values["number"] == ""
        assert all(values[n] == "" for n in FIELD_NAMES if n not in ("name", "kind", "country"))

    def test_values_are_trimmed_and_nfc(self) -> None:
        values = ok(name="  O\u0308sterlund AB  ", city=" A\u030are ", notes="  rad 1  \r\nrad 2\r\n")
        assert values["name"] == "Österlund AB"
        assert values["city"] == "Åre"
        assert values["notes"] == "rad 1\nrad 2"

    def test_none_values_are_empty(self) -> None:
        values = ok(name="X", email=None, phone=None)
        assert values["email"] == "" and values["phone"] == ""

    def test_unknown_keys_are_ignored_by_validate_customer(self) -> None:
        assert "colour" not in ok(name="X", colour="blå")

    def test_all_errors_reported_at_once(self) -> None:
        result = validate_customer({"name": "", "email": "nej", "org_number": "123", "country": "XX"})
        assert set(result.errors) == {"name", "email", "org_number", "country"}
        assert not result.ok

    def test_markup_is_just_text(self) -> None:
        assert ok(name="Ann [/] Berg")["name"] == "Ann [/] Berg"
        assert ok(name="[bold red]x[/]")["name"] == "[bold red]x[/]"


# ------------------------------------------------------------------------------ customer number
class TestNumber:
    @pytest.mark.parametrize("number", ["1001", "K-1", "A+B/C_D", "2024/17", "x", "Åsa-1", "0042"])
    def test_allowed(self, number: str) -> None:
        assert ok(number=number)["number"] == number

    @pytest.mark.parametrize("number", ["K 1", "K.1", "K#1", "1001!", "a,b", "a;b", "'1", "a=b", "ab@c"])
    def test_refused(self, number: str) -> None:
        assert "Kundnummer" in error("number", number=number)

    def test_trimmed(self) -> None:
        assert ok(number="  1001 ")["number"] == "1001"

    def test_empty_allowed(self) -> None:
        # The service assigns the next number of the series.
        assert ok(number="")["number"] == ""


# ------------------------------------------------------------------------------ kind
class TestKind:
    @pytest.mark.parametrize(
        ("word", "kind"),
        [("Företag", KIND_COMPANY), ("företag", KIND_COMPANY), ("FÖRETAG", KIND_COMPANY),
         ("Fo\u0308retag", KIND_COMPANY), ("company", KIND_COMPANY), ("", KIND_COMPANY),
         ("Privatperson", KIND_PERSON), ("privatperson", KIND_PERSON), (" Privatperson ", KIND_PERSON),
         ("person", KIND_PERSON), ("Privat", KIND_PERSON)],
    )
    def test_words(self, word: str, kind: str) -> None:
        assert ok(kind=word)["kind"] == kind

    @pytest.mark.parametrize("word", ["Kund", "Förening", "x"])
    def test_refused(self, word: str) -> None:
        assert "Företag" in error("kind", kind=word)


# ------------------------------------------------------------------------------ name
class TestName:
    def test_required(self) -> None:
        assert "Kundnamn" in error("name", name="")
        assert "Kundnamn" in error("name", name="   ")
        assert "name" in validate_customer({}).errors

    def test_joined_from_first_and_last(self) -> None:
        values = ok(name="", kind="Privatperson", first_name="Anna", last_name="Berg")
        assert values["name"] == "Anna Berg"
        assert values["first_name"] == "Anna" and values["last_name"] == "Berg"

    def test_joined_from_one_part(self) -> None:
        assert ok(name="", first_name=" Anna ")["name"] == "Anna"
        assert ok(name="", last_name="Berg")["name"] == "Berg"

    def test_given_name_wins(self) -> None:
        assert ok(name="Anna B. Berg", first_name="Anna", last_name="Berg")["name"] == "Anna B. Berg"

    def test_joined_name_too_long_is_refused(self) -> None:
        # 100 + 1 + 100 characters do not fit the 200 of Kundnamn (PostgreSQL would refuse it).
        msg = error("name", name="", first_name="a" * 100, last_name="b" * 100)
        assert "Kundnamn" in msg and "200" in msg

    def test_joined_name_at_limit(self) -> None:
        assert len(ok(name="", first_name="a" * 100, last_name="b" * 99)["name"]) == 200


# ------------------------------------------------------------------------------ org / personal number
class TestOrgNumber:
    @pytest.mark.parametrize("raw", ["5566778899", "556677-8899", " 556677 8899 ", "556677 - 8899",
                                     "16556677-8899", "165566778899"])
    def test_organisation_number_normal_form(self, raw: str) -> None:
        assert ok(org_number=raw)["org_number"] == ORGNR

    @pytest.mark.parametrize("raw", ["8112189876", PNR_10, "198112189876", PNR_12, " 19811218 9876 "])
    def test_personnummer_of_a_person_is_twelve_digits(self, raw: str) -> None:
        values = ok(name="Anna Berg", kind="Privatperson", org_number=raw)
        assert values["org_number"] == PNR_12

    def test_plus_sign_means_a_hundred_years_old(self) -> None:
        assert ok(kind="person", org_number="811218+9876")["org_number"] == "18811218-9876"

    def test_twelve_digit_personnummer_for_a_company(self) -> None:
        # A sole trader's number: given with its century, kept with it.
        assert ok(kind="Företag", org_number=PNR_12)["org_number"] == PNR_12

    @pytest.mark.parametrize("raw", ["556677-8898", "5566778890", "12345", "abcdefghij", "55667788991"])
    def test_bad_checksum_or_form_refused(self, raw: str) -> None:
        assert "organisationsnummer" in error("org_number", org_number=raw)

    @pytest.mark.parametrize("raw", ["811218-9875", "19811218-9875", "123"])
    def test_bad_personnummer_named_as_such(self, raw: str) -> None:
        assert "personnummer" in error("org_number", kind="Privatperson", org_number=raw)

    @pytest.mark.parametrize(
        ("raw", "kind"),
        [("5566778899", KIND_COMPANY), ("8112189876", KIND_PERSON), ("811218+9876", KIND_PERSON),
         (PNR_12, KIND_COMPANY), ("165566778899", KIND_COMPANY), ("8803200016", KIND_COMPANY)],
    )
    def test_normal_form_is_stable(self, raw: str, kind: str) -> None:
        once = check_org_number(raw, kind)
        assert check_org_number(once, kind) == once

    def test_empty(self) -> None:
        assert ok(org_number="")["org_number"] == ""


# ------------------------------------------------------------------------------ VAT
class TestVat:
    @pytest.mark.parametrize("raw", ["SE556677889901", "se556677889901", "SE 5566 7788 9901",
                                     "SE5566778899-01"])
    def test_swedish(self, raw: str) -> None:
        assert ok(vat_number=raw)["vat_number"] == VAT

    def test_other_eu(self) -> None:
        assert ok(vat_number="DE136695976")["vat_number"] == "DE136695976"

    @pytest.mark.parametrize("raw", ["SE556677889801", "SE55667788990", "556677889901X", "XX123", "SE"])
    def test_refused(self, raw: str) -> None:
        assert "momsregistreringsnummer" in error("vat_number", vat_number=raw)


# ------------------------------------------------------------------------------ e-mail
@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("network look-up during validation")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.usefixtures("no_network")
class TestEmail:
    @pytest.mark.parametrize(
        "raw",
        ["anna@exempel.se", "Anna.Berg+kund@Exempel.SE", "a_b-c%d@sub.exempel.co.uk", "x@a.io",
         "åsa@exempel.se", "info@företag.se", "anna@does-not-exist-kundreg.invalid"],
    )
    def test_valid_kept_as_typed(self, raw: str) -> None:
        assert ok(email=raw)["email"] == raw

    @pytest.mark.parametrize(
        "raw",
        ["anna", "anna@", "@exempel.se", "anna@exempel", "a b@exempel.se", "a..b@exempel.se",
         ".anna@exempel.se", "anna.@exempel.se", "anna@-exempel.se", "anna@exempel..se",
         "anna@@exempel.se", "anna@exempel.se.", "<anna@exempel.se>"],
    )
    def test_invalid(self, raw: str) -> None:
        assert "e-postadress" in error("email", email=raw)

    def test_trimmed(self) -> None:
        assert ok(email="  anna@exempel.se ")["email"] == "anna@exempel.se"

    def test_email_key(self) -> None:
        assert email_key(" Anna@Exempel.SE ") == "anna@exempel.se"
        assert email_key("") is None
        assert email_key("   ") is None


# ------------------------------------------------------------------------------ phone
class TestPhone:
    @pytest.mark.parametrize(
        "raw",
        ["070123456", "070-123 45 67", "0701234567", "+46 70 123 45 67", "+46701234567",
         "08-123 456 78", "031-12 34 56", "+47 22 12 34 56", "+1 212 555 0100"],
    )
    def test_plausible_no_warning(self, raw: str) -> None:
        result = check(phone=raw)
        assert result.ok and "phone" not in result.warnings
        assert result.values["phone"] == raw  # kept as typed

    @pytest.mark.parametrize("raw", ["12", "abc", "070", "+46 7", "0000000000000000000000000"])
    def test_implausible_is_only_a_warning(self, raw: str) -> None:
        result = check(phone=raw)
        assert result.ok, result.errors
        assert "phone" in result.warnings
        assert result.values["phone"] == raw

    def test_seed_example_imports(self) -> None:
        result = check(phone="070123456")
        assert result.errors == {}
        assert result.values["phone"] == "070123456"

    def test_phone_warning_country(self) -> None:
        assert phone_warning("") is None
        assert phone_warning("22 12 34 56", "NO") is None

    def test_phone_with_control_char_is_refused(self) -> None:
        assert "Telefon" in error("phone", phone="070\x1b123456")


# ------------------------------------------------------------------------------ postal code
class TestPostalCode:
    @pytest.mark.parametrize("raw", ["12345", "123 45", "123-45", " 12345 ", "SE-123 45", "SE12345",
                                     "se 123 45"])
    def test_swedish_form(self, raw: str) -> None:
        assert ok(postal_code=raw)["postal_code"] == "123 45"

    def test_leading_zero_never_lost(self) -> None:
        assert ok(postal_code="01234")["postal_code"].replace(" ", "") == "01234"

    @pytest.mark.parametrize("raw", ["1234", "123456", "12a45", "ABCDE"])
    def test_swedish_refused(self, raw: str) -> None:
        assert "Postnummer" in error("postal_code", postal_code=raw)

    @pytest.mark.parametrize(
        ("country", "raw"),
        [("NO", "0123"), ("DK", "0800"), ("FI", "00100"), ("DE", "01067"), ("GB", "SW1A 1AA"),
         ("US", "02134"), ("no", "0150")],
    )
    def test_foreign_kept_with_leading_zeros(self, country: str, raw: str) -> None:
        values = ok(country=country, postal_code=raw)
        assert values["postal_code"] == raw
        assert values["country"] == country.upper()

    def test_swedish_when_country_defaulted(self) -> None:
        assert ok(country="", postal_code="11122")["postal_code"] == "111 22"


# ------------------------------------------------------------------------------ country
class TestCountry:
    @pytest.mark.parametrize(
        ("raw", "code"),
        [("", "SE"), ("SE", "SE"), ("se", "SE"), (" no ", "NO"), ("DK", "DK"), ("FI", "FI"),
         ("US", "US"), ("GB", "GB"), ("Sverige", "SE"), ("sweden", "SE"), ("Norge", "NO"),
         ("Danmark", "DK"), ("Tyskland", "DE")],
    )
    def test_codes(self, raw: str, code: str) -> None:
        assert ok(country=raw)["country"] == code

    @pytest.mark.parametrize("raw", ["XX", "S", "SWE", "Atlantis", "12"])
    def test_refused(self, raw: str) -> None:
        assert "Land" in error("country", country=raw)


# ------------------------------------------------------------------------------ control / bidi chars
BAD_CHARS = ["\x00", "\x07", "\x1b", "\r", "\x7f", "\x85", "\x9b", "\u202a", "\u202e", "\u2066", "\u2069"]


class TestForbiddenCharacters:
    @pytest.mark.parametrize("spec", FIELDS, ids=lambda f: f.name)
    @pytest.mark.parametrize("ch", BAD_CHARS, ids=lambda c: f"U+{ord(c):04X}")
    def test_refused_naming_the_field(self, spec: FieldSpec, ch: str) -> None:
        if ch == "\r" and spec.multiline:
            pytest.skip("a CR in multi-line text is a line break (CRLF/CR become LF)")
        raw = {"name": "Test AB", spec.name: f"ab{ch}cd"}
        result = validate_customer(raw)
        assert spec.name in result.errors
        message = result.errors[spec.name]
        assert spec.label_text in message
        assert f"U+{ord(ch):04X}" in message
        assert ch not in message  # the message itself is safe to print

    @pytest.mark.parametrize("spec", [f for f in FIELDS if not f.multiline], ids=lambda f: f.name)
    @pytest.mark.parametrize("ch", ["\n", "\t"])
    def test_newline_and_tab_refused_in_single_line_fields(self, spec: FieldSpec, ch: str) -> None:
        result = validate_customer({"name": "Test AB", spec.name: f"ab{ch}cd"})
        assert spec.name in result.errors

    @pytest.mark.parametrize("name", ["address", "notes"])
    def test_multiline_fields_allow_newline_and_tab(self, name: str) -> None:
        values = ok(**{name: "c/o Berg\r\nStorgatan 1\tA"})
        assert values[name] == "c/o Berg\nStorgatan 1\tA"

    def test_escape_sequence_in_name(self) -> None:
        assert "Kundnamn" in error("name", name="\x1b]0;pwned\x07Anna")

    def test_trojan_source_in_notes(self) -> None:
        assert "Anteckningar" in error("notes", notes="ok\u202e\u2066 evil")

    def test_forbidden_char_outside_ends_only(self) -> None:
        # Whitespace-like controls at the very ends are trimmed away; inside they are refused.
        assert "email" in check(email="anna\x85@exempel.se").errors


# ------------------------------------------------------------------------------ max lengths
FREE_TEXT = ["name", "first_name", "last_name", "phone", "address", "city", "reference", "notes"]


class TestMaxLength:
    @pytest.mark.parametrize("spec", FIELDS, ids=lambda f: f.name)
    def test_one_too_many_refused(self, spec: FieldSpec) -> None:
        result = validate_customer({"name": "Test AB", spec.name: "1" * (spec.max_length + 1)})
        assert spec.name in result.errors

    @pytest.mark.parametrize("name", FREE_TEXT)
    def test_at_the_limit(self, name: str) -> None:
        from kundreg_tui.domain.fields import FIELD_BY_NAME

        n = FIELD_BY_NAME[name].max_length
        assert len(ok(**{name: "x" * n})[name]) == n

    def test_length_counted_after_normalising(self) -> None:
        # 200 characters as NFC, 400 code points decomposed.
        assert ok(name="A\u030a" * 200)["name"] == "Å" * 200
        assert ok(name="  " + "x" * 200 + "  ")["name"] == "x" * 200

    def test_long_email(self) -> None:
        local = "a" * 64
        domain = ".".join(["b" * 60] * 3) + ".se"
        assert "email" in check(email=f"{local}@{domain}{'c' * 80}.se").errors


# ------------------------------------------------------------------------------ partial
class TestPartial:
    def test_only_given_fields(self) -> None:
        result = validate_customer({"email": " Anna@Exempel.se "}, partial=True)
        assert result.ok
        assert result.values == {"email": "Anna@Exempel.se"}

    def test_name_required_only_when_given(self) -> None:
        assert validate_customer({"city": "Åre"}, partial=True).ok
        assert "name" in validate_customer({"name": ""}, partial=True).errors

    def test_rules_still_apply(self) -> None:
        result = validate_customer({"postal_code": "12345", "org_number": "556677-8898"}, partial=True)
        assert result.values["postal_code"] == "123 45"
        assert "org_number" in result.errors


# ------------------------------------------------------------------------------ CustomerData
class TestCustomerData:
    def test_builds_normalised(self) -> None:
        data = CustomerData(name=" Anna Berg ", kind="Privatperson", org_number="8112189876",
                            postal_code="12345", email="anna@exempel.se")
        assert data.name == "Anna Berg"
        assert data.kind == KIND_PERSON
        assert data.org_number == PNR_12
        assert data.postal_code == "123 45"
        assert data.country == "SE"

    def test_model_validate(self) -> None:
        data = CustomerData.model_validate({"name": "", "first_name": "Anna", "last_name": "Berg"})
        assert data.name == "Anna Berg"

    def test_invalid_raises(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="Kundnamn"):
            CustomerData(name="")
        with pytest.raises(pydantic.ValidationError, match="E-post|e-post"):
            CustomerData(name="X", email="nej")

    def test_unknown_field_refused(self) -> None:
        with pytest.raises(pydantic.ValidationError):
            CustomerData(name="X", colour="blå")  # type: ignore[call-arg]

    def test_frozen(self) -> None:
        data = CustomerData(name="X")
        with pytest.raises(pydantic.ValidationError):
            data.name = "Y"

    def test_round_trip(self) -> None:
        data = CustomerData(name="X", vat_number="se 5566 7788 9901", country="sverige")
        again = CustomerData(**data.model_dump())
        assert again == data
        assert data.model_dump() == validate_customer(data.model_dump()).values


# ------------------------------------------------------------------------------ properties
_field_values = {
    "number": st.sampled_from(["", "1001", "K-2", " 42 ", "A/B", "x y"]),
    "kind": st.sampled_from(["", "Företag", "Privatperson", "person", "nej"]),
    "name": st.one_of(st.text(max_size=30), st.sampled_from(["Anna Berg", "Österlund AB"])),
    "first_name": st.sampled_from(["", "Anna", " Åsa "]),
    "last_name": st.sampled_from(["", "Berg", "Öberg"]),
    "org_number": st.sampled_from(["", "5566778899", "556677-8899", "8112189876", PNR_12,
                                   "811218+9876", "165566778899", "123"]),
    "vat_number": st.sampled_from(["", "se556677889901", "SE 5566 7788 9901", "SE1"]),
    "email": st.sampled_from(["", "anna@exempel.se", " ANNA@EXEMPEL.SE ", "a..b@x.se", "åsa@x.se"]),
    "phone": st.one_of(st.text(max_size=15), st.sampled_from(["070123456", "+46 8 123 456"])),
    "address": st.text(max_size=40),
    "postal_code": st.sampled_from(["", "12345", "123 45", "SE-12345", "0123", "1"]),
    "city": st.text(max_size=20),
    "country": st.sampled_from(["", "se", "NO", "Sverige", "norge", "XX"]),
    "reference": st.text(max_size=20),
    "notes": st.text(max_size=60),
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=_field_values))
def test_validation_is_idempotent(raw: dict[str, str]) -> None:
    """A validated customer validates again to itself: one normal form for every field."""
    first = validate_customer(raw)
    if not first.ok:
        return
    second = validate_customer(first.values)
    assert second.errors == {}
    assert second.values == first.values
    assert second.warnings == first.warnings


@given(st.text())
def test_validation_never_crashes_and_never_stores_forbidden(value: str) -> None:
    from kundreg_tui.domain.fields import FIELD_BY_NAME
    from kundreg_tui.domain.text import forbidden_chars

    raw = dict.fromkeys(FIELD_NAMES, value)
    result = validate_customer(raw)
    for name, stored in result.values.items():
        if name not in result.errors:
            assert forbidden_chars(stored, multiline=FIELD_BY_NAME[name].multiline) == []
            assert len(stored) <= FIELD_BY_NAME[name].max_length


def test_country_codes_are_the_phonenumbers_regions_and_the_iso_codes_it_lacks() -> None:
    import phonenumbers

    from kundreg_tui.domain.validation import country_codes

    assert country_codes() == frozenset(phonenumbers.SUPPORTED_REGIONS) | {"SE", "AQ", "BV", "GS", "HM", "PN",
                                                                            "TF", "UM"}
