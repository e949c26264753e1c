#!/usr/bin/env python3
"""Helpers for loadtest/bench-storage.sh (Python 3 standard library only).

Subcommands:
  fill URL --prefix P --streams N --total BYTES --chunk BYTES [--threads T] [--max-seconds S]
        create N octet-stream streams P0..P(N-1) (PUT; an existing stream is kept) and append
        CHUNK-byte bodies round-robin until TOTAL bytes were appended; prints a JSON summary.
  check-read URL --expect BYTES
        GET URL with Accept-Encoding: identity; exits 1 unless it is a 200 with exactly BYTES body
        bytes and no Content-Encoding; prints the response's Stream-Next-Offset.
  timed-run --port P --result FILE [--timeout S] -- CMD...
        run CMD as a child, write to FILE the seconds from just before exec to the first TCP
        connect that succeeds on 127.0.0.1:P, then stay in the foreground until CMD exits,
        passing SIGTERM/SIGINT on to it (the child also gets SIGKILL if this wrapper dies).
  record RESULTS.jsonl KIND ...  append one measurement (see the `record` parser) as a JSON line
  render RESULTS.jsonl META.json MD_PATH
        print the side-by-side table (memory, file, ratio file/memory) and write it as markdown.

Every loop is bounded by a count and a wall-clock deadline; only loopback targets are allowed.
"""

import argparse
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse


def parse_url(url):
    u = urllib.parse.urlsplit(url)
    host = u.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        sys.exit(f"refusing non-loopback target {host}")
    target = u.path or "/"
    if u.query:
        target += "?" + u.query
    return host, u.port or 80, target


OCTET = {"Content-Type": "application/octet-stream"}


# --------------------------------------------------------------------------- fill


