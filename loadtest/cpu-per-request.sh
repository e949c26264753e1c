#!/usr/bin/env bash
# loadtest/cpu-per-request.sh: CPU cost per unit of work, for the origin and the edge.
#
# WHAT IT MEASURES
#   CPU microseconds (user + system, all threads) each server process spends per unit of work:
#     hit         edge cache HIT: a catch-up GET of an immutable, historical 1 KiB chunk
#                 (wrk through the edge; unit = the edge's HIT answers in the phase)
#     lp-edge     long-poll answers delivered to readers through the edge
#     lp-origin   the same, readers straight at the origin
#     sse-edge    SSE events per subscriber, through the edge
#     sse-origin  the same, subscribers straight at the origin
#   For the load-tester scenarios the unit is a message delivered to one reader (the report's
#   "received" figure, from its --json output). With 10 appends/s a long-poll answer often
#   carries one message, but a reader that comes back late gets several in one answer, so the
#   lp-* scenarios add a row "lp-*/ans": the serving server's same CPU per long-poll answer
#   (the readers' long-poll requests, from the load tester's report).
#   Figures are meant to be compared with themselves over time (before/after an optimisation),
#   not read as absolute costs.
#
# HOW
#   Starts, on 127.0.0.1 and free ports, `$BIN origin --long-poll-timeout 30s --max-chunk-bytes
#   1024` and `$BIN edge` in front of it. For each scenario it reads each server's CPU time
#   (utime + stime, /proc/PID/stat fields 14 and 15, over `getconf CLK_TCK`) right before and
#   right after one bounded load phase and divides by the units counted in that phase. The load
#   generator's own CPU (wrk or `$BIN loadtest`; a foreground child of this script, measured by
#   bash's `times`) is shown too: it shares the same cores, so it is part of the picture.
#   - hit: PUT a text/plain stream, append 6000 bytes, read offset -1 at the origin to learn the
#     second chunk's offset (bytes 1024-2047: historical, not the tail), read it twice through
#     the edge (MISS, then HIT), then wrk on it. Units: delta of
#     ds_edge_requests_total{class="catch_up",cache="HIT"}; wrk's request count is shown as a check
#     (lower by about WRK_CONNS: requests in flight when wrk stops are answered but not counted).
#   - lp-*/sse-*: `$BIN loadtest loadtest/live-1k.conf` / `sse-1k.conf` (1 stream, 1 writer at
#     the origin, 100-byte messages; sse is base64/application/octet-stream) with --readers,
#     --rate and --duration overridden. The CPU window is the whole load-tester run, so it also
#     holds the readers' connects and first catch-up reads (about 1,000 requests against about
#     200,000 deliveries) and the writer's appends (200): both are charged to the deliveries.
#     Straight at the origin, 1,000 readers plus the load tester can saturate the two cores: the
#     origin then accepts fewer appends than offered (see "expected" in the note), so there are
#     fewer units, each answer may carry more messages, and µs per unit is over a lighter load.
#
# KNOBS (environment)
#   BIN        server binary (default $ROOT/.build/release/durable-streams; not built here)
#   SCENARIOS  which to run, space separated (default "hit lp-edge lp-origin sse-edge sse-origin")
#   READERS    readers per load-tester run (default 1000)
#   RATE       appends per second (default 10)
#   DURATION   how long the load tester's writer writes (default 20s)
#   WRK_DURATION, WRK_THREADS, WRK_CONNS   wrk settings for "hit" (default 10s, 2, 64)
#   WORK       scratch directory for logs and JSON (default: a new /tmp/cpu-per-request.XXXXXX)
#
# BOUNDS
#   Every phase is bounded: wrk by -d (plus `timeout`), the load tester by its own hard deadline
#   (duration + drain + 30 s) and by `timeout` at duration + 90 s; servers get 10 s to come up.
#   Servers are killed (by PID) on any exit. Everything is on 127.0.0.1. Total run with the
#   defaults: about 2 minutes. Needs wrk (apt-get install wrk), curl, python3, awk.
#
# OUTPUT
#   A table: scenario | server | CPU seconds | units | µs per unit, also written as TSV to
#   $WORK/results.tsv. The load tester exits 1 on any lost/duplicated/reordered message; that is
#   reported as "AUDIT FAILED" next to the scenario and the script exits 1 at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/.build/release/durable-streams}"
SCENARIOS="${SCENARIOS:-hit lp-edge lp-origin sse-edge sse-origin}"
READERS="${READERS:-1000}"
RATE="${RATE:-10}"
DURATION="${DURATION:-20s}"
WRK_DURATION="${WRK_DURATION:-10s}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNS="${WRK_CONNS:-64}"
WORK="${WORK:-$(mktemp -d /tmp/cpu-per-request.XXXXXX)}"
mkdir -p "$WORK"

