#!/usr/bin/env bash
# Checks the systemd units with systemd-analyze verify (syntax, directives, hardening options
# this systemd knows). verify also checks that ExecStart's binary exists, so the units are
# checked in a copy whose ExecStart names the binary given (default: the debug build).
#
#   deploy/verify-units.sh [path/to/durable-streams]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/.build/debug/durable-streams}
if ! command -v systemd-analyze >/dev/null; then
    apt-get install -y -qq systemd >/dev/null 2>&1 || { echo "verify-units: systemd-analyze is not available" >&2; exit 1; }
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for unit in "$ROOT"/deploy/*.service; do
    sed "s#/usr/local/bin/durable-streams#$BIN#" "$unit" > "$WORK/$(basename "$unit")"
done
# Any output is a finding: verify prints nothing for units it is happy with.
out=$(cd "$WORK" && systemd-analyze verify --man=no ./*.service 2>&1 || true)
if [ -n "$out" ]; then
    echo "$out" >&2
    echo "verify-units: problems found" >&2
    exit 1
fi
echo "verify-units: ok ($(ls "$WORK" | tr '\n' ' '))"
