#!/usr/bin/env bash
# Set everything up and start a demo node (GI Göteborg) with realistic synthetic cases, on SQLite, on
# 127.0.0.1. Prints the URL and the demo logins; Ctrl-C stops it. Data lives in var/demo/ (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

PORT="${CCM_DEMO_PORT:-8701}"
DIR=var/demo/se.gi-goteborg
NODE=".venv/bin/ccm-node --data-dir $DIR"
PASSWORD="demo-password-2026"

if [ ! -f "$DIR/node.toml" ]; then
  .venv/bin/ccm-node init --data-dir "$DIR" --node-id se.gi-goteborg --name "Göteborgs-Initiativet" \
    --url "http://127.0.0.1:$PORT"
  for spec in "anna.lindqvist counsellor gi-counsellors" "erik.nilsson counsellor gi-counsellors" \
              "amra.hodzic adviser gi-counsellors" "admin admin -" "sara.coordinator coordinator -"; do
    set -- $spec
    team=(); [ "$3" != "-" ] && team=(--team "$3")
    echo "$PASSWORD" | $NODE user add "$1" --role "$2" "${team[@]}" --password-stdin
  done
  $NODE demo-data --cases 200
  $NODE token create anna.lindqvist --name demo > "$DIR/demo-token"
  chmod 600 "$DIR/demo-token"
fi

cat <<INFO

  CCM Exchange demo node: Göteborgs-Initiativet (se.gi-goteborg)
  URL:        http://127.0.0.1:$PORT/api/v1/openapi.json  (API docs)
  Logins:     anna.lindqvist (counsellor), amra.hodzic (adviser), admin (admin), sara.coordinator (coordinator)
              password for all: $PASSWORD
  API token:  $(cat "$DIR/demo-token")   (anna.lindqvist)
  Try:        curl -H "Authorization: Bearer \$(cat $DIR/demo-token)" http://127.0.0.1:$PORT/api/v1/cases
  Stop:       Ctrl-C

INFO
exec $NODE serve --port "$PORT" --workers 2
