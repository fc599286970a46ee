#!/usr/bin/env bash
# Benchmarks pkg/streams against a hand-written kgo consume → transform →
# produce loop on one `poste serve` (see docs/benchmarks.md, "Streams"):
# builds `poste` from this repository and the streamsbench program, then runs
# streamsbench, which pre-fills an 8-partition input topic and alternates, for
# --rounds rounds (default 3), the loop and the pkg/streams topology for a
# stateless map (map), a tumbling-window count on Pebble with the record cache
# (count) and without it (countall), under at_least_once and exactly_once_v2;
# it times a changelog restore after each countall run (restore-count), runs
# a table of the input on Pebble without cache (table) and times its restore
# (restore-table), takes a CPU profile of each run once more, and prints a
# Markdown report.
#
#   bench/streams.sh                                    # 2,000,000 × 100 B, 8 partitions, 3 rounds
#   bench/streams.sh --records 500000 --rounds 1 --profile=false
#   bench/streams.sh --runs loop-count-alo,streams-count-alo,restore-table-alo
#
# Every flag is passed to streamsbench (`streamsbench -h` lists them). The
# report, the runs as JSON, the broker's log and the profiles stay in the work
# directory printed at the start ($BENCH_WORKDIR if set).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
work=${BENCH_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/poste-streams-bench.XXXXXX")}
mkdir -p "$work/bin"
echo "work directory $work" >&2

echo "building poste and streamsbench into $work/bin" >&2
(cd "$root" && go build -o "$work/bin/poste" ./cmd/poste)
(cd "$here" && go build -o "$work/bin/" ./cmd/streamsbench)

exec "$work/bin/streamsbench" \
	--poste "$work/bin/poste" \
	--workdir "$work" \
	--out "$work/report.md" \
	--json "$work/runs.json" \
	--command "bench/streams.sh${*:+ $*}" \
	"$@"
