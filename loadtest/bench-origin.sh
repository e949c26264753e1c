#!/usr/bin/env bash
# Reproducible side-by-side benchmark of the Durable Streams origin.
#
#   loadtest/bench-origin.sh              # builds the release binary first
#   SKIP_BUILD=1 loadtest/bench-origin.sh # uses the existing .build/release/durable-streams
#
# Measures, in one run, on 127.0.0.1 only:
#   (a) catch-up GET req/s of a 1 KiB chunk from the origin vs. nginx serving a 1 KiB static file
#       (wrk + bench/report.lua, same settings), and the ratio origin/nginx;
#   (b) small-append throughput: appends/s of 100-byte POSTs (wrk + bench/append.lua) over
#       WRK_CONNS connections, to one stream and spread over APPEND_SPREAD streams, checking that
#       no append got a non-2xx, both in wrk's count and in the origin's own counters;
#   (c) append -> long-poll wake latency p50/p99 with 1 reader and with LAT_READERS_N readers:
#       `durable-streams loadtest` with a generated `live` scenario, readers straight at the
#       origin, latency_from = "send" (from the writer sending the append to the reader having
#       the response carrying it). The anchor is the round trip of one append with nothing else
#       going on (wrk -t1 -c1 + bench/append.lua).
# Prints a summary block and writes it as markdown (+ the raw figures as JSON) to
# loadtest/reports/bench-origin-<date>-<time>.md.
#
# nginx runs from a generated config in a temp dir (never the system config), `daemon off`,
# worker_processes auto by default (= nproc, matching the origin's one event-loop thread per core);
# set NGINX_WORKERS=1 to compare against a single worker.
#
# Knobs (environment): WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=10s WRK_WARMUP=2s NGINX_WORKERS=auto
#   APPEND_SPREAD=4 LAT_READERS_N=50 LAT_RATE=50 LAT_RATE_N=20 (appends/s) LAT_DURATION=10s
#   RTT_DURATION=3s LONG_POLL_TIMEOUT=30s SKIP_BUILD=0
#   WAIT_IDLE=0 (seconds to wait, at most, for the CPUs to be < 15 % busy before measuring)
# Needs wrk, nginx, curl and jq (installed with apt-get when missing and run as root).
# Runtime is about 80 s plus the build. Every load loop is bounded in count and time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/loadtest/bench
REPORT_DIR=$ROOT/loadtest/reports
BIN=$ROOT/.build/release/durable-streams
BENCH_NAME=bench-origin
# shellcheck source=loadtest/bench/lib.sh
. "$BENCH_DIR/lib.sh"

WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
APPEND_SPREAD=${APPEND_SPREAD:-4}
LAT_READERS_N=${LAT_READERS_N:-50}
LAT_RATE=${LAT_RATE:-50}
LAT_RATE_N=${LAT_RATE_N:-20}
LAT_DURATION=${LAT_DURATION:-10s}
RTT_DURATION=${RTT_DURATION:-3s}
LONG_POLL_TIMEOUT=${LONG_POLL_TIMEOUT:-30s}
SKIP_BUILD=${SKIP_BUILD:-0}
HOST=$BENCH_HOST

for d in "$WRK_DURATION" "$WRK_WARMUP" "$LAT_DURATION" "$RTT_DURATION"; do
    [[ $d =~ ^[0-9]+s$ ]] || die "durations must be whole seconds like 10s, not '$d'"
done

# ---------------------------------------------------------------- 1. tools
need_tools wrk nginx curl jq
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- 2. build + start servers
if [ "$SKIP_BUILD" != 1 ]; then
    log "building release binary (make release)"
    make -C "$ROOT" release >&2
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset SKIP_BUILD)"

# The load generators and both servers share these CPUs: anything else running skews every figure.
wait_idle "${WAIT_IDLE:-0}"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
exec 9>&2 # the real stderr, for cleanup messages (a trap can fire inside a redirected step)
TMP=$(mktemp -d /tmp/bench-origin.XXXXXX)
ORIGIN_PID=""
NGINX_PID=""
STEP_PID="" # the load step in progress (run in the background so that a signal is handled at once)
# shellcheck disable=SC2317 # called by the traps below
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

ORIGIN_PORT=$(free_port)
log "starting origin on $HOST:$ORIGIN_PORT"
"$BIN" origin --host "$HOST" --port "$ORIGIN_PORT" --long-poll-timeout "$LONG_POLL_TIMEOUT" \
    >"$TMP/origin.log" 2>&1 &
