#!/usr/bin/env bash
# Old build against new build on the origin's two plain hot paths, alternating in one run so that
# the machine's mood cancels out: 100-byte appends (wrk + bench/append.lua, 64 connections, one
# stream) and the catch-up GET of a 1 KiB chunk that can no longer change (wrk, 64 connections).
#
#   OLD_BIN=/path/to/old/durable-streams loadtest/ab-origin.sh
#   ROUNDS=3 DURATION=10s OLD_BIN=… NEW_BIN=… loadtest/ab-origin.sh
#
# Each round starts an origin of one build on 127.0.0.1 (old first, then new), measures both
# paths and stops it. Prints the rates per round and the new/old ratios of the medians. Needs wrk
# and curl. Every load is bounded by wrk's duration.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_BIN=${OLD_BIN:?set OLD_BIN to the old build of durable-streams}
NEW_BIN=${NEW_BIN:-$ROOT/.build/release/durable-streams}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8s}
PORT=${PORT:-18540}
export BENCH_DIR=$ROOT/loadtest/bench APPEND_STREAMS=1 APPEND_PREFIX=ab- APPEND_BYTES=100

rate() { awk '/^Requests\/sec:/ { printf "%d", $2 }'; }

# measure BIN: prints "appends/s catch-up/s" for one fresh origin of BIN.
measure() {
    local bin=$1 base=http://127.0.0.1:$PORT
    "$bin" origin --port "$PORT" --max-chunk-bytes 1024 >/dev/null 2>&1 & local pid=$!
    for _ in $(seq 200); do curl -fs -o /dev/null "$base/metrics" && break; sleep 0.05; done
    curl -fs -X PUT -H 'Content-Type: application/octet-stream' "$base/v1/stream/ab-0" >/dev/null
    local appends
    appends=$(wrk -t2 -c64 -d"$DURATION" -s "$BENCH_DIR/append.lua" "$base/v1/stream/ab-0" | rate)
    # The second 1 KiB chunk: historical, so it can no longer change.
    head -c 4096 /dev/zero | curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary @- "$base/v1/stream/ab-read" >/dev/null
    local next
    next=$(curl -fs -D - -o /dev/null "$base/v1/stream/ab-read?offset=-1" | tr -d '\r' | awk -F': ' 'tolower($1)=="stream-next-offset" {print $2}')
    local reads
    reads=$(wrk -t2 -c64 -d"$DURATION" "$base/v1/stream/ab-read?offset=$next" | rate)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$appends $reads"
}

old_a=() new_a=() old_r=() new_r=()
for round in $(seq "$ROUNDS"); do
    read -r a r < <(measure "$OLD_BIN"); old_a+=("$a"); old_r+=("$r")
    read -r a2 r2 < <(measure "$NEW_BIN"); new_a+=("$a2"); new_r+=("$r2")
    echo "round $round: appends/s old $a new $a2 | catch-up 1 KiB req/s old $r new $r2"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
awk -v oa="$(median "${old_a[@]}")" -v na="$(median "${new_a[@]}")" -v or="$(median "${old_r[@]}")" -v nr="$(median "${new_r[@]}")" \
    'BEGIN { printf "median appends/s: old %d new %d (%.2fx) | catch-up req/s: old %d new %d (%.2fx)\n", oa, na, na/oa, or, nr, nr/or }'
