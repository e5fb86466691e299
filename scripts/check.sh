#!/usr/bin/env bash
# The test command: set up (idempotent), lint, type-check, then every test, unit and
# integration (a real Kafka broker and the embedded ClickHouse engine; nothing skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
