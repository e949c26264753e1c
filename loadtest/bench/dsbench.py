#!/usr/bin/env python3
"""Helpers for loadtest/bench-origin.sh (Python 3 standard library only).

Subcommands:
  freeport                      print a free TCP port on 127.0.0.1
  create URL --bytes N          PUT a stream (application/octet-stream) with an N-byte body
  metric URL NAME [LABELS...]   print the value of one Prometheus sample from URL (/metrics),
                                e.g. metric URL ds_origin_requests_total operation=append status=204;
                                with --sum-non2xx OPERATION: sum of that operation's non-2xx counters
  latency --base URL ...        append-to-long-poll wake latency (see below)
  wrk-parse FILE                turn the WRK_RESULT line of a wrk log into key=value lines
  render RESULTS.json MD_PATH   print the summary block and write it as markdown

Latency method: one event loop on non-blocking sockets, no threads, so no GIL skew.
Each round, P long-poll readers (each on its own keep-alive connection) send
GET /v1/stream/<s>?offset=<tail>&live=long-poll; the helper then polls /metrics until
ds_origin_open_long_polls >= P (so the readers are parked at the tail, not racing the append),
waits 1 ms more, takes t0 = perf_counter() and sends a POST of a 100-byte timestamped message on
another connection. The latency of a delivery is the time from t0 to the moment a reader's
complete 200 response (whose body must be exactly that message) has been read. Only loopback
addresses are allowed; every loop is bounded by a round count and a wall-clock deadline.
"""

import argparse
import json
import os
import re
import selectors
import socket
import sys
import time
import urllib.parse

# --------------------------------------------------------------------------- HTTP/1.1 bits


def parse_base(url):
    u = urllib.parse.urlsplit(url)
    host = u.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        sys.exit(f"refusing non-loopback target {host}")
    return host, u.port or 80, u.path or "/"


class Conn:
    """A keep-alive HTTP/1.1 client connection with an incremental response parser."""

    def __init__(self, host, port, name=""):
        self.host, self.port, self.name = host, port, name
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.stamp = None  # perf_counter() of the last read

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request_bytes(self, method, target, headers=None, body=b""):
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def send(self, method, target, headers=None, body=b""):
        self.sock.sendall(self.request_bytes(method, target, headers, body))

    def feed(self):
        """Read what is available (socket must be readable). False on EOF."""
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.buf += data
        return True

    def parse(self, method="GET"):
        """Return (status, headers, body) if a full response is buffered, else None."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        rest = self.buf[end + 4:]
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.buf = rest
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, pos = b"", 0
            while True:
                nl = rest.find(b"\r\n", pos)
                if nl < 0:
                    return None
                size = int(rest[pos:nl].split(b";")[0], 16)
                if size == 0:
                    trailer_end = rest.find(b"\r\n\r\n", nl)
                    if trailer_end < 0 and rest[nl + 2:nl + 4] != b"\r\n":
                        return None
                    if rest[nl + 2:nl + 4] == b"\r\n":
                        self.buf = rest[nl + 4:]
                    else:
                        self.buf = rest[trailer_end + 4:]
                    return status, headers, body
                if len(rest) < nl + 2 + size + 2:
                    return None
                body += rest[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            return None
        self.buf = rest[length:]
        return status, headers, rest[:length]

    def roundtrip(self, method, target, headers=None, body=b"", timeout=10.0):
        self.send(method, target, headers, body)
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while True:
            r = self.parse(method)
            if r is not None:
                return r
            if time.monotonic() > deadline or not self.feed():
                raise RuntimeError(f"{method} {target}: no complete response")


def metric_value(text, name, labels=None):
    """Sum of the samples of `name` whose labels include `labels` (dict)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        if labels and any(have.get(k) != v for k, v in labels.items()):
            continue
        total += float(m.group(4))
        found = True
    return total if found else None


def non2xx(text, operation):
    total = 0.0
    for line in text.splitlines():
        if line.startswith("ds_origin_requests_total{"):
            have = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if have.get("operation") == operation and not have.get("status", "").startswith("2"):
                total += float(line.rsplit(" ", 1)[1])
    return total


# --------------------------------------------------------------------------- subcommands


def cmd_freeport(_):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_create(a):
    host, port, path = parse_base(a.url)
    c = Conn(host, port)
    body = (b"x" * (a.bytes - 1) + b"\n") if a.bytes > 0 else b""
    status, headers, _ = c.roundtrip("PUT", path, {"Content-Type": "application/octet-stream"}, body)
    c.close()
    if status not in (200, 201, 204):
        sys.exit(f"PUT {path} -> {status}")
    print(headers.get("stream-next-offset", ""))