ORIGIN_PID=$!
wait_port "$ORIGIN_PORT" "$ORIGIN_PID" origin
ORIGIN=http://$HOST:$ORIGIN_PORT

NGINX_PORT=$(free_port "$ORIGIN_PORT")
mkdir -p "$TMP/nginx/www" "$TMP/nginx/tmp"
# nginx workers run as an unprivileged user when started as root: let them read the docroot.
chmod a+rx "$TMP" "$TMP/nginx" "$TMP/nginx/www"
body_bytes 1024 >"$TMP/nginx/www/1k.bin"
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
run_wrk() { # name threads conns duration url [extra args...] -> $TMP/<name>.log and .json
    local name=$1 t=$2 c=$3 dur=$4 url=$5; shift 5
    step timeout $(( ${dur%s} + 30 )) wrk -t"$t" -c"$c" -d"$dur" --latency "$@" "$url" \
        >"$TMP/$name.log" 2>&1 || die "wrk $name failed: $(tail -5 "$TMP/$name.log")"
    wrk_json "$TMP/$name.log" >"$TMP/$name.json"
}
rps() { jget "$TMP/$1.json" .rps; }

# ---------------------------------------------------------------- 3a. catch-up GET vs nginx
log "(a) catch-up GET of a 1 KiB chunk: origin vs nginx (wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION)"
create_stream "$ORIGIN/v1/stream/bench" 1024
# Sanity: both targets return exactly 1024 body bytes.
for u in "$ORIGIN/v1/stream/bench?offset=-1" "http://$HOST:$NGINX_PORT/1k.bin"; do
    got=$(http_status_size "$u")
    [ "$got" = "200 1024" ] || die "GET $u returned '$got', expected '200 1024'"
done
run_wrk catchup_origin_warm "$WRK_THREADS" "$WRK_CONNS" "$WRK_WARMUP" "$ORIGIN/v1/stream/bench?offset=-1" -s "$BENCH_DIR/report.lua"
run_wrk catchup_origin "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION" "$ORIGIN/v1/stream/bench?offset=-1" -s "$BENCH_DIR/report.lua"
echo "origin: $(rps catchup_origin) req/s" >&2
run_wrk catchup_nginx_warm "$WRK_THREADS" "$WRK_CONNS" "$WRK_WARMUP" "http://$HOST:$NGINX_PORT/1k.bin" -s "$BENCH_DIR/report.lua"
run_wrk catchup_nginx "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION" "http://$HOST:$NGINX_PORT/1k.bin" -s "$BENCH_DIR/report.lua"
echo "nginx:  $(rps catchup_nginx) req/s" >&2

# ---------------------------------------------------------------- 3b. small appends
export BENCH_DIR APPEND_BYTES=100
# append_run NAME STREAMS PREFIX THREADS CONNS DURATION: wrk append.lua on fresh streams PREFIX0..;
# the origin's append counters are read around the measured run (not the warm-up).
append_run() {
    local name=$1 streams=$2 prefix=$3 t=$4 c=$5 dur=$6 i
    for i in $(seq 0 $(( streams - 1 ))); do create_stream "$ORIGIN/v1/stream/$prefix$i"; done
    APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
        run_wrk "${name}_warm" "$t" "$c" "$WRK_WARMUP" "$ORIGIN/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
    local all0 bad0 all1 bad1
    all0=$(settled_metric "$ORIGIN/metrics" ds_origin_requests_total operation=append)
    bad0=$(metric_non2xx "$ORIGIN/metrics" append)
    APPEND_STREAMS=$streams APPEND_PREFIX=$prefix \
        run_wrk "$name" "$t" "$c" "$dur" "$ORIGIN/v1/stream/${prefix}0" -s "$BENCH_DIR/append.lua"
    all1=$(settled_metric "$ORIGIN/metrics" ds_origin_requests_total operation=append)
    bad1=$(metric_non2xx "$ORIGIN/metrics" append)
    jq --argjson streams "$streams" --argjson all $(( all1 - all0 )) --argjson bad $(( bad1 - bad0 )) \
        '. + {streams: $streams, origin_2xx: ($all - $bad), origin_non2xx: $bad, non2xx: ($bad + .err_status)}' \
        "$TMP/$name.json" >"$TMP/$name.json.tmp" && mv "$TMP/$name.json.tmp" "$TMP/$name.json"
    echo "$name: $(rps "$name") appends/s, non-2xx: wrk $(jget "$TMP/$name.json" .err_status) / origin $(( bad1 - bad0 ))" >&2
}
log "(b) small appends: 100-byte POSTs over $WRK_CONNS connections to 1 stream"
append_run append_1 1 "append-one-" "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION"
log "(b) small appends: 100-byte POSTs over $WRK_CONNS connections spread over $APPEND_SPREAD streams"
append_run append_n "$APPEND_SPREAD" "append-spread-" "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION"

