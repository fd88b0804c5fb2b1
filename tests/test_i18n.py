"""The English translation: complete, compiled, and actually used (CLI, TUI, environment).

Swedish is the source language (every msgid is Swedish); English comes from
``kundreg_tui/locale/en/LC_MESSAGES/kundreg.po`` / ``.mo``, maintained with ``scripts/i18n.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import string
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from kundreg_tui import i18n

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "i18n.py"
PO = ROOT / "kundreg_tui" / "locale" / "en" / "LC_MESSAGES" / "kundreg.po"
LANG_VARS = ("KUNDREG_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def _i18n_script() -> ModuleType:
    pytest.importorskip("babel")
    spec = importlib.util.spec_from_file_location("kundreg_i18n_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no language chosen unless ``extra`` chooses one."""
    env = {k: v for k, v in os.environ.items() if k not in LANG_VARS}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


# ---------------------------------------------------------------------- (a) the catalog


def test_catalog_is_complete_and_compiled() -> None:
    """Every msgid in the code has English text, and the .mo matches the .po."""
    problems = _i18n_script().check()
    assert problems == [], "\n".join(problems)


def test_translations_keep_placeholders_whitespace_and_plurals() -> None:
    pytest.importorskip("babel")
    from babel.messages.pofile import read_po

    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    fmt = string.Formatter()

    def fields(text: str) -> list[tuple[str, str]]:
        return sorted((name, spec) for _lit, name, spec, _conv in fmt.parse(text) if name is not None)

    def edges(text: str) -> tuple[str, str]:
        return text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]

    wrong = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if len(ids) != len(strings):
            wrong.append((ids, strings, "plural forms"))
            continue
        for msgid, msgstr in zip(ids, strings, strict=True):
            allowed = {f for i in ids for f in fields(i)}
            if fields(msgstr) != fields(msgid) and not set(fields(msgstr)) <= allowed:
                wrong.append((msgid, msgstr, "placeholders"))
            if edges(msgstr) != edges(msgid):
                wrong.append((msgid, msgstr, "leading/trailing whitespace"))
    assert wrong == []


def test_english_is_served_from_the_mo() -> None:
    i18n.set_language("en")
    assert i18n.current_language() == "en"
    assert i18n._("Ny kund") == "New customer"
    assert i18n._("Kundregister") == "Customer register"
    assert i18n.ngettext("{n} kund", "{n} kunder", 1).format(n=1) == "1 customer"
    assert i18n.ngettext("{n} kund", "{n} kunder", 3).format(n=3) == "3 customers"
    i18n.set_language("sv")
    assert i18n._("Ny kund") == "Ny kund"


# ---------------------------------------------------------------------- (b) the command line


def test_cli_main_help_in_english() -> None:
    out = _run(["-m", "kundreg_tui", "--lang", "en", "--help"], _env())
    assert "SQLite file or PostgreSQL URL" in out
    assert "Language: sv or en." in out
    assert "Språk" not in out and "datamapp" not in out


def test_cli_list_help_in_english() -> None:
    out = _run(["-m", "kundreg_tui", "--lang", "en", "list", "--help"], _env())
    assert "Show only the customers that match the search." in out
    assert "Write a JSON list with every field." in out
    assert "sökningen" not in out and "JSON-lista" not in out


def test_cli_lang_equals_form_and_swedish_default() -> None:
    assert "Language: sv or en." in _run(["-m", "kundreg_tui", "--lang=en", "--help"], _env())
    assert "Språk: sv eller en." in _run(["-m", "kundreg_tui", "--help"], _env())


def test_cli_english_from_lang_environment() -> None:
    out = _run(["-m", "kundreg_tui", "list", "--help"], _env(LANG="en_US.UTF-8"))
    assert "Show only the customers that match the search." in out
    out = _run(["-m", "kundreg_tui", "list", "--help"], _env(LANG="sv_SE.UTF-8"))
    assert "Visa bara kunder som matchar sökningen." in out


def test_cli_command_descriptions_in_english() -> None:
    main = _run(["-m", "kundreg_tui", "--lang", "en", "--help"], _env())
    listing = _run(["-m", "kundreg_tui", "--lang", "en", "list", "--help"], _env())
    assert "kundregister i terminalen" not in main
    assert "Lista kunder" not in main and "Lista kunder" not in listing


