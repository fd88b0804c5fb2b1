"""Crash logs that keep personal data private.

Textual's own crash report prints a traceback with local variables: customer names, e-mail
addresses. Ours records where it happened (file, line, function) and the exception's type, and
record ids only where the code put them in ``KundregCrashContext``; never a message or a local
variable, since either may hold personal data.
"""

from __future__ import annotations

import os
import platform
import traceback
from datetime import datetime
from pathlib import Path

from platformdirs import user_log_dir

from kundreg_tui import __version__


def crash_dir() -> Path:
    return Path(os.environ.get("KUNDREG_LOG_DIR") or user_log_dir("kundreg", appauthor=False))


def describe(exc: BaseException) -> list[str]:
    """The exception chain as type names and frames: no messages, no locals."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(f"  {frame.filename}:{frame.lineno} in {frame.name}")
        record_ids = getattr(current, "record_ids", None)
        if record_ids:
            lines.append(f"  record ids: {', '.join(str(int(i)) for i in record_ids)}")
        current = current.__cause__ or current.__context__
        if current is not None:
            lines.append("caused by / during:")
    return lines


def write_crash_log(exc: BaseException) -> Path:
    """Write a private (0600) crash log and return its path."""
    folder = crash_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"crash-{stamp}-{os.getpid()}.log"
    body = [
        f"kundreg {__version__} crash at {datetime.now().isoformat(timespec='seconds')}",
        f"python {platform.python_version()} on {platform.system()} {platform.release()}",
        "",
        *describe(exc),
        "",
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(body))
    return path
