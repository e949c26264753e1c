#!/usr/bin/env bash
# Reproducible side-by-side benchmark of the Durable Streams origin.
#
#   loadtest/bench-origin.sh              # builds the release binary first
#   SKIP_BUILD=1 loadtest/bench-origin.sh # uses the existing .build/release/durable-streams
#
# Measures, in one run, on 127.0.0.1 only:
#   (a) catch-up GET req/s of a 1 KiB chunk from the origin vs. nginx serving a 1 KiB static file
#       (same wrk settings), and the ratio origin/nginx;
#   (b) small-append throughput: appends/s of 100-byte POSTs over WRK_CONNS connections, to one
#       stream and spread over APPEND_SPREAD streams, checking that no append got a non-2xx;
#   (c) append -> long-poll wake latency p50/p99 with 1 reader and with LAT_POLLERS_N readers.
# Prints a summary block and writes it as markdown to loadtest/reports/bench-origin-<date>.md.
#
# nginx runs from a generated config in a temp dir (never the system config), `daemon off`,
# worker_processes auto by default (= nproc, matching the origin's one event-loop thread per core);
# set NGINX_WORKERS=1 to compare against a single worker.
#
# Knobs (environment): WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=10s WRK_WARMUP=2s NGINX_WORKERS=auto
#   APPEND_SPREAD=4 LAT_ROUNDS=500 LAT_POLLERS_N=50 LAT_ROUNDS_N=200 LONG_POLL_TIMEOUT=30s SKIP_BUILD=0
#   WAIT_IDLE=0 (seconds to wait, at most, for the CPUs to be < 15 % busy before measuring)
# Runtime is about 75 s plus the build. Every load loop is bounded in count and time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/loadtest/bench
REPORT_DIR=$ROOT/loadtest/reports
BIN=$ROOT/.build/release/durable-streams

WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
APPEND_SPREAD=${APPEND_SPREAD:-4}
LAT_ROUNDS=${LAT_ROUNDS:-500}
LAT_POLLERS_N=${LAT_POLLERS_N:-50}
LAT_ROUNDS_N=${LAT_ROUNDS_N:-200}
LONG_POLL_TIMEOUT=${LONG_POLL_TIMEOUT:-30s}
SKIP_BUILD=${SKIP_BUILD:-0}
HOST=127.0.0.1

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench-origin: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. tools
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${need[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
PY=python3
DSB=("$PY" "$BENCH_DIR/dsbench.py")

# ---------------------------------------------------------------- 2. build + start servers
if [ "$SKIP_BUILD" != 1 ]; then
    log "building release binary (swift build -c release --product durable-streams)"
    (cd "$ROOT" && swift build -c release --product durable-streams) >&2
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset SKIP_BUILD)"

# How busy the CPUs are (percent, over 1 s) before we start: the load generator and both servers
# share these CPUs, so anything else running (a build, tests) skews every figure. WAIT_IDLE=N waits
# up to N seconds for the machine to go quiet (< 15 % busy) first.
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
exec 9>&2 # the real stderr, for cleanup messages (a trap can fire inside a redirected step)
TMP=$(mktemp -d /tmp/bench-origin.XXXXXX)
ORIGIN_PID=""
NGINX_PID=""
STEP_PID="" # the load step in progress (run in the background so that a signal is handled at once)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in $STEP_PID $ORIGIN_PID $NGINX_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $STEP_PID $ORIGIN_PID $NGINX_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        echo "bench-origin: failed (rc=$rc); logs kept in $TMP" >&9
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

wait_port() { # port pid name
    for _ in $(seq 150); do
        kill -0 "$2" 2>/dev/null || die "$3 exited early; see $TMP"
        (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$3 did not listen on $HOST:$1 within 15 s"
}

ORIGIN_PORT=$("${DSB[@]}" freeport)
log "starting origin on $HOST:$ORIGIN_PORT"
"$BIN" origin --host "$HOST" --port "$ORIGIN_PORT" --long-poll-timeout "$LONG_POLL_TIMEOUT" \
    >"$TMP/origin.log" 2>&1 &
ORIGIN_PID=$!
wait_port "$ORIGIN_PORT" "$ORIGIN_PID" origin
ORIGIN=http://$HOST:$ORIGIN_PORT

NGINX_PORT=$("${DSB[@]}" freeport)
[ "$NGINX_PORT" != "$ORIGIN_PORT" ] || NGINX_PORT=$("${DSB[@]}" freeport)
mkdir -p "$TMP/nginx/www" "$TMP/nginx/tmp"
# nginx workers run as an unprivileged user when started as root: let them read the docroot.
chmod a+rx "$TMP" "$TMP/nginx" "$TMP/nginx/www"
head -c 1023 /dev/zero | tr '\0' 'x' >"$TMP/nginx/www/1k.bin"
echo >>"$TMP/nginx/www/1k.bin"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 65;
    open_file_cache max=16 inactive=60s;
    default_type application/octet-stream;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        listen $HOST:$NGINX_PORT;
        root $TMP/nginx/www;
        location / { }
    }
}
EOF
log "starting nginx on $HOST:$NGINX_PORT (worker_processes $NGINX_WORKERS, config $TMP/nginx/nginx.conf)"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
wait_port "$NGINX_PORT" "$NGINX_PID" nginx