# ---------------------------------------------------------------------- (c) the TUI in English

_TUI_SCRIPT = textwrap.dedent("""
    import asyncio, html, json, sys
    from kundreg_tui import i18n
    i18n.set_language("en")  # before any module builds its translated strings
    from kundreg_tui.app import KundregApp
    from kundreg_tui.domain.database import make_engine, migrate
    from kundreg_tui.domain.register import RegisterService

    async def main():
        engine = make_engine("sqlite:///" + sys.argv[1])
        migrate(engine)
        app = KundregApp(RegisterService(engine))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.pause()
            descriptions = [b.binding.description for b in app.screen.active_bindings.values()]
            svg = html.unescape(app.export_screenshot()).replace("\\xa0", " ")
            result = {"descriptions": descriptions, "title": app.screen.title,
                      "screen_text": svg}
        engine.dispose()
        print(json.dumps(result))

    asyncio.run(asyncio.wait_for(main(), 60))
""")


def test_tui_register_screen_in_english(tmp_path: Path) -> None:
    out = _run(["-c", _TUI_SCRIPT, str(tmp_path / "register.db")], _env(), timeout=90)
    result = json.loads(out.strip().splitlines()[-1])
    descriptions = result["descriptions"]
    assert "New customer" in descriptions
    assert "Quit" in descriptions and "Help" in descriptions
    assert "Ny kund" not in descriptions and "Avsluta" not in descriptions
    assert result["title"] == "Customer register"
    assert "New customer" in result["screen_text"]
    assert "Ny kund" not in result["screen_text"]


# ---------------------------------------------------------------------- (d) the environment


@pytest.mark.parametrize(("environ", "expected"), [
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "en_GB.UTF-8"}, "en"),
    ({"LANG": "sv_SE.UTF-8"}, "sv"),
    ({"LANG": "C.UTF-8"}, "sv"),
    ({}, "sv"),
    ({"LANG": "sv_SE.UTF-8", "LC_ALL": "en_US.UTF-8"}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "sv_SE.UTF-8"}, "sv"),
    ({"LANG": "sv_SE.UTF-8", "KUNDREG_LANG": "en"}, "en"),
    ({"LANG": "en_US.UTF-8", "KUNDREG_LANG": "sv"}, "sv"),
])
def test_language_from_env(environ: dict[str, str], expected: str) -> None:
    assert i18n.language_from_env(environ) == expected


def test_set_language_without_argument_follows_lang(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in LANG_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert i18n.set_language(None) == "en"
    assert i18n._("Ny kund") == "New customer"
    monkeypatch.setenv("LANG", "sv_SE.UTF-8")
    assert i18n.set_language(None) == "sv"
    assert i18n._("Ny kund") == "Ny kund"


def test_one_key_answers_follow_the_language() -> None:
    """In English a question answers to the first letter of its English answers (y, n, o, c…);
    the Swedish keys keep working, and a letter two answers share is never used."""
    from kundreg_tui.screens.confirm import answer_keys

    before = i18n.current_language()
    try:
        i18n.set_language("sv")
        assert answer_keys([("j", i18n._("Ja, importera"), "yes"), ("n", i18n._("Nej"), "no")]) == [("j",), ("n",)]
        i18n.set_language("en")
        assert answer_keys([("j", i18n._("Ja, importera"), "yes"), ("n", i18n._("Nej"), "no")]) == [
            ("y", "j"), ("n",)]
        assert answer_keys([("j", i18n._("Skriv över"), "overwrite"), ("n", i18n._("Avbryt"), "cancel")]) == [
            ("o", "j"), ("c", "n")]
        keys = answer_keys([("s", i18n._("Spara och lämna"), "save"),
                            ("l", i18n._("Lämna utan att spara"), "discard"),
                            ("a", i18n._("Fortsätt redigera"), "stay")])
        assert keys == [("s",), ("l",), ("k", "a")]
        shown = [k[0] for k in keys]
        assert len(set(shown)) == len(shown)
    finally:
        i18n.set_language(before)
