#!/usr/bin/env bash
# The demo behind `make run`: the server with an embedded NATS and the
# PostgreSQL database "inbox", and the network simulator serving a fake X API
# and playing residents who post, reply and send direct messages. Cases
# appear as they arrive; answer them through the REST API with the token
# printed below, and the simulated residents answer back. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

export INBOX_DATABASE_URL="${INBOX_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/inbox?sslmode=disable}"
export INBOX_HTTP_ADDR="${INBOX_HTTP_ADDR:-127.0.0.1:8080}"
export INBOX_NATS_DIR="${INBOX_NATS_DIR:-./data/nats}"
export INBOX_CONFIG="${INBOX_CONFIG:-deploy/config.example.yaml}"
export X_API_BASE_URL="${X_API_BASE_URL:-http://127.0.0.1:8081}"
export X_CONSUMER_SECRET="${X_CONSUMER_SECRET:-demo-consumer-secret}"
export X_ACCESS_TOKEN="${X_ACCESS_TOKEN:-demo-access-token}"
sim_addr="${X_API_BASE_URL#http://}"
base="http://$INBOX_HTTP_ADDR"

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
	echo "PostgreSQL does not answer on 127.0.0.1:5432; see README, 'Before you start'." >&2
	exit 1
fi
db="$(sed -E 's#^.*/([^/?]+)(\?.*)?$#\1#' <<<"$INBOX_DATABASE_URL")"
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
	psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$db\""
	echo "created database $db"
fi
mkdir -p data

# An adviser and an API token for the demo.
bin/inbox user create -email demo.adviser@example.gov.uk -name "Demo Adviser" -role adviser >/dev/null 2>&1 || true
token="$(bin/inbox token create -email demo.adviser@example.gov.uk -name "demo $(date +%FT%T)" 2>/dev/null)"

pids=()
cleanup() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

bin/inbox serve 2>data/inbox.log &
pids+=($!)

cat <<TXT

  Citizen inbox demo
  ------------------
  Server        $base          (log: data/inbox.log)
  Fake X API    $X_API_BASE_URL     (what the council sent: $X_API_BASE_URL/__sim/sent)
  API token     $token

  Try, in another terminal:
    export TOKEN=$token
    curl -s -H "Authorization: Bearer \$TOKEN" $base/api/v1/cases
    curl -s -H "Authorization: Bearer \$TOKEN" $base/api/v1/cases/1
    curl -s -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
         -d '{"text":"Thanks for letting us know, we have logged it.","visibility":"public"}' \\
         $base/api/v1/cases/1/replies

  Residents' messages and the council's replies appear below. Ctrl-C stops.

TXT

bin/netsim -listen "$sim_addr" -webhook "$base/webhooks/x/council-x" &
pids+=($!)
wait -n "${pids[@]}"
