#!/usr/bin/env bash
# What hostile clients cost a server, and what the connection guard costs honest ones: the
# probes of hostile-probe.py against an origin and an edge, and wrk's catch-up rate, for this
# build and (when OLD_BIN names one) an older binary measured in the same run as the anchor.
#
#   OLD_BIN=/path/to/old/durable-streams loadtest/bench-hardening.sh
#   SKIP_BUILD=1 loadtest/bench-hardening.sh
#
# Knobs: WRK_DURATION=10s WRK_CONNS=64 ROUNDS=2 PROBES="pipeline uploads slowloris" SKIP_BUILD=0
# Only 127.0.0.1; every probe and wrk run is bounded in connections and time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/.build/release/durable-streams
OLD_BIN=${OLD_BIN:-}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_CONNS=${WRK_CONNS:-64}
ROUNDS=${ROUNDS:-2}
PROBES=${PROBES:-pipeline uploads slowloris}
ORIGIN_PORT=${ORIGIN_PORT:-4597}
EDGE_PORT=${EDGE_PORT:-4598}

command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
[ "${SKIP_BUILD:-0}" = 1 ] || make -C "$ROOT" release

PIDS=()
stop() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
trap stop EXIT

start() {  # start BINARY: an origin and an edge in front of it
    "$1" origin --port "$ORIGIN_PORT" >/dev/null 2>&1 & PIDS+=($!)
    ORIGIN_PID=$!
    "$1" edge --listen "127.0.0.1:$EDGE_PORT" --upstream "http://127.0.0.1:$ORIGIN_PORT" >/dev/null 2>&1 & PIDS+=($!)
    EDGE_PID=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$EDGE_PORT/metrics" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "servers did not start" >&2; exit 1
}

catch_up_rate() {  # catch_up_rate PORT: wrk req/s of a 1 KiB catch-up read
    local path=/v1/stream/hardening-$RANDOM$RANDOM
    head -c 1024 /dev/zero | tr '\0' 'x' | curl -fs -X PUT -H 'Content-Type: text/plain' --data-binary @- \
        "http://127.0.0.1:$1$path" >/dev/null
    wrk -t2 -c"$WRK_CONNS" -d"$WRK_DURATION" "http://127.0.0.1:$1$path?offset=-1" | awk '/Requests\/sec/ {print $2}'
}

measure() {  # measure LABEL BINARY
    echo "== $1 ($2)"
    start "$2"
    for round in $(seq "$ROUNDS"); do
        echo "catch-up 1 KiB, round $round: origin $(catch_up_rate "$ORIGIN_PORT") req/s, edge HIT $(catch_up_rate "$EDGE_PORT") req/s"
    done
    stop
    # Fresh servers for each probe: a probe that wedges a server must not spoil the next one.
    for probe in $PROBES; do
        start "$2"
        echo "-- origin"; timeout 300 python3 "$ROOT/loadtest/hostile-probe.py" --port "$ORIGIN_PORT" --pid "$ORIGIN_PID" --wait 30 "$probe" || true
        stop
        start "$2"
        echo "-- edge"; timeout 300 python3 "$ROOT/loadtest/hostile-probe.py" --port "$EDGE_PORT" --pid "$EDGE_PID" --wait 30 "$probe" || true
        stop
    done
}

[ -n "$OLD_BIN" ] && measure "anchor: older build" "$OLD_BIN"
measure "this build" "$BIN"
