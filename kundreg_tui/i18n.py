"""Translations through gettext.

Swedish is the source language: every msgid in the code is Swedish, so the default needs no
catalog. English lives in ``locale/en/LC_MESSAGES/kundreg.mo`` (compiled from ``kundreg.po``).
This module imports neither Textual nor Rich: the domain uses it too.
"""

from __future__ import annotations

import gettext
import os
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kundreg"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "sv"


def language_from_env(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for var in ("KUNDREG_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value:
            return "en" if value.lower().startswith("en") else "sv"
    return "sv"


def set_language(lang: str | None) -> str:
    """Switch the language for the whole process; returns the language in use."""
    global _translation, _language
    lang = (lang or language_from_env()).lower()
    if lang.startswith("en"):
        _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=["en"], fallback=True)
        _language = "en"
    else:
        _translation = gettext.NullTranslations()
        _language = "sv"
    return _language


def current_language() -> str:
    return _language


def _(message: str) -> str:
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string for extraction; translate it later with ``_``."""
    return message
