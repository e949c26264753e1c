#!/usr/bin/env bash
# Checks deploy/prometheus and deploy/grafana:
#   promtool check rules / test rules / check config, the Grafana dashboard against the rules
#   (dashboard-check.py), then a real Prometheus scraping a real edge and origin, whose
#   ds_edge:hit_ratio:rate5m must agree with the edge's own counters (live-check.py).
# Installs Debian's prometheus package (promtool comes with it) when either tool is missing.
#
# Usage: deploy/prometheus/check.sh [path/to/durable-streams]   (default .build/debug/durable-streams)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="${1:-$root/.build/debug/durable-streams}"
started=$(date +%s)

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo "prometheus-check: installing Debian's prometheus package"
    # The package lists may be missing or old on a fresh machine: refresh them for this install.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

cd "$here"
promtool check rules rules.yml
promtool test rules rules.test.yml
promtool check config prometheus.example.yml >/dev/null
echo "prometheus-check: prometheus.example.yml is valid"
python3 dashboard-check.py rules.yml ../grafana/durable-streams.json

[ -x "$binary" ] || { echo "prometheus-check: $binary is not an executable (build it first)"; exit 2; }
python3 live-check.py --binary "$binary" --rules rules.yml --dashboard ../grafana/durable-streams.json --deadline 90
echo "prometheus-check: all checks passed in $(( $(date +%s) - started )) s"
