#!/usr/bin/env bash
# A real full disk under a file-backed origin: mounts a 4 MiB tmpfs (root only), fills it with
# appends and checks that
#   - the append that does not fit gets 507 and adds nothing (the tail is unchanged),
#   - everything appended before stays readable, byte for byte,
#   - the server keeps serving, and appends succeed again once space is freed (a DELETE),
#   - a restart recovers the same state.
# The unit tests cover the same paths with injected failures (FileStoreTests); this is the
# end-to-end version on a real file system.
#
#   loadtest/disk-full-check.sh [BIN]     (default .build/release/durable-streams, else debug)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/.build/release/durable-streams}
[ -x "$BIN" ] || BIN=$ROOT/.build/debug/durable-streams
# Where a tmpfs cannot be mounted (not root, or a container without the capability), say so and
# stop: the injected-failure tests in FileStoreTests still cover these paths.
[ "$(id -u)" = 0 ] || { echo "disk-full-check: skipped (needs root to mount a tmpfs)"; exit 0; }
MNT=$(mktemp -d /tmp/ds-disk-full.XXXXXX)
WORK=$(mktemp -d /tmp/ds-disk-full-work.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    umount "$MNT" 2>/dev/null || true
    rmdir "$MNT" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=4m tmpfs "$MNT" 2>/dev/null; then
    echo "disk-full-check: skipped (cannot mount a tmpfs here)"
    exit 0
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
B=http://127.0.0.1:$PORT/v1/stream
fail() { echo "disk-full-check: FAIL: $*" >&2; exit 1; }
start() {
    "$BIN" origin --port "$PORT" --data-dir "$MNT/data" >"$WORK/origin.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics" && return; sleep 0.1; done
    fail "origin did not start: $(tail -5 "$WORK/origin.log")"
}
code() { curl -s -o "$WORK/body" -w "%{http_code}" --max-time 10 "$@"; }
tail_of() { curl -s -I --max-time 10 "$B/$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="stream-next-offset"{print $2}'; }

start
[ "$(code -X PUT -H 'Content-Type: application/octet-stream' "$B/full")" = 201 ] || fail "create"
head -c 524288 /dev/urandom >"$WORK/chunk"
: >"$WORK/expected"
status=""
for seq in $(seq 0 15); do
    status=$(code -X POST -H 'Content-Type: application/octet-stream' -H 'Producer-Id: filler' \
        -H 'Producer-Epoch: 0' -H "Producer-Seq: $seq" --data-binary @"$WORK/chunk" "$B/full")
    [ "$status" = 200 ] || break
    cat "$WORK/chunk" >>"$WORK/expected"
done
[ "$status" = 507 ] || fail "expected 507 once the disk is full, got $status"
echo "507 after $((seq)) appends of 512 KiB: $(cat "$WORK/body")"
before=$(tail_of full)
curl -s --max-time 10 "$B/full?offset=-1" -o "$WORK/read"
cmp -s "$WORK/read" "$WORK/expected" || fail "data appended before the disk filled is not intact"
[ "$(tail_of full)" = "$before" ] || fail "tail moved after a 507"
python3 - "$WORK/expected" "$WORK/half" <<'PY'
import sys; data = open(sys.argv[1], 'rb').read(); open(sys.argv[2], 'wb').write(data[:len(data)//2])
PY
# Free space by deleting another stream's worth of data: recreate "full" smaller.
[ "$(code -X DELETE "$B/full")" = 204 ] || fail "delete on a full disk: $(cat "$WORK/body")"
[ "$(code -X PUT -H 'Content-Type: application/octet-stream' "$B/again")" = 201 ] || fail "create after freeing space"
[ "$(code -X POST -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/half" "$B/again")" = 204 ] || fail "append after freeing space: $(cat "$WORK/body")"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
start
grep -o 'recovered.*' "$WORK/origin.log"
curl -s --max-time 10 "$B/again?offset=-1" -o "$WORK/read"
cmp -s "$WORK/read" "$WORK/half" || fail "data not intact after restart"
[ "$(code "$B/full?offset=-1")" = 404 ] || fail "deleted stream came back"
echo "disk-full-check: ok (507 on a full disk, earlier data intact, serving continued, recovered after restart)"
