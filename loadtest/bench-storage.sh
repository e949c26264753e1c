#!/usr/bin/env bash
# Side-by-side benchmark of the origin's file store (--data-dir) against its in-memory store.
#
#   loadtest/bench-storage.sh                      # uses .build/release/durable-streams (not rebuilt)
#   BIN=/path/to/durable-streams loadtest/bench-storage.sh
#   WRK_DURATION=3s WRK_WARMUP=1s LIVE_DURATION=5s RECOVERY_BYTES=$((64<<20)) loadtest/bench-storage.sh  # quick
#
# Build the binary first if needed: swift build -c release --product durable-streams
#
# Measures, in one run, on 127.0.0.1 only, each figure for the memory store (the anchor) and the
# file store with the same settings, and prints the ratio file/memory:
#   1. 100-byte appends/s (wrk + bench/append.lua): 1 connection to 1 stream; 64 connections to
#      1 stream and spread over APPEND_SPREAD streams; file store with --fsync batch, always, never.
#   2. 64 KiB appends/s over BIG_CONNS connections: memory vs --fsync batch.
#   3. catch-up reads/s of a 1 KiB and of a 1 MiB response from the start of a long stream (for
#      the file store, from the segment files, not the in-memory hot tail: the streams are much
#      longer than the 256 KiB hot tail and the servers run with --max-chunk-bytes 1024 / 1048576).
#   4. `durable-streams loadtest` live-1k (1,000 long-poll readers) through an edge in front of a
#      memory origin, then in front of a file-backed origin: delivered/lost/duplicated, p50/p99.
#   5. recovery: fill a file-backed origin with RECOVERY_BYTES over RECOVERY_STREAMS streams
#      (1 MiB appends, --fsync never to fill fast), SIGTERM it, start it again on the same dir and
#      time exec -> port answering; plus the server's own `recovered N streams (B bytes) in S s`.
#      The anchor is the start of an empty memory origin, timed the same way.
# Prints a markdown table and writes it to $REPORT_DIR/bench-storage-<date>.md.
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
# Every load loop is bounded in count and time; servers are killed and temp data removed on exit
# (logs are kept, and their path printed, when the run fails).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/loadtest/bench
REPORT_DIR=${REPORT_DIR:-$ROOT/loadtest/reports}
BIN=${BIN:-$ROOT/.build/release/durable-streams}
WORK_BASE=${WORK_BASE:-${TMPDIR:-/tmp}}

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
HOST=127.0.0.1

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench-storage: %s\n' "$*" >&2; exit 1; }
secs() { local d=$1; case $d in *ms) echo 1 ;; *m) echo $(( ${d%m} * 60 )) ;; *s) echo "${d%s}" ;; *) echo "$d" ;; esac; }