# ---------------------------------------------------------------- 3c. long-poll wake latency
LAT_SECS=${LAT_DURATION%s}
# lat_run NAME READERS RATE: the load tester's long-poll readers at the tail of one stream, one
# writer appending RATE 100-byte messages a second straight to the origin, for LAT_DURATION.
lat_run() {
    local name=$1 readers=$2 rate=$3 rc=0
    cat >"$TMP/$name.conf" <<EOF
# bench-origin (c): append -> long-poll wake latency at the origin.
kind = "live"
streams = 1
readers_per_stream = $readers
writers_per_stream = 1
appends_per_second = $rate
message_bytes = 100
duration = "$LAT_DURATION"
drain = "5s"
# From the writer sending the append: the origin answers an append before it wakes the
# long-polls, so timed from the acknowledgement most deliveries would count as 0.
latency_from = "send"
EOF
    # Bounded by the load tester's own hard stop (setup + duration + drain + 30 s) and by timeout.
    step timeout --kill-after=10 $(( LAT_SECS + 120 )) "$BIN" loadtest "$TMP/$name.conf" --quiet \
        --target "$ORIGIN" --origin "$ORIGIN" --json "$TMP/$name.json" >"$TMP/$name.txt" 2>&1 || rc=$?
    [ -s "$TMP/$name.json" ] || die "loadtest $name wrote no JSON (exit $rc): $(tail -5 "$TMP/$name.txt")"
    jq --argjson rc "$rc" '. + {exit_status: $rc}' "$TMP/$name.json" >"$TMP/$name.json.tmp" && mv "$TMP/$name.json.tmp" "$TMP/$name.json"
    jq -r '"\(.delivery.readers) reader(s): p50 \(.latency.p50) ms, p99 \(.latency.p99) ms, \(.delivery.received)/\(.delivery.expected) deliveries, lost \(.delivery.lost), duplicated \(.delivery.duplicated), errors \(.errors.connectionErrors + .errors.failedAppends + ([.errors.statuses[]] | add // 0)), exit \(.exit_status)"' "$TMP/$name.json" >&2
}
log "(c) append -> long-poll wake latency, 1 reader, $LAT_RATE appends/s for $LAT_DURATION"
lat_run latency_1 1 "$LAT_RATE"
log "(c) append -> long-poll wake latency, $LAT_READERS_N readers on one stream, $LAT_RATE_N appends/s for $LAT_DURATION"
lat_run latency_n "$LAT_READERS_N" "$LAT_RATE_N"
log "(c) anchor: one append at a time on one connection (wrk -t1 -c1 -d$RTT_DURATION)"
append_run append_rtt 1 "append-rtt-" 1 1 "$RTT_DURATION"

kill -0 "$ORIGIN_PID" 2>/dev/null || die "origin died during the run; see $TMP/origin.log"

# ---------------------------------------------------------------- 4. summary
BUSY_AFTER=$(cpu_busy) # our servers are idle now: anything above a few % is someone else's work
DATE=$(date -u '+%Y-%m-%d %H:%M:%S')
J() { jget "$TMP/$1.json" "$2"; }

