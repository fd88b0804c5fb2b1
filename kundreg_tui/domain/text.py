"""Text rules shared by every path into and out of the register."""

from __future__ import annotations

import re
import unicodedata

# C0 controls except TAB and LF, DEL, C1 controls.
_CONTROL = "".join(chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)])
# Bidirectional embeddings, overrides and isolates (the "Trojan Source" set).
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
FORBIDDEN_SINGLE_LINE = set(_CONTROL + "\t\n" + _BIDI)
FORBIDDEN_MULTI_LINE = set(_CONTROL + _BIDI)
_UNSAFE_RE = re.compile("[" + re.escape(_CONTROL + _BIDI + "\t\n") + "]")
_UNSAFE_DISPLAY_RE = re.compile("[" + re.escape(_CONTROL + _BIDI) + "]")


def normalise(value: str | None, *, multiline: bool = False) -> str:
    """NFC, CRLF/CR to LF in multi-line text, trimmed (each line's end too)."""
    if not value:
        return ""
    text = unicodedata.normalize("NFC", value)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text.strip()


def forbidden_chars(value: str, *, multiline: bool = False) -> list[str]:
    """The characters in ``value`` that may never be stored (control, bidi override)."""
    bad = FORBIDDEN_MULTI_LINE if multiline else FORBIDDEN_SINGLE_LINE
    return [ch for ch in value if ch in bad]


def describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC)
    if code == 0x7F:
        return "\u2421"  # ␡
    if ch == "\t":
        return "\u2409"
    return f"<U+{code:04X}>"


def visible(value: str, *, keep_newlines: bool = False) -> str:
    """Make control and bidi characters visible, so nothing reaches a terminal as a command."""
    if keep_newlines:
        return _UNSAFE_DISPLAY_RE.sub(_visible, value) if value else value
    if not value:
        return value
    if "\n" in value or "\u2028" in value or "\u2029" in value:
        value = value.replace("\n", "\u21b5 ").replace("\u2028", "\u21b5 ").replace("\u2029", "\u21b5 ")
    return _UNSAFE_RE.sub(_visible, value)


_FOLD_TABLE = str.maketrans({"æ": "ae", "ø": "o", "ß": "ss", "đ": "d", "ł": "l", "þ": "th"})


def fold(value: str) -> str:
    """Case- and accent-folded text for searching: ``Österlund`` -> ``osterlund``."""
    # NFKD first: a compatibility character may hide a capital (``ℌ`` -> ``H``) that casefold
    # must still see; NFKD again after casefold, which can itself produce decomposable text.
    text = unicodedata.normalize("NFKD", value).casefold().translate(_FOLD_TABLE)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


# Swedish alphabetical order: ... x y z å ä ö; ü as y, æ as ä, ø as ö, other accents dropped.
_SV_TAIL = {"å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}"}


def swedish_key(value: str) -> str:
    """A byte-comparable sort key giving Swedish alphabetical order."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", value.casefold()):
        tail = _SV_TAIL.get(ch)
        if tail is not None:
            out.append(tail)
            continue
        if ch == "ü":
            out.append("y")
            continue
        if ch.isascii():
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base.isascii() and base else ch)
    return "".join(out)


_DIGITS = re.compile(r"[0-9]+")


def _digit_run(match: re.Match[str]) -> str:
    digits = match.group().lstrip("0")
    if len(digits) <= 20:
        return digits.rjust(20, "0")
    # Longer runs (a customer number may have 32 digits) after every 20-digit one, by length.
    return f":{len(digits):03d}{digits}"


def natural_key(value: str) -> str:
    """Sort key where digit runs compare as numbers: ``2`` before ``10``."""
    return _DIGITS.sub(_digit_run, swedish_key(value))