# ---------------------------------------------------------------- tools
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${need[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
PY=python3
DSB=("$PY" "$BENCH_DIR/dsbench.py")
SB=("$PY" "$BENCH_DIR/storagebench.py")
[ -x "$BIN" ] || die "$BIN not found: build it (swift build -c release --product durable-streams) or set BIN"
for d in "$WRK_DURATION" "$WRK_WARMUP" "$LIVE_DURATION"; do
    [[ $d =~ ^[0-9]+s$ ]] || die "durations must be whole seconds like 10s, not '$d'"
done

cpu_busy() {
    local a b
    a=($(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)); sleep 1
    b=($(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat))
    echo $(( 100 - 100 * (b[1] - a[1]) / (b[0] - a[0] > 0 ? b[0] - a[0] : 1) ))
}
BUSY_BEFORE=$(cpu_busy)
if [ "${WAIT_IDLE:-0}" -gt 0 ] && [ "$BUSY_BEFORE" -ge 15 ]; then
    log "CPUs ${BUSY_BEFORE}% busy; waiting up to ${WAIT_IDLE}s for them to go quiet"
    end=$(( SECONDS + WAIT_IDLE ))
    while [ "$BUSY_BEFORE" -ge 15 ] && [ $SECONDS -lt $end ]; do BUSY_BEFORE=$(cpu_busy); done
fi
[ "$BUSY_BEFORE" -lt 15 ] || log "warning: CPUs already ${BUSY_BEFORE}% busy before the benchmark; figures will be low and noisy"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- temp dir, servers, cleanup
exec 9>&2 # the real stderr, for cleanup messages
mkdir -p "$WORK_BASE"
TMP=$(mktemp -d "$WORK_BASE/bench-storage.XXXXXX")
RESULTS=$TMP/results.jsonl
PROBLEMS=$TMP/problems.txt
: >"$RESULTS"
: >"$PROBLEMS"
declare -A SRV_PID=() SRV_PORT=() SRV_DIR=()
STEP_PID=""
problem() { echo "$*" >>"$PROBLEMS"; printf 'bench-storage: PROBLEM: %s\n' "$*" >&2; }

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

step() { # run a bounded command in the background and wait for it (a trap interrupts `wait`)
    local rc=0
    "$@" &
    STEP_PID=$!
    wait "$STEP_PID" || rc=$?
    STEP_PID=""
    return "$rc"
}

freeport() { "${DSB[@]}" freeport; }

wait_port() { # port pid name [tries of 0.1 s]
    local tries=${4:-300}
    for _ in $(seq "$tries"); do
        kill -0 "$2" 2>/dev/null || die "$3 exited early; see $TMP/server-$3.log: $(tail -5 "$TMP/server-$3.log" 2>/dev/null)"
        (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$3 did not listen on $HOST:$1 within $(( tries / 10 )) s"
}

# start_origin NAME MODE [origin flags...]: MODE is memory, or an fsync policy (file store on a
# fresh data dir $TMP/data-NAME). Sets SRV_PORT[NAME], SRV_PID[NAME].
start_origin() {
    local name=$1 mode=$2; shift 2
    local port; port=$(freeport)
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
    wait_port "$port" "${SRV_PID[$name]}" "$name"
}

start_edge() { # NAME UPSTREAM_NAME
    local name=$1 up=$2
    local port; port=$(freeport)
    "$BIN" edge --config "$ROOT/edge.conf" --listen "$HOST:$port" --upstream "http://$HOST:${SRV_PORT[$up]}" \
        >"$TMP/server-$name.log" 2>&1 &
    SRV_PID[$name]=$!
    SRV_PORT[$name]=$port
    wait_port "$port" "${SRV_PID[$name]}" "$name"
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
metric() { "${DSB[@]}" metric "$(url "$1")/metrics" "${@:2}"; }

WRK_DUR_S=$(secs "$WRK_DURATION")
run_wrk() { # name threads conns duration url [wrk args...] -> $TMP/<name>.log
    local name=$1 t=$2 c=$3 dur=$4 u=$5; shift 5
    [ "$t" -le "$c" ] || t=$c
    step timeout "$(( $(secs "$dur") + 60 ))" wrk -t"$t" -c"$c" -d"$dur" --latency "$@" "$u" \
        >"$TMP/wrk-$name.log" 2>&1 || die "wrk $name failed: $(tail -5 "$TMP/wrk-$name.log")"
    grep -q '^WRK_RESULT' "$TMP/wrk-$name.log" || die "wrk $name printed no WRK_RESULT line: $(tail -5 "$TMP/wrk-$name.log")"
}
wrk_rps() { sed -n 's/^WRK_RESULT.* rps=\([0-9.]*\).*/\1/p' "$TMP/wrk-$1.log"; }

store_label() { [ "$1" = memory ] && echo memory || echo "fsync=$1"; }

# ---------------------------------------------------------------- 1 + 2. appends
export BENCH_DIR
# append_case ROW LABEL BYTES THREADS CONNS STREAMS SERVER...: one wrk run per server, same
# settings, each on fresh streams ROW-0..; non-2xx checked by wrk and by the server's counters.
append_case() {
    local row=$1 label=$2 bytes=$3 threads=$4 conns=$5 streams=$6; shift 6
    local srv
    for srv in "$@"; do
        local mode=${srv#*_} prefix="$row-"
        for i in $(seq 0 $(( streams - 1 ))); do "${DSB[@]}" create "$(url "$srv")/v1/stream/$prefix$i" >/dev/null; done
        APPEND_BYTES=$bytes APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
            run_wrk "${row}_${mode}_warm" "$threads" "$conns" "$WRK_WARMUP" "$(url "$srv")/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
        local ok0 bad0 ok1 bad1
        ok0=$(metric "$srv" ds_origin_requests_total operation=append status=204)
        bad0=$(metric "$srv" --sum-non2xx append)
        APPEND_BYTES=$bytes APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
            run_wrk "${row}_${mode}" "$threads" "$conns" "$WRK_DURATION" "$(url "$srv")/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
        sleep 0.5 # let in-flight appends finish before reading the counters
        ok1=$(metric "$srv" ds_origin_requests_total operation=append status=204)
        bad1=$(metric "$srv" --sum-non2xx append)
        "${SB[@]}" record "$RESULTS" wrk --row "$row" --label "$label" --store "$(store_label "$mode")" \
            --wrk-log "$TMP/wrk-${row}_${mode}.log" --unit appends/s --server-ok $(( ok1 - ok0 )) \
            --server-bad $(( bad1 - bad0 )) --body-bytes "$bytes"
        echo "$label [$(store_label "$mode")]: $(wrk_rps "${row}_${mode}") appends/s, server 204s $(( ok1 - ok0 )), non-2xx $(( bad1 - bad0 ))" >&2
        alive_or_die "$srv"
    done
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
        step timeout 300 "${SB[@]}" fill "$(url "$srv")/v1/stream" --prefix "$row-" --streams 1 --total "$total" \
            --chunk "$app" --threads 1 --max-seconds 240 >"$TMP/${srv}_fill.json" || die "filling $srv failed: $(cat "$TMP/${srv}_fill.json")"
        "${SB[@]}" check-read "$(url "$srv")/v1/stream/$row-0?offset=-1" --expect "$chunk" >"$TMP/${srv}_next.txt" \
            || die "$srv: the catch-up read is not a $chunk-byte identity response"
    done
    echo "stream: $total bytes; GET offset=-1 -> $chunk bytes, Stream-Next-Offset $(cat "$TMP/${row}_memory_next.txt") (memory), $(cat "$TMP/${row}_batch_next.txt") (file)" >&2
    for srv in "${row}_memory" "${row}_batch"; do
        local mode=${srv##*_} u; u="$(url "$srv")/v1/stream/$row-0?offset=-1"
        run_wrk "${srv}_warm" "$WRK_THREADS" "$READ_CONNS" "$WRK_WARMUP" "$u" -H "Accept-Encoding: identity" -s "$BENCH_DIR/report.lua"
        local ok0 bad0 ok1 bad1
        ok0=$(metric "$srv" ds_origin_requests_total operation=read status=200)
        bad0=$(metric "$srv" --sum-non2xx read)
        run_wrk "$srv" "$WRK_THREADS" "$READ_CONNS" "$WRK_DURATION" "$u" -H "Accept-Encoding: identity" -s "$BENCH_DIR/report.lua"
        sleep 0.3
        ok1=$(metric "$srv" ds_origin_requests_total operation=read status=200)
        bad1=$(metric "$srv" --sum-non2xx read)
        "${SB[@]}" record "$RESULTS" wrk --row "$row" --label "$label" --store "$(store_label "$mode")" \
            --wrk-log "$TMP/wrk-$srv.log" --unit reads/s --server-ok $(( ok1 - ok0 )) --server-bad $(( bad1 - bad0 )) \
            --body-bytes "$chunk"
        echo "$label [$(store_label "$mode")]: $(wrk_rps "$srv") reads/s, non-2xx $(( bad1 - bad0 ))" >&2
        alive_or_die "$srv"
    done
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
        "${SB[@]}" record "$RESULTS" live --row live --label "live $LIVE_READERS long-poll readers via edge" \
            --store "$(store_label "$mode")" --json "$TMP/live_$mode.json" --rc "$rc"
        stop_server "edge_$mode"
        stop_server "live_$mode"
    done
fi

# ---------------------------------------------------------------- 5. recovery
if [ "$SKIP_RECOVERY" != 1 ]; then
    # timed_start NAME MODE DIR: start the origin under storagebench.py timed-run, which writes the
    # seconds from exec to the first successful TCP connect to $TMP/NAME.ready and stays the
    # server's parent (passing SIGTERM on). Sets T_READY. (Not called in $(...): the server would
    # hold the substitution's pipe open.)
    timed_start() {
        local name=$1 mode=$2 dir=$3 port; port=$(freeport)
        local args=(origin --host "$HOST" --port "$port")
        [ "$mode" = memory ] || { args+=(--data-dir "$dir" --fsync "$mode"); SRV_DIR[$name]=$dir; }
        rm -f "$TMP/$name.ready"
        "${SB[@]}" timed-run --port "$port" --result "$TMP/$name.ready" --log "$TMP/server-$name.log" --timeout 900 \
            -- "$BIN" "${args[@]}" </dev/null >>"$TMP/server-$name.log" 2>&1 &
        SRV_PID[$name]=$!
        SRV_PORT[$name]=$port
        for _ in $(seq 9100); do [ -s "$TMP/$name.ready" ] && break; kill -0 "${SRV_PID[$name]}" 2>/dev/null || break; sleep 0.1; done
        [ -s "$TMP/$name.ready" ] && [ "$(cat "$TMP/$name.ready")" != none ] \
            || die "$name did not start listening; see $TMP/server-$name.log: $(tail -5 "$TMP/server-$name.log" 2>/dev/null)"
        T_READY=$(cat "$TMP/$name.ready")
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
    step timeout 1800 "${SB[@]}" fill "$(url rec_fill)/v1/stream" --prefix rec- --streams "$RECOVERY_STREAMS" \
        --total "$RECOVERY_BYTES" --chunk "$RECOVERY_CHUNK" --threads "$RECOVERY_FILL_THREADS" --max-seconds 1500 \
        >"$TMP/rec_fill.json" || die "filling the recovery origin failed: $(cat "$TMP/rec_fill.json")"
    FILLED=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$TMP/rec_fill.json")
    FILL_RATE=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%s s, %s MB/s" % (d["seconds"], d["mb_per_s"]))' "$TMP/rec_fill.json")
    echo "filled $FILLED bytes in $FILL_RATE" >&2
    t0=$(date +%s.%N)
    KEEP_DATA=1 stop_server rec_fill
    T_STOP=$("$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$t0" "$(date +%s.%N)")
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
    "${SB[@]}" check-read "$(url rec_restart)/v1/stream/rec-0?offset=-1" --expect "$expect" >/dev/null \
        || problem "after the restart, rec-0 did not read back $expect bytes from the start"
    stop_server rec_restart
    GIB=$("$PY" -c "import sys; print(f'{int(sys.argv[1]) / (1 << 30):.3g}')" "$FILLED")
    RLABEL="restart → port answering, $GIB GiB in $RECOVERY_STREAMS streams"
    "${SB[@]}" record "$RESULTS" value --row rec_empty --label "start → port answering, empty store" --store memory --value "$T_MEM" --unit s
    "${SB[@]}" record "$RESULTS" value --row rec_empty --label "start → port answering, empty store" --store file --value "$T_EMPTY" --unit s
    "${SB[@]}" record "$RESULTS" value --row rec_full --label "$RLABEL" --store memory --value "$T_MEM" --unit s \
        --text "${T_MEM} s (empty start: nothing to recover)"
    "${SB[@]}" record "$RESULTS" value --row rec_full --label "$RLABEL" --store file --value "$T_REC" --unit s \
        --detail "data dir $DISK bytes on disk; filled (fsync never, $RECOVERY_FILL_THREADS connections) in $FILL_RATE; SIGTERM → exit ${T_STOP} s; restarted with --fsync $RECOVERY_RESTART_FSYNC, $CACHE_NOTE"
    "${SB[@]}" record "$RESULTS" value --row rec_line --label "server's recovery line" --store file \
        --value "${REC_S:-0}" --unit s --text "${REC_LINE:-missing}"
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
facts=$TMP/facts.tsv
{
    printf 'date (UTC)\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')"
    printf 'binary\t%s (built %s UTC)\n' "$BIN" "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S')"
    printf 'CPU\t%s cores, %s\n' "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
    printf 'memory\t%s RAM\n' "$(free -h 2>/dev/null | awk '/^Mem:/{print $2}')"
    printf 'kernel\t%s\n' "$(uname -srm)"
    printf 'data dirs\t%s (filesystem %s)\n' "$TMP" "$FS"
    printf 'load\tCPU busy before start %s%%, after (servers idle) %s%%; load average before %s, after %s\n' \
        "$BUSY_BEFORE" "$BUSY_AFTER" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'wrk\t%s; -t%s, %s per run after a %s warm-up (not counted); 1-conn runs use -t1\n' \
        "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')" "$WRK_THREADS" "$WRK_DURATION" "$WRK_WARMUP"
    [ -z "${BIG_DISK:-}" ] || printf '64 KiB run\tfile store data dir reached %s\n' "$BIG_DISK"
    printf 'python\t%s\n' "$("$PY" --version 2>&1)"
} >"$facts"
method=$TMP/method.txt
cat >"$method" <<EOF
Same binary and flags for both stores; the file store differs only by --data-dir (a fresh dir per server, under $TMP) and --fsync. Servers measured one after the other (memory first), each on fresh streams; idle servers stay up during phase 1.
Appends: wrk + loadtest/bench/append.lua, POST of N bytes (application/octet-stream) round-robin over the streams, keep-alive. Non-2xx checked by wrk (status > 399) and by the server's ds_origin_requests_total{operation="append"} counters.
64 KiB appends: BIG_BYTES=$BIG_BYTES, $BIG_CONNS connections, $BIG_STREAMS streams; MB/s = appends/s × body bytes.
Catch-up reads: one stream per server filled with $READ_SMALL_STREAM_BYTES bytes (1 KiB case, --max-chunk-bytes 1024) or $READ_BIG_STREAM_BYTES bytes (1 MiB case, --max-chunk-bytes 1048576); wrk GET ?offset=-1 (the first chunk: for the file store this range is not in the 256 KiB hot tail, so each read goes to the segment files through the read pool; the OS page cache is warm). Accept-Encoding: identity. Verified before the run to be a 200 with exactly 1024 / 1048576 body bytes.
Live: durable-streams loadtest $(basename "$LIVE_CONF") --readers $LIVE_READERS --duration $LIVE_DURATION, readers on an edge (edge.conf) in front of the origin, writers on the origin; the same with a memory origin and a file origin (--fsync batch). Latency = append acknowledged → reader receipt.
Recovery: time from exec to the first successful TCP connect to the port (storagebench.py timed-run, polling every 2 ms), for an empty memory origin (the anchor), an empty file origin, and a file origin restarted on a data dir filled with RECOVERY_BYTES=$RECOVERY_BYTES over $RECOVERY_STREAMS streams ($RECOVERY_CHUNK-byte appends, --fsync never, then SIGTERM). The server's own recovery line is quoted.
The machine has $(nproc) cores, shared by the load generator and the servers: figures are comparisons between the two stores in the same run, not capacities.
EOF
"$PY" - "$facts" "$method" "$PROBLEMS" "$TMP/meta.json" "$(nproc)" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" <<'EOF'
import json, sys
facts = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if "\t" in l]
method = [l.strip() for l in open(sys.argv[2]) if l.strip()]
problems = [l.strip() for l in open(sys.argv[3]) if l.strip()]
json.dump({"facts": facts, "method": method, "problems": problems, "nproc": int(sys.argv[5]), "date": sys.argv[6]},
          open(sys.argv[4], "w"))
EOF
mkdir -p "$REPORT_DIR"
REPORT=$REPORT_DIR/bench-storage-$(date -u '+%Y-%m-%d-%H%M%S').md
"${SB[@]}" render "$RESULTS" "$TMP/meta.json" "$REPORT"
echo "report written to $REPORT"
[ -s "$PROBLEMS" ] && { echo "bench-storage: problems were seen (listed above and in the report); logs in $TMP" >&2; KEEP_TMP=1; exit 2; }
exit 0
