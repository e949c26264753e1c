#!/usr/bin/env bash
# Reproducible benchmark of the Durable Streams EDGE node against nginx and the bare origin.
#
#   loadtest/bench-edge.sh              # builds the release binary first
#   SKIP_BUILD=1 loadtest/bench-edge.sh # uses the existing .build/release/durable-streams
#
# Measures, in one run, on 127.0.0.1 only, with one origin behind both an edge and an nginx:
#   (a) cache-hit catch-up throughput: wrk GET /v1/stream/bench?offset=-1 (CATCHUP_BYTES, default 1 KiB) through the edge,
#       through nginx as a caching reverse proxy, and against the origin directly; hit ratios from
#       the edge's ds_edge_requests_total{cache="HIT"} and the origin's read counter, plus an
#       X-Cache / X-Cache-Status sample (curl); prints the ratio edge/nginx req/s;
#   (b) long-poll fan-out: `durable-streams loadtest` with a generated `live` scenario,
#       FANOUT_READERS long-poll readers of one stream (keep-alive, echoing Stream-Cursor and
#       following Stream-Next-Offset), one writer appending FANOUT_RATE 100-byte messages a second
#       straight to the origin for FANOUT_DURATION; send-to-delivery latency p50/p99 (the
#       scenario's latency_from = "send"), loss / duplication / reordering audited per reader, and
#       the collapse ratios (reader requests / origin requests); through the edge, through nginx,
#       and direct;
#   (c) SSE fan-out: the same with SSE readers (`sse` scenario, text/plain), and the number of
#       upstream SSE requests the origin saw; through the edge, through nginx
#       (proxy_buffering off), and direct.
#   For (b) and (c) the origin's open long-poll / SSE gauges are sampled every 0.5 s (peaks) and
#   the edge's upstream error counter is read before and after.
# Prints a summary block and writes it as markdown (+ the raw figures as JSON) to
# loadtest/reports/bench-edge-<date>-<time>.md. Exits non-zero if any reader lost, duplicated or
# reordered a message (or a step failed).
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
#   - an SSE relay: proxy_buffering off, proxy_cache off, proxy_read_timeout 75s (the SSE runs
#     point the readers there; nginx cannot route on a query parameter without `if`).
#   Both answer /metrics with 404: nginx has no metrics of its own, and the load tester would
#   otherwise scrape the origin's through it as if they were an edge's.
#
# Knobs (environment): WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=10s WRK_WARMUP=2s NGINX_WORKERS=auto CATCHUP_BYTES=1024
#   FANOUT_READERS=1000 FANOUT_RATE=5 (appends/s) FANOUT_DURATION=10s FANOUT_DRAIN=10s
#   FANOUT_CONNECT_RATE=500 (connections/s) LONG_POLL_TIMEOUT=30s FD_LIMIT=65536 SKIP_BUILD=0
#   WAIT_IDLE=0 (seconds to wait, at most, for the CPUs to be < 15 % busy before measuring)
# Needs wrk, nginx, curl (7.84 or later) and jq (installed with apt-get when missing, as root).
# Runtime is about 2.5 minutes plus the build. Every load loop is bounded in count and time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/loadtest/bench
REPORT_DIR=$ROOT/loadtest/reports
BIN=$ROOT/.build/release/durable-streams
BENCH_NAME=bench-edge
# shellcheck source=loadtest/bench/lib.sh
. "$BENCH_DIR/lib.sh"

WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
CATCHUP_BYTES=${CATCHUP_BYTES:-1024}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
FANOUT_READERS=${FANOUT_READERS:-1000}
FANOUT_RATE=${FANOUT_RATE:-5}
FANOUT_DURATION=${FANOUT_DURATION:-10s}
FANOUT_DRAIN=${FANOUT_DRAIN:-10s}
FANOUT_CONNECT_RATE=${FANOUT_CONNECT_RATE:-500}
LONG_POLL_TIMEOUT=${LONG_POLL_TIMEOUT:-30s}
FD_LIMIT=${FD_LIMIT:-65536}
SKIP_BUILD=${SKIP_BUILD:-0}
HOST=$BENCH_HOST

