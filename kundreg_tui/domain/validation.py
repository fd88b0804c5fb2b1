"""Validation and normalisation of customer values, field by field.

Every path into the register (form, file import, paste, command line) goes through
``validate_customer``; the import's fast path calls the same field functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from kundreg_tui.domain.fields import FIELD_BY_NAME, FIELD_NAMES, KIND_COMPANY, KIND_PERSON
from kundreg_tui.domain.text import describe_char, forbidden_chars, normalise
from kundreg_tui.i18n import _


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


_NUMBER_RE = re.compile(r"^[\w\-+/]+$")
# Dot-atom local part: no leading, trailing or doubled dot (those go to email_validator and fail).
_EMAIL_FAST = re.compile(r"^[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$")
_PHONE_FAST = re.compile(r"^(?:\+46|0)7\d[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}$")
_KIND_WORDS = {
    "company": KIND_COMPANY, "företag": KIND_COMPANY, "foretag": KIND_COMPANY, "f": KIND_COMPANY,
    "organisation": KIND_COMPANY, "business": KIND_COMPANY, "c": KIND_COMPANY,
    "person": KIND_PERSON, "privatperson": KIND_PERSON, "privat": KIND_PERSON, "p": KIND_PERSON,
    "private": KIND_PERSON, "individual": KIND_PERSON,
}
_COUNTRY_WORDS = {"sverige": "SE", "sweden": "SE", "norge": "NO", "norway": "NO", "danmark": "DK",
                  "denmark": "DK", "finland": "FI", "suomi": "FI", "tyskland": "DE", "germany": "DE"}
# phonenumbers, email_validator and python-stdnum are imported when first needed: together they
# are a tenth of a second of the register's start, and most starts validate nothing.


# The country codes Land accepts: the regions phonenumbers knows and the ISO codes it lacks (AQ, BV,
# GS, HM, PN, TF, UM), written out so that checking a country does not import phonenumbers (70 ms);
# a test holds the list to phonenumbers'.
_COUNTRY_CODES = frozenset((
    "AC", "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT",
    "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR",
    "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER",
    "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL",
    "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID",
    "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI",
    "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
    "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR",
    "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
    "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL",
    "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TA", "TC", "TD", "TF", "TG", "TH", "TJ",
    "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA",
    "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
))


def country_codes() -> frozenset[str]:
    return _COUNTRY_CODES


_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")


def clean(name: str, raw: str | None) -> str:
    """Normalise one raw value and refuse characters that may never be stored."""
    spec = FIELD_BY_NAME[name]
    if not raw:
        return ""
    if raw.isascii() and not spec.multiline:
        # Fast path (most values): ASCII is already NFC; one regex finds any control character.
        value = raw.strip()
        if _ASCII_CONTROL.search(value) is None and (len(value) <= spec.max_length or name == "country"):
            return value
    value = normalise(raw, multiline=spec.multiline)
    bad = forbidden_chars(value, multiline=spec.multiline)
    if bad:
        raise FieldError(name, _("{field}: otillåtet tecken {char} (styr- eller riktningstecken)").format(
            field=spec.label_text, char=describe_char(bad[0])))
    # A country may be typed as a name ("Sverige"); check_country makes it a two-letter code.
    if len(value) > spec.max_length and name != "country":
        raise FieldError(name, _("{field}: högst {n} tecken").format(field=spec.label_text, n=spec.max_length))
    return value


def check_number(value: str) -> str:
    if value and not _NUMBER_RE.match(value):
        raise FieldError("number", _("Kundnummer får bara innehålla bokstäver, siffror och - + / _"))
    return value


def check_kind(value: str) -> str:
    if not value:
        return KIND_COMPANY
    kind = _KIND_WORDS.get(value.casefold())
    if kind is None:
        raise FieldError("kind", _("Kundtyp ska vara Företag eller Privatperson"))
    return kind


def _personnummer_12(value: str) -> str:
    """A valid personnummer in its one stored form, ``YYYYMMDD-NNNN`` (century from the date)."""
    from stdnum.se import personnummer

    number = str(personnummer.compact(value))  # YYMMDD-NNNN, YYMMDD+NNNN or YYYYMMDD-NNNN
    century = personnummer.get_birth_date(number).year // 100
    return f"{century}{number[-11:-5]}-{number[-4:]}"


@lru_cache(maxsize=65536)
def check_org_number(value: str, kind: str) -> str:
    if not value:
        return value
    from stdnum.se import orgnr, personnummer

    try:
        digits = re.sub(r"[\s\-+]", "", value)
        if (kind == KIND_PERSON or len(digits) == 12) and personnummer.is_valid(value):
            return _personnummer_12(value)
        if len(digits) == 12 and digits.startswith("16"):  # 16NNNNNN-NNNN: an org. number
            value = digits[2:]
        return str(orgnr.format(orgnr.validate(value)))
    except Exception:
        if kind == KIND_PERSON:
            raise FieldError("org_number", _("Ogiltigt personnummer (kontrollsiffran stämmer inte)")) from None
        raise FieldError("org_number", _("Ogiltigt organisationsnummer (kontrollsiffran stämmer inte)")) from None


@lru_cache(maxsize=4096)
def check_vat(value: str) -> str:
    if not value:
        return value
    from stdnum.eu import vat as eu_vat

    try:
        return str(eu_vat.validate(value))
    except Exception:
        raise FieldError("vat_number", _("Ogiltigt momsregistreringsnummer")) from None


def check_email(value: str) -> str:
    if not value:
        return value
    if _EMAIL_FAST.match(value):
        return value
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise FieldError("email", _("Ogiltig e-postadress: {value}").format(value=value)) from None
    return value


def email_key(value: str) -> str | None:
    return value.strip().casefold() or None


def phone_warning(value: str, country: str = "SE") -> str | None:
    """A phone number is kept as typed; an implausible one only gives a warning."""
    if not value or _PHONE_FAST.match(value):
        return None
    import phonenumbers

    try:
        parsed = phonenumbers.parse(value, country or "SE")
        if phonenumbers.is_possible_number(parsed):
            return None
    except phonenumbers.NumberParseException:
        pass
    return _("Telefonnumret ser ovanligt ut: {value}").format(value=value)


def check_postal_code(value: str, country: str) -> str:
    if not value:
        return value
    if country == "SE":
        digits = value.replace(" ", "").replace("-", "")
        if len(digits) == 5 and digits.isdigit():
            return f"{digits[:3]} {digits[3:]}"
        if digits.upper().startswith("SE") and len(digits) == 7 and digits[2:].isdigit():
            return f"{digits[2:5]} {digits[5:]}"
        raise FieldError("postal_code", _("Postnummer ska ha fem siffror, t.ex. 123 45"))
    return value


def check_country(value: str) -> str:
    if not value:
        return "SE"
    code = _COUNTRY_WORDS.get(value.casefold(), value.upper())
    if code not in country_codes():
        raise FieldError("country", _("Land ska vara en landskod enligt ISO 3166, t.ex. SE"))
    return code


@dataclass
class ValidationResult:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_customer(raw: dict[str, Any], *, partial: bool = False) -> ValidationResult:
    """Normalise and validate a customer's values.

    ``partial``: only the given fields are checked (an import row that leaves the rest alone);
    the name is then only required when it is given.
    """
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    names = [n for n in FIELD_NAMES if n in raw] if partial else list(FIELD_NAMES)
    for name in names:
        try:
            values[name] = clean(name, raw.get(name))
        except FieldError as exc:
            errors[name] = exc.message
    result = ValidationResult(values, errors)

    def run(name: str, fn: Any, *args: Any) -> None:
        if name in values and name not in errors:
            try:
                values[name] = fn(values[name], *args)
            except FieldError as exc:
                errors[exc.field] = exc.message

    run("number", check_number)
    run("kind", check_kind)
    run("country", check_country)
    kind = values.get("kind", KIND_COMPANY)
    country = values.get("country", "SE")
    run("org_number", check_org_number, kind)
    run("vat_number", check_vat)
    run("email", check_email)
    run("postal_code", check_postal_code, country)
    if "name" in values and not values["name"] and "name" not in errors:
        joined = " ".join(p for p in (values.get("first_name", ""), values.get("last_name", "")) if p)
        if len(joined) > FIELD_BY_NAME["name"].max_length:
            errors["name"] = _("{field}: högst {n} tecken").format(
                field=FIELD_BY_NAME["name"].label_text, n=FIELD_BY_NAME["name"].max_length)
        elif joined:
            values["name"] = joined
        elif not partial or "name" in raw:
            errors["name"] = _("Kundnamn måste anges")
    if "phone" in values and "phone" not in errors:
        warning = phone_warning(values["phone"], country)
        if warning:
            result.warnings["phone"] = warning
    return result


class CustomerData(BaseModel):
    """A validated customer (non-table model): build it with ``CustomerData.parse``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    number: str = ""
    kind: str = KIND_COMPANY
    name: str
    first_name: str = ""
    last_name: str = ""
    org_number: str = ""
    vat_number: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "SE"
    reference: str = ""
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _validate(cls, data: Any) -> Any:
        if isinstance(data, dict):
            result = validate_customer(data)
            if result.errors:
                raise ValueError("; ".join(result.errors.values()))
            # Unknown keys are passed on, so that ``extra="forbid"`` refuses them.
            return {**{k: v for k, v in data.items() if k not in result.values}, **result.values}
        return data

