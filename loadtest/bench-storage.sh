#!/usr/bin/env bash
# Side-by-side benchmark of the origin's file store (--data-dir) against its in-memory store.
#
#   loadtest/bench-storage.sh                      # uses .build/release/durable-streams (not rebuilt)
#   BIN=/path/to/durable-streams loadtest/bench-storage.sh
#   WRK_DURATION=3s WRK_WARMUP=1s LIVE_DURATION=5s RECOVERY_BYTES=$((64<<20)) loadtest/bench-storage.sh  # quick
#
# Build the binary first if needed: make release
#
# Measures, in one run, on 127.0.0.1 only, each figure for the memory store (the anchor) and the
# file store with the same settings, and prints the ratio file/memory:
#   1. 100-byte appends/s (wrk + bench/append.lua): 1 connection to 1 stream; 64 connections to
#      1 stream and spread over APPEND_SPREAD streams; file store with --fsync batch, always, never.
#   2. 64 KiB appends/s over BIG_CONNS connections: memory vs --fsync batch.
#   3. catch-up reads/s of a 1 KiB and of a 1 MiB response from the start of a long stream (for
#      the file store, from the segment files, not the in-memory hot tail: the streams are much
#      longer than the 256 KiB hot tail and the servers run with --max-chunk-bytes 1024 / 1048576).
#      The streams are filled with curl (keep-alive, one POST after another).
#   4. `durable-streams loadtest` live-1k (1,000 long-poll readers) through an edge in front of a
#      memory origin, then in front of a file-backed origin: delivered/lost/duplicated, p50/p99.
#   5. recovery: fill a file-backed origin with RECOVERY_BYTES over RECOVERY_STREAMS streams
#      (1 MiB appends from RECOVERY_FILL_THREADS parallel curl processes, --fsync never to fill
#      fast), SIGTERM it, start it again on the same dir and time exec -> port answering (bash:
#      $EPOCHREALTIME before the fork, then a TCP connect about every millisecond until one is
#      accepted); plus the server's own `recovered N streams (B bytes) in S s`. The anchor is the
#      start of an empty memory origin, timed the same way.
# Prints a table and writes it as markdown to $REPORT_DIR/bench-storage-<date>-<time>.md.
#
# Knobs (environment), defaults in brackets:
#   BIN [$ROOT/.build/release/durable-streams]  REPORT_DIR [$ROOT/loadtest/reports]
#   WORK_BASE [$TMPDIR or /tmp]: where the run's temp dir (logs, data dirs) goes
#   WRK_THREADS [2] WRK_CONNS [64] WRK_DURATION [10s] WRK_WARMUP [2s] APPEND_SPREAD [4]
#   FSYNC_MODES ["batch always never"] (file variants for the 100-byte appends)
#   BIG_BYTES [65536] BIG_CONNS [16] BIG_STREAMS [4]
#   READ_CONNS [64] READ_SMALL_STREAM_BYTES [2 MiB] READ_BIG_STREAM_BYTES [4 MiB]
#   LIVE_DURATION [20s] LIVE_READERS [1000] LIVE_CONF [$ROOT/loadtest/live-1k.conf] SKIP_LIVE [0]
#   RECOVERY_BYTES [1 GiB] RECOVERY_STREAMS [64] RECOVERY_CHUNK [1 MiB] RECOVERY_FILL_THREADS [4]
#   RECOVERY_RESTART_FSYNC [batch] RECOVERY_DROP_CACHES [0; 1 = sync + drop the page cache
#   (root only) before the restart, so recovery reads from the disk] SKIP_RECOVERY [0]
#   SKIP_APPENDS [0] (phases 1 + 2) SKIP_READS [0] (phase 3)
#   WAIT_IDLE [0] (seconds to wait, at most, for the CPUs to be < 15 % busy) KEEP_TMP [0]
# Needs bash 5 ($EPOCHREALTIME), wrk, curl and jq (installed with apt-get when missing, as root).
# Every load loop is bounded in count and time; servers are killed and temp data removed on exit
# (logs are kept, and their path printed, when the run fails).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/loadtest/bench
REPORT_DIR=${REPORT_DIR:-$ROOT/loadtest/reports}
BIN=${BIN:-$ROOT/.build/release/durable-streams}
WORK_BASE=${WORK_BASE:-${TMPDIR:-/tmp}}
BENCH_NAME=bench-storage
# shellcheck source=loadtest/bench/lib.sh
. "$BENCH_DIR/lib.sh"

WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
APPEND_SPREAD=${APPEND_SPREAD:-4}
FSYNC_MODES=${FSYNC_MODES:-batch always never}
BIG_BYTES=${BIG_BYTES:-65536}
BIG_CONNS=${BIG_CONNS:-16}
BIG_STREAMS=${BIG_STREAMS:-4}
READ_CONNS=${READ_CONNS:-64}
READ_SMALL_STREAM_BYTES=${READ_SMALL_STREAM_BYTES:-$((2 << 20))}
READ_BIG_STREAM_BYTES=${READ_BIG_STREAM_BYTES:-$((4 << 20))}
LIVE_DURATION=${LIVE_DURATION:-20s}
LIVE_READERS=${LIVE_READERS:-1000}
LIVE_CONF=${LIVE_CONF:-$ROOT/loadtest/live-1k.conf}
SKIP_LIVE=${SKIP_LIVE:-0}
RECOVERY_BYTES=${RECOVERY_BYTES:-$((1 << 30))}
RECOVERY_STREAMS=${RECOVERY_STREAMS:-64}
RECOVERY_CHUNK=${RECOVERY_CHUNK:-$((1 << 20))}
RECOVERY_FILL_THREADS=${RECOVERY_FILL_THREADS:-4}
RECOVERY_RESTART_FSYNC=${RECOVERY_RESTART_FSYNC:-batch}
RECOVERY_DROP_CACHES=${RECOVERY_DROP_CACHES:-0}
SKIP_RECOVERY=${SKIP_RECOVERY:-0}
SKIP_APPENDS=${SKIP_APPENDS:-0}
SKIP_READS=${SKIP_READS:-0}
KEEP_TMP=${KEEP_TMP:-0}
HOST=$BENCH_HOST

