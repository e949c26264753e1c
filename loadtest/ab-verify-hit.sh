#!/usr/bin/env bash
# What checking credentials at the edge costs on a cache hit: an edge with
# credentials = "verify" (readers send a JWT, the edge verifies it and serves the shared entry)
# against an edge without authentication (readers send nothing), same build, same origin,
# alternating in one run so the machine's mood cancels out of the ratio.
#
#   loadtest/ab-verify-hit.sh
#   SIZE=16384 ROUNDS=3 BIN=… loadtest/ab-verify-hit.sh
#
# Starts one origin and two edges on 127.0.0.1, creates a stream of SIZE bytes, warms both
# caches, then measures GET ?offset=-1 through each edge with wrk -t2 -c64 for DURATION, plain
# first, then verify, ROUNDS times. The token is HS256, made here with Python's standard
# library; one token for all connections (a reader polling with its token: verified once, then
# remembered). Each round also reads each edge's CPU time (/proc/PID/stat) around its phase:
# CPU per request is printed beside req/s, and the medians over the rounds are the figures.
# Needs wrk, curl and python3. Every load is bounded by wrk's duration.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/.build/release/durable-streams}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-6s}
PORT=${PORT:-18700}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
head -c "$SIZE" /dev/zero | tr '\0' 'a' > "$WORK/body"
SECRET=bench-secret-for-verify-0123456789abcdef
printf %s "$SECRET" > "$WORK/jwt.secret"
printf 'jwt_hs256_secret_file = "%s"\ncredentials = "verify"\n' "$WORK/jwt.secret" > "$WORK/verify.conf"
TOKEN=$(python3 - "$SECRET" <<'PY'
import base64, hashlib, hmac, json, sys, time
def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=")
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = b64(json.dumps({"sub": "bench", "scope": "read", "exp": int(time.time()) + 3600}).encode())
signature = b64(hmac.new(sys.argv[1].encode(), header + b"." + claims, hashlib.sha256).digest())
print((header + b"." + claims + b"." + signature).decode())
PY
)
PLAIN=$((PORT + 1)); VERIFY=$((PORT + 2))
"$BIN" origin --port "$PORT" >/dev/null 2>&1 & PIDS+=($!)
"$BIN" edge --listen "127.0.0.1:$PLAIN" --upstream "http://127.0.0.1:$PORT" >/dev/null 2>&1 & PIDS+=($!)
PLAIN_PID=$!
"$BIN" edge --config "$WORK/verify.conf" --listen "127.0.0.1:$VERIFY" --upstream "http://127.0.0.1:$PORT" >/dev/null 2>&1 & PIDS+=($!)
VERIFY_PID=$!
for port in "$PLAIN" "$VERIFY"; do
    for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.05; done
done
curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/body" "http://127.0.0.1:$PORT/v1/stream/ab" >/dev/null
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$VERIFY/v1/stream/ab?offset=-1")
[ "$status" = 200 ] || { echo "verify edge answered $status to the bench token" >&2; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$VERIFY/v1/stream/ab?offset=-1")
[ "$status" = 401 ] || { echo "verify edge answered $status without a token" >&2; exit 1; }

# shellcheck source=ab-measure.sh
source "$ROOT/loadtest/ab-measure.sh"
run 5s "http://127.0.0.1:$PLAIN/v1/stream/ab?offset=-1" >/dev/null
run 5s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$VERIFY/v1/stream/ab?offset=-1" >/dev/null
echo "edge cache hit, $SIZE bytes, wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
echo "(req/s shares 2 cores with wrk; the edge's CPU per request is the steadier figure)"
for round in $(seq "$ROUNDS"); do
    read -r plain plaincpu < <(phase "$PLAIN_PID" "http://127.0.0.1:$PLAIN/v1/stream/ab?offset=-1")
    read -r verify verifycpu < <(phase "$VERIFY_PID" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$VERIFY/v1/stream/ab?offset=-1")
    printf 'round %s: no auth %s req/s %s µs/req, verify %s req/s %s µs/req; verify/no-auth: req/s %s, by CPU %s\n' \
        "$round" "$plain" "$plaincpu" "$verify" "$verifycpu" \
        "$(awk -v a="$verify" -v b="$plain" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$verifycpu" -v b="$plaincpu" 'BEGIN { printf "%.2f", b / a }')"
    awk -v a="$verify" -v b="$plain" 'BEGIN { printf "%.4f\n", a / b }' >> "$WORK/ratios"
    awk -v a="$verifycpu" -v b="$plaincpu" 'BEGIN { printf "%.4f\n", b / a }' >> "$WORK/cpu-ratios"
done
printf 'median of %s rounds: verify/no-auth req/s %s, by CPU per request %s\n' "$ROUNDS" "$(median "$WORK/ratios")" "$(median "$WORK/cpu-ratios")"