for d in "$WRK_DURATION" "$WRK_WARMUP" "$FANOUT_DURATION" "$FANOUT_DRAIN" "$LONG_POLL_TIMEOUT"; do
    [[ $d =~ ^[0-9]+s$ ]] || die "durations must be whole seconds like 10s, not '$d'"
done
LP_SECS=${LONG_POLL_TIMEOUT%s}
NGINX_LP_TIMEOUT=$(( LP_SECS + 10 ))s # nginx waits longer than the origin holds a long-poll

# ---------------------------------------------------------------- 1. tools, fd limit
need_tools wrk nginx curl jq
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

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
    log "building release binary (make release)"
    make -C "$ROOT" release >&2
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset SKIP_BUILD)"

# The load generators and the servers share these CPUs: anything else running skews every figure.
wait_idle "${WAIT_IDLE:-0}"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
exec 9>&2 # the real stderr, for cleanup messages (a trap can fire inside a redirected step)
TMP=$(mktemp -d /tmp/bench-edge.XXXXXX)
ORIGIN_PID=""
EDGE_PID=""
NGINX_PID=""
STEP_PID="" # the load step in progress (run in the background so that a signal is handled at once)
BUSY_SAMPLER_PID=""
GAUGE_SAMPLER_PID=""
# shellcheck disable=SC2317 # called by the traps below
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in $STEP_PID $GAUGE_SAMPLER_PID $BUSY_SAMPLER_PID $EDGE_PID $NGINX_PID $ORIGIN_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $STEP_PID $GAUGE_SAMPLER_PID $BUSY_SAMPLER_PID $EDGE_PID $NGINX_PID $ORIGIN_PID; do
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

ORIGIN_PORT=$(free_port)
EDGE_PORT=$(free_port "$ORIGIN_PORT")
NGINX_PORT=$(free_port "$ORIGIN_PORT" "$EDGE_PORT")
NGINX_SSE_PORT=$(free_port "$ORIGIN_PORT" "$EDGE_PORT" "$NGINX_PORT")

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
        location = /metrics { return 404; }
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
        location = /metrics { return 404; }
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

# CPU busy share sampled every 2 s for the whole run (at most an hour): others' builds and tests
# skew the figures, and the report says how busy the machine was.
( for _ in $(seq 1800); do cpu_busy; sleep 1; done >"$TMP/busy.log" 2>/dev/null ) &
BUSY_SAMPLER_PID=$!

# ---------------------------------------------------------------- helpers
run_wrk() { # name duration url [extra args...] -> $TMP/<name>.log and .json
    local name=$1 dur=$2 url=$3; shift 3
    step timeout $(( ${dur%s} + 30 )) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$dur" --latency "$@" "$url" \
        >"$TMP/$name.log" 2>&1 || die "wrk $name failed: $(tail -5 "$TMP/$name.log")"
    wrk_json "$TMP/$name.log" >"$TMP/$name.json"
}
J() { jget "$TMP/$1.json" "$2"; }

# ---------------------------------------------------------------- 3a. cache-hit catch-up
CATCHUP_PATH='/v1/stream/bench?offset=-1'
log "(a) cache-hit catch-up GET of a $CATCHUP_BYTES-byte stream: edge vs nginx proxy_cache vs origin (wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION)"
create_stream "$ORIGIN/v1/stream/bench" "$CATCHUP_BYTES"
for u in "$ORIGIN$CATCHUP_PATH" "$EDGE$CATCHUP_PATH" "$NGINX_URL$CATCHUP_PATH"; do
    got=$(http_status_size "$u")
    [ "$got" = "200 $CATCHUP_BYTES" ] || die "GET $u returned '$got', expected '200 $CATCHUP_BYTES'"
done