secs() { local d=$1; case $d in *ms) echo 1 ;; *m) echo $(( ${d%m} * 60 )) ;; *s) echo "${d%s}" ;; *) echo "$d" ;; esac; }
# stamp_us VAR: VAR = microseconds since the epoch, read without forking (bash 5's
# $EPOCHREALTIME; its decimal separator depends on the locale).
stamp_us() { printf -v "$1" '%s' "${EPOCHREALTIME/[.,]/}"; }
us_to_s() { LC_ALL=C awk -v us="$1" -v d="${2:-4}" 'BEGIN { printf "%.*f\n", d, us / 1e6 }'; }

# ---------------------------------------------------------------- tools
need_tools wrk curl jq
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (\$EPOCHREALTIME times the restarts)"
[ -x "$BIN" ] || die "$BIN not found: build it (make release) or set BIN"
for d in "$WRK_DURATION" "$WRK_WARMUP" "$LIVE_DURATION"; do
    [[ $d =~ ^[0-9]+s$ ]] || die "durations must be whole seconds like 10s, not '$d'"
done

wait_idle "${WAIT_IDLE:-0}"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- temp dir, servers, cleanup
exec 9>&2 # the real stderr, for cleanup messages
mkdir -p "$WORK_BASE"
TMP=$(mktemp -d "$WORK_BASE/bench-storage.XXXXXX")
TABLE=$TMP/table.tsv     # measurement, memory, file, ratio file/memory, notes
PROBLEMS=$TMP/problems.txt
HEADLINE=$TMP/headline.txt
printf 'measurement\tmemory\tfile\tratio file/memory\tnotes\n' >"$TABLE"
: >"$PROBLEMS"
: >"$HEADLINE"
declare -A SRV_PID=() SRV_PORT=() SRV_DIR=()
STEP_PID=""
problem() { echo "$*" >>"$PROBLEMS"; printf 'bench-storage: PROBLEM: %s\n' "$*" >&2; }

# shellcheck disable=SC2317 # called by the traps below
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pids="$STEP_PID"
    for n in "${!SRV_PID[@]}"; do pids="$pids ${SRV_PID[$n]}"; done
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ] || [ "$KEEP_TMP" = 1 ]; then
        # Keep the logs; the data dirs can be large, drop them unless asked to keep everything.
        [ "$KEEP_TMP" = 1 ] || rm -rf "$TMP"/data-* 2>/dev/null || true
        echo "bench-storage: $([ "$rc" != 0 ] && echo "failed (rc=$rc); ")logs kept in $TMP" >&9
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port for a new server, never the port of one that is still up.
new_port() { local taken=() n; for n in "${!SRV_PID[@]}"; do taken+=("${SRV_PORT[$n]}"); done; free_port "${taken[@]}"; }

# start_origin NAME MODE [origin flags...]: MODE is memory, or an fsync policy (file store on a
# fresh data dir $TMP/data-NAME). Sets SRV_PORT[NAME], SRV_PID[NAME].
start_origin() {
    local name=$1 mode=$2; shift 2
    local port; port=$(new_port)
    local args=(origin --host "$HOST" --port "$port" "$@")
    if [ "$mode" != memory ]; then
        local dir=$TMP/data-$name
        rm -rf "$dir"
        args+=(--data-dir "$dir" --fsync "$mode")
        SRV_DIR[$name]=$dir
    fi
    "$BIN" "${args[@]}" >"$TMP/server-$name.log" 2>&1 &
    SRV_PID[$name]=$!
    SRV_PORT[$name]=$port
    wait_port "$port" "${SRV_PID[$name]}" "$name" 300
}

start_edge() { # NAME UPSTREAM_NAME
    local name=$1 up=$2
    local port; port=$(new_port)
    "$BIN" edge --config "$ROOT/edge.conf" --listen "$HOST:$port" --upstream "http://$HOST:${SRV_PORT[$up]}" \
        >"$TMP/server-$name.log" 2>&1 &
    SRV_PID[$name]=$!
    SRV_PORT[$name]=$port
    wait_port "$port" "${SRV_PID[$name]}" "$name" 300
}

# stop_server NAME: SIGTERM, wait up to 60 s, note a crash (died before we stopped it), a hang or
# a bad exit status as a problem. Removes the data dir unless KEEP_DATA=1 is passed in the env.
stop_server() {
    local name=$1 pid=${SRV_PID[$1]} rc=0
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || rc=$?
        problem "$name exited on its own before it was stopped (exit status $rc); log: $TMP/server-$name.log"
    else
        kill -TERM "$pid"
        local t0=$SECONDS
        for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            problem "$name did not stop within 60 s of SIGTERM; killed"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || rc=$?
        [ "$rc" = 0 ] || problem "$name exited with status $rc after SIGTERM (after $(( SECONDS - t0 )) s); log: $TMP/server-$name.log"
    fi
    unset "SRV_PID[$name]"
    if [ "${KEEP_DATA:-0}" != 1 ] && [ -n "${SRV_DIR[$name]:-}" ]; then rm -rf "${SRV_DIR[$name]}"; fi
    return 0
}

