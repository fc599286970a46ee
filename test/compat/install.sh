#!/usr/bin/env bash
# Installs the third-party clients that test/compat drives: kcat and confluent-kafka-python
# from Debian, kafkajs and its codecs from npm (exact versions in package-lock.json).
# Idempotent: it installs only what is missing or stale. Needs root for apt-get.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"

if ! command -v kcat >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
  echo "compat: installing kcat and python3-confluent-kafka"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat python3-confluent-kafka
fi

# npm ci rewrites node_modules/.package-lock.json; a lock file newer than it, or a missing
# tree, means node_modules no longer matches what is pinned.
stamp="$dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ] || [ "$dir/package.json" -nt "$stamp" ]; then
  echo "compat: npm ci in test/compat"
  npm ci --prefix "$dir" --no-audit --no-fund
fi
