#!/usr/bin/env bash
# 1,000 SSE readers over HTTP/2 through one edge: h2load opens READERS SSE reads as streams of a
# few TLS connections (STREAMS per connection), a writer appends MESSAGES messages meanwhile,
# and each read ends when the edge closes it after sse_reconnect_interval (as every SSE response
# does, so that caches can re-collapse readers). Clean means: every read answered 200 and ended
# normally, every reader received the same bytes (h2load's body total = READERS × one reader's
# bytes), and the edge held ONE SSE subscription upstream for all of them (upstream sse requests:
# one for the readers, one for the later check reader).
#
#   loadtest/h2-sse-1k.sh
#   READERS=1000 CONNECTIONS=4 MESSAGES=50 BIN=… loadtest/h2-sse-1k.sh
#
# Starts an origin and a TLS edge on 127.0.0.1 (self-signed certificate made with openssl).
# Needs h2load (Debian's nghttp2-client), openssl, curl. Bounded: h2load's reads end with the
# edge's 8 s SSE interval; the writer sends MESSAGES appends and stops.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/.build/release/durable-streams}
READERS=${READERS:-1000}
CONNECTIONS=${CONNECTIONS:-4}
MESSAGES=${MESSAGES:-50}
PORT=${PORT:-18740}
command -v h2load >/dev/null || apt-get install -y nghttp2-client >/dev/null
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
EDGE=$((PORT + 1))
printf 'tls_certificate_file = "%s"\ntls_key_file = "%s"\nsse_reconnect_interval = "8s"\n' \
    "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/edge.conf"
"$BIN" origin --port "$PORT" >/dev/null 2>&1 & PIDS+=($!)
"$BIN" edge --config "$WORK/edge.conf" --listen "127.0.0.1:$EDGE" --upstream "http://127.0.0.1:$PORT" >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 200); do curl -sk -o /dev/null "https://127.0.0.1:$EDGE/metrics" && break; sleep 0.05; done
curl -fs -X PUT -H 'Content-Type: text/plain' --data-binary 'first' "http://127.0.0.1:$PORT/v1/stream/fan" >/dev/null

STREAMS=$(( (READERS + CONNECTIONS - 1) / CONNECTIONS ))
h2load -n "$READERS" -c "$CONNECTIONS" -m "$STREAMS" "https://127.0.0.1:$EDGE/v1/stream/fan?offset=-1&live=sse" > "$WORK/h2load.out" 2>&1 &
H2LOAD=$!
sleep 2
for i in $(seq "$MESSAGES"); do
    printf 'message-%04d' "$i" | curl -fs -X POST -H 'Content-Type: text/plain' --data-binary @- "http://127.0.0.1:$PORT/v1/stream/fan" >/dev/null
    sleep 0.05
done
wait "$H2LOAD" || true
# One reader's bytes, read the same way (HTTP/2, until the edge ends the response).
one=$(curl -sk --http2 --max-time 20 "https://127.0.0.1:$EDGE/v1/stream/fan?offset=-1&live=sse" | grep -o 'message-[0-9]*' | sort -u | wc -l)
metrics=$(curl -sk "https://127.0.0.1:$EDGE/metrics")
echo "SSE over HTTP/2: $READERS readers on $CONNECTIONS TLS connections ($STREAMS streams each), $MESSAGES appends"
grep -E "^requests:|^status codes:|^traffic:" "$WORK/h2load.out"
data=$(awk '/^traffic:/ { gsub(/[()]/, "", $0); for (i = 1; i <= NF; i++) if ($(i+1) == "data") print $i }' "$WORK/h2load.out" | tail -1)
echo "body bytes per reader, on average: $(awk -v d="${data:-0}" -v n="$READERS" 'BEGIN { printf "%.1f", d / n }')"
echo "a later reader over HTTP/2 saw $one of $MESSAGES messages"
echo "$metrics" | grep -E '^ds_edge_upstream_requests_total\{class="sse"\}|^ds_edge_requests_total\{class="sse"'
