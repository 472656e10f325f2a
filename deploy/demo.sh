#!/usr/bin/env bash
# The demo behind `make run`: the server with an embedded NATS and the
# PostgreSQL database "inbox", and a network simulator for each network the
# configuration has an account on (X always; Facebook, Instagram and
# WhatsApp, Telegram, SMS, Mastodon, Bluesky and email), each serving a fake
# of the network's API and playing residents who post, reply and send
# direct messages. Cases appear as they arrive; answer them in the web
# pages (the sign-ins are printed below) or through the REST API with the
# token printed below, and the simulated residents answer back. Ctrl-C
# stops them all.
#
#   deploy/demo.sh          run the demo (with a made-up year of 5,000 cases
#                           for the supervisors' figures; DEMO_DATA=0 leaves
#                           it out)
#   deploy/demo.sh reset    forget what the demo stored (its database and
#                           data/), so the next run starts from nothing
set -euo pipefail
cd "$(dirname "$0")/.."

export INBOX_DATABASE_URL="${INBOX_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/inbox?sslmode=disable}"
export INBOX_HTTP_ADDR="${INBOX_HTTP_ADDR:-127.0.0.1:8080}"
export INBOX_OPS_ADDR="${INBOX_OPS_ADDR:-127.0.0.1:9090}"
export INBOX_NATS_DIR="${INBOX_NATS_DIR:-./data/nats}"
export INBOX_CONFIG="${INBOX_CONFIG:-deploy/config.example.yaml}"
export X_API_BASE_URL="${X_API_BASE_URL:-http://127.0.0.1:8081}"
export X_CONSUMER_SECRET="${X_CONSUMER_SECRET:-demo-consumer-secret}"
export X_ACCESS_TOKEN="${X_ACCESS_TOKEN:-demo-access-token}"
export META_API_BASE_URL="${META_API_BASE_URL:-http://127.0.0.1:8082}"
export META_APP_SECRET="${META_APP_SECRET:-demo-meta-app-secret}"
export META_VERIFY_TOKEN="${META_VERIFY_TOKEN:-demo-meta-verify-token}"
export META_ACCESS_TOKEN="${META_ACCESS_TOKEN:-demo-meta-access-token}"
export TELEGRAM_API_BASE_URL="${TELEGRAM_API_BASE_URL:-http://127.0.0.1:8083}"
export TELEGRAM_BOT_TOKEN="${TELEGRAM_BOT_TOKEN:-7000000001:demo-telegram-bot-token}"
export TELEGRAM_SECRET_TOKEN="${TELEGRAM_SECRET_TOKEN:-demo-telegram-secret-token}"
export TWILIO_API_BASE_URL="${TWILIO_API_BASE_URL:-http://127.0.0.1:8084}"
export TWILIO_ACCOUNT_SID="${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000000}"
export TWILIO_AUTH_TOKEN="${TWILIO_AUTH_TOKEN:-demo-twilio-auth-token}"
export MASTODON_BASE_URL="${MASTODON_BASE_URL:-http://127.0.0.1:8085}"
export MASTODON_ACCESS_TOKEN="${MASTODON_ACCESS_TOKEN:-demo-mastodon-access-token}"
export BLUESKY_SERVICE_URL="${BLUESKY_SERVICE_URL:-http://127.0.0.1:8086}"
export BLUESKY_HANDLE="${BLUESKY_HANDLE:-examplecouncil.bsky.social}"
export BLUESKY_APP_PASSWORD="${BLUESKY_APP_PASSWORD:-demo-bluesky-app-password}"
# The council's mail servers, which the email simulator serves (it reads
# these too), and where it lists what the council sent.
export IMAP_URL="${IMAP_URL:-imap+plain://127.0.0.1:1143}"
export SMTP_URL="${SMTP_URL:-smtp+plain://127.0.0.1:1025}"
export EMAIL_USERNAME="${EMAIL_USERNAME:-contact@example-council.gov.uk}"
export EMAIL_PASSWORD="${EMAIL_PASSWORD:-demo-email-password}"
export EMAIL_SIM_URL="${EMAIL_SIM_URL:-http://127.0.0.1:8087}"
# Twilio signs over the URL it posts to, which the inbox takes to be its
# public URL: the simulator posts to the same.
export INBOX_PUBLIC_URL="${INBOX_PUBLIC_URL:-http://$INBOX_HTTP_ADDR}"
base="http://$INBOX_HTTP_ADDR"
ops="http://$INBOX_OPS_ADDR"

fail() { echo "demo: $*" >&2; exit 1; }

for tool in psql pg_isready curl; do
	command -v "$tool" >/dev/null || fail "$tool is missing (see README, 'Before you start')"
