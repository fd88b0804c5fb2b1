"""Snapshots of the import screens (110×32): file step, settings, columns, paste, preview, receipt.

Deterministic: the folders shown live under a HOME of the test's own (shown as ``~/…``), the
register is fresh, and every worker of the screens has finished before the picture is taken.
Update with ``pytest tests/test_snapshots_import.py --snapshot-update`` after a deliberate change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Input

from kundreg_tui.domain.register import RegisterService
from kundreg_tui.screens.import_wizard import ImportWizard
from tests.test_import_screens import (
    MIXED_EXISTING,
    MIXED_PASTE,
    SEED_PASTE,
    SIZE,
    _isolated,  # noqa: F401 (autouse: HOME, config folder and working folder of the test's own)
    commit,
    make_app,
    paste,
    settle,
    start,
    static_text,
    write_cp1252,
)


async def steady(pilot: Pilot[Any]) -> None:
    """No blinking cursor in the picture (it would make the snapshot depend on the moment)."""
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await settle(pilot)
    await pilot.pause()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """``~/kunder`` with a few files and a sub-folder."""
    kunder = tmp_path / "home" / "kunder"
    (kunder / "arkiv").mkdir(parents=True)
    write_cp1252(kunder / "excel.csv")
    (kunder / "gissa.csv").write_text(
        "Kundummer;Namn;eftenamn;Mobil;Skostorlek\n5;Åsa Ek;Ek;070-1234567;38\n6;Bo Berg;Berg;;44\n",
        encoding="utf-8")
    (kunder / "leverantörer.txt").write_text("x", encoding="utf-8")
    return kunder


async def wizard_at(pilot: Pilot[Any], folder: Path, file: str | None, steps: int) -> None:
    app = pilot.app
    wizard = ImportWizard(app.service, start_dir=folder)  # type: ignore[attr-defined]
    app.push_screen(wizard)
    await settle(pilot)
    if file is not None:
        field = wizard.query_one("#file-path", Input)
        field.value = f"~/kunder/{file}"
        field.cursor_position = len(field.value)
    for _ in range(steps):
        await pilot.press("ctrl+s")
        await settle(pilot)
    await steady(pilot)


def test_snapshot_file_step(snap_compare: Any, sqlite_engine: sa.Engine, folder: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wizard_at(pilot, folder, None, 0)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_settings_step(snap_compare: Any, sqlite_engine: sa.Engine, folder: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wizard_at(pilot, folder, "excel.csv", 1)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_columns_step(snap_compare: Any, sqlite_engine: sa.Engine, folder: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wizard_at(pilot, folder, "gissa.csv", 2)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_paste_editor(snap_compare: Any, sqlite_engine: sa.Engine) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await paste(pilot, SEED_PASTE)
        for _ in range(40):  # the format line is explained after a short pause in typing
            if "Fälten" in static_text(screen, "#paste-format"):
                break
            await pilot.pause(0.05)
        await steady(pilot)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_preview(snap_compare: Any, sqlite_engine: sa.Engine) -> None:
    service = RegisterService(sqlite_engine, actor="test")
    for values in MIXED_EXISTING:
        service.create(values)

    async def run_before(pilot: Pilot[Any]) -> None:
        await paste(pilot, MIXED_PASTE)
        await start(pilot)
        await steady(pilot)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_receipt(snap_compare: Any, sqlite_engine: sa.Engine) -> None:
    service = RegisterService(sqlite_engine, actor="test")
    for values in MIXED_EXISTING:
        service.create(values)

    async def run_before(pilot: Pilot[Any]) -> None:
        await paste(pilot, MIXED_PASTE)
        await start(pilot)
        await commit(pilot)
        await steady(pilot)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)
