# shellcheck shell=bash
# Shell helpers shared by loadtest/bench-origin.sh, bench-edge.sh and bench-storage.sh.
# Sourced, not run: `BENCH_NAME=bench-x; . "$ROOT/loadtest/bench/lib.sh"`.
#
# Tools they rely on: bash, curl, awk, jq, timeout (and wrk, nginx where the script says so).
# Everything here talks to 127.0.0.1 only, and every loop has a fixed bound.

BENCH_HOST=127.0.0.1

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

# need_tools TOOL...: apt-get install the tools that are missing (root only). Each name is both
# the command and its Debian package; nginx also counts when it is only in /usr/sbin.
need_tools() {
    local missing=() t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 && continue
        [ "$t" = nginx ] && [ -x /usr/sbin/nginx ] && continue
        missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# cpu_busy: how busy the CPUs are, in percent over one second (from /proc/stat). The load
# generators and the servers share these CPUs, so anything else running skews every figure.
cpu_busy() {
    local a b
    read -r -a a < <(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
    sleep 1
    read -r -a b < <(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
    echo $(( 100 - 100 * (b[1] - a[1]) / (b[0] - a[0] > 0 ? b[0] - a[0] : 1) ))
}

# wait_idle SECONDS: wait up to SECONDS for the CPUs to be < 15 % busy. Sets BUSY_BEFORE.
wait_idle() {
    BUSY_BEFORE=$(cpu_busy)
    if [ "${1:-0}" -gt 0 ] && [ "$BUSY_BEFORE" -ge 15 ]; then
        log "CPUs ${BUSY_BEFORE}% busy; waiting up to ${1}s for them to go quiet"
        local end=$(( SECONDS + $1 ))
        while [ "$BUSY_BEFORE" -ge 15 ] && [ $SECONDS -lt "$end" ]; do BUSY_BEFORE=$(cpu_busy); done
    fi
    [ "$BUSY_BEFORE" -lt 15 ] || log "warning: CPUs already ${BUSY_BEFORE}% busy before the benchmark; figures will be low and noisy"
}

# port_listening PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_listening() { (exec 3<>"/dev/tcp/$BENCH_HOST/$1") 2>/dev/null; }

# free_port [TAKEN...]: a port nothing listens on, not among TAKEN. Picked at random from
# 20000-32767, below Linux's ephemeral range (32768+), so no outgoing connection of ours is
# holding it. A server that still fails to bind exits, and wait_port says so.
free_port() {
    local p _
    for _ in $(seq 100); do
        p=$(( 20000 + RANDOM % 12768 ))
        case " $* " in *" $p "*) continue ;; esac
        port_listening "$p" || { echo "$p"; return 0; }
    done
    die "no free port found in 100 tries"
}

# wait_port PORT PID NAME [TRIES]: wait (TRIES × 0.1 s, default 15 s) until PORT accepts a
# connection; fail at once if PID exits first.
wait_port() {
    local tries=${4:-150} _
    for _ in $(seq "$tries"); do
        kill -0 "$2" 2>/dev/null || die "$3 exited early; see the logs in ${TMP:-the temp dir}"
        port_listening "$1" && return 0
        sleep 0.1
    done
    die "$3 did not listen on $BENCH_HOST:$1 within $(( tries / 10 )) s"
}

# metric URL NAME [LABEL=VALUE...]: the sum of the samples of NAME in the Prometheus text at URL
# (a /metrics address) whose labels include every LABEL="VALUE" given; 0 when none match.
# metric_non2xx URL OPERATION: the sum of ds_origin_requests_total{operation=OPERATION} whose
# status is not 2xx.
metric() {
    local url=$1 name=$2 want="" kv; shift 2
    for kv in "$@"; do want="$want,${kv%%=*}=\"${kv#*=}\","; done
    curl -sf --max-time 10 "$url" | awk -v name="$name" -v want="$want" -v non2xx="" -f <(metric_awk) \
        || die "could not read $url"
}
metric_non2xx() {
    curl -sf --max-time 10 "$1" | awk -v name=ds_origin_requests_total -v want=",operation=\"$2\"," -v non2xx=1 -f <(metric_awk) \
        || die "could not read $1"
}
metric_awk() {
    cat <<'AWK'
# One sample per line: NAME{k="v",k="v"} VALUE. The label set is wrapped in commas so that each
# wanted ,k="v", piece can be found with index() whatever its position.
/^#/ || !/[^ ]/ { next }
{
    if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) next
    n = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
    if (n != name) next
    labels = ","
    if (substr(rest, 1, 1) == "{") {
        close_at = index(rest, "}")
        labels = "," substr(rest, 2, close_at - 2) ","
        rest = substr(rest, close_at + 1)
    }
    split(rest, fields, " ")
    ok = 1
    m = split(want, pieces, ",")
    for (i = 1; i <= m; i++) if (pieces[i] != "" && index(labels, "," pieces[i] ",") == 0) ok = 0
    if (ok && non2xx != "") ok = (match(labels, /,status="[^"]*"/) && substr(labels, RSTART + 9, 1) != "2")
    if (ok) sum += fields[1]
}
END { printf "%.0f\n", sum }
AWK
}

# settled_metric URL NAME [LABEL=VALUE...]: like metric, once the value has stopped moving: wrk
# exits with requests in flight, and the server may still answer (and count) them. Reads every
# 0.1 s until two reads agree, at most 5 s.
settled_metric() {
    local prev cur _
    prev=$(metric "$@")
    cur=$prev
    for _ in $(seq 50); do
        sleep 0.1
        cur=$(metric "$@")
        [ "$cur" = "$prev" ] && break
        prev=$cur
    done
    echo "$cur"
}

# body_bytes N: N bytes of body, N-1 'x' and a newline (nothing for 0).
body_bytes() {
    [ "$1" -gt 0 ] || return 0
    head -c $(( $1 - 1 )) /dev/zero | tr '\0' x
    echo
}

# create_stream URL [BYTES] [CONTENT_TYPE]: PUT a stream (application/octet-stream unless
# given) holding BYTES of body; dies unless the server says 200, 201 or 204.
create_stream() {
    local url=$1 bytes=${2:-0} type=${3:-application/octet-stream} status
    status=$(body_bytes "$bytes" | curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X PUT \
        -H "Content-Type: $type" --data-binary @- "$url") || true
    case $status in 200|201|204) ;; *) die "PUT $url -> ${status:-no answer}" ;; esac
}

