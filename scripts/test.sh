#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, type check, protocol vectors, pytest on SQLite and
# PostgreSQL (PostgreSQL at 127.0.0.1:5432 is required when CI=true, skipped with a message otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

echo "== ruff"
.venv/bin/ruff check .
echo "== bandit (medium and high severity)"
.venv/bin/bandit -c pyproject.toml -r node protocol admin -ll -q
echo "== mypy --strict protocol"
.venv/bin/mypy
echo "== protocol vectors"
.venv/bin/ccm-protocol vectors --check
echo "== pytest"
# In parallel: CCM_TEST_WORKERS processes (default 2), whole files per process (--dist loadfile keeps a file's
# module- and session-scoped fixtures in one process). Later arguments win: `scripts/test.sh -n 0` runs serially.
exec .venv/bin/python -m pytest -n "${CCM_TEST_WORKERS:-2}" --dist loadfile "$@"
