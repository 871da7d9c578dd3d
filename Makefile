# Herald — `make run` starts the server on the embedded engines,
# `make test` runs the whole suite. Nothing else needs installing: Go fetches
# the modules; SQLite is compiled in (cgo, gcc).

GO      ?= go
BIN     := bin/herald
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data
export CGO_ENABLED := 1
# SQLite syncs its files with fdatasync instead of fsync (the data and the
# size, not the modification time): the same durability for the log, and a
# commit about a tenth cheaper here; and it keeps no memory statistics
# (SQLite's advice for speed: its allocator then takes no global mutex).
# See infra/eventstore/sqlite/doc.go.
export CGO_CFLAGS := -O2 -g -DHAVE_FDATASYNC=1 -DSQLITE_DEFAULT_MEMSTATUS=0

.PHONY: all build run test bench lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/herald

## run: build and start `herald serve` on $(ADDR) with data under $(DATA)
run: build
	./$(BIN) serve --addr $(ADDR) --data $(DATA)

## test: the whole suite, with the race detector. The Cassandra view store
## tests run against a throwaway local Cassandra that scripts/cassandra.sh
## starts (or the one `make cassandra` left running) and stops; without Java 17
## or Maven they are skipped, saying so.
test:
	$(GO) vet ./...
	bash scripts/cassandra.sh run -- $(GO) test -race -count=1 -timeout 15m ./...
# The suite reports a skipped test only as its package's "ok": without a
# server, say that the EventStoreDB contract suite skipped (with one, the
# suite above ran it).
	@if [ -z "$$HERALD_ESDB_URL" ]; then bash -o pipefail -c "$(GO) test -count=1 -run '^TestContract$$' -v ./infra/eventstore/esdb | grep -E '^ *(--- |ok|FAIL)|skipped'"; fi

## cassandra: fetch and start the local test Cassandra, and leave it running
cassandra:
	bash scripts/cassandra.sh start
	@echo "Cassandra keeps running; make test will use it. Stop it with: bash scripts/cassandra.sh stop"

## bench: figures for this machine (medians of 3 runs); Cassandra runs only
## for its own rebuild, so it does not take cores from the others (the
## SQLite rebuild included: an idle Cassandra beside it cost it about 15%)
bench: build
	./$(BIN) bench eventstore api projection delivery fanout
	bash scripts/cassandra.sh run -- ./$(BIN) bench projection_cassandra

## lint: formatting and vet
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
