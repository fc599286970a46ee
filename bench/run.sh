#!/usr/bin/env bash
# Benchmarks Poste beside the kfake peer (kfake with DataDir + SyncWrites):
# builds `poste` from this repository and the bench programs, then runs
# benchrun, which alternates the two brokers for --rounds rounds (default 3),
# profiles each once more with perf if installed, and prints a Markdown report.
#
#   bench/run.sh                      # the full workload: 1,000,000 × 1 KiB, 8 partitions
#   bench/run.sh --rounds 5 --records 200000
#   bench/run.sh --compression lz4 --profile=false
#
# Every flag is passed to benchrun (`benchrun -h` lists them). The report, the
# raw runs as JSON, the brokers' logs and perf data stay in the work directory
# printed at the start ($BENCH_WORKDIR if set).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
work=${BENCH_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/poste-bench.XXXXXX")}
mkdir -p "$work/bin"

echo "building poste and the bench programs into $work/bin" >&2
(cd "$root" && go build -o "$work/bin/poste" ./cmd/poste)
(cd "$here" && go build -o "$work/bin/" ./cmd/kfakepeer ./cmd/loadgen ./cmd/benchrun)

exec "$work/bin/benchrun" \
	--poste "$work/bin/poste" \
	--peer "$work/bin/kfakepeer" \
	--workdir "$work" \
	--out "$work/report.md" \
	--json "$work/runs.json" \
	--command "bench/run.sh${*:+ $*}" \
	"$@"