FACTS=$TMP/facts.tsv
{
    printf 'date (UTC)\t%s\n' "$DATE"
    printf 'git commit\t%s\n' "$(git_rev "$ROOT")"
    machine_facts
    printf 'load\tCPU busy before start: %s%%, just after (servers idle): %s%%; load average before: %s, after: %s (1/5/15 min; anything else busy on these CPUs skews every figure)\n' \
        "$BUSY_BEFORE" "$BUSY_AFTER" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"
    printf 'nginx\t%s (worker_processes %s, access_log off, sendfile on, keepalive_requests 100000)\n' \
        "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" "$NGINX_WORKERS$([ "$NGINX_WORKERS" = auto ] && echo " = $(nproc)")"
    printf 'origin\tdurable-streams origin, in-memory store, event-loop threads = nproc, --long-poll-timeout %s; binary built %s UTC%s\n' \
        "$LONG_POLL_TIMEOUT" "$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S')" "$([ "$SKIP_BUILD" = 1 ] && echo ', SKIP_BUILD=1: not rebuilt by this run')"
    printf 'swift\t%s\n' "$(swift --version 2>/dev/null | grep -m1 -i 'swift version' || echo unknown)"
    printf 'wrk settings\t-t%s -c%s -d%s (+ %s warm-up per target, not counted); client and servers share the same %s CPUs\n' \
        "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION" "$WRK_WARMUP" "$(nproc)"
    printf 'latency runs\tdurable-streams loadtest (the same binary), live scenario, 1 stream, 100-byte messages, %s, latency_from = "send"\n' "$LAT_DURATION"
} >"$FACTS"

