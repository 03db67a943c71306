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
exec .venv/bin/python -m pytest "$@"
