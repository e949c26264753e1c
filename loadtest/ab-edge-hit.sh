#!/usr/bin/env bash
# Old build against new build on the edge's cache-hit path, alternating in one run, so the
# machine's mood (nginx alone moves ±25 % between runs here) cancels out of the comparison.
#
#   OLD_BIN=/path/to/old/durable-streams loadtest/ab-edge-hit.sh
#   SIZE=16384 ROUNDS=3 OLD_BIN=… NEW_BIN=… loadtest/ab-edge-hit.sh
#
# Each round starts an origin and an edge of one build on 127.0.0.1, creates a stream holding
# SIZE bytes, warms the edge's cache (wrk 2 s), then measures GET ?offset=-1 through the edge
# with wrk -t2 -c64 for DURATION, and stops both; old first, then new. Prints req/s per round
# and the new/old ratio. Needs wrk and curl. Every load is bounded by wrk's duration.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_BIN=${OLD_BIN:?set OLD_BIN to the old build of durable-streams}
NEW_BIN=${NEW_BIN:-$ROOT/.build/release/durable-streams}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-6s}
PORT=${PORT:-18500}
BODY=$(mktemp)
trap 'rm -f "$BODY"' EXIT
head -c "$SIZE" /dev/zero | tr '\0' 'a' > "$BODY"

# measure BIN PORT: prints the edge's req/s for a cached SIZE-byte read.
measure() {
    local bin=$1 port=$2 edge=$(($2 + 1))
    "$bin" origin --port "$port" >/dev/null 2>&1 & local origin_pid=$!
    "$bin" edge --listen "127.0.0.1:$edge" --upstream "http://127.0.0.1:$port" >/dev/null 2>&1 & local edge_pid=$!
    for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$edge/metrics" && break; sleep 0.05; done
    curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$BODY" "http://127.0.0.1:$port/v1/stream/ab" >/dev/null
    local url="http://127.0.0.1:$edge/v1/stream/ab?offset=-1"
    wrk -t2 -c64 -d2s "$url" >/dev/null
    wrk -t2 -c64 -d"$DURATION" "$url" | awk '/Requests\/sec/ { print $2 }'
    kill "$edge_pid" "$origin_pid"
    wait "$edge_pid" "$origin_pid" 2>/dev/null || true
}

echo "edge cache hit, $SIZE bytes, wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    old=$(measure "$OLD_BIN" "$PORT")
    new=$(measure "$NEW_BIN" $((PORT + 10)))
    printf 'round %s: old %s req/s, new %s req/s, new/old %s\n' "$round" "$old" "$new" "$(awk -v a="$new" -v b="$old" 'BEGIN { printf "%.2f", a / b }')"
done