def cmd_metric(a):
    host, port, path = parse_base(a.url)
    c = Conn(host, port)
    _, _, body = c.roundtrip("GET", path)
    c.close()
    text = body.decode()
    if a.sum_non2xx:
        print(int(non2xx(text, a.sum_non2xx)))
        return
    labels = dict(kv.split("=", 1) for kv in a.labels)
    v = metric_value(text, a.name, labels)
    print(int(v) if v is not None else 0)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def cmd_latency(a):
    host, port, _ = parse_base(a.base)
    stream = f"/v1/stream/{a.stream}"
    ctl = Conn(host, port, "ctl")
    status, headers, _ = ctl.roundtrip("PUT", stream, {"Content-Type": "application/octet-stream"})
    if status not in (200, 201, 204):
        sys.exit(f"PUT {stream} -> {status}")
    tail = headers.get("stream-next-offset")
    if not tail:
        _, headers, _ = ctl.roundtrip("GET", stream + "?offset=-1")
        tail = headers["stream-next-offset"]

    sel = selectors.DefaultSelector()
    pollers = []
    for i in range(a.pollers):
        c = Conn(host, port, f"poller{i}")
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
        pollers.append(c)
    appender = Conn(host, port, "appender")
    appender.sock.setblocking(False)
    sel.register(appender.sock, selectors.EVENT_READ, appender)

    cursor = None
    latencies = []          # seconds, measured rounds only
    append_rtts = []        # seconds, POST -> 204
    sync_misses = 0         # rounds where the gauge never showed all readers parked
    failures = []
    rounds_done = 0
    started = time.monotonic()
    deadline = started + a.max_seconds
    total_rounds = a.warmup + a.rounds

    for r in range(total_rounds):
        if time.monotonic() > deadline:
            failures.append(f"time budget of {a.max_seconds}s reached after {r} rounds")
            break
        target = f"{stream}?offset={urllib.parse.quote(tail, safe='')}&live=long-poll"
        if cursor:
            target += f"&cursor={urllib.parse.quote(cursor, safe='')}"
        for c in pollers:
            c.sock.sendall(c.request_bytes("GET", target))
        # Wait until the origin reports every reader parked (bounded), then 1 ms more.
        parked = False
        for _ in range(400):
            _, _, body = ctl.roundtrip("GET", "/metrics")
            v = metric_value(body.decode(), "ds_origin_open_long_polls")
            if v is not None and v >= a.pollers:
                parked = True
                break
            time.sleep(0.0005)
        if not parked:
            sync_misses += 1
        time.sleep(0.001)

        msg = f"seq={r:08d} t_ns={time.time_ns()} ".encode()
        msg = msg + b"m" * (a.bytes - 1 - len(msg)) + b"\n"
        t0 = time.perf_counter()
        appender.sock.sendall(appender.request_bytes(
            "POST", stream, {"Content-Type": "application/octet-stream"}, msg))

        pending = set(pollers)
        got_append = False
        round_lat = []
        round_deadline = time.monotonic() + a.round_timeout
        new_tail = None
        while (pending or not got_append) and time.monotonic() < round_deadline:
            ready = []
            # Drain every ready socket first and stamp it at once, then parse: a reader's time is
            # the moment its bytes were read, not delayed by parsing other readers' responses.
            for key, _ in sel.select(timeout=0.5):
                c = key.data
                if not c.feed():
                    failures.append(f"{c.name} closed by server in round {r}")
                    pending.discard(c)
                    continue
                c.stamp = time.perf_counter()
                ready.append(c)
            for c in ready:
                if c is appender:
                    res = c.parse("POST")
                    if res is None:
                        continue
                    append_rtts.append(c.stamp - t0)
                    got_append = True
                    if res[0] // 100 != 2:
                        failures.append(f"append -> {res[0]} in round {r}")
                    new_tail = res[1].get("stream-next-offset", new_tail)
                    continue
                res = c.parse("GET")
                if res is None:
                    continue
                t1 = c.stamp
                status, hdrs, body = res
                pending.discard(c)
                if status != 200 or body != msg:
                    failures.append(f"{c.name} round {r}: status {status}, {len(body)} bytes"
                                    + ("" if body == msg else " (not the appended message)"))
                    continue
                round_lat.append(t1 - t0)
                new_tail = hdrs.get("stream-next-offset", new_tail)
                cursor = hdrs.get("stream-cursor", cursor)
        if pending or not got_append:
            failures.append(f"round {r}: {len(pending)} readers / append unanswered after {a.round_timeout}s")
            break
        if r >= a.warmup:
            latencies.extend(round_lat)
            rounds_done += 1
        tail = new_tail
        if len(failures) > 20:
            break

    for c in pollers + [appender, ctl]:
        c.close()
    lat_ms = sorted(x * 1000 for x in latencies)
    rtt_ms = sorted(x * 1000 for x in append_rtts)
    out = {
        "pollers": a.pollers,
        "rounds": rounds_done,
        "deliveries": len(lat_ms),
        "p50_ms": round(percentile(lat_ms, 50), 3),
        "p90_ms": round(percentile(lat_ms, 90), 3),
        "p99_ms": round(percentile(lat_ms, 99), 3),
        "max_ms": round(lat_ms[-1], 3) if lat_ms else None,
        "append_rtt_p50_ms": round(percentile(rtt_ms, 50), 3),
        "sync_misses": sync_misses,
        "failures": len(failures),
        "failure_samples": failures[:5],
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(out))


