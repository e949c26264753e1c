# Sourced by the A/B benchmarks (ab-verify-hit.sh, ab-tls-hit.sh): one wrk phase measured by
# throughput and by the servers' own CPU per request, and the median over rounds.
# Expects DURATION to be set.

# wrk -t2 -c64 for $1 with the remaining arguments: prints its request count, then req/s.
run() { wrk -t2 -c64 -d"$1" "${@:2}" | awk '/Requests\/sec/ { print $2 } / requests in / { print $1 }'; }

# CPU seconds (user + system, all threads) the processes named have used: /proc/PID/stat
# fields 14 and 15.
HZ=$(getconf CLK_TCK)
cpu() { for pid in "$@"; do cat "/proc/$pid/stat"; done | awk -v hz="$HZ" '{ sub(/.*\) /, ""); sum += $12 + $13 } END { printf "%.4f", sum / hz }'; }

# One measured phase of DURATION: "req/s cpu-µs-per-request". $1: the server's PIDs, space
# separated; the rest: wrk's arguments (headers, URL).
phase() {
    local pids=$1 before after out; shift
    # shellcheck disable=SC2086  # the PID list is meant to split
    before=$(cpu $pids)
    out=$(run "$DURATION" "$@" | tr '\n' ' ')
    # shellcheck disable=SC2086
    after=$(cpu $pids)
    awk -v before="$before" -v after="$after" -v out="$out" 'BEGIN {
        split(out, f, " "); printf "%s %.1f\n", f[2], (after - before) * 1e6 / f[1] }'
}

# Single rounds swing by ±15 % on two shared cores; the median of the rounds is the figure.
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
