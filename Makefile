# Citizen inbox: `make run` starts the demo, `make test` runs every test.
GO        ?= go
BIN       := bin
BENCHTIME ?= 10000x
EMERGENCYTIME ?= 400x
GOLANGCI  := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

.PHONY: all build run test peers bench lint fuzz assets clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The demo: server (embedded NATS, PostgreSQL database "inbox") and the
# network simulator playing residents on X. Ctrl-C stops both.
run: build
	deploy/demo.sh

# Needs PostgreSQL on 127.0.0.1:5432 and NATS with JetStream on 127.0.0.1:4222
# (see README). Every test gets its own database and stream namespace.
test: peers
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# Independent peers some tests check the drivers against (a network's own
# validator or emulator, from the npm registry), each pinned with its lock
# file in internal/channels/<network>/testdata/peer; installed once, and
# again when the lock file changes.
peers:
	@set -e; for lock in $(wildcard internal/channels/*/testdata/peer/package-lock.json); do \
		dir=$$(dirname $$lock); \
		if [ ! $$dir/node_modules/.package-lock.json -nt $$lock ]; then \
			echo "installing the test peer in $$dir"; \
			(cd $$dir && npm ci --no-audit --no-fund --loglevel=error); \
		fi; \
	done

bench:
	$(GO) test -run '^$$' -bench RoutingCorpus -benchtime=1x ./internal/routing/
	$(GO) test -run '^$$' -bench 'XWebhooks|PostgresCasePlusMessage' -benchtime=$(BENCHTIME) -timeout 30m ./internal/loadtest/
	$(GO) test -run '^$$' -bench EmergencyReply -benchtime=$(EMERGENCYTIME) -timeout 10m ./internal/loadtest/
	$(GO) test -run '^$$' -bench ClaimNext -benchtime=1x -timeout 15m ./internal/loadtest/
	$(GO) test -run '^$$' -bench QueuePage -benchtime=1x -timeout 10m ./internal/loadtest/
	$(GO) test -run '^$$' -bench SupervisorFigures -benchtime=1x -timeout 60m ./internal/loadtest/

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt would change:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) run $(GOLANGCI) run ./...

# A short coverage-guided run of each fuzz target of the channel drivers and
# of ingest, which read what the networks send.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./internal/channels/... ./internal/ingest/...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "$$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# Vendors the pinned front-end assets (web/package.json and its lock file)
# into web/static and axe-core into the browser tests' testdata. Needs npm;
# the results are committed, so building and testing do not.
assets:
	web/refresh-assets.sh

clean:
	rm -rf $(BIN) data