# ---------------------------------------------------------------- helpers
WRK_TIMEOUT=$(( ${WRK_DURATION%s} + 30 ))

run_wrk() { # name duration url [extra args...] -> k=v lines in $TMP/<name>.kv
    local name=$1 dur=$2 url=$3; shift 3
    step timeout "$WRK_TIMEOUT" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$dur" --latency "$@" "$url" \
        >"$TMP/$name.log" 2>&1 || die "wrk $name failed: $(tail -5 "$TMP/$name.log")"
    "${DSB[@]}" wrk-parse "$TMP/$name.log" >"$TMP/$name.kv"
}
kv() { sed -n "s/^$2=//p" "$TMP/$1.kv"; }
wrk_json() { # name -> JSON object of the wrk figures
    local n=$1
    printf '{"rps": %s, "requests": %s, "bytes": %s, "lat_p50_ms": %s, "lat_p99_ms": %s, "errors": %s, "wrk_status_err": %s}' \
        "$(kv "$n" rps)" "$(kv "$n" requests)" "$(kv "$n" bytes)" "$(kv "$n" lat_p50_ms)" "$(kv "$n" lat_p99_ms)" \
        $(( $(kv "$n" err_connect) + $(kv "$n" err_read) + $(kv "$n" err_write) + $(kv "$n" err_timeout) )) \
        "$(kv "$n" err_status)"
}
metric() { "${DSB[@]}" metric "$ORIGIN/metrics" "$@"; }

# ---------------------------------------------------------------- 3a. catch-up GET vs nginx
log "(a) catch-up GET of a 1 KiB chunk: origin vs nginx (wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION)"
"${DSB[@]}" create "$ORIGIN/v1/stream/bench" --bytes 1024 >/dev/null
# Sanity: both targets return exactly 1024 body bytes.
for u in "$ORIGIN/v1/stream/bench?offset=-1" "http://$HOST:$NGINX_PORT/1k.bin"; do
    size=$("$PY" -c 'import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1], timeout=10)
print(r.status, len(r.read()))' "$u")
    [ "$size" = "200 1024" ] || die "GET $u returned '$size', expected '200 1024'"
done
run_wrk catchup_origin_warm "$WRK_WARMUP" "$ORIGIN/v1/stream/bench?offset=-1" -s "$BENCH_DIR/report.lua"
run_wrk catchup_origin "$WRK_DURATION" "$ORIGIN/v1/stream/bench?offset=-1" -s "$BENCH_DIR/report.lua"
echo "origin: $(kv catchup_origin rps) req/s" >&2
run_wrk catchup_nginx_warm "$WRK_WARMUP" "http://$HOST:$NGINX_PORT/1k.bin" -s "$BENCH_DIR/report.lua"
run_wrk catchup_nginx "$WRK_DURATION" "http://$HOST:$NGINX_PORT/1k.bin" -s "$BENCH_DIR/report.lua"
echo "nginx:  $(kv catchup_nginx rps) req/s" >&2

# ---------------------------------------------------------------- 3b. small appends
export BENCH_DIR APPEND_BYTES=100
append_run() { # name streams prefix
    local name=$1 streams=$2 prefix=$3
    for i in $(seq 0 $(( streams - 1 ))); do "${DSB[@]}" create "$ORIGIN/v1/stream/$prefix$i" >/dev/null; done
    APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
        run_wrk "${name}_warm" "$WRK_WARMUP" "$ORIGIN/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
    local ok0 bad0 ok1 bad1
    ok0=$(metric ds_origin_requests_total operation=append status=204)
    bad0=$(metric --sum-non2xx append)
    APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
        run_wrk "$name" "$WRK_DURATION" "$ORIGIN/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
    sleep 0.5 # let in-flight appends finish before reading the counters
    ok1=$(metric ds_origin_requests_total operation=append status=204)
    bad1=$(metric --sum-non2xx append)
    local wrk_bad; wrk_bad=$(kv "$name" err_status)
    printf '{"streams": %s, "origin_204": %s, "origin_non2xx": %s, "non2xx": %s, %s' \
        "$streams" $(( ok1 - ok0 )) $(( bad1 - bad0 )) $(( bad1 - bad0 + wrk_bad )) \
        "$(wrk_json "$name" | cut -c2-)" >"$TMP/$name.json"
    echo "$name: $(kv "$name" rps) appends/s, non-2xx: wrk $wrk_bad / origin $(( bad1 - bad0 ))" >&2
}
log "(b) small appends: 100-byte POSTs over $WRK_CONNS connections to 1 stream"
append_run append_1 1 "append-one-"
log "(b) small appends: 100-byte POSTs over $WRK_CONNS connections spread over $APPEND_SPREAD streams"
append_run append_n "$APPEND_SPREAD" "append-spread-"

# ---------------------------------------------------------------- 3c. long-poll wake latency
log "(c) append -> long-poll wake latency, 1 reader, $LAT_ROUNDS rounds"
step timeout 120 "${DSB[@]}" latency --base "$ORIGIN" --stream latency-1 --pollers 1 --rounds "$LAT_ROUNDS" \
    --max-seconds 45 >"$TMP/latency_1.json" || die "latency (1 reader) failed"
cat "$TMP/latency_1.json" >&2
log "(c) append -> long-poll wake latency, $LAT_POLLERS_N readers on one stream, $LAT_ROUNDS_N rounds"
step timeout 120 "${DSB[@]}" latency --base "$ORIGIN" --stream "latency-$LAT_POLLERS_N" --pollers "$LAT_POLLERS_N" \
    --rounds "$LAT_ROUNDS_N" --max-seconds 45 >"$TMP/latency_n.json" || die "latency ($LAT_POLLERS_N readers) failed"
cat "$TMP/latency_n.json" >&2

kill -0 "$ORIGIN_PID" 2>/dev/null || die "origin died during the run; see $TMP/origin.log"

# ---------------------------------------------------------------- 4. summary
BUSY_AFTER=$(cpu_busy) # our servers are idle now: anything above a few % is someone else's work
jstr() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
git_rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain -- Sources Package.swift 2>/dev/null)" ]; then
    git_rev="$git_rev (+ uncommitted changes in Sources/)"