# http_status_size URL [CURL ARGS...]: "STATUS BODY_BYTES" of one GET.
http_status_size() {
    local url=$1; shift
    curl -s --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "$@" "$url" || true
}

# header_sample URL HEADER COUNT: GET URL COUNT times on one keep-alive connection (curl reuses
# it for repeated URLs) and print a JSON object counting the values of HEADER and the statuses.
header_sample() {
    local url=$1 header=$2 count=$3 args=() _
    for _ in $(seq "$count"); do args+=(-o /dev/null "$url"); done
    curl -s --max-time 60 -w "%{http_code} %header{$header}\n" "${args[@]}" |
        jq -R -s --arg header "$header" --argjson count "$count" '
            split("\n") | map(select(length > 0) | split(" ")) |
            {header: $header, count: $count,
             status: (group_by(.[0]) | map({(.[0][0]): length}) | add // {}),
             values: (map(.[1] // "" | if . == "" then "(none)" else . end) | group_by(.) | map({(.[0]): length}) | add // {})}'
}

# wrk_json LOG: the WRK_RESULT line that report.lua prints, as a JSON object of numbers.
wrk_json() {
    local line
    line=$(sed -n 's/^WRK_RESULT //p' "$1")
    [ -n "$line" ] || die "no WRK_RESULT line in $1: $(tail -3 "$1")"
    jq -R -c 'split(" ") | map(split("=") | {(.[0]): (.[1] | tonumber)}) | add
              | .errors = (.err_connect + .err_read + .err_write + .err_timeout)' <<<"$line"
}

# jget FILE FILTER: one value out of a JSON file, raw (jq -r).
jget() { jq -r "$2" "$1"; }

# fmt_num NUMBER [DECIMALS]: thousands separators, like 12,345 or 1,234.5.
fmt_num() {
    local v=$1 d=${2:-0}
    case $v in ''|null) echo n/a; return ;; esac
    LC_ALL=C awk -v v="$v" -v d="$d" 'BEGIN {
        s = sprintf("%.*f", d, v); neg = (substr(s, 1, 1) == "-"); if (neg) s = substr(s, 2)
        dot = index(s, "."); i = dot ? substr(s, 1, dot - 1) : s; f = dot ? substr(s, dot) : ""
        out = ""; while (length(i) > 3) { out = "," substr(i, length(i) - 2) out; i = substr(i, 1, length(i) - 3) }
        printf "%s%s%s%s\n", (neg ? "-" : ""), i, out, f }'
}

# ratio A B [DECIMALS]: A / B, or n/a when B is 0 or missing.
ratio() {
    LC_ALL=C awk -v a="${1:-0}" -v b="${2:-0}" -v d="${3:-2}" 'BEGIN { if (b + 0 > 0) printf "%.*f\n", d, a / b; else print "n/a" }'
}

# machine_facts: TSV lines (fact, value) describing this machine and the load on it.
machine_facts() {
    printf 'CPU\t%s cores, %s\n' "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
    printf 'memory\t%s RAM\n' "$(free -h 2>/dev/null | awk '/^Mem:/{print $2}')"
    printf 'kernel\t%s\n' "$(uname -srm)"
}

# git_rev ROOT: the commit the binary's sources are at, noting uncommitted changes to them.
git_rev() {
    local rev
    rev=$(cd "$1" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(cd "$1" && git status --porcelain -- Sources Package.swift 2>/dev/null)" ]; then
        rev="$rev (+ uncommitted changes in Sources/)"
    fi
    echo "$rev"
}

# render_table TITLE FACTS.tsv TABLE.tsv NOTES.txt: print the summary block. TABLE's first line
# is the header; its last column (details) is printed indented under each row.
render_table() {
    local title=$1 facts=$2 table=$3 notes=$4
    awk -F'\t' -v title="$title" -v facts="$facts" -v notes="$notes" '
        BEGIN { bar = sprintf("%0100d", 0); gsub(/0/, "=", bar); line = bar; gsub(/=/, "-", line)
                print ""; print bar; print title; print bar
                while ((getline f < facts) > 0) { split(f, p, "\t"); printf "%22s: %s\n", p[1], p[2] }
                print line }
        { nf = NF; for (i = 1; i < NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
          detail[NR] = $NF; rows = NR }
        END {
            for (r = 1; r <= rows; r++) {
                s = ""; for (i = 1; i < nf; i++) s = s sprintf("%-" w[i] "s  ", cell[r, i])
                sub(/ +$/, "", s); print s
                if (r == 1) { s = ""; for (i = 1; i < nf; i++) s = s sprintf("%." w[i] "s  ", line); sub(/ +$/, "", s); print s }
                else if (detail[r] != "") printf "%" (w[1] + 4) "s%s\n", "", detail[r]
            }
            first = 1
            while ((getline n < notes) > 0) { if (first) { print line; first = 0 }; print "note: " n }
            print bar }' "$table"
}

# render_markdown TITLE INTRO FACTS.tsv TABLE.tsv NOTES.txt METHOD.txt: the same as markdown.
render_markdown() {
    local title=$1 intro=$2 facts=$3 table=$4 notes=$5 method=$6
    printf '# %s\n\n%s\n\n## Results\n\n' "$title" "$intro"
    awk -F'\t' '{ s = "|"; for (i = 1; i <= NF; i++) { c = $i; gsub(/\|/, "/", c); s = s " " c " |" } print s
                  if (NR == 1) { s = "|"; for (i = 1; i <= NF; i++) s = s " --- |"; print s } }' "$table"
    if [ -s "$notes" ]; then printf '\n## Notes\n\n'; sed 's/^/- /' "$notes"; fi
    printf '\n## Machine and settings\n\n| fact | value |\n| --- | --- |\n'
    awk -F'\t' '{ v = $2; gsub(/\|/, "/", v); print "| " $1 " | " v " |" }' "$facts"
    printf '\n## Method\n\n'
    sed 's/^/- /' "$method"
    echo
}

# Runs a bounded command in the background and waits for it, so that a trap (Ctrl-C, TERM) can
# interrupt the wait; the caller's cleanup kills $STEP_PID if it is set.
step() {
    local rc=0
    "$@" &
    STEP_PID=$!
    wait "$STEP_PID" || rc=$?
    STEP_PID=""
    return "$rc"
}
