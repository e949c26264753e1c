#!/usr/bin/env bash
# Cache hits over TLS: the edge (TLS on, HTTP/1.1 to wrk) against nginx as a caching reverse
# proxy with TLS on the same certificate and key, both in front of the same origin, alternating
# in one run so the machine's mood cancels out of the ratio.
#
#   loadtest/ab-tls-hit.sh
#   SIZE=16384 ROUNDS=3 BIN=… loadtest/ab-tls-hit.sh
#
# Starts one origin, one edge and one nginx on 127.0.0.1, makes a self-signed P-256 certificate
# with openssl, creates a stream of SIZE bytes, warms both caches, then measures
# GET ?offset=-1 through each with wrk -t2 -c64 for DURATION (keep-alive: handshakes are not
# what is measured), ROUNDS times (7 by default; the medians are the figures). Each round also
# reads each server's CPU time (/proc/PID/stat; nginx's master and 2 workers summed) around its
# phase and prints CPU per request beside req/s. nginx runs from a generated config in a temporary directory
# (never the system's), 2 workers (the edge has 2 event loops here). Needs wrk, nginx, openssl,
# curl. Every load is bounded by wrk's duration.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/.build/release/durable-streams}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-6s}
PORT=${PORT:-18720}
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
chmod a+rx "$WORK"
head -c "$SIZE" /dev/zero | tr '\0' 'a' > "$WORK/body"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod a+r "$WORK/key.pem" "$WORK/cert.pem"
EDGE=$((PORT + 1)); NGX=$((PORT + 2))
printf 'tls_certificate_file = "%s"\ntls_key_file = "%s"\n' "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/edge.conf"
mkdir -p "$WORK/nginx/tmp" "$WORK/nginx/cache"; chmod -R a+rwx "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=ds:16m max_size=64m inactive=10m use_temp_path=off;
    upstream origin { server 127.0.0.1:$PORT; keepalive 16; }
    server {
        listen 127.0.0.1:$NGX ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache ds;
            proxy_cache_valid 200 60s;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
CONF
"$BIN" origin --port "$PORT" >/dev/null 2>&1 & PIDS+=($!)
"$BIN" edge --config "$WORK/edge.conf" --listen "127.0.0.1:$EDGE" --upstream "http://127.0.0.1:$PORT" >/dev/null 2>&1 & PIDS+=($!)
EDGE_PID=$!
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx/stderr" & PIDS+=($!)
NGINX_PID=$!
for port in "$EDGE" "$NGX"; do
    for _ in $(seq 200); do curl -sk -o /dev/null "https://127.0.0.1:$port/" && break; sleep 0.05; done
done
curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/body" "http://127.0.0.1:$PORT/v1/stream/ab" >/dev/null
URL_PATH="/v1/stream/ab?offset=-1"
for port in "$EDGE" "$NGX"; do curl -fsk -o /dev/null "https://127.0.0.1:$port$URL_PATH"; done
hit=$(curl -fsk -D - -o /dev/null "https://127.0.0.1:$EDGE$URL_PATH" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache" {print $2}')
[ "$hit" = HIT ] || { echo "edge answered X-Cache: $hit, not HIT" >&2; exit 1; }
hit=$(curl -fsk -D - -o /dev/null "https://127.0.0.1:$NGX$URL_PATH" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status" {print $2}')
[ "$hit" = HIT ] || { echo "nginx answered X-Cache-Status: $hit, not HIT" >&2; exit 1; }

# shellcheck source=ab-measure.sh
source "$ROOT/loadtest/ab-measure.sh"
run 2s "https://127.0.0.1:$EDGE$URL_PATH" >/dev/null
run 2s "https://127.0.0.1:$NGX$URL_PATH" >/dev/null
# nginx's master and its workers (the workers do the serving; the cache loader comes and goes).
NGINX_PIDS=("$NGINX_PID" $(pgrep -P "$NGINX_PID" -f "worker process"))
echo "cache hit over TLS (HTTP/1.1, keep-alive), $SIZE bytes, wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
echo "(req/s shares 2 cores with wrk; CPU per request is each server's own, all its processes and threads)"
for round in $(seq "$ROUNDS"); do
    read -r nginx_rps nginx_cpu < <(phase "${NGINX_PIDS[*]}" "https://127.0.0.1:$NGX$URL_PATH")
    read -r edge_rps edge_cpu < <(phase "$EDGE_PID" "https://127.0.0.1:$EDGE$URL_PATH")
    printf 'round %s: nginx %s req/s %s µs/req, edge %s req/s %s µs/req; edge/nginx: req/s %s, by CPU %s\n' \
        "$round" "$nginx_rps" "$nginx_cpu" "$edge_rps" "$edge_cpu" \
        "$(awk -v a="$edge_rps" -v b="$nginx_rps" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$edge_cpu" -v b="$nginx_cpu" 'BEGIN { printf "%.2f", b / a }')"
    awk -v a="$edge_rps" -v b="$nginx_rps" 'BEGIN { printf "%.4f\n", a / b }' >> "$WORK/ratios"
    awk -v a="$edge_cpu" -v b="$nginx_cpu" 'BEGIN { printf "%.4f\n", b / a }' >> "$WORK/cpu-ratios"
done
printf 'median of %s rounds: edge/nginx req/s %s, by CPU per request %s\n' "$ROUNDS" "$(median "$WORK/ratios")" "$(median "$WORK/cpu-ratios")"
