#!/usr/bin/env bash
# Reproducible benchmark of the Durable Streams EDGE node against nginx and the bare origin.
#
#   loadtest/bench-edge.sh              # builds the release binary first
#   SKIP_BUILD=1 loadtest/bench-edge.sh # uses the existing .build/release/durable-streams
#
# Measures, in one run, on 127.0.0.1 only, with one origin behind both an edge and an nginx:
#   (a) cache-hit catch-up throughput: wrk GET /v1/stream/bench?offset=-1 (1 KiB) through the edge,
#       through nginx as a caching reverse proxy, and against the origin directly; hit ratios from
#       the edge's ds_edge_requests_total{cache="HIT"} and the origin's read counter / X-Cache-Status;
#       prints the ratio edge/nginx req/s;
#   (b) long-poll fan-out: FANOUT_READERS long-poll readers of one stream (edgebench.py fanout, asyncio,
#       raw sockets, keep-alive, echoing Stream-Cursor and following Stream-Next-Offset), a writer
#       appending a timestamped message every FANOUT_INTERVAL s straight to the origin; append-to-
#       delivery latency p50/p99, loss and duplication per reader, and the collapse ratio (reader
#       long-polls / origin long_poll requests); through the edge, through nginx, and direct;
#   (c) SSE fan-out: the same with SSE readers (event: data / event: control), and the number of
#       upstream SSE requests the origin saw; through the edge, through nginx (proxy_buffering off),
#       and direct.
# Prints a summary block and writes it as markdown to loadtest/reports/bench-edge-<date>-<time>.md.
# Exits non-zero if any reader lost or duplicated a message (or a step failed).
#
# nginx runs from a generated config in a temp dir (never the system config), `daemon off`,
# worker_processes auto by default. Two server blocks in front of the same origin:
#   - a caching reverse proxy for catch-up reads and long-polls: proxy_cache (keys_zone in the temp
#     dir), proxy_cache_key $uri$is_args$args (the full URI, so each offset+cursor is its own entry),
#     proxy_cache_valid 200 60s, proxy_cache_lock on with proxy_cache_lock_timeout and
#     proxy_cache_lock_age above the origin's long-poll timeout (so one long-poll per URI goes
#     upstream and the others wait for its answer instead of being let through after the default
#     5 s), proxy_read_timeout above the origin's long-poll timeout, proxy_http_version 1.1 with an
#     upstream keepalive pool, add_header X-Cache-Status $upstream_cache_status;
#   - an SSE relay: proxy_buffering off, proxy_cache off, proxy_read_timeout 75s (an SSE URL is
#     sent there by the readers; nginx cannot route on a query parameter without `if`).
#
# Knobs (environment): WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=10s WRK_WARMUP=2s NGINX_WORKERS=auto
#   FANOUT_READERS=1000 FANOUT_MESSAGES=50 FANOUT_INTERVAL=0.2 FANOUT_CONNECT_RATE=500 (connections/s)
#   FANOUT_PROCS=2 (reader processes) FANOUT_DRAIN=5 LONG_POLL_TIMEOUT=30s FD_LIMIT=65536 SKIP_BUILD=0
#   WAIT_IDLE=0 (seconds to wait, at most, for the CPUs to be < 15 % busy before measuring)
# Runtime is about 2.5 minutes plus the build. Every load loop is bounded in count and time.
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
FANOUT_READERS=${FANOUT_READERS:-1000}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-50}
FANOUT_INTERVAL=${FANOUT_INTERVAL:-0.2}
FANOUT_CONNECT_RATE=${FANOUT_CONNECT_RATE:-500}
FANOUT_PROCS=${FANOUT_PROCS:-2}
FANOUT_DRAIN=${FANOUT_DRAIN:-5}
FANOUT_SETTLE=${FANOUT_SETTLE:-1}
LONG_POLL_TIMEOUT=${LONG_POLL_TIMEOUT:-30s}
FD_LIMIT=${FD_LIMIT:-65536}
SKIP_BUILD=${SKIP_BUILD:-0}
HOST=127.0.0.1

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench-edge: %s\n' "$*" >&2; exit 1; }