done
port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# The database server and database named by INBOX_DATABASE_URL.
db="$(sed -E 's#^.*/([^/?]+)(\?.*)?$#\1#' <<<"$INBOX_DATABASE_URL")"
admin_url="$(sed -E "s#/$db([?]|\$)#/postgres\1#" <<<"$INBOX_DATABASE_URL")"
pg_isready -q -d "$admin_url" 2>/dev/null ||
	fail "PostgreSQL does not answer at $admin_url; see README, 'Before you start'"

case "${1:-}" in
"") ;;
reset)
	port_busy "$INBOX_HTTP_ADDR" && fail "something answers on $INBOX_HTTP_ADDR: stop the demo first (Ctrl-C)"
	psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || fail "could not drop database $db"
	rm -rf "$INBOX_NATS_DIR" data/inbox.log data/setup.log
	echo "demo reset: database $db dropped, $INBOX_NATS_DIR removed; 'make run' starts from nothing"
	exit 0
	;;
*) fail "unknown argument '$1' (run it with no argument, or with 'reset')" ;;
esac

for bin in bin/inbox bin/netsim; do
	[ -x "$bin" ] || fail "$bin is missing: run 'make run', which builds it first"
done
port_busy "$INBOX_HTTP_ADDR" && fail "$INBOX_HTTP_ADDR is in use: stop what runs there, or set INBOX_HTTP_ADDR"
port_busy "$INBOX_OPS_ADDR" && fail "$INBOX_OPS_ADDR is in use: stop what runs there, or set INBOX_OPS_ADDR"

# The simulators: each plays residents on its networks against a fake of
# their API, posting to the webhook of an account of the configuration,
# or, for a network the inbox polls, keeping what they write in the fake
# for the inbox's next poll.
# Fields: the -network name, the label of its lines, the variable holding
# its fake API's base URL, its webhook path ("-" for a network the inbox
# polls, which has none), and the account it needs. X's is always played;
# another only when the configuration has its account (the inbox would
# refuse its handshake otherwise), and not when DEMO_<LABEL>=0 (DEMO_META=0,
# DEMO_TELEGRAM=0, DEMO_SMS=0, DEMO_MASTODON=0, DEMO_BLUESKY=0, DEMO_EMAIL=0).
all_sims=(
	"x X X_API_BASE_URL /webhooks/x/council-x council-x"
	"meta Meta META_API_BASE_URL /webhooks/meta/council-meta council-meta"
	"telegram Telegram TELEGRAM_API_BASE_URL /webhooks/telegram/council-telegram council-telegram"
	"twilio SMS TWILIO_API_BASE_URL /webhooks/twilio/council-sms council-sms"
	"mastodon Mastodon MASTODON_BASE_URL - council-mastodon"
	"bluesky Bluesky BLUESKY_SERVICE_URL - council-bluesky"
	"email Email EMAIL_SIM_URL - council-email"
)
sims=()
for sim in "${all_sims[@]}"; do
	read -r network label var path account <<<"$sim"
	off="DEMO_${label^^}"
	if [ "$network" != x ] && { [ "${!off:-1}" = 0 ] || ! grep -qsw -- "$account" "$INBOX_CONFIG"; }; then
		continue
	fi
	addr="${!var#http://}"
	port_busy "$addr" && fail "$addr is in use: stop what runs there, or set $var"
	sims+=("$sim")
done

if ! psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
	psql "$admin_url" -qc "CREATE DATABASE \"$db\"" || fail "could not create database $db"
	echo "created database $db"
fi
mkdir -p data

# The demo's people, one of each role, in every team, all with the same
# password for the web pages; and an API token for the adviser, valid for
# a day.
demo_password="${DEMO_PASSWORD:-citizen inbox demo}"
for who in adviser supervisor admin; do
	name="Demo ${who^}"
	printf "%s\n" "$demo_password" | bin/inbox user create -email "demo.$who@example.gov.uk" -name "$name" -role "$who" -all-teams >/dev/null 2>data/setup.log ||
		grep -q "already exists" data/setup.log || fail "could not create the demo $who: $(cat data/setup.log)"
done
# A made-up year of 5,000 cases for the supervisors' figures, written in a
# few seconds before the server starts (DEMO_DATA=0 leaves it out). A
# database that already holds it, or cases of its own, is left as it is.
if [ "${DEMO_DATA:-1}" != 0 ]; then
	if bin/inbox demo-data -cases 5000 -messages 25000 >data/setup.log 2>&1; then
		tail -n 1 data/setup.log
	elif grep -q "already holds other cases" data/setup.log; then
		echo "demo data: left out, the database already holds other cases ('deploy/demo.sh reset' starts afresh)"
	else
		fail "could not generate the demo data: $(tail -n 3 data/setup.log)"
	fi
