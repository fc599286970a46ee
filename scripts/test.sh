#!/usr/bin/env bash
# Runs every test of Poste on a fresh machine: formatting and vet, unit and end-to-end tests,
# the race detector on the concurrent packages, short fuzz runs, and the crash test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/compat/node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted"
  exit 1
fi
go vet ./...

echo "== third-party clients for the compatibility suite (kcat, confluent-kafka-python, kafkajs)"
bash test/compat/install.sh

echo "== unit, end-to-end, compatibility and crash tests (fuzz seed corpora included)"
go test -count=1 -timeout 20m ./...

echo "== race detector on the concurrent packages"
go test -count=1 -race -timeout 20m \
  ./internal/vfs/... ./internal/log/... ./internal/partition/... ./internal/metadata/... \
  ./internal/controller/... ./internal/replica/... ./internal/cluster/... ./internal/server/... ./internal/api/... \
  ./internal/coord/... ./internal/group/... ./internal/txn/... ./pkg/streams/... \
  ./test/e2e/...

echo "== benchmark harness (its own module: bench/)"
(cd bench && go vet ./... && go test -count=1 ./...)

echo "== short fuzz runs"
fuzz() { go test -run='^$' -fuzz="^$2\$" -fuzztime="${FUZZTIME:-10s}" "$1"; }
fuzz ./internal/record FuzzValidate
fuzz ./internal/record FuzzRecords
fuzz ./internal/log FuzzRecover
fuzz ./internal/server FuzzReadFrame
fuzz ./internal/server FuzzParseRequest

echo "all tests passed"