[ -x "$BIN" ] || { echo "no executable BIN=$BIN (build it, or set BIN)" >&2; exit 2; }
for tool in wrk curl python3 awk timeout; do
    command -v "$tool" >/dev/null || { echo "missing $tool (wrk: apt-get install -y wrk)" >&2; exit 2; }
done
TCK="$(getconf CLK_TCK)"
DURATION_S="$(echo "$DURATION" | sed 's/s$//')"

ORIGIN_PID="" EDGE_PID=""
cleanup() {
    for pid in $EDGE_PID $ORIGIN_PID; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in $EDGE_PID $ORIGIN_PID; do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU seconds (utime + stime) of a process: fields 14 and 15 of /proc/PID/stat, counted after
# the ")" that ends the command name so a name with spaces cannot shift them.
cpu_of() { sed 's/.*) //' "/proc/$1/stat" | awk -v t="$TCK" '{ printf "%.3f", ($12 + $13) / t }'; }
# CPU seconds (user + system) of this shell's finished children, from bash's `times`. `times`
# must run in this shell itself (in a $(…) subshell the children's clock starts from zero), so
# measure_* write it to a file and gen_cpu reads that.
gen_cpu() {
    tail -1 "$WORK/times" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.3f", s }'
}
# Sum of a Prometheus counter over the series whose line starts with $2 (name plus labels).
metric() { curl -s --max-time 5 "$1/metrics" | awk -v p="$2" 'index($0, p) == 1 { s += $NF } END { printf "%d", s }'; }

# A free port below the ephemeral range (the kernel hands those to outgoing connections).
free_port() { python3 -c 'import random, socket
for _ in range(200):
    p = random.randint(20000, 32000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()'; }

# start NAME LOG ARGS…: start "$BIN ARGS" (PORT in ARGS is replaced by a free port), wait until
# /metrics answers; retries on another port if the process dies (port taken). Sets STARTED_PID
# and STARTED_PORT.
start() {
    local name="$1" log="$2"; shift 2
    for attempt in 1 2 3 4 5; do
        local port; port="$(free_port)"
        local args=("${@//PORT/$port}")
        "$BIN" "${args[@]}" >"$log" 2>&1 &
        local pid=$!
        for _ in $(seq 1 100); do
            if ! kill -0 "$pid" 2>/dev/null; then break; fi
            if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/metrics"; then
                STARTED_PID=$pid STARTED_PORT=$port; return 0
            fi
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
        echo "$name did not come up on :$port (attempt $attempt): $(tail -1 "$log")" >&2
    done
    exit 1
}

start origin "$WORK/origin.log" origin --host 127.0.0.1 --port PORT --long-poll-timeout 30s --max-chunk-bytes 1024
ORIGIN_PID=$STARTED_PID; O="http://127.0.0.1:$STARTED_PORT"
start edge "$WORK/edge.log" edge --listen 127.0.0.1:PORT --upstream "$O"
EDGE_PID=$STARTED_PID; E="http://127.0.0.1:$STARTED_PORT"
echo "origin $O (pid $ORIGIN_PID), edge $E (pid $EDGE_PID), BIN=$BIN, work $WORK"

RESULTS="$WORK/results.tsv"
printf 'scenario\tserver\tcpu_seconds\tunits\tus_per_unit\tnote\n' >"$RESULTS"
FAILED=0
row() { # scenario server cpu_before cpu_after units note
    awk -v s="$1" -v w="$2" -v a="$3" -v b="$4" -v u="$5" -v n="$6" 'BEGIN {
        c = b - a; printf "%s\t%s\t%.3f\t%d\t%s\t%s\n", s, w, c, u, (u > 0 ? sprintf("%.1f", c * 1e6 / u) : "-"), n }' >>"$RESULTS"
}

# One measured phase: snapshot both servers and this shell's children, run "$@", snapshot again.
measure_begin() { O0="$(cpu_of "$ORIGIN_PID")"; E0="$(cpu_of "$EDGE_PID")"; times >"$WORK/times"; G0="$(gen_cpu)"; }
measure_end()   { times >"$WORK/times"; G1="$(gen_cpu)"; O1="$(cpu_of "$ORIGIN_PID")"; E1="$(cpu_of "$EDGE_PID")"; }

run_hit() {
    local s="cpu-hit-$$-$RANDOM"
    curl -sf -o /dev/null -X PUT -H 'Content-Type: text/plain' "$O/v1/stream/$s"
    head -c 6000 /dev/zero | tr '\0' 'x' | curl -sf -o /dev/null -X POST -H 'Content-Type: text/plain' --data-binary @- "$O/v1/stream/$s"
    local off
    off="$(curl -sf -D - -o /dev/null "$O/v1/stream/$s?offset=-1" | tr -d '\r' | awk -F': ' 'tolower($1) == "stream-next-offset" { print $2 }')"
    local url="$E/v1/stream/$s?offset=$off" cache=""
    for _ in 1 2; do   # warm: MISS, then it must be a HIT of 1,024 bytes
        cache="$(curl -sf -D - -o "$WORK/hit.body" "$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" { print $2 }')"
    done
    [ "$cache" = "HIT" ] && [ "$(wc -c <"$WORK/hit.body")" -eq 1024 ] || {
        echo "hit: warm-up gave X-Cache=$cache, $(wc -c <"$WORK/hit.body") bytes at $url" >&2; FAILED=1; return; }
    local h0 h1; h0="$(metric "$E" 'ds_edge_requests_total{class="catch_up",cache="HIT"}')"
    measure_begin
    timeout $(( ${WRK_DURATION%s} + 30 )) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" "$url" >"$WORK/hit.wrk" 2>&1 || true
    measure_end
    h1="$(metric "$E" 'ds_edge_requests_total{class="catch_up",cache="HIT"}')"
    local reqs bad
    reqs="$(awk '/requests in/ { print $1 }' "$WORK/hit.wrk")"
    bad="$(awk '/Non-2xx|Socket errors/ { printf "%s; ", $0 }' "$WORK/hit.wrk")"
    local note="wrk requests ${reqs:-?}${bad:+; $bad}"
    row hit edge "$E0" "$E1" $(( h1 - h0 )) "$note"
    row hit origin "$O0" "$O1" $(( h1 - h0 )) "(idle: the edge answers)"
    row hit wrk "$G0" "$G1" $(( h1 - h0 )) "load generator"
}

run_loadtest() { # name conf target
    local name="$1" conf="$2" target="$3" json="$WORK/$1.json" rc=0
    measure_begin
    timeout $(( DURATION_S + 90 )) "$BIN" loadtest "$conf" --target "$target" --origin "$O" \
        --readers "$READERS" --rate "$RATE" --duration "$DURATION" --quiet --json "$json" \
        >"$WORK/$name.txt" 2>&1 || rc=$?
    measure_end
    if [ ! -s "$json" ]; then
        echo "$name: load tester wrote no JSON (exit $rc), see $WORK/$name.txt" >&2; FAILED=1; return
    fi
    local units answers note
    read -r units answers note < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); d = d[0] if isinstance(d, list) else d
v, rr, orr = d["delivery"], d["readerRequests"], d["originRequests"]
print(v["received"], rr.get("long_poll", 0), "expected %d lost %d dup %d ooo %d; reader reqs %s; origin reqs %s" % (
    v["expected"], v["lost"], v["duplicated"], v["outOfOrder"],
    ",".join("%s=%s" % kv for kv in sorted(rr.items()) if kv[1]),
    ",".join("%s=%s" % kv for kv in sorted(orr.items()) if kv[1])))' "$json")
    [ "$rc" -eq 0 ] || { note="AUDIT FAILED (exit $rc); $note"; FAILED=1; }
    row "$name" edge "$E0" "$E1" "$units" "$([ "$target" = "$E" ] && echo "$note" || echo "(idle: readers at the origin)")"
    row "$name" origin "$O0" "$O1" "$units" "$([ "$target" = "$E" ] && echo "writer + upstream for the edge" || echo "$note")"
    row "$name" loadtest "$G0" "$G1" "$units" "load generator"
    if [ "$answers" -gt 0 ]; then   # long-poll: the same CPU per answer (one answer may carry several messages)
        if [ "$target" = "$E" ]; then row "$name/ans" edge "$E0" "$E1" "$answers" "per long-poll answer to a reader"
        else row "$name/ans" origin "$O0" "$O1" "$answers" "per long-poll answer to a reader"; fi
    fi
}

for sc in $SCENARIOS; do
    echo "== $sc" >&2
    case "$sc" in
        hit)        run_hit ;;
        lp-edge)    run_loadtest lp-edge    "$ROOT/loadtest/live-1k.conf" "$E" ;;
        lp-origin)  run_loadtest lp-origin  "$ROOT/loadtest/live-1k.conf" "$O" ;;
        sse-edge)   run_loadtest sse-edge   "$ROOT/loadtest/sse-1k.conf"  "$E" ;;
        sse-origin) run_loadtest sse-origin "$ROOT/loadtest/sse-1k.conf"  "$O" ;;
        *) echo "unknown scenario $sc" >&2; exit 2 ;;
    esac
done

echo
echo "CPU per unit of work ($(nproc) cores shared by servers and load generator; CLK_TCK=$TCK)"
echo "units: hit = edge cache HITs; lp-*/sse-* = messages delivered to readers ($READERS readers, $RATE appends/s, $DURATION)"
awk -F'\t' 'NR == 1 { printf "%-13s %-9s %12s %10s %12s  %s\n", "scenario", "server", "CPU seconds", "units", "µs per unit", "note"; next }
            { printf "%-13s %-9s %12s %10s %12s  %s\n", $1, $2, $3, $4, $5, $6 }' "$RESULTS"
echo "(TSV: $RESULTS; logs and load-tester reports in $WORK)"
exit "$FAILED"