alive_or_die() { for n in "$@"; do kill -0 "${SRV_PID[$n]}" 2>/dev/null || die "$n died during the run; see $TMP/server-$n.log"; done; }
url() { echo "http://$HOST:${SRV_PORT[$1]}"; }

run_wrk() { # name threads conns duration url [wrk args...] -> $TMP/wrk-<name>.log and .json
    local name=$1 t=$2 c=$3 dur=$4 u=$5; shift 5
    [ "$t" -le "$c" ] || t=$c
    step timeout "$(( $(secs "$dur") + 60 ))" wrk -t"$t" -c"$c" -d"$dur" --latency "$@" "$u" \
        >"$TMP/wrk-$name.log" 2>&1 || die "wrk $name failed: $(tail -5 "$TMP/wrk-$name.log")"
    wrk_json "$TMP/wrk-$name.log" >"$TMP/wrk-$name.json"
}
wrk_rps() { jget "$TMP/wrk-$1.json" .rps; }

store_label() { [ "$1" = memory ] && echo memory || echo "fsync=$1"; }

# wrk_measured NAME OPERATION SERVER BODY_BYTES [wrk args...]: the measured wrk run (after the
# warm-up), with the server's ds_origin_requests_total{operation=OPERATION} read around it:
# answered (all statuses) and non-2xx. Adds server_ok, server_bad, body_bytes and mb_per_s to
# the run's JSON.
wrk_measured() {
    local name=$1 op=$2 srv=$3 bytes=$4; shift 4
    local all0 bad0 all1 bad1
    all0=$(settled_metric "$(url "$srv")/metrics" ds_origin_requests_total operation="$op")
    bad0=$(metric_non2xx "$(url "$srv")/metrics" "$op")
    run_wrk "$name" "$@"
    all1=$(settled_metric "$(url "$srv")/metrics" ds_origin_requests_total operation="$op")
    bad1=$(metric_non2xx "$(url "$srv")/metrics" "$op")
    jq --argjson all $(( all1 - all0 )) --argjson bad $(( bad1 - bad0 )) --argjson bytes "$bytes" \
        '. + {server_ok: ($all - $bad), server_bad: $bad, body_bytes: $bytes, mb_per_s: (.rps * $bytes / 1e6)}' \
        "$TMP/wrk-$name.json" >"$TMP/wrk-$name.json.tmp" && mv "$TMP/wrk-$name.json.tmp" "$TMP/wrk-$name.json"
}

# wrk_cell NAME UNIT: "12,345 appends/s" (+ MB/s for bodies of 1 KiB and more).
wrk_cell() {
    local j=$TMP/wrk-$1.json
    if [ "$(jget "$j" .body_bytes)" -ge 1024 ]; then
        echo "$(fmt_num "$(jget "$j" .rps)") $2 ($(fmt_num "$(jget "$j" .mb_per_s)" 1) MB/s)"
    else
        echo "$(fmt_num "$(jget "$j" .rps)") $2"
    fi
}

# wrk_check NAME LABEL: socket errors, wrk's non-2xx or the server's non-2xx are problems.
wrk_check() {
    local what
    what=$(jq -r '[(if .errors > 0 then "\(.errors) socket errors" else empty end),
                   (if .err_status > 0 then "\(.err_status) responses >399 (wrk)" else empty end),
                   (if .server_bad > 0 then "\(.server_bad) non-2xx (server metrics)" else empty end)] | join(", ")' \
        "$TMP/wrk-$1.json")
    [ -z "$what" ] || problem "$2: $what"
}

# wrk_rows LABEL UNIT MEMORY-RUN FILE-RUN...: one table row per file run against the memory run.
# A row's label names the fsync mode when there are several file variants.
wrk_rows() {
    local label=$1 unit=$2 mem=$3 f lat; shift 3
    wrk_check "$mem" "$label [memory]"
    for f in "$@"; do
        local mode=${f##*_}
        wrk_check "$f" "$label [$(store_label "$mode")]"
        lat="mem p50/p99 $(fmt_num "$(jget "$TMP/wrk-$mem.json" .lat_p50_ms)" 2)/$(fmt_num "$(jget "$TMP/wrk-$mem.json" .lat_p99_ms)" 2) ms; $(store_label "$mode") p50/p99 $(fmt_num "$(jget "$TMP/wrk-$f.json" .lat_p50_ms)" 2)/$(fmt_num "$(jget "$TMP/wrk-$f.json" .lat_p99_ms)" 2) ms"
        printf '%s, %s\t%s\t%s\t%s×\t%s\n' "$label" "$(store_label "$mode")" "$(wrk_cell "$mem" "$unit")" \
            "$(wrk_cell "$f" "$unit")" "$(ratio "$(wrk_rps "$f")" "$(wrk_rps "$mem")")" "$lat" >>"$TABLE"
    done
}

# fill BASE PREFIX STREAMS TOTAL CHUNK THREADS MAX_SECONDS OUT.json: create STREAMS
# octet-stream streams BASE/PREFIX0.. and append CHUNK-byte bodies to them round-robin until
# TOTAL bytes (in whole appends) are in, from THREADS curl processes, each POSTing its share one
# after another on one keep-alive connection (curl reuses it for the repeated URLs). Writes
# {appends, failures, bytes, seconds, mb_per_s} to OUT.json; fails if any append failed.
# shellcheck disable=SC2317 # run through `step`
fill() {
    local base=$1 prefix=$2 streams=$3 total=$4 chunk=$5 threads=$6 max=$7 out=$8
    local appends=$(( (total + chunk - 1) / chunk )) i w k t0 t1
    local body=$TMP/fill-$chunk.bin
    [ -s "$body" ] || body_bytes "$chunk" >"$body"
    for (( i = 0; i < streams; i++ )); do create_stream "$base/$prefix$i"; done
    local pids=()
    stamp_us t0
    for (( w = 0; w < threads && w < appends; w++ )); do
        local args=()
        for (( k = w; k < appends; k += threads )); do args+=(-o /dev/null "$base/$prefix$(( k % streams ))"); done
        # Expect: off, so curl does not wait for a 100-continue before the larger bodies.
        curl -s --max-time "$max" -H 'Expect:' -H 'Content-Type: application/octet-stream' \
            --data-binary "@$body" -w '%{http_code}\n' "${args[@]}" >"$TMP/fill-$w.status" 2>/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    stamp_us t1
    local ok bad
    ok=$(cat "$TMP"/fill-*.status | grep -c '^2' || true)
    bad=$(( appends - ok ))
    rm -f "$TMP"/fill-*.status
    jq -n --argjson ok "$ok" --argjson bad "$bad" --argjson chunk "$chunk" --argjson us $(( t1 - t0 )) \
        '{appends: $ok, failures: $bad, bytes: ($ok * $chunk), seconds: ($us / 1e4 | round / 100),
          mb_per_s: (if $us > 0 then ($ok * $chunk / $us * 10 | round / 10) else null end)}' >"$out"
    [ "$bad" = 0 ]
}

