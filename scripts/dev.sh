#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv (once, and again when pyproject.toml
# changes), then runs the register or the whole test suite.
#   scripts/dev.sh run [kundreg arguments]   open the register (default: a SQLite file)
#   scripts/dev.sh test [pytest arguments]   lint, type-check, and run every test (SQLite + PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
stamp=$VENV/.installed
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
cmd=${1:-run}
shift || true
case "$cmd" in
    run)
        exec "$VENV/bin/kundreg" "$@"
        ;;
    test)
        bash scripts/ensure-postgres.sh
        "$VENV/bin/ruff" check kundreg_tui tests benchmarks
        "$VENV/bin/mypy"
        exec "$VENV/bin/pytest" -q -n 2 -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: scripts/dev.sh run|test [args]" >&2
        exit 2
        ;;
esac