per_resp() { ratio "$(J "$1" .bytes)" "$(J "$1" .requests)" 0; }
TABLE=$TMP/table.tsv
NOTES=$TMP/notes.txt
: >"$NOTES"
{
    printf 'measurement\tfigure\tdetails\n'
    printf '(a) catch-up GET 1 KiB, origin\t%s req/s\tp50 %s ms, p99 %s ms, errors %s, %s bytes/response incl. headers\n' \
        "$(fmt_num "$(rps catchup_origin)")" "$(fmt_num "$(J catchup_origin .lat_p50_ms)" 2)" "$(fmt_num "$(J catchup_origin .lat_p99_ms)" 2)" \
        "$(J catchup_origin .errors)" "$(per_resp catchup_origin)"
    printf '(a) static 1 KiB file, nginx\t%s req/s\tp50 %s ms, p99 %s ms, errors %s, %s bytes/response incl. headers\n' \
        "$(fmt_num "$(rps catchup_nginx)")" "$(fmt_num "$(J catchup_nginx .lat_p50_ms)" 2)" "$(fmt_num "$(J catchup_nginx .lat_p99_ms)" 2)" \
        "$(J catchup_nginx .errors)" "$(per_resp catchup_nginx)"
    printf '(a) ratio origin / nginx\t%s\t\n' "$(ratio "$(rps catchup_origin)" "$(rps catchup_nginx)")"
    for n in append_1 append_n; do
        ok=$([ "$(J "$n" .non2xx)" = 0 ] && [ "$(J "$n" .errors)" = 0 ] && echo OK || echo "CHECK FAILED")
        streams=$(J "$n" .streams)
        printf '(b) 100-byte appends, %s stream%s\t%s appends/s\tp50 %s ms, p99 %s ms; non-2xx %s (wrk %s, origin metrics %s), socket errors %s; origin counted %s x 2xx vs wrk %s -> %s\n' \
            "$streams" "$([ "$streams" = 1 ] || echo s)" "$(fmt_num "$(rps "$n")")" "$(fmt_num "$(J "$n" .lat_p50_ms)" 2)" "$(fmt_num "$(J "$n" .lat_p99_ms)" 2)" \
            "$(J "$n" .non2xx)" "$(J "$n" .err_status)" "$(J "$n" .origin_non2xx)" "$(J "$n" .errors)" \
            "$(fmt_num "$(J "$n" .origin_2xx)")" "$(fmt_num "$(J "$n" .requests)")" "$ok"
    done
    for n in latency_1 latency_n; do
        readers=$(J "$n" .delivery.readers)
        printf '(c) append->long-poll wake, %s reader%s\tp50 %s ms / p99 %s ms\t%s\n' "$readers" "$([ "$readers" = 1 ] || echo s)" \
            "$(J "$n" .latency.p50)" "$(J "$n" .latency.p99)" \
            "$(jq -r '"\(.delivery.received) of \(.delivery.expected) deliveries (\(.delivery.appended) appends at \(.scenario.appendsPerSecond)/s), p90 \(.latency.p90) ms, p99.9 \(.latency.p999) ms, max \(.latency.max) ms; lost \(.delivery.lost), duplicated \(.delivery.duplicated), out of order \(.delivery.outOfOrder); errors \(.errors.connectionErrors + .errors.failedAppends + ([.errors.statuses[]] | add // 0)); load tester exit \(.exit_status)"' "$TMP/$n.json")"
    done
    printf '(c) anchor: one append alone, 1 connection\tp50 %s ms / p99 %s ms\twrk -t1 -c1 -d%s append.lua: %s appends/s, non-2xx %s\n' \
        "$(fmt_num "$(J append_rtt .lat_p50_ms)" 3)" "$(fmt_num "$(J append_rtt .lat_p99_ms)" 3)" "$RTT_DURATION" "$(fmt_num "$(rps append_rtt)")" "$(J append_rtt .non2xx)"
} >"$TABLE"

METHOD=$TMP/method.txt
cat >"$METHOD" <<EOF
(a) origin: \`PUT /v1/stream/bench\` with a 1024-byte body, then \`wrk GET /v1/stream/bench?offset=-1\` (1 KiB body per response). nginx: \`GET /1k.bin\`, a 1024-byte static file. Same wrk settings, run back to back.
(b) wrk \`append.lua\`: \`POST\` of a 100-byte body, \`Content-Type: application/octet-stream\`, keep-alive, same wrk settings; with several streams each thread cycles through them request by request. Non-2xx is checked both from wrk (status > 399) and from the origin's \`ds_origin_requests_total{operation="append"}\` counters (read once they stop moving after wrk exits).
(c) \`durable-streams loadtest\` with a generated \`live\` scenario (1 stream, the given readers, 1 writer, 100-byte messages at a fixed rate, \`latency_from = "send"\`), readers and writer straight at the origin: each reader catches up, then long-polls at the tail echoing \`Stream-Cursor\`; latency = from the writer's clock just before sending the append to the reader's clock when the response carrying that message has been read (every delivery to every reader counts); every reader's copy is audited for loss, duplication and order. The rate leaves the readers parked again long before the next append. Anchor: wrk \`-t1 -c1\` append.lua, one append at a time on one connection.
Figures up to 2026-11-29 in loadtest/README.md were measured with the previous method for (c): a Python client that confirmed every reader parked (\`ds_origin_open_long_polls\`) before each append, in rounds.
EOF
mkdir -p "$REPORT_DIR"
REPORT=$REPORT_DIR/bench-origin-$(date -u '+%Y-%m-%d-%H%M%S').md
render_table "Durable Streams origin benchmark — summary" "$FACTS" "$TABLE" "$NOTES"
render_markdown "Durable Streams origin benchmark — $DATE" \
    "Produced by \`loadtest/bench-origin.sh\`. Client (wrk / the load tester) and servers run on the same machine, so every figure includes the load generator's own CPU use." \
    "$FACTS" "$TABLE" "$NOTES" "$METHOD" >"$REPORT"
jq -n --arg date "$DATE" --slurpfile co "$TMP/catchup_origin.json" --slurpfile cn "$TMP/catchup_nginx.json" \
    --slurpfile a1 "$TMP/append_1.json" --slurpfile an "$TMP/append_n.json" --slurpfile rtt "$TMP/append_rtt.json" \
    --slurpfile l1 "$TMP/latency_1.json" --slurpfile ln "$TMP/latency_n.json" --rawfile facts "$FACTS" \
    '{date: $date, facts: ($facts | split("\n") | map(select(length > 0) | split("\t") | {(.[0]): .[1]}) | add),
      catchup_origin: $co[0], catchup_nginx: $cn[0], append_1: $a1[0], append_n: $an[0], append_rtt: $rtt[0],
      latency_1: $l1[0], latency_n: $ln[0]}' >"${REPORT%.md}.json"
echo "report written to ${REPORT#"$ROOT"/} (raw figures: $(basename "${REPORT%.md}.json"))"

fail=0
for f in append_1 append_n append_rtt; do
    if [ "$(J "$f" .non2xx)" != 0 ] || [ "$(J "$f" .errors)" != 0 ]; then
        echo "bench-origin: $f had non-2xx responses or socket errors" >&2; fail=1
    fi
done
for f in latency_1 latency_n; do
    [ "$(jq -r '.exit_status == 0 and .delivery.lost == 0 and .delivery.duplicated == 0 and .delivery.outOfOrder == 0 and (.errors.connectionErrors + .errors.failedAppends + ([.errors.statuses[]] | add // 0)) == 0' "$TMP/$f.json")" = true ] ||
        { echo "bench-origin: $f had lost, duplicated or reordered deliveries or errors" >&2; fail=1; }
done
exit "$fail"
