"""Translations: extract the Swedish msgids, merge them into the English catalog, compile it.

    python scripts/i18n.py update    # extract + merge into kundreg_tui/locale/en/LC_MESSAGES/kundreg.po
    python scripts/i18n.py compile   # .po -> .mo (the .mo ships in the wheel)
    python scripts/i18n.py check     # exit 1 when a msgid has no English text or the .mo is stale
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kundreg_tui"
PO = PACKAGE / "locale" / "en" / "LC_MESSAGES" / "kundreg.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def extract() -> Catalog:
    catalog = Catalog(project="kundreg", locale="sv")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("i18n:",)
    ):
        if "/migrations/" in filename:
            continue
        catalog.add(message, None, [(f"kundreg_tui/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def load_po() -> Catalog:
    if not PO.exists():
        return Catalog(locale="en", project="kundreg")
    with PO.open("rb") as fh:
        return read_po(fh, locale="en")


def update() -> None:
    template = extract()
    catalog = load_po()
    catalog.update(template, no_fuzzy_matching=True)
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False, ignore_obsolete=True)
    missing = [m.id for m in catalog if m.id and not _translated(m)]
    print(f"{PO.relative_to(ROOT)}: {len(catalog)} messages, {len(missing)} without English text")


def _translated(message: object) -> bool:
    s = getattr(message, "string", "")
    if isinstance(s, tuple):
        return all(s)
    return bool(s)


def mo_bytes() -> bytes:
    buf = io.BytesIO()
    write_mo(buf, load_po(), use_fuzzy=False)
    return buf.getvalue()


def compile_mo() -> None:
    MO.write_bytes(mo_bytes())
    print(f"wrote {MO.relative_to(ROOT)}")


def check() -> list[str]:
    problems: list[str] = []
    catalog = load_po()
    for message in extract():
        if not message.id:
            continue
        found = catalog.get(message.id)
        if found is None or not _translated(found) or found.fuzzy:
            problems.append(f"no English text for {message.id!r} ({message.locations[0][0]})")
    if not MO.exists() or MO.read_bytes() != mo_bytes():
        problems.append(f"{MO.relative_to(ROOT)} is stale: run python scripts/i18n.py compile")
    return problems


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    if cmd == "update":
        update()
    elif cmd == "compile":
        compile_mo()
    else:
        found = check()
        print("\n".join(found) or "catalog complete")
        sys.exit(1 if found else 0)