fi
token="$(bin/inbox token create -email demo.adviser@example.gov.uk -name "demo $(date +%FT%T)" -ttl 24h 2>data/setup.log)" ||
	fail "could not create an API token: $(cat data/setup.log)"

# The demo proper: the server and the simulator, side by side. It runs as
# a job of its own in the terminal's foreground, so Ctrl-C reaches it and
# not make: the demo shuts down cleanly and `make run` exits 0.
demo() {
	pids=()
	stopping=
	stop() {
		stopping=1
		for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	}
	trap stop INT TERM

	bin/inbox serve 2>data/inbox.log &
	pids+=($!)
	for _ in $(seq 1 100); do
		curl -fs "$ops/readyz" >/dev/null 2>&1 && break
		if [ -n "$stopping" ]; then
			wait || true
			return 0
		fi
		if ! kill -0 "${pids[0]}" 2>/dev/null; then
			echo "demo: the server stopped; the end of data/inbox.log:" >&2
			tail -n 5 data/inbox.log >&2
			return 1
		fi
		sleep 0.2
	done

	local jq="" fakes="" sim network label var path account
	for sim in "${sims[@]}"; do
		read -r network label var path account <<<"$sim"
		[ -n "$fakes" ] && fakes+=$'\n'
		fakes+="$(printf '  %-13s %s          (fake; what the council sent: %s/__sim/sent)' "$label API" "${!var}" "${!var}")"
	done
	command -v jq >/dev/null && jq=" | jq"
	cat <<TXT

  Citizen inbox demo
  ------------------
  Web pages     $base/          (sign in with the password "$demo_password" as
                  demo.adviser@example.gov.uk      an adviser,
                  demo.supervisor@example.gov.uk   a supervisor, or
                  demo.admin@example.gov.uk        an admin)
  Server        $base          (log: data/inbox.log)
  Operations    $ops          (/metrics, /healthz, /readyz)
$fakes
  API token     $token

  Try, in another terminal:
    export TOKEN=$token
    curl -s -H "Authorization: Bearer \$TOKEN" "$base/api/v1/cases?status=new&limit=5"$jq
    export CASE=C-…   # a reference from that list, or from the residents' lines below
    curl -s -H "Authorization: Bearer \$TOKEN" $base/api/v1/cases/\$CASE$jq
    curl -s -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
         -d '{"text":"Thanks for letting us know, we have logged it.","visibility":"public"}' \\
         $base/api/v1/cases/\$CASE/replies$jq

  Residents' messages and the council's replies appear below; each
  resident answers every reply the council sends them. Ctrl-C stops the
  demo; cases are kept for the next run ('deploy/demo.sh reset' forgets
  them).

TXT

	# Each simulator's lines are marked with its label. The server or the
	# X simulator stopping on its own stops the rest; another simulator
	# stopping (its handshake refused, say) leaves the others running.
	local -A optional=()
	for sim in "${sims[@]}"; do
		read -r network label var path account <<<"$sim"
		local hook=(-webhook "$base$path")
		[ "$path" = - ] && hook=() # polled: the inbox comes to the fake
		bin/netsim -network "$network" -listen "${!var#http://}" "${hook[@]}" -ready "$ops/readyz" \
			> >(sed -u "s/^/$(printf '%-11s' "[$label]")/") &
		pids+=($!)
		[ "$network" != x ] && optional[$!]="$label"
	done
	local status ended
	while :; do
		status=0
		ended=
		wait -n -p ended "${pids[@]}" || status=$?
		if [ -z "$stopping" ] && [ -n "${optional[$ended]:-}" ]; then
			[ "$status" -ne 0 ] && echo "demo: the ${optional[$ended]} simulator stopped (exit $status, see above); the rest of the demo goes on" >&2
			local left=()
			for pid in "${pids[@]}"; do [ "$pid" != "$ended" ] && left+=("$pid"); done
			pids=("${left[@]}")
			unset "optional[$ended]"
			continue
		fi
		break
	done
	stop
	wait || true
	if [ -n "$stopping" ] && [ "$status" -ne 0 ] && [ "$status" -gt 128 ]; then
		status=0 # interrupted while waiting: a normal way to stop
	fi
	return "$status"
}

# Job control puts the demo in its own process group in the foreground;
# without a terminal (a script, CI) it runs as it is.
[ -t 0 ] && set -m
status=0
(demo) || status=$?
set +m
if [ "$status" -eq 0 ]; then
	echo
	echo "demo stopped (the server's log is in data/inbox.log; 'deploy/demo.sh reset' starts afresh)"
fi
exit "$status"
