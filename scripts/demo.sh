#!/usr/bin/env bash
# Set everything up and start the four-node demo network on 127.0.0.1: GI Göteborg, CLDD Sarajevo, CLDD Baghdad
# and a partner in Accra, each its own gunicorn process, SQLite database and delivery worker, trusted to each
# other through card exchange, seeded with the story (handovers delivered, accepted with progress back, one
# declined, a child's case). Prints each node's URL and the demo logins; Ctrl-C stops everything.
# Data lives in var/demo/ (delete it to start over). `scripts/demo.sh --check` runs the story headless instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/ccm-node demo "$@"
