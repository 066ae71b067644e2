# `make demo` and `make test` are the README's two commands; .ci/run runs the test command itself.
GO ?= go

.PHONY: build test demo bench fuzz vet

build:
	$(GO) build -o bin/eiamtriage ./cmd/eiamtriage

test:
	$(GO) test -count=1 -timeout 12m ./...

demo:
	$(GO) run ./cmd/eiamtriage demo

vet:
	gofmt -l . | (! grep .) && $(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./classify/ ./ingest/... ./internal/...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./ingest/notice/
