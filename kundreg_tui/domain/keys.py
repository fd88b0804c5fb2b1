"""Derived columns (sort and search keys) computed from a customer's values."""

from __future__ import annotations

from collections.abc import Mapping

from kundreg_tui.domain.text import fold, natural_key, swedish_key

SEP = "\x1f"


def search_key(values: Mapping[str, str]) -> str:
    org = values.get("org_number", "")
    parts = [
        fold(values.get("name", "")),
        fold(values.get("number", "")),
        fold(values.get("email", "")),
        org,
        org.replace("-", "").replace(" ", ""),
    ]
    return SEP.join(parts)


def derived_columns(values: Mapping[str, str]) -> dict[str, str | None]:
    """The key columns stored beside a customer's values (``values`` already normalised)."""
    email = values.get("email", "")
    return {
        "number_key": natural_key(values.get("number", "")),
        "name_key": swedish_key(values.get("name", "")),
        "city_key": swedish_key(values.get("city", "")),
        "email_key": email.casefold() or None,
        "search_key": search_key(values),
    }