def cmd_fill(a):
    host, port, base = parse_url(a.url)
    base = base.rstrip("/")
    names = [f"{base}/{a.prefix}{i}" for i in range(a.streams)]
    unit = b"0123456789abcdef" * 64  # 1 KiB pattern
    body = (unit * (a.chunk // len(unit) + 1))[: a.chunk - 1] + b"\n"
    appends_needed = max(0, (a.total + a.chunk - 1) // a.chunk)
    deadline = time.monotonic() + a.max_seconds
    failures = []
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "bytes": 0}

    conn = http.client.HTTPConnection(host, port, timeout=30)
    for n in names:
        conn.request("PUT", n, body=b"", headers=OCTET)
        r = conn.getresponse()
        r.read()
        if r.status not in (200, 201, 204):
            sys.exit(f"PUT {n} -> {r.status}")
    conn.close()

    def worker():
        c = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                if state["next"] >= appends_needed or len(failures) > 10:
                    break
                if time.monotonic() > deadline:
                    if not any("time budget" in f for f in failures):
                        failures.append(f"time budget of {a.max_seconds}s reached")
                    break
                k = state["next"]
                state["next"] += 1
            try:
                c.request("POST", names[k % len(names)], body=body, headers=OCTET)
                r = c.getresponse()
                r.read()
                ok = r.status // 100 == 2
            except (OSError, http.client.HTTPException) as e:
                ok, r = False, None
                c.close()
                c = http.client.HTTPConnection(host, port, timeout=60)
                err = repr(e)
            with lock:
                if ok:
                    state["done"] += 1
                    state["bytes"] += len(body)
                else:
                    failures.append(f"POST {names[k % len(names)]} -> {r.status if r else err}")
        c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, a.threads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 60)
    secs = time.monotonic() - t0
    out = {"streams": a.streams, "appends": state["done"], "bytes": state["bytes"], "chunk": a.chunk,
           "seconds": round(secs, 3), "mb_per_s": round(state["bytes"] / 1e6 / secs, 1) if secs > 0 else None,
           "failures": len(failures), "failure_samples": failures[:5]}
    print(json.dumps(out))
    sys.exit(1 if failures or state["done"] < appends_needed else 0)


# --------------------------------------------------------------------------- check-read


def cmd_check_read(a):
    host, port, target = parse_url(a.url)
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", target, headers={"Accept-Encoding": "identity"})
    r = c.getresponse()
    body = r.read()
    c.close()
    enc = r.getheader("Content-Encoding")
    nxt = r.getheader("Stream-Next-Offset") or ""
    if r.status != 200 or len(body) != a.expect or enc not in (None, "identity"):
        sys.exit(f"GET {target}: status {r.status}, {len(body)} body bytes (expected {a.expect}), "
                 f"Content-Encoding {enc}, Stream-Next-Offset {nxt}")
    print(nxt)


# --------------------------------------------------------------------------- timed-run


def cmd_timed_run(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        sys.exit("timed-run: no command")

    def die_with_parent():  # in the child, before exec: SIGKILL it if this wrapper dies
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    out = open(a.log, "ab") if a.log else None
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None,
                             preexec_fn=die_with_parent)
    forwarded = {"sig": None}

    def forward(sig, _frame):
        forwarded["sig"] = sig
        try:
            child.send_signal(sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    ready = None
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline and child.poll() is None and forwarded["sig"] is None:
        s = socket.socket()
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", a.port))
            ready = time.perf_counter() - t0
            break
        except OSError:
            time.sleep(0.002)
        finally:
            s.close()
    with open(a.result + ".tmp", "w") as f:
        f.write("%.4f\n" % ready if ready is not None else "none\n")
    os.replace(a.result + ".tmp", a.result)
    if ready is None and child.poll() is None and forwarded["sig"] is None:
        child.terminate()
    while True:
        try:
            rc = child.wait()
            break
        except InterruptedError:
            continue
    sys.exit(rc if rc >= 0 else 128 - rc)


# --------------------------------------------------------------------------- results


def wrk_result(path):
    with open(path) as f:
        for line in f:
            if line.startswith("WRK_RESULT"):
                return {k: float(v) for k, v in (kv.split("=", 1) for kv in line.split()[1:])}
    sys.exit(f"no WRK_RESULT line in {path}")


def cmd_record(a):
    rec = {"kind": a.kind, "row": a.row, "label": a.label, "store": a.store, "order": time.time()}
    if a.kind == "wrk":
        w = wrk_result(a.wrk_log)
        errors = int(w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"])
        rec.update(value=w["rps"], unit=a.unit, requests=int(w["requests"]), p50_ms=w["lat_p50_ms"],
                   p99_ms=w["lat_p99_ms"], socket_errors=errors, wrk_status_err=int(w["err_status"]),
                   server_ok=a.server_ok, server_bad=a.server_bad, body_bytes=a.body_bytes,
                   mb_per_s=(w["rps"] * a.body_bytes / 1e6) if a.body_bytes else None)
    elif a.kind == "live":
        rec.update(rc=a.rc)
        try:
            with open(a.json) as f:
                j = json.load(f)
            if isinstance(j, list):
                j = j[0]
            d, lat, err = j["delivery"], j["latency"], j["errors"]
            rec.update(appended=d["appended"], expected=d["expected"], received=d["received"], lost=d["lost"],
                       duplicated=d["duplicated"], out_of_order=d["outOfOrder"], corrupt=d["corrupt"],
                       before_ack=d["beforeAck"], readers=d["readers"], p50_ms=lat["p50"], p99_ms=lat["p99"],
                       p999_ms=lat["p999"], max_ms=lat["max"], errors=err["connectionErrors"] + sum(err["statuses"].values())
                       + err["failedAppends"], statuses=err["statuses"], failed_appends=err["failedAppends"],
                       collapse=j.get("collapseRatio"), origin_requests=j.get("originRequests"))
        except (OSError, ValueError, KeyError) as e:
            rec.update(missing=f"no usable loadtest JSON: {e!r}")
    elif a.kind == "value":
        rec.update(value=a.value, unit=a.unit, text=a.text)
    rec["detail"] = a.detail
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")


def fmt(x, nd=0):
    if x is None:
        return "n/a"
    try:
        return f"{float(x):,.{nd}f}"
    except (TypeError, ValueError):
        return str(x)


def cmd_render(a):
    recs = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    with open(a.meta) as f:
        meta = json.load(f)

    # Group: row -> {store -> record}; rows keep the order they were first recorded in.
    rows, order = {}, []
    for r in recs:
        if r["row"] not in rows:
            rows[r["row"]] = {}
            order.append(r["row"])
        rows[r["row"]][r["store"]] = r

    table = []  # (measurement, memory, file, ratio, notes)
    problems = []

    def ratio(fv, mv):
        try:
            return f"{float(fv) / float(mv):.2f}×" if float(mv) > 0 else "n/a"
        except (TypeError, ValueError):
            return "n/a"

    def wrk_cell(r):
        if r is None:
            return "n/a"
        s = f"{fmt(r['value'])} {r['unit']}"
        if r.get("mb_per_s") and (r.get("body_bytes") or 0) >= 1024:
            s += f" ({fmt(r['mb_per_s'], 1)} MB/s)"
        return s

    def wrk_check(r, store):
        if r is None:
            return
        bad = []
        if r.get("socket_errors"):
            bad.append(f"{r['socket_errors']} socket errors")
        if r.get("wrk_status_err"):
            bad.append(f"{r['wrk_status_err']} responses >399 (wrk)")
        if r.get("server_bad"):
            bad.append(f"{r['server_bad']} non-2xx (server metrics)")
        if bad:
            problems.append(f"{r['label']} [{store}]: " + ", ".join(bad))

    for row in order:
        group = rows[row]
        anyrec = next(iter(group.values()))
        kind = anyrec["kind"]
        mem = group.get("memory")
        files = [(s, r) for s, r in group.items() if s != "memory"]
        if kind == "wrk":
            wrk_check(mem, "memory")
            for s, r in files or [("file", None)]:
                wrk_check(r, s)
                label = anyrec["label"] + (f", {s}" if s != "file" else "")
                lat = []
                for name, x in (("mem", mem), (s, r)):
                    if x:
                        lat.append(f"{name} p50/p99 {fmt(x['p50_ms'], 2)}/{fmt(x['p99_ms'], 2)} ms")
                table.append((label, wrk_cell(mem), wrk_cell(r), ratio(r and r["value"], mem and mem["value"]),
                              "; ".join(lat)))
        elif kind == "live":
            def cell(x):
                if x is None:
                    return "n/a"
                if x.get("missing"):
                    return x["missing"]
                return (f"{fmt(x['received'])} delivered of {fmt(x['expected'])} "
                        f"(lost {x['lost']} / dup {x['duplicated']} / ooo {x['out_of_order']})")
            for s, r in files or [("file", None)]:
                for x, st in ((mem, "memory"), (r, s)):
                    if x and (x.get("missing") or x["lost"] or x["duplicated"] or x["out_of_order"] or x["corrupt"]
                              or x["errors"] or x["rc"]):
                        problems.append(f"{anyrec['label']} [{st}]: exit {x['rc']}, "
                                        + (x.get("missing") or f"lost {x['lost']}, duplicated {x['duplicated']}, "
                                           f"out of order {x['out_of_order']}, corrupt {x['corrupt']}, errors {x['errors']} "
                                           f"{x['statuses'] or ''}, failed appends {x['failed_appends']}"))
                ok = mem and r and not mem.get("missing") and not r.get("missing")
                notes = ""
                if ok:
                    notes = (f"appends acked mem/file {mem['appended']}/{r['appended']}; collapse "
                             f"{fmt(mem['collapse'], 0)}×/{fmt(r['collapse'], 0)}×; before-ack {mem['before_ack']}/{r['before_ack']}")
                table.append((anyrec["label"] + ": delivered (lost/dup/out-of-order)", cell(mem), cell(r),
                              ratio(r and r.get("received"), mem and mem.get("received")) if ok else "n/a", notes))
                for key, name in (("p50_ms", "p50"), ("p99_ms", "p99")):
                    table.append((f"{anyrec['label']}: append→delivery {name}",
                                  f"{fmt(mem[key], 1)} ms" if mem and not mem.get("missing") else "n/a",
                                  f"{fmt(r[key], 1)} ms" if r and not r.get("missing") else "n/a",
                                  ratio(r.get(key), mem.get(key)) if ok else "n/a", "lower is better"))
        else:  # value
            def vcell(x):
                if x is None:
                    return "n/a"
                return x.get("text") or f"{fmt(x['value'], 3)} {x['unit']}"
            for s, r in files or [("file", None)]:
                table.append((anyrec["label"], vcell(mem), vcell(r),
                              ratio(r and r.get("value"), mem and mem.get("value")) if mem and r else "n/a",
                              (r or mem or {}).get("detail") or ""))

    for p in meta.get("problems", []):
        problems.append(p)

    # The headline goal: 100-byte appends at many connections, fsync=batch at least 0.5x memory.
    headline = []
    for row in order:
        g = rows[row]
        if row.startswith("a100_cN") and "memory" in g and "fsync=batch" in g:
            m, b = g["memory"]["value"], g["fsync=batch"]["value"]
            if m:
                q = b / m
                headline.append(f"{g['memory']['label']}: fsync=batch / memory = {q:.2f}× "
                                f"(goal ≥ 0.5×: {'met' if q >= 0.5 else 'NOT met'})")

    head = ["measurement", "memory", "file", "ratio file/memory", "notes"]
    md = [f"# Durable Streams storage benchmark — {meta['date']}", "",
          "Produced by `loadtest/bench-storage.sh`: the file store (`--data-dir`) against the in-memory store, "
          "measured in the same run with the same settings; ratio = file / memory (for throughput higher is "
          "better, for latencies and times lower is better).", "",
          f"**Machine: {meta['nproc']} cores; the load generator (wrk, Python, the loadtest) shares them with "
          f"the servers**, so every figure includes the client's own CPU use and is a comparison, not an "
          f"absolute capacity.", ""]
    if headline:
        md += ["**Headline:** " + "; ".join(headline), ""]
    md += ["## Results", "",
          "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    md += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in table]
    md += ["", "## Problems seen", ""]
    md += [f"- {p}" for p in problems] or ["- none: no non-2xx, socket errors, lost/duplicated messages or server crashes"]
    md += ["", "## Setup", "", "| fact | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in meta["facts"]]
    md += ["", "## Method", ""] + [f"- {m}" for m in meta["method"]] + [""]
    os.makedirs(os.path.dirname(a.md) or ".", exist_ok=True)
    with open(a.md, "w") as fh:
        fh.write("\n".join(md))

    # Terminal version: the same table, aligned.
    widths = [max(len(str(r[i])) for r in table + [tuple(head)]) for i in range(4)]
    lines = ["", "=" * 100, f"Durable Streams storage benchmark — {meta['date']}",
             f"NOTE: {meta['nproc']} cores; the load generator shares them with the servers.", "=" * 100]
    lines.append("  ".join(str(h).ljust(widths[i]) for i, h in enumerate(head[:4])))
    lines.append("  ".join("-" * w for w in widths))
    for r in table:
        lines.append("  ".join(str(r[i]).ljust(widths[i]) for i in range(4)))
        if r[4]:
            lines.append(" " * (widths[0] + 2) + "  " + r[4])
    lines.append("-" * 100)
    lines += [f"headline: {h}" for h in headline]
    lines.append("problems: " + ("none" if not problems else ""))
    lines += [f"  - {p}" for p in problems]
    for k, v in meta["facts"]:
        lines.append(f"{k:>22}: {v}")
    lines.append("=" * 100)
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fill")
    f.add_argument("url", help="base, e.g. http://127.0.0.1:4437/v1/stream")
    f.add_argument("--prefix", default="fill-")
    f.add_argument("--streams", type=int, default=1)
    f.add_argument("--total", type=int, required=True)
    f.add_argument("--chunk", type=int, default=1 << 20)
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--max-seconds", type=float, default=600)
    f.set_defaults(fn=cmd_fill)

    c = sub.add_parser("check-read")
    c.add_argument("url")
    c.add_argument("--expect", type=int, required=True)
    c.set_defaults(fn=cmd_check_read)

    t = sub.add_parser("timed-run")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--result", required=True)
    t.add_argument("--log")
    t.add_argument("--timeout", type=float, default=600)
    t.add_argument("cmd", nargs=argparse.REMAINDER)
    t.set_defaults(fn=cmd_timed_run)

    r = sub.add_parser("record")
    r.add_argument("results")
    r.add_argument("kind", choices=("wrk", "live", "value"))
    r.add_argument("--row", required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--store", required=True, help="memory, or the file variant (file, fsync=batch, ...)")
    r.add_argument("--wrk-log")
    r.add_argument("--unit", default="")
    r.add_argument("--server-ok", type=int, default=None)
    r.add_argument("--server-bad", type=int, default=0)
    r.add_argument("--body-bytes", type=int, default=0)
    r.add_argument("--json")
    r.add_argument("--rc", type=int, default=0)
    r.add_argument("--value", type=float)
    r.add_argument("--text")
    r.add_argument("--detail", default="")
    r.set_defaults(fn=cmd_record)

    rd = sub.add_parser("render")
    rd.add_argument("results")
    rd.add_argument("meta")
    rd.add_argument("md")
    rd.set_defaults(fn=cmd_render)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