# catchup_run NAME BASE-URL: warm-up, then the measured wrk run with the counters read around it
# (origin reads; for the edge its catch-up outcomes), then a 200-request X-Cache sample.
catchup_run() {
    local name=$1 base=$2 r0 r1 h0=0 h1=0 t0=0 t1=0 sample='null'
    run_wrk "${name}_warm" "$WRK_WARMUP" "$base$CATCHUP_PATH" -s "$BENCH_DIR/report.lua"
    r0=$(settled_metric "$ORIGIN/metrics" ds_origin_requests_total operation=read)
    if [ "$name" = catchup_edge ]; then
        h0=$(settled_metric "$EDGE/metrics" ds_edge_requests_total class=catch_up cache=HIT)
        t0=$(metric "$EDGE/metrics" ds_edge_requests_total class=catch_up)
    fi
    run_wrk "$name" "$WRK_DURATION" "$base$CATCHUP_PATH" -s "$BENCH_DIR/report.lua"
    r1=$(settled_metric "$ORIGIN/metrics" ds_origin_requests_total operation=read)
    if [ "$name" = catchup_edge ]; then
        h1=$(settled_metric "$EDGE/metrics" ds_edge_requests_total class=catch_up cache=HIT)
        t1=$(metric "$EDGE/metrics" ds_edge_requests_total class=catch_up)
        sample=$(header_sample "$base$CATCHUP_PATH" X-Cache 200)
    elif [ "$name" = catchup_nginx ]; then
        sample=$(header_sample "$base$CATCHUP_PATH" X-Cache-Status 200)
    fi
    jq --argjson reads $(( r1 - r0 )) --argjson hits $(( h1 - h0 )) --argjson all $(( t1 - t0 )) --argjson sample "$sample" \
        '. + {origin_reads: $reads, sample: $sample} + (if $all > 0 then {edge_hits: $hits, edge_catch_up: $all} else {} end)' \
        "$TMP/$name.json" >"$TMP/$name.json.tmp" && mv "$TMP/$name.json.tmp" "$TMP/$name.json"
    echo "$name: $(J "$name" .rps) req/s, origin reads during the run: $(( r1 - r0 ))" >&2
}
catchup_run catchup_origin "$ORIGIN"
catchup_run catchup_edge "$EDGE"
catchup_run catchup_nginx "$NGINX_URL"

# ---------------------------------------------------------------- 3b/3c. fan-out
FANOUT_SECS=${FANOUT_DURATION%s}
DRAIN_SECS=${FANOUT_DRAIN%s}
# The load tester's own bound: connecting (at most 30 s + 2 × readers / connect rate), then
# duration + drain + 30 s. timeout adds a margin on top.
FANOUT_MAX=$(( 30 + 2 * FANOUT_READERS / FANOUT_CONNECT_RATE + FANOUT_SECS + DRAIN_SECS + 30 ))

