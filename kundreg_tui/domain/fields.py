"""The customer's fields: one list that the form, the import, the export and the CLI share."""

from __future__ import annotations

from dataclasses import dataclass

from kundreg_tui.i18n import N_, _


@dataclass(frozen=True)
class FieldSpec:
    name: str  # attribute and column name
    label: str  # Swedish label (msgid); translate with ``label_text``
    max_length: int
    multiline: bool = False
    required: bool = False

    @property
    def label_text(self) -> str:
        return _(self.label)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("number", N_("Kundnummer"), 32),
    FieldSpec("kind", N_("Kundtyp"), 16),
    FieldSpec("name", N_("Kundnamn"), 200, required=True),
    FieldSpec("first_name", N_("Förnamn"), 100),
    FieldSpec("last_name", N_("Efternamn"), 100),
    FieldSpec("org_number", N_("Organisationsnummer / Personnummer"), 20),
    FieldSpec("vat_number", N_("Momsregistreringsnummer"), 20),
    FieldSpec("email", N_("E-post"), 254),
    FieldSpec("phone", N_("Telefon"), 40),
    FieldSpec("address", N_("Adress"), 300, multiline=True),
    FieldSpec("postal_code", N_("Postnummer"), 12),
    FieldSpec("city", N_("Ort"), 100),
    FieldSpec("country", N_("Land"), 2),
    FieldSpec("reference", N_("Er referens"), 100),
    FieldSpec("notes", N_("Anteckningar"), 4000, multiline=True),
)
FIELD_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
# Fields an import or form may write (everything but the bookkeeping columns).
DATA_FIELDS = FIELD_NAMES

KIND_COMPANY = "company"
KIND_PERSON = "person"
KIND_LABELS = {KIND_COMPANY: N_("Företag"), KIND_PERSON: N_("Privatperson")}


def field_label(name: str) -> str:
    return FIELD_BY_NAME[name].label_text


def kind_label(kind: str) -> str:
    return _(KIND_LABELS.get(kind, kind))