# check_read URL BYTES: GET URL (Accept-Encoding: identity); prints its Stream-Next-Offset if it
# is a 200 with exactly BYTES body bytes and no Content-Encoding, else says what it was and fails.
check_read() {
    local hdr=$TMP/check-read.headers status size enc next
    read -r status size < <(curl -s --max-time 60 -H 'Accept-Encoding: identity' -D "$hdr" -o /dev/null \
        -w '%{http_code} %{size_download}\n' "$1") || true
    enc=$(tr -d '\r' <"$hdr" | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')
    next=$(tr -d '\r' <"$hdr" | awk -F': ' 'tolower($1) == "stream-next-offset" { print $2 }')
    if [ "${status:-}" != 200 ] || [ "${size:-}" != "$2" ] || { [ -n "$enc" ] && [ "$enc" != identity ]; }; then
        echo "GET $1: status ${status:-none}, ${size:-0} body bytes (expected $2), Content-Encoding ${enc:-none}, Stream-Next-Offset ${next:-none}" >&2
        return 1
    fi
    echo "$next"
}

# ---------------------------------------------------------------- 1 + 2. appends
export BENCH_DIR
# append_case ROW LABEL BYTES THREADS CONNS STREAMS SERVER...: one wrk run per server, same
# settings, each on fresh streams ROW-0..; non-2xx checked by wrk and by the server's counters.
# The first server is the memory anchor; a table row per file server follows.
append_case() {
    local row=$1 label=$2 bytes=$3 threads=$4 conns=$5 streams=$6; shift 6
    local srv runs=()
    for srv in "$@"; do
        local mode=${srv#*_} prefix="$row-" i
        for (( i = 0; i < streams; i++ )); do create_stream "$(url "$srv")/v1/stream/$prefix$i"; done
        APPEND_BYTES=$bytes APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
            run_wrk "${row}_${mode}_warm" "$threads" "$conns" "$WRK_WARMUP" "$(url "$srv")/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
        APPEND_BYTES=$bytes APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
            wrk_measured "${row}_${mode}" append "$srv" "$bytes" "$threads" "$conns" "$WRK_DURATION" \
            "$(url "$srv")/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
        echo "$label [$(store_label "$mode")]: $(wrk_rps "${row}_${mode}") appends/s, server 2xx $(jget "$TMP/wrk-${row}_${mode}.json" .server_ok), non-2xx $(jget "$TMP/wrk-${row}_${mode}.json" .server_bad)" >&2
        alive_or_die "$srv"
        runs+=("${row}_${mode}")
    done
    wrk_rows "$label" appends/s "${runs[@]}"
    # The goal for 100-byte appends at many connections: fsync=batch at least 0.5× memory.
    if [[ $row == a100_cN* ]] && [ -s "$TMP/wrk-${row}_batch.json" ]; then
        local q; q=$(ratio "$(wrk_rps "${row}_batch")" "$(wrk_rps "${row}_memory")")
        echo "$label: fsync=batch / memory = ${q}× (goal ≥ 0.5×: $(awk -v q="$q" 'BEGIN { print (q + 0 >= 0.5 ? "met" : "NOT met") }'))" >>"$HEADLINE"
    fi
}

if [ "$SKIP_APPENDS" != 1 ]; then
APPEND_SERVERS=(ap_memory)
log "(1) starting origins for the 100-byte appends: memory and file --fsync {$FSYNC_MODES}"
start_origin ap_memory memory
for m in $FSYNC_MODES; do
    case $m in batch|always|never) ;; *) die "FSYNC_MODES: '$m' is not batch, always or never" ;; esac
    start_origin "ap_$m" "$m"
    APPEND_SERVERS+=("ap_$m")
