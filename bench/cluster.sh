#!/usr/bin/env bash
# Benchmarks a 3-node Poste cluster on this machine against a single node:
# builds `poste` from this repository and the clusterbench program, then runs
#
#   throughput  N rounds (default 3), alternating: a single `poste serve`, then
#               `poste dev cluster --brokers 3`, each driven by the same
#               `poste bench produce` (1 KiB × 1,000,000, 8 partitions, acks=all,
#               idempotent; RF 1 on the single node, RF 3 on the cluster), with
#               `poste bench limits` at the start and the end, and a perf run of each;
#   failover    20 SIGKILLs of a 1-partition RF 3 topic's leader under an acks=all
#               producer, with franz-go's default metadata refresh and again with
#               the producer's MetadataMinAge at 100 ms (broker defaults untouched).
#
#   bench/cluster.sh                                  # everything
#   bench/cluster.sh throughput --rounds 5 --records 200000
#   bench/cluster.sh failover --kills 5
#   bench/cluster.sh failover --metadata-min-age 100ms
#
# Flags after the subcommand go to `clusterbench <subcommand>` (-h lists them).
# Reports (Markdown), raw results (JSON) and every process's log stay in the
# work directory printed at the start ($BENCH_WORKDIR if set).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
work=${BENCH_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/poste-cluster-bench.XXXXXX")}
mkdir -p "$work/bin"
echo "work directory $work" >&2

echo "building poste and clusterbench into $work/bin" >&2
(cd "$root" && go build -o "$work/bin/poste" ./cmd/poste)
(cd "$here" && go build -o "$work/bin/" ./cmd/clusterbench)
cb=$work/bin/clusterbench

what=${1:-all}
[[ $# -gt 0 ]] && shift

throughput() {
	"$cb" throughput --poste "$work/bin/poste" --workdir "$work/throughput" \
		--out "$work/throughput.md" --json "$work/throughput.json" \
		--command "bench/cluster.sh throughput${*:+ $*}" "$@"
}

failover() {
	local name=$1
	shift
	"$cb" failover --poste "$work/bin/poste" --workdir "$work/$name" \
		--out "$work/$name.md" --json "$work/$name.json" \
		--command "bench/cluster.sh failover${*:+ $*}" "$@"
}

case $what in
throughput) throughput "$@" ;;
failover) failover failover "$@" ;;
all)
	status=0
	throughput "$@" || status=1
	failover failover || status=1
	failover failover-fast-metadata --metadata-min-age 100ms || status=1
	exit $status
	;;
*)
	echo "usage: bench/cluster.sh [all|throughput|failover] [flags]" >&2
	exit 2
	;;
esac