def cmd_wrk_parse(a):
    with open(a.file) as f:
        for line in f:
            if line.startswith("WRK_RESULT"):
                for kv in line.split()[1:]:
                    print(kv)
                return
    sys.exit(f"no WRK_RESULT line in {a.file}")


# --------------------------------------------------------------------------- report


def cmd_render(a):
    with open(a.results) as f:
        R = json.load(f)
    m, w = R["machine"], R["wrk_settings"]

    def f(x, nd=0):
        if x is None or x == "":
            return "n/a"
        try:
            return f"{float(x):,.{nd}f}"
        except (TypeError, ValueError):
            return str(x)

    co, cn = R["catchup_origin"], R["catchup_nginx"]
    ratio = (float(co["rps"]) / float(cn["rps"])) if float(cn.get("rps") or 0) > 0 else None
    rows = []
    def per_resp(x):
        return f"{float(x['bytes']) / float(x['requests']):.0f}" if float(x.get("requests") or 0) else "n/a"
    rows.append(("(a) catch-up GET 1 KiB, origin", f"{f(co['rps'])} req/s",
                 f"p50 {f(co['lat_p50_ms'],2)} ms, p99 {f(co['lat_p99_ms'],2)} ms, errors {co['errors']}, "
                 f"{per_resp(co)} bytes/response incl. headers"))
    rows.append(("(a) static 1 KiB file, nginx", f"{f(cn['rps'])} req/s",
                 f"p50 {f(cn['lat_p50_ms'],2)} ms, p99 {f(cn['lat_p99_ms'],2)} ms, errors {cn['errors']}, "
                 f"{per_resp(cn)} bytes/response incl. headers"))
    rows.append(("(a) ratio origin / nginx", f"{ratio:.2f}" if ratio else "n/a", ""))
    for key in ("append_1", "append_n"):
        ap = R.get(key)
        if not ap:
            continue
        ok = "OK" if ap["non2xx"] == 0 and ap["errors"] == 0 else "CHECK FAILED"
        rows.append((f"(b) 100-byte appends, {ap['streams']} stream{'s' if ap['streams'] != 1 else ''}",
                     f"{f(ap['rps'])} appends/s",
                     f"p50 {f(ap['lat_p50_ms'],2)} ms, p99 {f(ap['lat_p99_ms'],2)} ms; non-2xx {ap['non2xx']} "
                     f"(wrk {ap['wrk_status_err']}, origin metrics {ap['origin_non2xx']}), socket errors "
                     f"{ap['errors']}; origin counted {ap['origin_204']} x 204 vs wrk {ap['requests']} -> {ok}"))
    for key in ("latency_1", "latency_n"):
        L = R.get(key)
        if not L:
            continue
        rows.append((f"(c) append->long-poll wake, {L['pollers']} reader{'s' if L['pollers'] != 1 else ''}",
                     f"p50 {f(L['p50_ms'],3)} ms / p99 {f(L['p99_ms'],3)} ms",
                     f"{L['deliveries']} deliveries over {L['rounds']} rounds, p90 {f(L['p90_ms'],3)} ms, "
                     f"max {f(L['max_ms'],3)} ms, append RTT p50 {f(L['append_rtt_p50_ms'],3)} ms, "
                     f"failures {L['failures']}, sync misses {L['sync_misses']}"))

    facts = [
        ("date (UTC)", R["date"]),
        ("git commit", R["git"]),
        ("kernel", m["kernel"]),
        ("CPU", m["cpu"]),
        ("nproc", m["nproc"]),
        ("memory", m["mem"]),
        ("load", R["load"] + " (1/5/15 min; anything else busy on these CPUs skews every figure)"),
        ("wrk", m["wrk"]),
        ("nginx", f"{m['nginx']} (worker_processes {R['nginx_workers']}, access_log off, sendfile on, "
                  f"keepalive_requests 100000)"),
        ("origin", f"durable-streams origin, in-memory store, event-loop threads = nproc, "
                   f"--long-poll-timeout {R['long_poll_timeout']}; binary built {R['binary']}"),
        ("swift", m["swift"]),
        ("python", m["python"]),
        ("wrk settings", f"-t{w['threads']} -c{w['connections']} -d{w['duration']} (+ {w['warmup']} warm-up per target, "
                         f"not counted); client and servers share the same {m['nproc']} CPUs"),
    ]

    width = max(len(r[0]) for r in rows)
    lines = ["", "=" * 78, "Durable Streams origin benchmark — summary", "=" * 78]
    for k, v in facts:
        lines.append(f"{k:>13}: {v}")
    lines.append("-" * 78)
    for name, value, detail in rows:
        lines.append(f"{name:<{width}}  {value}")
        if detail:
            lines.append(f"{'':<{width}}    {detail}")
    for key in ("latency_1", "latency_n"):
        L = R.get(key)
        if L and L["failure_samples"]:
            lines.append(f"{key} failures: {L['failure_samples']}")
    lines.append("=" * 78)
    print("\n".join(lines))

    md = [f"# Durable Streams origin benchmark — {R['date']}", "",
          "Produced by `loadtest/bench-origin.sh`. Client (wrk / Python) and servers run on the same machine, "
          "so every figure includes the load generator's own CPU use.", "", "## Machine", "",
          "| fact | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in facts]
    md += ["", "## Results", "", "| measurement | figure | details |", "| --- | --- | --- |"]
    md += [f"| {n} | {v} | {d} |" for n, v, d in rows]
    md += ["", "## Method", "",
           "- (a) origin: `PUT /v1/stream/bench` with a 1024-byte body, then "
           "`wrk GET /v1/stream/bench?offset=-1` (1 KiB body per response). nginx: `GET /1k.bin`, a 1024-byte "
           "static file. Same wrk settings, run back to back.",
           "- (b) wrk `append.lua`: `POST` of a 100-byte body, `Content-Type: application/octet-stream`, "
           "keep-alive, same wrk settings; with several streams each thread cycles through them request by "
           "request. Non-2xx is checked both from wrk (status > 399) and from the origin's "
           "`ds_origin_requests_total{operation=\"append\"}` counters.",
           "- (c) `dsbench.py latency`: P keep-alive readers long-poll at the tail; once "
           "`ds_origin_open_long_polls` shows all P parked (+1 ms) a 100-byte timestamped message is POSTed on "
           "another connection; latency = from just before sending the POST to a reader having read the "
           "complete 200 response carrying that message. Single-threaded event loop client.", ""]
    os.makedirs(os.path.dirname(a.md) or ".", exist_ok=True)
    with open(a.md, "w") as fh:
        fh.write("\n".join(md))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport").set_defaults(fn=cmd_freeport)
    c = sub.add_parser("create")
    c.add_argument("url")
    c.add_argument("--bytes", type=int, default=0)
    c.set_defaults(fn=cmd_create)
    m = sub.add_parser("metric")
    m.add_argument("url")
    m.add_argument("name", nargs="?", default="")
    m.add_argument("labels", nargs="*")
    m.add_argument("--sum-non2xx", metavar="OPERATION")
    m.set_defaults(fn=cmd_metric)
    lp = sub.add_parser("latency")
    lp.add_argument("--base", required=True, help="e.g. http://127.0.0.1:4437")
    lp.add_argument("--stream", default="latency")
    lp.add_argument("--pollers", type=int, default=1)
    lp.add_argument("--rounds", type=int, default=500)
    lp.add_argument("--warmup", type=int, default=20)
    lp.add_argument("--bytes", type=int, default=100)
    lp.add_argument("--round-timeout", type=float, default=5.0)
    lp.add_argument("--max-seconds", type=float, default=45.0)
    lp.set_defaults(fn=cmd_latency)
    w = sub.add_parser("wrk-parse")
    w.add_argument("file")
    w.set_defaults(fn=cmd_wrk_parse)
    r = sub.add_parser("render")
    r.add_argument("results")
    r.add_argument("md")
    r.set_defaults(fn=cmd_render)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