[[ "$LONG_POLL_TIMEOUT" =~ ^[0-9]+s$ ]] || die "LONG_POLL_TIMEOUT must be whole seconds, e.g. 30s"
LP_SECS=${LONG_POLL_TIMEOUT%s}
NGINX_LP_TIMEOUT=$(( LP_SECS + 10 ))s # nginx waits longer than the origin holds a long-poll

# ---------------------------------------------------------------- 1. tools, fd limit
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
EB=("$PY" "$BENCH_DIR/edgebench.py")

# Every process started below inherits this limit: the readers hold FANOUT_READERS sockets, the
# edge and nginx up to twice that (client side + upstream side when SSE is relayed per client).
hard=$(ulimit -Hn)
want=$FD_LIMIT
[ "$hard" = unlimited ] || [ "$hard" -ge "$want" ] || want=$hard
ulimit -n "$want" 2>/dev/null || die "could not raise the open-files limit to $want (ulimit -n)"
FDS=$(ulimit -n)
[ "$FDS" -ge $(( 2 * FANOUT_READERS + 512 )) ] ||
    die "open-files limit $FDS is too low for $FANOUT_READERS readers (need $(( 2 * FANOUT_READERS + 512 ))); raise the hard limit"

# ---------------------------------------------------------------- 2. build + start servers
if [ "$SKIP_BUILD" != 1 ]; then
    log "building release binary (swift build -c release --product durable-streams)"
    (cd "$ROOT" && swift build -c release --product durable-streams) >&2
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset SKIP_BUILD)"

# How busy the CPUs are (percent, over 1 s) before we start: the load generators and the servers
# share these CPUs, so anything else running (a build, tests) skews every figure.
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
TMP=$(mktemp -d /tmp/bench-edge.XXXXXX)
ORIGIN_PID=""
EDGE_PID=""
NGINX_PID=""
STEP_PID="" # the load step in progress (run in the background so that a signal is handled at once)
BUSY_SAMPLER_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in $STEP_PID $BUSY_SAMPLER_PID $EDGE_PID $NGINX_PID $ORIGIN_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $STEP_PID $BUSY_SAMPLER_PID $EDGE_PID $NGINX_PID $ORIGIN_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        echo "bench-edge: failed (rc=$rc); logs kept in $TMP" >&9
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

freeport() { # a free port not in the arguments
    local p
    for _ in 1 2 3 4 5; do
        p=$("${DSB[@]}" freeport)
        case " $* " in *" $p "*) ;; *) echo "$p"; return 0;; esac
    done
    die "no free port"
}

ORIGIN_PORT=$(freeport)
EDGE_PORT=$(freeport "$ORIGIN_PORT")
NGINX_PORT=$(freeport "$ORIGIN_PORT" "$EDGE_PORT")
NGINX_SSE_PORT=$(freeport "$ORIGIN_PORT" "$EDGE_PORT" "$NGINX_PORT")

log "starting origin on $HOST:$ORIGIN_PORT (--long-poll-timeout $LONG_POLL_TIMEOUT)"
"$BIN" origin --host "$HOST" --port "$ORIGIN_PORT" --long-poll-timeout "$LONG_POLL_TIMEOUT" \
    >"$TMP/origin.log" 2>&1 &
ORIGIN_PID=$!
wait_port "$ORIGIN_PORT" "$ORIGIN_PID" origin
ORIGIN=http://$HOST:$ORIGIN_PORT

log "starting edge on $HOST:$EDGE_PORT -> $ORIGIN (default settings, as in edge.conf)"
"$BIN" edge --listen "$HOST:$EDGE_PORT" --upstream "$ORIGIN" >"$TMP/edge.log" 2>&1 &
EDGE_PID=$!
wait_port "$EDGE_PORT" "$EDGE_PID" edge
EDGE=http://$HOST:$EDGE_PORT

