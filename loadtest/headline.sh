#!/usr/bin/env bash
# The load tester's headline runs: each scenario directly against the origin, through one edge,
# and through two tiers of edges, in one `durable-streams loadtest --compare` invocation each.
#
#   loadtest/headline.sh                         # builds the release binary, runs all three
#   SKIP_BUILD=1 loadtest/headline.sh live-1k    # only the named scenario files
#
# Starts, on 127.0.0.1 only: an origin on $ORIGIN_PORT, an edge in front of it on $EDGE1_PORT,
# and a second edge in front of the first on $EDGE2_PORT (edge.conf settings, ports overridden).
# Writes loadtest/reports/headline-<scenario>-<date>.{txt,json,html}. Exits non-zero if any
# reader lost, duplicated or reordered a message.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/.build/release/durable-streams
REPORT_DIR=$ROOT/loadtest/reports
ORIGIN_PORT=${ORIGIN_PORT:-4441}
EDGE1_PORT=${EDGE1_PORT:-4442}
EDGE2_PORT=${EDGE2_PORT:-4443}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(live-1k live-10k sse-1k)

cd "$ROOT"
if [ "${SKIP_BUILD:-0}" != 1 ]; then make release; fi
mkdir -p "$REPORT_DIR"
ulimit -n "$(ulimit -Hn)"

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for() {
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 || curl -fsS "http://127.0.0.1:$1/metrics" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    return 1
}

"$BIN" origin --port "$ORIGIN_PORT" >"$REPORT_DIR/headline-origin.log" 2>&1 & PIDS+=($!)
wait_for "$ORIGIN_PORT"
"$BIN" edge --config edge.conf --listen "127.0.0.1:$EDGE1_PORT" --upstream "http://127.0.0.1:$ORIGIN_PORT" --trust-forwarded-host >"$REPORT_DIR/headline-edge1.log" 2>&1 & PIDS+=($!)
"$BIN" edge --config edge.conf --listen "127.0.0.1:$EDGE2_PORT" --upstream "http://127.0.0.1:$EDGE1_PORT" >"$REPORT_DIR/headline-edge2.log" 2>&1 & PIDS+=($!)
wait_for "$EDGE1_PORT"
wait_for "$EDGE2_PORT"

STAMP=$(date -u +%Y-%m-%d-%H%M%S)
STATUS=0
for name in "${SCENARIOS[@]}"; do
    out="$REPORT_DIR/headline-$name-$STAMP"
    echo "== $name: direct, one edge, two tiers"
    "$BIN" loadtest "loadtest/$name.conf" \
        --target "http://127.0.0.1:$ORIGIN_PORT" --origin "http://127.0.0.1:$ORIGIN_PORT" \
        --compare "http://127.0.0.1:$EDGE1_PORT" --compare "http://127.0.0.1:$EDGE2_PORT" \
        --json "$out.json" --html "$out.html" | tee "$out.txt" || STATUS=1
done
exit $STATUS
