"""An unexpected error: a short message, a private log without personal data, no locals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kundreg_tui.app import KundregApp
from kundreg_tui.crash import describe, write_crash_log
from kundreg_tui.domain.register import RegisterService

SECRET = "Hemliga Hansson hemlig@example.se"


def _boom() -> None:
    name = SECRET  # noqa: F841  (a local variable Textual's report would print)
    raise ValueError(f"kunde inte spara {SECRET}")


def test_describe_has_frames_but_no_message_or_locals() -> None:
    try:
        _boom()
    except ValueError as exc:
        text = "\n".join(describe(exc))
    assert "ValueError" in text and "_boom" in text
    assert "Hansson" not in text and "hemlig@" not in text


def test_log_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUNDREG_LOG_DIR", str(tmp_path))
    try:
        _boom()
    except ValueError as exc:
        path = write_crash_log(exc)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "Hansson" not in path.read_text()


async def test_app_crash_writes_private_log(sqlite_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUNDREG_LOG_DIR", str(tmp_path))
    app = KundregApp(RegisterService(sqlite_engine))
    with pytest.raises(ValueError):
        async with app.run_test() as pilot:
            await pilot.pause()
            app.call_later(_boom)
            await pilot.pause(0.2)
    logs = list(tmp_path.glob("crash-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "ValueError" in text and "Hansson" not in text and "hemlig@" not in text
    assert app.return_code == 1
    rendered = " ".join(str(r) for r in app._exit_renderables)
    assert "Hansson" not in rendered