mkdir -p "$TMP/nginx/tmp" "$TMP/nginx/cache"
# nginx workers run as an unprivileged user when started as root: let them use the cache dirs.
chmod a+rx "$TMP" "$TMP/nginx"
chmod a+rwx "$TMP/nginx/tmp" "$TMP/nginx/cache"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile $FDS;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout 65;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=ds:16m max_size=256m inactive=10m use_temp_path=off;
    upstream origin {
        server $HOST:$ORIGIN_PORT;
        keepalive 64;
    }
    # Catch-up reads and long-polls: a caching reverse proxy.
    server {
        listen $HOST:$NGINX_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache ds;
            proxy_cache_key \$uri\$is_args\$args;
            proxy_cache_valid 200 60s;
            proxy_cache_lock on;
            proxy_cache_lock_timeout ${NGINX_LP_TIMEOUT};
            proxy_cache_lock_age ${NGINX_LP_TIMEOUT};
            proxy_read_timeout ${NGINX_LP_TIMEOUT};
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
    # SSE: relayed unbuffered, uncached.
    server {
        listen $HOST:$NGINX_SSE_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 75s;
        }
    }
}
EOF
log "starting nginx on $HOST:$NGINX_PORT (cache) and $HOST:$NGINX_SSE_PORT (SSE), worker_processes $NGINX_WORKERS"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
wait_port "$NGINX_PORT" "$NGINX_PID" nginx
wait_port "$NGINX_SSE_PORT" "$NGINX_PID" nginx
NGINX_URL=http://$HOST:$NGINX_PORT
NGINX_SSE_URL=http://$HOST:$NGINX_SSE_PORT

# CPU busy share sampled every 2 s for the whole run (others' builds/tests skew the figures).
( while :; do cpu_busy; sleep 1; done >"$TMP/busy.log" 2>/dev/null ) &
BUSY_SAMPLER_PID=$!

# ---------------------------------------------------------------- helpers
WRK_TIMEOUT=$(( ${WRK_DURATION%s} + 30 ))