done
log "(1) 100-byte appends, 1 connection, 1 stream (wrk -t1 -c1 -d$WRK_DURATION)"
append_case a100_c1 "100 B appends/s, 1 conn, 1 stream" 100 1 1 1 "${APPEND_SERVERS[@]}"
log "(1) 100-byte appends, $WRK_CONNS connections, 1 stream"
append_case a100_cN_s1 "100 B appends/s, $WRK_CONNS conns, 1 stream" 100 "$WRK_THREADS" "$WRK_CONNS" 1 "${APPEND_SERVERS[@]}"
log "(1) 100-byte appends, $WRK_CONNS connections, $APPEND_SPREAD streams"
append_case a100_cN_sM "100 B appends/s, $WRK_CONNS conns, $APPEND_SPREAD streams" 100 "$WRK_THREADS" "$WRK_CONNS" "$APPEND_SPREAD" "${APPEND_SERVERS[@]}"
for s in "${APPEND_SERVERS[@]}"; do stop_server "$s"; done

log "(2) $BIG_BYTES-byte appends, $BIG_CONNS connections, $BIG_STREAMS streams: memory vs --fsync batch (fresh servers)"
avail_kb=$(df -Pk "$TMP" | awk 'NR==2{print $4}')
[ "$avail_kb" -gt $(( 10 << 20 )) ] || log "warning: only $(( avail_kb >> 20 )) GiB free under $TMP; the 64 KiB run writes a few GB"
start_origin big_memory memory
start_origin big_batch batch
append_case big "$(( BIG_BYTES / 1024 )) KiB appends/s, $BIG_CONNS conns, $BIG_STREAMS streams" "$BIG_BYTES" "$WRK_THREADS" "$BIG_CONNS" "$BIG_STREAMS" big_memory big_batch
BIG_DISK=$(du -sh "${SRV_DIR[big_batch]}" 2>/dev/null | cut -f1)
stop_server big_memory
stop_server big_batch
fi