fi
cat >"$TMP/results.json" <<EOF
{
  "date": $(jstr "$(date -u '+%Y-%m-%d %H:%M:%S')"),
  "git": $(jstr "$git_rev"),
  "machine": {
    "nproc": $(nproc),
    "cpu": $(jstr "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"),
    "kernel": $(jstr "$(uname -srm)"),
    "mem": $(jstr "$(free -h 2>/dev/null | awk '/^Mem:/{print $2}') RAM"),
    "wrk": $(jstr "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"),
    "nginx": $(jstr "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"),
    "swift": $(jstr "$(swift --version 2>/dev/null | grep -m1 -i 'swift version' || echo unknown)"),
    "python": $(jstr "$("$PY" --version 2>&1)")
  },
  "load": $(jstr "CPU busy before start: ${BUSY_BEFORE}%, just after (servers idle): ${BUSY_AFTER}%; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"),
  "nginx_workers": $(jstr "$NGINX_WORKERS$([ "$NGINX_WORKERS" = auto ] && echo " = $(nproc)")"),
  "long_poll_timeout": $(jstr "$LONG_POLL_TIMEOUT"),
  "binary": $(jstr "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S') UTC$([ "$SKIP_BUILD" = 1 ] && echo ', SKIP_BUILD=1: not rebuilt by this run')"),
  "wrk_settings": {"threads": $WRK_THREADS, "connections": $WRK_CONNS, "duration": $(jstr "$WRK_DURATION"), "warmup": $(jstr "$WRK_WARMUP")},
  "catchup_origin": $(wrk_json catchup_origin),
  "catchup_nginx": $(wrk_json catchup_nginx),
  "append_1": $(cat "$TMP/append_1.json"),
  "append_n": $(cat "$TMP/append_n.json"),
  "latency_1": $(cat "$TMP/latency_1.json"),
  "latency_n": $(cat "$TMP/latency_n.json")
}
EOF
mkdir -p "$REPORT_DIR"
REPORT=$REPORT_DIR/bench-origin-$(date -u '+%Y-%m-%d-%H%M%S').md
"${DSB[@]}" render "$TMP/results.json" "$REPORT"
echo "report written to ${REPORT#"$ROOT"/}"

fail=0
for f in append_1 append_n; do
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["non2xx"]==0 and d["errors"]==0 else 1)' \
        "$TMP/$f.json" || { echo "bench-origin: $f had non-2xx responses or socket errors" >&2; fail=1; }
done
for f in latency_1 latency_n; do
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["failures"]==0 else 1)' \
        "$TMP/$f.json" || { echo "bench-origin: $f had failed deliveries" >&2; fail=1; }
done
exit "$fail"
