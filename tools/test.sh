#!/usr/bin/env bash
# The README's test command: set up (idempotent), lint, then every unit,
# functional and integration test against the real services of this
# machine (RabbitMQ, MariaDB, PostgreSQL; Keystone is started by the tests).
# Under CI=true a test whose service is unreachable fails instead of
# skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
.venv/bin/ruff check logrca tools
export PYTHONUNBUFFERED=1
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