# ---------------------------------------------------------------- 3. catch-up reads
# read_case ROW LABEL CHUNK STREAM_BYTES APPEND_BYTES: both servers run with --max-chunk-bytes CHUNK,
# hold one stream of STREAM_BYTES (much longer than the file store's 256 KiB hot tail), and wrk
# reads offset=-1, i.e. the first CHUNK bytes, over and over.
read_case() {
    local row=$1 label=$2 chunk=$3 total=$4 app=$5
    local srv
    start_origin "${row}_memory" memory --max-chunk-bytes "$chunk"
    start_origin "${row}_batch" batch --max-chunk-bytes "$chunk"
    for srv in "${row}_memory" "${row}_batch"; do
        step fill "$(url "$srv")/v1/stream" "$row-" 1 "$total" "$app" 1 240 "$TMP/${srv}_fill.json" \
            || die "filling $srv failed: $(cat "$TMP/${srv}_fill.json" 2>/dev/null)"
        check_read "$(url "$srv")/v1/stream/$row-0?offset=-1" "$chunk" >"$TMP/${srv}_next.txt" \
            || die "$srv: the catch-up read is not a $chunk-byte identity response"
    done
    echo "stream: $total bytes; GET offset=-1 -> $chunk bytes, Stream-Next-Offset $(cat "$TMP/${row}_memory_next.txt") (memory), $(cat "$TMP/${row}_batch_next.txt") (file)" >&2
    for srv in "${row}_memory" "${row}_batch"; do
        local u; u="$(url "$srv")/v1/stream/$row-0?offset=-1"
        run_wrk "${srv}_warm" "$WRK_THREADS" "$READ_CONNS" "$WRK_WARMUP" "$u" -H "Accept-Encoding: identity" -s "$BENCH_DIR/report.lua"
        wrk_measured "$srv" read "$srv" "$chunk" "$WRK_THREADS" "$READ_CONNS" "$WRK_DURATION" "$u" \
            -H "Accept-Encoding: identity" -s "$BENCH_DIR/report.lua"
        echo "$label [$(store_label "${srv##*_}")]: $(wrk_rps "$srv") reads/s, non-2xx $(jget "$TMP/wrk-$srv.json" .server_bad)" >&2
        alive_or_die "$srv"
    done
    wrk_rows "$label" reads/s "${row}_memory" "${row}_batch"
    stop_server "${row}_memory"
    stop_server "${row}_batch"
}
if [ "$SKIP_READS" != 1 ]; then
log "(3) catch-up reads of 1 KiB (--max-chunk-bytes 1024, stream of $READ_SMALL_STREAM_BYTES bytes), $READ_CONNS connections"
read_case read1k "catch-up GET 1 KiB reads/s, $READ_CONNS conns" 1024 "$READ_SMALL_STREAM_BYTES" 65536
log "(3) catch-up reads of 1 MiB (--max-chunk-bytes 1048576, stream of $READ_BIG_STREAM_BYTES bytes), $READ_CONNS connections"
read_case read1m "catch-up GET 1 MiB reads/s, $READ_CONNS conns" 1048576 "$READ_BIG_STREAM_BYTES" 1048576
fi

# ---------------------------------------------------------------- 4. live fan-out through an edge
if [ "$SKIP_LIVE" != 1 ]; then
    LIVE_S=$(secs "$LIVE_DURATION")
    for mode in memory batch; do
        log "(4) loadtest $(basename "$LIVE_CONF"): $LIVE_READERS long-poll readers -> edge -> $(store_label "$mode") origin, $LIVE_DURATION"
        start_origin "live_$mode" "$mode"
        start_edge "edge_$mode" "live_$mode"
        rc=0
        # Hard bound: writers' duration + the scenario's drain (at most 15 s in live-1k) + connect + margin.
        step timeout --kill-after=10 "$(( LIVE_S + 120 ))" "$BIN" loadtest "$LIVE_CONF" --quiet \
            --target "$(url "edge_$mode")" --origin "$(url "live_$mode")" --readers "$LIVE_READERS" \
            --duration "$LIVE_DURATION" --json "$TMP/live_$mode.json" >"$TMP/loadtest_$mode.log" 2>&1 || rc=$?
        sed -n '/^delivery:/p;/^ *p50 *p90/{p;n;p}' "$TMP/loadtest_$mode.log" | head -6 >&2 || true
        [ "$rc" = 0 ] || problem "loadtest against the $(store_label "$mode") origin exited with status $rc; log: $TMP/loadtest_$mode.log"
        if [ -s "$TMP/live_$mode.json" ]; then
            jq --argjson rc "$rc" '. + {exit_status: $rc}' "$TMP/live_$mode.json" >"$TMP/live_$mode.json.tmp"
            mv "$TMP/live_$mode.json.tmp" "$TMP/live_$mode.json"
            jq -r --arg what "live $LIVE_READERS long-poll readers via edge [$(store_label "$mode")]" '
                (.errors.connectionErrors + .errors.failedAppends + ([.errors.statuses[]] | add // 0)) as $errors
                | if .delivery.lost > 0 or .delivery.duplicated > 0 or .delivery.outOfOrder > 0 or .delivery.corrupt > 0 or $errors > 0 then
                    "\($what): lost \(.delivery.lost), duplicated \(.delivery.duplicated), out of order \(.delivery.outOfOrder), corrupt \(.delivery.corrupt), errors \($errors) \(.errors.statuses), failed appends \(.errors.failedAppends)"
                  else empty end' "$TMP/live_$mode.json" | while read -r line; do problem "$line"; done
        else
            problem "live [$(store_label "$mode")]: the load tester wrote no JSON; log: $TMP/loadtest_$mode.log"
        fi
        stop_server "edge_$mode"
        stop_server "live_$mode"
    done
    if [ -s "$TMP/live_memory.json" ] && [ -s "$TMP/live_batch.json" ]; then
        L="live $LIVE_READERS long-poll readers via edge"
        lcell() { jq -r '"\(.delivery.received) delivered of \(.delivery.expected) (lost \(.delivery.lost) / dup \(.delivery.duplicated) / ooo \(.delivery.outOfOrder))"' "$TMP/live_$1.json"; }
        lget() { jget "$TMP/live_$1.json" "$2"; }
        printf '%s: delivered (lost/dup/out-of-order)\t%s\t%s\t%s×\tappends acked mem/file %s/%s; collapse %s×/%s×; before-ack %s/%s\n' "$L" \
            "$(lcell memory)" "$(lcell batch)" "$(ratio "$(lget batch .delivery.received)" "$(lget memory .delivery.received)")" \
            "$(lget memory .delivery.appended)" "$(lget batch .delivery.appended)" \
            "$(fmt_num "$(lget memory .collapseRatio)")" "$(fmt_num "$(lget batch .collapseRatio)")" \
            "$(lget memory .delivery.beforeAck)" "$(lget batch .delivery.beforeAck)" >>"$TABLE"
        for p in p50 p99; do
            printf '%s: append→delivery %s\t%s ms\t%s ms\t%s×\tlower is better\n' "$L" "$p" \
                "$(fmt_num "$(lget memory ".latency.$p")" 1)" "$(fmt_num "$(lget batch ".latency.$p")" 1)" \
                "$(ratio "$(lget batch ".latency.$p")" "$(lget memory ".latency.$p")")" >>"$TABLE"
        done
    fi
fi

# ---------------------------------------------------------------- 5. recovery
if [ "$SKIP_RECOVERY" != 1 ]; then
    # A FIFO nobody writes to: `read -t` on it pauses without forking a `sleep`.
    mkfifo "$TMP/pause.fifo"
    exec {PAUSE_FD}<>"$TMP/pause.fifo"
    # connects_now PORT: true when 127.0.0.1:PORT accepts a TCP connection (closed at once). Runs
    # in this shell, without a subshell, so a try costs no fork.
    connects_now() {
        local sock
        if { exec {sock}<>"/dev/tcp/$HOST/$1"; } 2>/dev/null; then exec {sock}>&-; return 0; fi
        return 1
    }
    # timed_start NAME MODE DIR: start an origin and time it from just before the fork that execs
    # it to the first TCP connection its port accepts, tried every millisecond or so (cheap tries
    # and short pauses, so the poller takes little CPU from the server it is timing). The loop
    # ends when a try succeeds, when the server exits, or after 900 s. Sets T_READY (seconds).
    timed_start() {
        local name=$1 mode=$2 dir=$3 port t0 t1 tries=0
        port=$(new_port)
        local args=(origin --host "$HOST" --port "$port")
        [ "$mode" = memory ] || { args+=(--data-dir "$dir" --fsync "$mode"); SRV_DIR[$name]=$dir; }
        local deadline=$(( SECONDS + 900 ))
        stamp_us t0
        "$BIN" "${args[@]}" </dev/null >>"$TMP/server-$name.log" 2>&1 &
        SRV_PID[$name]=$!
        SRV_PORT[$name]=$port
        until connects_now "$port"; do
            kill -0 "${SRV_PID[$name]}" 2>/dev/null ||
                die "$name exited before listening; see $TMP/server-$name.log: $(tail -5 "$TMP/server-$name.log" 2>/dev/null)"
            tries=$(( tries + 1 ))
            if [ $SECONDS -ge "$deadline" ] || [ "$tries" -ge 1000000 ]; then die "$name did not listen within 900 s"; fi
            read -r -t 0.001 -u "$PAUSE_FD" _ || true
        done
        stamp_us t1
        T_READY=$(us_to_s $(( t1 - t0 )))
    }
    log "(5) start-up anchors: an empty memory origin and an empty file origin, exec -> port answering"
    timed_start rec_memory memory ""
    T_MEM=$T_READY
    stop_server rec_memory
    timed_start rec_empty "$RECOVERY_RESTART_FSYNC" "$TMP/data-rec_empty"
    T_EMPTY=$T_READY
    stop_server rec_empty
    echo "empty memory origin: ${T_MEM}s; empty file origin: ${T_EMPTY}s" >&2

    avail_kb=$(df -Pk "$TMP" | awk 'NR==2{print $4}')
    [ $(( avail_kb * 1024 )) -gt $(( RECOVERY_BYTES + (RECOVERY_BYTES / 4) + (1 << 30) )) ] \
        || die "not enough free disk under $TMP for RECOVERY_BYTES=$RECOVERY_BYTES ($(( avail_kb >> 10 )) MiB free)"
    log "(5) filling a file origin (--fsync never) with $RECOVERY_BYTES bytes over $RECOVERY_STREAMS streams, $RECOVERY_CHUNK-byte appends"
    start_origin rec_fill never
    RDIR=${SRV_DIR[rec_fill]}
    # Bounded by fill's own curl --max-time (1500 s).
    step fill "$(url rec_fill)/v1/stream" rec- "$RECOVERY_STREAMS" "$RECOVERY_BYTES" "$RECOVERY_CHUNK" "$RECOVERY_FILL_THREADS" 1500 \
        "$TMP/rec_fill.json" || die "filling the recovery origin failed: $(cat "$TMP/rec_fill.json" 2>/dev/null)"
    FILLED=$(jget "$TMP/rec_fill.json" .bytes)
    FILL_RATE="$(jget "$TMP/rec_fill.json" .seconds) s, $(jget "$TMP/rec_fill.json" .mb_per_s) MB/s"
    echo "filled $FILLED bytes in $FILL_RATE" >&2
    stamp_us t0
    KEEP_DATA=1 stop_server rec_fill
    stamp_us t1
    T_STOP=$(us_to_s $(( t1 - t0 )) 2)
    DISK=$(du -sb "$RDIR" | cut -f1)
    echo "SIGTERM -> exit: ${T_STOP}s; data dir holds $DISK bytes" >&2
    CACHE_NOTE="page cache warm"
    if [ "$RECOVERY_DROP_CACHES" = 1 ]; then
        log "(5) sync + drop the page cache so recovery reads from the disk"
        sync
        if [ -w /proc/sys/vm/drop_caches ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
            CACHE_NOTE="page cache dropped first"
        else
            log "warning: cannot write /proc/sys/vm/drop_caches; page cache kept"
        fi
    fi
    log "(5) restarting on the same data dir (--fsync $RECOVERY_RESTART_FSYNC), exec -> port answering"
    timed_start rec_restart "$RECOVERY_RESTART_FSYNC" "$RDIR"
    T_REC=$T_READY
    REC_LINE=$(grep -o 'recovered [0-9]* streams ([0-9]* bytes) in [0-9.]* s.*' "$TMP/server-rec_restart.log" | head -1 || true)
    echo "restart: ${T_REC}s to the port answering; server: ${REC_LINE:-no recovery line}" >&2
    [ -n "$REC_LINE" ] || problem "no 'recovered N streams (B bytes) in S s' line in $TMP/server-rec_restart.log"
    REC_BYTES=$(sed -n 's/^recovered [0-9]* streams (\([0-9]*\) bytes).*/\1/p' <<<"$REC_LINE")
    REC_STREAMS=$(sed -n 's/^recovered \([0-9]*\) streams.*/\1/p' <<<"$REC_LINE")
    REC_S=$(sed -n 's/^recovered .* in \([0-9.]*\) s.*/\1/p' <<<"$REC_LINE")
    [ "${REC_BYTES:-x}" = "$FILLED" ] || problem "recovered ${REC_BYTES:-?} bytes, but $FILLED were appended"
    [ "${REC_STREAMS:-x}" = "$RECOVERY_STREAMS" ] || problem "recovered ${REC_STREAMS:-?} streams, expected $RECOVERY_STREAMS"
    # The data is there: the first stream reads back from the start (default 4 MiB chunk limit).
    per_stream=$(( ( (FILLED / RECOVERY_CHUNK + RECOVERY_STREAMS - 1) / RECOVERY_STREAMS ) * RECOVERY_CHUNK ))
    expect=$(( per_stream < (4 << 20) ? per_stream : (4 << 20) ))
    check_read "$(url rec_restart)/v1/stream/rec-0?offset=-1" "$expect" >/dev/null \
        || problem "after the restart, rec-0 did not read back $expect bytes from the start"
    stop_server rec_restart
    GIB=$(LC_ALL=C awk -v b="$FILLED" 'BEGIN { printf "%.3g", b / 1073741824 }')
    {
        printf 'start → port answering, empty store\t%s s\t%s s\t%s×\t\n' "$T_MEM" "$T_EMPTY" "$(ratio "$T_EMPTY" "$T_MEM")"
        printf 'restart → port answering, %s GiB in %s streams\t%s s (empty start: nothing to recover)\t%s s\t%s×\t%s\n' \
            "$GIB" "$RECOVERY_STREAMS" "$T_MEM" "$T_REC" "$(ratio "$T_REC" "$T_MEM")" \
            "data dir $DISK bytes on disk; filled (fsync never, $RECOVERY_FILL_THREADS connections) in $FILL_RATE; SIGTERM → exit $T_STOP s; restarted with --fsync $RECOVERY_RESTART_FSYNC, $CACHE_NOTE"
        printf "server's recovery line\tn/a\t%s\tn/a\t%s\n" "${REC_LINE:-missing}" "${REC_S:+recovery itself: $REC_S s}"
    } >>"$TABLE"
fi

# ---------------------------------------------------------------- server-side errors
# Anything the servers logged that looks like an error (they log little in normal operation).
for f in "$TMP"/server-*.log; do
    [ -e "$f" ] || continue
    hits=$(grep -iE 'error|fatal|crash|panic|assert|warning|refus|fail' "$f" | head -5 || true)
    [ -z "$hits" ] || problem "$(basename "$f" .log) logged: $(tr '\n' ' ' <<<"$hits")"
done

# ---------------------------------------------------------------- report
BUSY_AFTER=$(cpu_busy)
FS=$(df -PT "$TMP" | awk 'NR==2{print $2 " on " $1}')
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
FACTS=$TMP/facts.tsv
{
    printf 'date (UTC)\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')"
    printf 'binary\t%s (built %s UTC)\n' "$BIN" "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S')"
    machine_facts
    printf 'data dirs\t%s (filesystem %s)\n' "$TMP" "$FS"
    printf 'load\tCPU busy before start %s%%, after (servers idle) %s%%; load average before %s, after %s\n' \
        "$BUSY_BEFORE" "$BUSY_AFTER" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'wrk\t%s; -t%s, %s per run after a %s warm-up (not counted); 1-conn runs use -t1\n' \
        "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')" "$WRK_THREADS" "$WRK_DURATION" "$WRK_WARMUP"
    [ -z "${BIG_DISK:-}" ] || printf '64 KiB run\tfile store data dir reached %s\n' "$BIG_DISK"
    printf 'curl\t%s (stream fills, read checks)\n' "$(curl --version | head -1 | cut -d' ' -f1-2)"
} >"$FACTS"
METHOD=$TMP/method.txt
cat >"$METHOD" <<EOF
Same binary and flags for both stores; the file store differs only by --data-dir (a fresh dir per server, under $TMP) and --fsync. Servers measured one after the other (memory first), each on fresh streams; idle servers stay up during phase 1.
Appends: wrk + loadtest/bench/append.lua, POST of N bytes (application/octet-stream) round-robin over the streams, keep-alive. Non-2xx checked by wrk (status > 399) and by the server's ds_origin_requests_total{operation="append"} counters (read once they stop moving after wrk exits).
64 KiB appends: BIG_BYTES=$BIG_BYTES, $BIG_CONNS connections, $BIG_STREAMS streams; MB/s = appends/s × body bytes.
Catch-up reads: one stream per server filled (curl, one keep-alive connection) with $READ_SMALL_STREAM_BYTES bytes (1 KiB case, --max-chunk-bytes 1024) or $READ_BIG_STREAM_BYTES bytes (1 MiB case, --max-chunk-bytes 1048576); wrk GET ?offset=-1 (the first chunk: for the file store this range is not in the 256 KiB hot tail, so each read goes to the segment files through the read pool; the OS page cache is warm). Accept-Encoding: identity. Verified before the run (curl) to be a 200 with exactly 1024 / 1048576 body bytes.
Live: durable-streams loadtest $(basename "$LIVE_CONF") --readers $LIVE_READERS --duration $LIVE_DURATION, readers on an edge (edge.conf) in front of the origin, writers on the origin; the same with a memory origin and a file origin (--fsync batch). Latency = append acknowledged → reader receipt.
Recovery: time from just before the fork that execs the server (\$EPOCHREALTIME in bash) to the first TCP connection its port accepts (a connect tried about every millisecond from the script's own shell, no fork per try), for an empty memory origin (the anchor), an empty file origin, and a file origin restarted on a data dir filled with RECOVERY_BYTES=$RECOVERY_BYTES over $RECOVERY_STREAMS streams ($RECOVERY_CHUNK-byte appends from $RECOVERY_FILL_THREADS curl processes, --fsync never, then SIGTERM). The server's own recovery line is quoted. Figures up to 2026-11-30 in loadtest/README.md were timed with the previous method (a Python wrapper polling every 2 ms).
The machine has $(nproc) cores, shared by the load generator and the servers: figures are comparisons between the two stores in the same run, not capacities.
EOF
mkdir -p "$REPORT_DIR"
REPORT=$REPORT_DIR/bench-storage-$(date -u '+%Y-%m-%d-%H%M%S').md
# The headline and the problems go first in both outputs: they are what a reader needs.
NOTES=$TMP/notes.txt
{
    sed 's/^/headline: /' "$HEADLINE"
    if [ -s "$PROBLEMS" ]; then sed 's/^/PROBLEM: /' "$PROBLEMS"; else echo "problems: none: no non-2xx, socket errors, lost/duplicated messages or server crashes"; fi
} >"$NOTES"
render_table "Durable Streams storage benchmark — $DATE (NOTE: $(nproc) cores; the load generator shares them with the servers)" \
    "$FACTS" "$TABLE" "$NOTES"
render_markdown "Durable Streams storage benchmark — $DATE" \
    "Produced by \`loadtest/bench-storage.sh\`: the file store (\`--data-dir\`) against the in-memory store, measured in the same run with the same settings; ratio = file / memory (for throughput higher is better, for latencies and times lower is better). **Machine: $(nproc) cores; the load generator (wrk, curl, the loadtest) shares them with the servers**, so every figure includes the client's own CPU use and is a comparison, not an absolute capacity." \
    "$FACTS" "$TABLE" "$NOTES" "$METHOD" >"$REPORT"
echo "report written to $REPORT"
[ -s "$PROBLEMS" ] && { echo "bench-storage: problems were seen (listed above and in the report); logs in $TMP" >&2; KEEP_TMP=1; exit 2; }
exit 0