run_wrk() { # name duration url [extra args...] -> k=v lines in $TMP/<name>.kv
    local name=$1 dur=$2 url=$3; shift 3
    step timeout "$WRK_TIMEOUT" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$dur" --latency "$@" "$url" \
        >"$TMP/$name.log" 2>&1 || die "wrk $name failed: $(tail -5 "$TMP/$name.log")"
    "${DSB[@]}" wrk-parse "$TMP/$name.log" >"$TMP/$name.kv"
}
kv() { sed -n "s/^$2=//p" "$TMP/$1.kv"; }
wrk_json() { # name -> JSON members (no braces) of the wrk figures
    local n=$1
    printf '"rps": %s, "requests": %s, "bytes": %s, "lat_p50_ms": %s, "lat_p99_ms": %s, "errors": %s, "wrk_status_err": %s' \
        "$(kv "$n" rps)" "$(kv "$n" requests)" "$(kv "$n" bytes)" "$(kv "$n" lat_p50_ms)" "$(kv "$n" lat_p99_ms)" \
        $(( $(kv "$n" err_connect) + $(kv "$n" err_read) + $(kv "$n" err_write) + $(kv "$n" err_timeout) )) \
        "$(kv "$n" err_status)"
}
ometric() { "${DSB[@]}" metric "$ORIGIN/metrics" "$@"; }
emetric() { "${DSB[@]}" metric "$EDGE/metrics" "$@"; }
jstr() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# ---------------------------------------------------------------- 3a. cache-hit catch-up
CATCHUP_PATH=/v1/stream/bench?offset=-1
log "(a) cache-hit catch-up GET of a 1 KiB stream: edge vs nginx proxy_cache vs origin (wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION)"
"${DSB[@]}" create "$ORIGIN/v1/stream/bench" --bytes 1024 >/dev/null
for u in "$ORIGIN$CATCHUP_PATH" "$EDGE$CATCHUP_PATH" "$NGINX_URL$CATCHUP_PATH"; do
    size=$("$PY" -c 'import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1], timeout=10)
print(r.status, len(r.read()))' "$u")
    [ "$size" = "200 1024" ] || die "GET $u returned '$size', expected '200 1024'"
done

catchup_run() { # name base-url
    local name=$1 base=$2 r0 r1
    run_wrk "${name}_warm" "$WRK_WARMUP" "$base$CATCHUP_PATH" -s "$BENCH_DIR/report.lua"
    r0=$(ometric ds_origin_requests_total operation=read)
    if [ "$name" = catchup_edge ]; then
        h0=$(emetric ds_edge_requests_total class=catch_up cache=HIT); t0=$(emetric ds_edge_requests_total class=catch_up)
    fi
    run_wrk "$name" "$WRK_DURATION" "$base$CATCHUP_PATH" -s "$BENCH_DIR/report.lua"
    r1=$(ometric ds_origin_requests_total operation=read)
    local extra="\"origin_reads\": $(( r1 - r0 ))"
    if [ "$name" = catchup_edge ]; then
        h1=$(emetric ds_edge_requests_total class=catch_up cache=HIT); t1=$(emetric ds_edge_requests_total class=catch_up)
        extra="$extra, \"edge_hits\": $(( h1 - h0 )), \"edge_catch_up\": $(( t1 - t0 ))"
        extra="$extra, \"sample\": $(timeout 30 "${EB[@]}" xcache "$base$CATCHUP_PATH" --count 200 --header X-Cache)"
    elif [ "$name" = catchup_nginx ]; then
        extra="$extra, \"sample\": $(timeout 30 "${EB[@]}" xcache "$base$CATCHUP_PATH" --count 200 --header X-Cache-Status)"
    fi
    printf '{%s, %s}' "$(wrk_json "$name")" "$extra" >"$TMP/$name.json"
    echo "$name: $(kv "$name" rps) req/s, origin reads during the run: $(( r1 - r0 ))" >&2
}
catchup_run catchup_origin "$ORIGIN"
catchup_run catchup_edge "$EDGE"
catchup_run catchup_nginx "$NGINX_URL"

# ---------------------------------------------------------------- 3b/3c. fan-out
FANOUT_MAX=$(( 30 + FANOUT_READERS / ${FANOUT_CONNECT_RATE%.*} + ${FANOUT_DRAIN%.*} \
    + $("$PY" -c "import math; print(math.ceil($FANOUT_MESSAGES * $FANOUT_INTERVAL))") ))
fanout_run() { # name mode label base-url [--edge URL]
    local name=$1 mode=$2 label=$3 base=$4; shift 4
    step timeout $(( FANOUT_MAX + 60 )) "${EB[@]}" fanout --mode "$mode" --label "$label" --base "$base" \
        --origin "$ORIGIN" "$@" --stream "$name" --readers "$FANOUT_READERS" --messages "$FANOUT_MESSAGES" \
        --interval "$FANOUT_INTERVAL" --connect-rate "$FANOUT_CONNECT_RATE" --procs "$FANOUT_PROCS" \
        --drain "$FANOUT_DRAIN" --settle "$FANOUT_SETTLE" --max-seconds "$FANOUT_MAX" \
        >"$TMP/$name.json" 2>"$TMP/$name.err" || die "fanout $name failed: $(tail -5 "$TMP/$name.err")"
    "${EB[@]}" brief "$TMP/$name.json" >&2
}
log "(b) long-poll fan-out: $FANOUT_READERS readers, $FANOUT_MESSAGES messages every ${FANOUT_INTERVAL}s, via edge / nginx / origin"
fanout_run lp_edge long-poll edge "$EDGE" --edge "$EDGE"
fanout_run lp_nginx long-poll nginx "$NGINX_URL"
fanout_run lp_origin long-poll origin "$ORIGIN"
log "(c) SSE fan-out: $FANOUT_READERS readers, $FANOUT_MESSAGES messages every ${FANOUT_INTERVAL}s, via edge / nginx / origin"
fanout_run sse_edge sse edge "$EDGE" --edge "$EDGE"
fanout_run sse_nginx sse nginx "$NGINX_SSE_URL"
fanout_run sse_origin sse origin "$ORIGIN"

for p in "$ORIGIN_PID:origin" "$EDGE_PID:edge" "$NGINX_PID:nginx"; do
    kill -0 "${p%%:*}" 2>/dev/null || die "${p#*:} died during the run; see $TMP"
done

# ---------------------------------------------------------------- 4. summary
kill "$BUSY_SAMPLER_PID" 2>/dev/null || true
wait "$BUSY_SAMPLER_PID" 2>/dev/null || true
BUSY_SAMPLER_PID=""
BUSY_RUN=$(awk '{s+=$1; n++; if ($1>m) m=$1} END {if (n) printf "mean %d%%, max %d%% (%d samples)", s/n, m, n; else print "n/a"}' "$TMP/busy.log")
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
  "load": $(jstr "CPU busy before start: ${BUSY_BEFORE}%; during the run (all processes, ours included): $BUSY_RUN; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"),
  "fd_limit": $(jstr "ulimit -n $FDS (nginx worker_rlimit_nofile $FDS, worker_connections 16384)"),
  "nginx_workers": $(jstr "$NGINX_WORKERS$([ "$NGINX_WORKERS" = auto ] && echo " = $(nproc)")"),
  "nginx_config": $(jstr "cache server: proxy_cache keys_zone ds:16m in a temp dir, proxy_cache_key \$uri\$is_args\$args, proxy_cache_valid 200 60s, proxy_cache_lock on, proxy_cache_lock_timeout/lock_age $NGINX_LP_TIMEOUT, proxy_read_timeout $NGINX_LP_TIMEOUT, HTTP/1.1 upstream keepalive 64, add_header X-Cache-Status; SSE server: proxy_buffering off, proxy_cache off, proxy_read_timeout 75s (full config in the report)"),
  "nginx_conf_text": $("$PY" -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().replace(sys.argv[2], "$TMP")))' "$TMP/nginx/nginx.conf" "$TMP"),
  "long_poll_timeout": $(jstr "$LONG_POLL_TIMEOUT"),
  "binary": $(jstr "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S') UTC$([ "$SKIP_BUILD" = 1 ] && echo ', SKIP_BUILD=1: not rebuilt by this run')"),
  "wrk_settings": {"threads": $WRK_THREADS, "connections": $WRK_CONNS, "duration": $(jstr "$WRK_DURATION"), "warmup": $(jstr "$WRK_WARMUP")},
  "fanout_settings": {"readers": $FANOUT_READERS, "messages": $FANOUT_MESSAGES, "interval": $FANOUT_INTERVAL, "bytes": 100,
                      "connect_rate": $FANOUT_CONNECT_RATE, "procs": $FANOUT_PROCS, "settle": $FANOUT_SETTLE, "drain": $FANOUT_DRAIN},
  "catchup": {"edge": $(cat "$TMP/catchup_edge.json"), "nginx": $(cat "$TMP/catchup_nginx.json"), "origin": $(cat "$TMP/catchup_origin.json")},
  "longpoll": {"edge": $(cat "$TMP/lp_edge.json"), "nginx": $(cat "$TMP/lp_nginx.json"), "origin": $(cat "$TMP/lp_origin.json")},
  "sse": {"edge": $(cat "$TMP/sse_edge.json"), "nginx": $(cat "$TMP/sse_nginx.json"), "origin": $(cat "$TMP/sse_origin.json")}
}
EOF
mkdir -p "$REPORT_DIR"
REPORT=$REPORT_DIR/bench-edge-$(date -u '+%Y-%m-%d-%H%M%S').md
"${EB[@]}" render "$TMP/results.json" "$REPORT"
cp "$TMP/results.json" "${REPORT%.md}.json"
echo "report written to ${REPORT#"$ROOT"/} (raw figures: $(basename "${REPORT%.md}.json"))"

fail=0
for f in lp_edge lp_nginx lp_origin sse_edge sse_nginx sse_origin; do
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["lost"]==0 and d["duplicates"]==0 else 1)' \
        "$TMP/$f.json" || { echo "bench-edge: $f: readers saw loss or duplication" >&2; fail=1; }
done
exit "$fail"