# sample_gauges OUT: every 0.5 s (at most 2 × FANOUT_MAX times), the peaks so far of the origin's
# open long-poll and SSE gauges, written to OUT as JSON. Runs in the background during a fan-out.
sample_gauges() {
    local lp=0 sse=0 a b _
    for _ in $(seq $(( 2 * FANOUT_MAX ))); do
        read -r a b < <(curl -sf --max-time 2 "$ORIGIN/metrics" |
            awk '$1 == "ds_origin_open_long_polls" { a = $2 } $1 == "ds_origin_open_sse_connections" { b = $2 }
                 END { printf "%d %d\n", a, b }') || true
        [ "${a:-0}" -le "$lp" ] || lp=$a
        [ "${b:-0}" -le "$sse" ] || sse=$b
        printf '{"ds_origin_open_long_polls": %d, "ds_origin_open_sse_connections": %d}\n' "$lp" "$sse" >"$1.tmp"
        mv "$1.tmp" "$1"
        sleep 0.5
    done
}

# fanout_run NAME KIND TARGET-URL: one load-tester run of FANOUT_READERS readers at TARGET-URL,
# the writer at the origin; its JSON plus our own extras goes to $TMP/NAME.json.
fanout_run() {
    local name=$1 kind=$2 target=$3 rc=0 ue0=0 ue1=0
    cat >"$TMP/$name.conf" <<EOF
# bench-edge fan-out: $kind readers of one stream, one writer at the origin.
kind = "$kind"
streams = 1
readers_per_stream = $FANOUT_READERS
writers_per_stream = 1
appends_per_second = $FANOUT_RATE
message_bytes = 100
duration = "$FANOUT_DURATION"
drain = "$FANOUT_DRAIN"
connect_rate = $FANOUT_CONNECT_RATE
# Text lines in SSE data events too (the load tester's sse default is binary, in base64).
content_type = "text/plain"
# From the writer sending each append, as this benchmark always measured it.
latency_from = "send"
EOF
    [ "$target" != "$EDGE" ] || ue0=$(metric "$EDGE/metrics" ds_edge_upstream_errors_total)
    printf '{}\n' >"$TMP/$name.peaks"
    sample_gauges "$TMP/$name.peaks" &
    GAUGE_SAMPLER_PID=$!
    step timeout --kill-after=10 $(( FANOUT_MAX + 60 )) "$BIN" loadtest "$TMP/$name.conf" --quiet \
        --target "$target" --origin "$ORIGIN" --json "$TMP/$name.lt.json" >"$TMP/$name.txt" 2>&1 || rc=$?
    kill "$GAUGE_SAMPLER_PID" 2>/dev/null || true
    wait "$GAUGE_SAMPLER_PID" 2>/dev/null || true
    GAUGE_SAMPLER_PID=""
    [ -s "$TMP/$name.lt.json" ] || die "loadtest $name wrote no JSON (exit $rc): $(tail -5 "$TMP/$name.txt")"
    [ "$target" != "$EDGE" ] || ue1=$(metric "$EDGE/metrics" ds_edge_upstream_errors_total)
    local op=long_poll; [ "$kind" = sse ] && op=sse
    jq --arg op "$op" --argjson rc "$rc" --slurpfile peaks "$TMP/$name.peaks" \
        --argjson ue "$(if [ "$target" = "$EDGE" ]; then echo $(( ue1 - ue0 )); else echo null; fi)" '
        . + {exit_status: $rc, origin_gauge_peaks: $peaks[0], edge_upstream_errors: $ue, live_class: $op,
             reader_live_requests: (.readerRequests[$op] // 0), origin_live_requests: (.originRequests[$op] // 0),
             error_total: (.errors.connectionErrors + .errors.failedAppends + ([.errors.statuses[]] | add // 0))}
        | .live_collapse_ratio = (if .origin_live_requests > 0 then .reader_live_requests / .origin_live_requests else null end)' \
        "$TMP/$name.lt.json" >"$TMP/$name.json"
    jq -r '"\(.scenario.kind) via \(.target): p50 \(.latency.p50) ms, p99 \(.latency.p99) ms, \(.delivery.received)/\(.delivery.expected) deliveries, lost \(.delivery.lost), duplicated \(.delivery.duplicated), out of order \(.delivery.outOfOrder), reader \(.live_class) \(.reader_live_requests) vs origin \(.origin_live_requests), errors \(.error_total), exit \(.exit_status)"' "$TMP/$name.json" >&2
}
log "(b) long-poll fan-out: $FANOUT_READERS readers, $FANOUT_RATE appends/s for $FANOUT_DURATION, via edge / nginx / origin"
fanout_run lp_edge live "$EDGE"
fanout_run lp_nginx live "$NGINX_URL"
fanout_run lp_origin live "$ORIGIN"
log "(c) SSE fan-out: $FANOUT_READERS readers, $FANOUT_RATE appends/s for $FANOUT_DURATION, via edge / nginx / origin"
fanout_run sse_edge sse "$EDGE"
fanout_run sse_nginx sse "$NGINX_SSE_URL"
fanout_run sse_origin sse "$ORIGIN"

for p in "$ORIGIN_PID:origin" "$EDGE_PID:edge" "$NGINX_PID:nginx"; do
    kill -0 "${p%%:*}" 2>/dev/null || die "${p#*:} died during the run; see $TMP"
done

# ---------------------------------------------------------------- 4. summary
kill "$BUSY_SAMPLER_PID" 2>/dev/null || true
wait "$BUSY_SAMPLER_PID" 2>/dev/null || true
BUSY_SAMPLER_PID=""
BUSY_RUN=$(awk '{s+=$1; n++; if ($1>m) m=$1} END {if (n) printf "mean %d%%, max %d%% (%d samples)", s/n, m, n; else print "n/a"}' "$TMP/busy.log")
DATE=$(date -u '+%Y-%m-%d %H:%M:%S')

FACTS=$TMP/facts.tsv
{
    printf 'date (UTC)\t%s\n' "$DATE"
    printf 'git commit\t%s\n' "$(git_rev "$ROOT")"
    machine_facts
    printf 'load\tCPU busy before start: %s%%; during the run (all processes, ours included): %s; load average before: %s, after: %s\n' \
        "$BUSY_BEFORE" "$BUSY_RUN" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'fd limit\tulimit -n %s (nginx worker_rlimit_nofile %s, worker_connections 16384)\n' "$FDS" "$FDS"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"
    # shellcheck disable=SC2016 # the $uri... is nginx's, printed as it is
    printf 'nginx\t%s (worker_processes %s); cache server: proxy_cache keys_zone ds:16m in a temp dir, proxy_cache_key $uri$is_args$args, proxy_cache_valid 200 60s, proxy_cache_lock on, proxy_cache_lock_timeout/lock_age %s, proxy_read_timeout %s, HTTP/1.1 upstream keepalive 64, add_header X-Cache-Status; SSE server: proxy_buffering off, proxy_cache off, proxy_read_timeout 75s (full config in the markdown report)\n' \
        "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" "$NGINX_WORKERS$([ "$NGINX_WORKERS" = auto ] && echo " = $(nproc)")" \
        "$NGINX_LP_TIMEOUT" "$NGINX_LP_TIMEOUT"
    printf 'edge\tdurable-streams edge, defaults (= edge.conf: 256 MiB cache, 64 upstream connections, upstream long-poll timeout 40s, SSE reconnect 60s); binary built %s UTC%s\n' \
        "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S')" "$([ "$SKIP_BUILD" = 1 ] && echo ', SKIP_BUILD=1: not rebuilt by this run')"
    printf 'origin\tdurable-streams origin, in-memory, --long-poll-timeout %s\n' "$LONG_POLL_TIMEOUT"
    printf 'swift\t%s\n' "$(swift --version 2>/dev/null | grep -m1 -i 'swift version' || echo unknown)"
    printf 'wrk settings\t-t%s -c%s -d%s (+ %s warm-up per target, not counted); client and servers share the same %s CPUs\n' \
        "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION" "$WRK_WARMUP" "$(nproc)"
    printf 'fan-out\tdurable-streams loadtest (the same binary, one process, one event loop per core): %s readers (connections opened at %s/s), %s appends/s of 100 bytes for %s straight to the origin, drain up to %s; text/plain streams; latency_from = "send"\n' \
        "$FANOUT_READERS" "$FANOUT_CONNECT_RATE" "$FANOUT_RATE" "$FANOUT_DURATION" "$FANOUT_DRAIN"
} >"$FACTS"

pct() { LC_ALL=C awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "n/a"; else printf "%.2f %%\n", 100 * x }'; }
sample_text() { # name -> "; X-Cache of 200 requests after the run: HIT 200"
    jq -r 'if .sample then "; \(.sample.header) of \(.sample.count) requests after the run: " + ([.sample.values | to_entries[] | "\(.key) \(.value)"] | join(", ")) else "" end' "$TMP/$1.json"
}
TABLE=$TMP/table.tsv
NOTES=$TMP/notes.txt
: >"$NOTES"
{
    printf 'measurement\tfigure\tdetails\n'
    for key in edge nginx origin; do
        n=catchup_$key
        reqs=$(J "$n" .requests)
        case $key in
            edge)
                note="hit ratio $(pct "$(jq 'if (.edge_catch_up // 0) > 0 then .edge_hits / .edge_catch_up else null end' "$TMP/$n.json")") (ds_edge_requests_total catch_up: $(fmt_num "$(J "$n" '.edge_hits // 0')") HIT of $(fmt_num "$(J "$n" '.edge_catch_up // 0')")); origin reads during the run $(fmt_num "$(J "$n" .origin_reads)")$(sample_text "$n")"
                title=edge ;;
            nginx)
                note="hit ratio $(pct "$(jq 'if .requests > 0 then ([0, 1 - .origin_reads / .requests] | max) else null end' "$TMP/$n.json")") (1 - origin reads during the run $(fmt_num "$(J "$n" .origin_reads)") / wrk requests $(fmt_num "$reqs"))$(sample_text "$n")"
                title="nginx proxy_cache" ;;
            origin)
                note="origin reads during the run $(fmt_num "$(J "$n" .origin_reads)") (wrk completed $(fmt_num "$reqs"))"
                title="origin direct" ;;
        esac
        printf '(a) catch-up %s B, %s\t%s req/s\tp50 %s ms, p99 %s ms, socket errors %s, non-2xx %s; %s\n' \
            "$CATCHUP_BYTES" "$title" "$(fmt_num "$(J "$n" .rps)")" "$(fmt_num "$(J "$n" .lat_p50_ms)" 2)" "$(fmt_num "$(J "$n" .lat_p99_ms)" 2)" \
            "$(J "$n" .errors)" "$(J "$n" .err_status)" "$note"
    done
    printf '(a) ratio edge / nginx\t%s\tedge / origin direct %s\n' \
        "$(ratio "$(J catchup_edge .rps)" "$(J catchup_nginx .rps)")" "$(ratio "$(J catchup_edge .rps)" "$(J catchup_origin .rps)")"
    for section in lp sse; do
        label="(b) long-poll fan-out x$FANOUT_READERS"; [ "$section" = sse ] && label="(c) SSE fan-out x$FANOUT_READERS"
        for key in edge nginx origin; do
            n=${section}_$key
            title=$key; [ "$key" = origin ] && title="origin direct"
            detail=$(jq -r '
                def n: if . == null then "n/a" else tostring end;
                (if .exit_status == 0 and .delivery.lost == 0 and .delivery.duplicated == 0 and .delivery.outOfOrder == 0 then "OK" else "LOSS/DUPLICATION/REORDERING" end) as $ok
                | "\(.delivery.received)/\(.delivery.expected) deliveries, lost \(.delivery.lost), duplicated \(.delivery.duplicated), out of order \(.delivery.outOfOrder) (\(.delivery.readersWithProblems) readers with problems) -> \($ok); "
                + "p90 \(.latency.p90) ms, max \(.latency.max) ms; "
                + "reader \(.live_class) requests \(.reader_live_requests) vs origin \(.live_class) \(.origin_live_requests) -> collapse ratio \(if .live_collapse_ratio then (.live_collapse_ratio * 10 | round / 10) else "n/a" end) "
                + "(all reader reads / origin reads: \(if .collapseRatio then (.collapseRatio * 10 | round / 10) else "n/a" end)); "
                + "origin open \(if .live_class == "sse" then "SSE" else "long-polls" end) peak \(.origin_gauge_peaks[if .live_class == "sse" then "ds_origin_open_sse_connections" else "ds_origin_open_long_polls" end] | n)"
                + (if (.edges | length) > 0 then "; edge outcomes (all reader classes): " + ([.edges[0].outcomes | to_entries[] | select(.value > 0) | "\(.key) \(.value)"] | join(", "))
                   + "; edge upstream \(.live_class) \(.edges[0].upstreamRequests[.live_class] // 0), upstream errors \(.edge_upstream_errors | n)" else "" end)
                + "; reader requests " + ([.readerRequests | to_entries[] | "\(.key) \(.value)"] | join(", "))
                + "; errors \(.error_total) (connection \(.errors.connectionErrors), failed appends \(.errors.failedAppends)"
                + (if (.errors.statuses | length) > 0 then ", statuses " + ([.errors.statuses | to_entries[] | "\(.key): \(.value)"] | join(", ")) else "" end) + ")"
                + "; appends \(.delivery.appended) at \(.throughput.appendsPerSecond * 10 | round / 10)/s"' "$TMP/$n.json")
            printf '%s, %s\tp50 %s ms / p99 %s ms\t%s\n' "$label" "$title" "$(fmt_num "$(J "$n" .latency.p50)" 1)" \
                "$(fmt_num "$(J "$n" .latency.p99)" 1)" "$detail"
        done
    done
} >"$TABLE"

# Findings worth a line of their own.
for section in lp sse; do
    for key in edge nginx origin; do
        jq -r --arg what "$section via $key" '
            (if .delivery.lost > 0 or .delivery.duplicated > 0 or .delivery.outOfOrder > 0 or .exit_status != 0 then
                "\($what): \(.delivery.lost) lost / \(.delivery.duplicated) duplicated / \(.delivery.outOfOrder) out-of-order deliveries (\(.delivery.readersWithProblems) readers), load tester exit \(.exit_status)" else empty end),
            (if .error_total > 0 then "\($what): \(.error_total) reader/writer errors" else empty end)' "$TMP/${section}_$key.json" >>"$NOTES"
    done
done
jq -r 'if .origin_live_requests > 0 then
         "SSE via the edge: the origin saw \(.origin_live_requests) SSE request(s) for \(.reader_live_requests) reader SSE requests"
         + (if (.live_collapse_ratio // 0) <= 1.5 then ": one upstream SSE per client (no shared fan-out)." else " (shared upstream fan-out)." end)
       else empty end' "$TMP/sse_edge.json" >>"$NOTES"
jq -r 'if .live_collapse_ratio != null and .live_collapse_ratio < 10 then "long-poll via the edge collapsed poorly: ratio \(.live_collapse_ratio)" else empty end' \
    "$TMP/lp_edge.json" >>"$NOTES"

METHOD=$TMP/method.txt
cat >"$METHOD" <<EOF
(a) \`PUT /v1/stream/bench\` with a $CATCHUP_BYTES-byte body at the origin, then \`wrk GET /v1/stream/bench?offset=-1\` through the edge, through nginx (caching reverse proxy, config below) and against the origin directly; same wrk settings, back to back, each after its own warm-up. Hit ratio: edge from \`ds_edge_requests_total{class="catch_up"}\` deltas over the measured run (HIT / all outcomes); nginx from the origin's \`ds_origin_requests_total{operation="read"}\` delta over the measured run (1 - origin reads / wrk requests) plus an \`X-Cache-Status\` sample after it (curl, one keep-alive connection); for both, the origin's read delta is shown.
(b) \`durable-streams loadtest\` with a generated \`live\` scenario: readers do a catch-up \`GET ?offset=-1\`, then long-poll echoing \`Stream-Cursor\` and following \`Stream-Next-Offset\`. Collapse ratio = reader long-poll requests / the origin's \`ds_origin_requests_total{operation="long_poll"}\` delta (all statuses, scraped by the load tester before and after the run); the load tester's own ratio (all reader reads, catch-up included / origin read + long_poll + sse) is shown beside it.
(c) The same with an \`sse\` scenario (text/plain): readers \`GET ?offset=-1&live=sse\`, parse \`data\` / \`control\` events, follow \`streamNextOffset\`/\`streamCursor\`, reconnect with them when a response ends. Upstream SSE requests = the origin's \`ds_origin_requests_total{operation="sse"}\` delta. For (b) and (c) the origin's \`ds_origin_open_long_polls\` / \`ds_origin_open_sse_connections\` are sampled every 0.5 s during the run (peaks).
Latency (b, c): \`latency_from = "send"\`: from the writer's clock just before it sends the append (straight to the origin, at a fixed rate) to the reader's clock when the bytes carrying that message have been read; every delivery of every message to every reader counts. The load tester's readers share the CPUs with the servers, so a burst of N deliveries is read largely one socket after another: p50/p99 include the client's own processing of the burst (the same for every target): compare targets rather than read the figures as server latency.
nginx long-polls: with \`proxy_cache_lock on\`, requests waiting on the lock re-check it on a 500 ms timer (nginx has no wake-up on unlock), so collapsed long-polls are answered up to 500 ms late; the SSE runs use the second server block (unbuffered relay, one upstream SSE per client).
Loss = a message the origin acknowledged that a reader never received; duplicate = one it received twice; out of order = one that arrived after a later one. The load tester audits every reader and exits 1 on any of them, and so does this script.
Figures up to 2026-11-29 in loadtest/README.md were measured with the previous method for (b) and (c): a Python asyncio client (several reader processes, readers held until all were live, then 50 appends every 200 ms).
EOF
mkdir -p "$REPORT_DIR"
REPORT=$REPORT_DIR/bench-edge-$(date -u '+%Y-%m-%d-%H%M%S').md
render_table "Durable Streams edge benchmark — summary" "$FACTS" "$TABLE" "$NOTES"
{
    render_markdown "Durable Streams edge benchmark — $DATE" \
        "Produced by \`loadtest/bench-edge.sh\`. Client (wrk / the load tester) and servers run on the same machine, so every figure includes the load generator's own CPU use." \
        "$FACTS" "$TABLE" "$NOTES" "$METHOD"
    printf '### nginx configuration (generated, temp dir)\n\n```nginx\n'
    sed "s|$TMP|\$TMP|g" "$TMP/nginx/nginx.conf"
    printf '```\n'
} >"$REPORT"
jq -n --arg date "$DATE" --rawfile facts "$FACTS" \
    --slurpfile ce "$TMP/catchup_edge.json" --slurpfile cn "$TMP/catchup_nginx.json" --slurpfile co "$TMP/catchup_origin.json" \
    --slurpfile le "$TMP/lp_edge.json" --slurpfile ln "$TMP/lp_nginx.json" --slurpfile lo "$TMP/lp_origin.json" \
    --slurpfile se "$TMP/sse_edge.json" --slurpfile sn "$TMP/sse_nginx.json" --slurpfile so "$TMP/sse_origin.json" \
    '{date: $date, facts: ($facts | split("\n") | map(select(length > 0) | split("\t") | {(.[0]): .[1]}) | add),
      catchup: {edge: $ce[0], nginx: $cn[0], origin: $co[0]},
      longpoll: {edge: $le[0], nginx: $ln[0], origin: $lo[0]},
      sse: {edge: $se[0], nginx: $sn[0], origin: $so[0]}}' >"${REPORT%.md}.json"
echo "report written to ${REPORT#"$ROOT"/} (raw figures: $(basename "${REPORT%.md}.json"))"

fail=0
for f in lp_edge lp_nginx lp_origin sse_edge sse_nginx sse_origin; do
    [ "$(jq -r '.exit_status == 0 and .delivery.lost == 0 and .delivery.duplicated == 0 and .delivery.outOfOrder == 0' "$TMP/$f.json")" = true ] ||
        { echo "bench-edge: $f: readers saw loss, duplication or reordering" >&2; fail=1; }
done
exit "$fail"
