"""SVG snapshots of the Kundregister screen and the Kund form (100 x 30, fixed data).

The table fetches its pages in workers: every ``run_before`` waits until no worker runs and the
table has its rows, and switches the cursor blink off, so the pictures are stable.
Update with ``pytest tests/test_snapshots_register.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from kundreg_tui.app import KundregApp
from kundreg_tui.domain.register import RegisterService
from tests.test_app_register import (
    SIZE,
    fill,
    idle,
)


@pytest.fixture
def sqlite_service(sqlite_engine: sa.Engine) -> RegisterService:
    return RegisterService(sqlite_engine, actor="test")


async def steady(pilot: Pilot[Any]) -> None:
    await idle(pilot)
    for widget in pilot.app.screen.query("Input, TextArea"):
        assert isinstance(widget, Input | TextArea)
        widget.cursor_blink = False
    await pilot.pause()


def snap(snap_compare: Any, app: KundregApp, *steps: Any) -> bool:
    async def run_before(pilot: Pilot[Any]) -> None:
        await steady(pilot)
        for step in steps:
            if isinstance(step, str):
                await pilot.press(step)
            else:
                await step(pilot)
            await pilot.pause(0.12)  # the search waits 50 ms for the last keystroke
            await steady(pilot)

    return bool(snap_compare(app, terminal_size=SIZE, run_before=run_before))


@pytest.fixture
def filled(sqlite_service: RegisterService) -> RegisterService:
    fill(sqlite_service)
    return sqlite_service


def test_register_empty_shows_the_hint(snap_compare: Any, sqlite_service: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(sqlite_service))


def test_register_filled(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled))


def test_register_searching(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled), "slash", "b", "e", "r", "g")


def test_register_marked(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled), "space", "down", "space")


def test_register_delete_confirmation(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled), "space", "space", "delete")


def test_register_help(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled), "question_mark")


def test_form_new_clean(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled), "n")


def test_form_edit_clean(snap_compare: Any, filled: RegisterService) -> None:
    assert snap(snap_compare, KundregApp(filled), "down", "down", "down", "down", "enter")


def test_form_with_errors(snap_compare: Any, filled: RegisterService) -> None:
    async def bad_values(pilot: Pilot[Any]) -> None:
        screen = pilot.app.screen
        screen.query_one("#f-email", Input).value = "inte-en-adress"
        screen.query_one("#f-postal_code", Input).value = "12"
        screen.query_one("#f-org_number", Input).value = "556036-0794"

    assert snap(snap_compare, KundregApp(filled), "n", bad_values, "ctrl+s")
