#!/usr/bin/env python3
"""Helpers for loadtest/bench-edge.sh (Python 3 standard library only; reuses dsbench.py).

Subcommands:
  xcache URL [--count N] [--header NAME]   GET URL N times on one keep-alive connection and print
                                           JSON {"status": {...}, "values": {...}} counting the
                                           statuses and the values of a response header
                                           (default X-Cache; nginx: X-Cache-Status)
  snapshot --origin URL [--edge URL]       print the counters fanout compares, as JSON
  fanout --mode long-poll|sse ...          N readers of one stream and one writer (see below)
  brief FANOUT.json                        one line about a fanout result
  render RESULTS.json MD_PATH              print the summary block and write it as markdown

Fan-out method. --procs worker processes, each one asyncio event loop (no threads), drive the
--readers reader connections (spread round-robin); the parent process drives the writer. All are
raw sockets speaking HTTP/1.1 keep-alive (asyncio.Protocol, no HTTP library). Connections are
opened at --connect-rate per second overall, in batches every 10 ms (no SYN storm).

  long-poll reader: GET <stream>?offset=-1 (catch-up, like a client starting from the
      beginning), then loops GET <stream>?offset=<Stream-Next-Offset>&live=long-poll
      [&cursor=<Stream-Cursor>], echoing the last Stream-Cursor and following
      Stream-Next-Offset of every 200 or 204, exactly like a real client.
  sse reader: GET <stream>?offset=-1&live=sse, parses `event: data` / `event: control`
      (SSE framing, chunked transfer coding), follows streamNextOffset / streamCursor from the
      control events, and reconnects from there with &cursor= if the response ends.

Once every reader is live (long-poll: first long-poll sent; SSE: first control event seen) and
--settle seconds have passed, the writer POSTs --messages text lines
`seq=NNNNNN t=<time_ns> ...` (100 bytes), one every --interval seconds, straight to the origin
(--origin). A delivery's latency is the time from the writer's time.time_ns() just before the
POST is written to the socket to the reader's time.time_ns() when the bytes carrying that line
were read from its socket (CLOCK_REALTIME, the same clock in every process of this machine). Each reader records which sequence numbers
it saw: a missing one is a loss, a second copy a duplicate. Counters of the origin (and the
edge, with --edge) are read before and after, once the readers have closed, for the collapse
ratio. Only loopback addresses are allowed; the run is bounded by --max-seconds.
"""

import argparse
import asyncio
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dsbench import Conn, metric_value, parse_base, percentile  # noqa: E402

# --------------------------------------------------------------------------- metrics


def scrape(url):
    host, port, path = parse_base(url)
    c = Conn(host, port)
    try:
        status, _, body = c.roundtrip("GET", path)
    finally:
        c.close()
    if status != 200:
        raise RuntimeError(f"GET {url} -> {status}")
    return body.decode()


def samples(text, name):
    """All samples of `name` as a list of (labels dict, value)."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)", line)
        if m and m.group(1) == name:
            out.append((dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or "")), float(m.group(4))))
    return out


def snapshot(origin, edge=None):
    t = scrape(origin.rstrip("/") + "/metrics")
    snap = {"origin": {}}
    for labels, v in samples(t, "ds_origin_requests_total"):
        op = labels.get("operation", "?")
        snap["origin"][op] = snap["origin"].get(op, 0) + int(v)
    if edge:
        e = scrape(edge.rstrip("/") + "/metrics")
        req, up = {}, {}
        for labels, v in samples(e, "ds_edge_requests_total"):
            req.setdefault(labels.get("class", "?"), {})[labels.get("cache", "?")] = int(v)
        for labels, v in samples(e, "ds_edge_upstream_requests_total"):
            up[labels.get("class", "?")] = int(v)
        snap["edge"] = {"requests": req, "upstream": up,
                        "upstream_errors": int(metric_value(e, "ds_edge_upstream_errors_total") or 0)}
    return snap


def delta(before, after):
    """Recursive after - before over nested dicts of ints (keys missing before count as 0);
    zero entries are left out."""
    if isinstance(after, dict):
        out = {}
        for k, v in after.items():
            d = delta(before.get(k, 0) if isinstance(before, dict) else 0, v)
            if d != 0 and d != {}:
                out[k] = d
        return out
    return after - (before or 0)


def cmd_snapshot(a):
    print(json.dumps(snapshot(a.origin, a.edge)))


def cmd_xcache(a):
    host, port, path = parse_base(a.url)
    u = urllib.parse.urlsplit(a.url)
    target = u.path + ("?" + u.query if u.query else "")
    c = Conn(host, port)
    statuses, values = {}, {}
    try:
        for _ in range(a.count):
            status, headers, _ = c.roundtrip("GET", target)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            v = headers.get(a.header.lower(), "(none)")
            values[v] = values.get(v, 0) + 1
    finally:
        c.close()
    print(json.dumps({"header": a.header, "count": a.count, "status": statuses, "values": values}))


# --------------------------------------------------------------------------- HTTP/1.1 over asyncio

HEAD, LENGTH, CHUNK_SIZE, CHUNK_DATA, TRAILER, UNTIL_CLOSE = range(6)
# Only the headers the clients act on are extracted (one C-level regex pass per response head).
HEADER_RE = re.compile(
    rb"\r\n(content-length|transfer-encoding|stream-next-offset|stream-cursor|x-cache|x-cache-status)[ \t]*:[ \t]*([^\r]*)",
    re.I)


class HTTPClient(asyncio.Protocol):
    """Incremental HTTP/1.1 response parser on a raw socket. Subclasses get on_head(status,
    headers), on_body(bytes, stamp) per piece of body as it arrives, and on_complete(stamp).
    `stamp` is time.time_ns() taken when the bytes were read from the socket."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.state = HEAD
        self.need = 0
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        if self.state == UNTIL_CLOSE:
            self.state = HEAD
            self.on_complete(time.time_ns())
        self.on_lost(exc)

    def data_received(self, data):
        stamp = time.time_ns()
        self.buf += data
        try:
            self.process(stamp)
        except Exception as e:  # a malformed response: count it and drop the connection
            self.on_protocol_error(f"{type(e).__name__}: {e}")
            if self.transport:
                self.transport.close()

    def process(self, stamp):
        buf = self.buf
        while True:
            state = self.state
            if state == HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end + 2])
                del buf[:end + 4]
                status = int(head[9:12])
                headers = {k.lower().decode(): v.decode("latin-1").strip() for k, v in HEADER_RE.findall(head)}
                self.on_head(status, headers)
                if status in (204, 304) or 100 <= status < 200:
                    self.on_complete(stamp)
                elif headers.get("transfer-encoding", "").lower() == "chunked":
                    self.state = CHUNK_SIZE
                elif "content-length" in headers:
                    self.need = int(headers["content-length"])
                    self.state = LENGTH
                    if self.need == 0:
                        self.state = HEAD
                        self.on_complete(stamp)
                else:
                    self.state = UNTIL_CLOSE
            elif state == LENGTH:
                if not buf:
                    return
                n = min(self.need, len(buf))
                piece = bytes(buf[:n])
                del buf[:n]
                self.need -= n
                self.on_body(piece, stamp)
                if self.need:
                    return
                self.state = HEAD
                self.on_complete(stamp)
            elif state == CHUNK_SIZE:
                nl = buf.find(b"\r\n")
                if nl < 0:
                    return
                size = int(bytes(buf[:nl]).split(b";")[0], 16)
                del buf[:nl + 2]
                if size == 0:
                    self.state = TRAILER
                else:
                    self.need = size
                    self.state = CHUNK_DATA
            elif state == CHUNK_DATA:
                if len(buf) < self.need + 2:
                    return
                piece = bytes(buf[:self.need])
                del buf[:self.need + 2]
                self.state = CHUNK_SIZE
                self.on_body(piece, stamp)
            elif state == TRAILER:
                nl = buf.find(b"\r\n")
                if nl < 0:
                    return
                del buf[:nl + 2]
                if nl == 0:
                    self.state = HEAD
                    self.on_complete(stamp)
            else:  # UNTIL_CLOSE
                if buf:
                    piece = bytes(buf)
                    buf.clear()
                    self.on_body(piece, stamp)
                return

    def send(self, method, target, host, headers=None, body=b""):
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    # hooks
    def on_head(self, status, headers):
        pass

    def on_body(self, data, stamp):
        pass

    def on_complete(self, stamp):
        pass

    def on_lost(self, exc):
        pass

    def on_protocol_error(self, what):
        pass


# --------------------------------------------------------------------------- readers (worker processes)


class ReaderGroup:
    """The readers of one worker process and what they saw."""

    def __init__(self, a, indices):
        self.a = a
        self.indices = indices
        self.n = len(indices)
        self.host, self.port, _ = parse_base(a.base)
        self.hostport = f"{self.host}:{self.port}"
        self.path = f"/v1/stream/{a.stream}"
        self.messages = a.messages
        self.stopping = False
        self.latencies = []          # ns, one per first delivery of a message to a reader
        self.readers = {}            # global index -> Reader
        self.complete = 0            # readers holding every message
        self.done_event = asyncio.Event()
        self.ready_count = 0
        self.ready_event = asyncio.Event()
        self.errors = []             # samples
        self.error_count = 0
        self.status = {}             # reader response statuses
        self.xcache = {}             # phase:X-Cache (or X-Cache-Status) value of reader responses
        self.requests = {"catch_up": 0, "long_poll": 0, "sse": 0}
        self.reconnects = 0
        self.connect_failures = 0

    def error(self, what):
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(what)


class Reader(HTTPClient):
    MAX_RECONNECTS = 20

    def __init__(self, group, idx):
        super().__init__()
        self.group = group
        self.idx = idx
        self.offset = "-1"
        self.cursor = None
        self.seen = bytearray(group.messages)
        self.unique = 0
        self.dups = 0
        self.out_of_order = 0
        self.last_seq = -1
        self.ready = False
        self.connected = False
        self.phase = "catch_up" if group.a.mode == "long-poll" else "sse"
        self.body = []
        self.status = 0
        self.headers = {}
        self.reconnects = 0
        # SSE parser state
        self.sse_buf = bytearray()
        self.event = b""
        self.data_lines = []

    def inherit(self, old):
        for attr in ("offset", "cursor", "seen", "unique", "dups", "out_of_order", "last_seq", "ready", "reconnects",
                     "phase", "connected"):
            setattr(self, attr, getattr(old, attr))

    # ---- requests
    def connection_made(self, transport):
        super().connection_made(transport)
        self.connected = True
        self.next_request()

    def next_request(self):
        g = self.group
        if g.stopping or self.closed:
            return
        q = urllib.parse.quote
        if self.phase == "catch_up":
            target = f"{g.path}?offset={q(self.offset, safe='')}"
        elif self.phase == "long_poll":
            target = f"{g.path}?offset={q(self.offset, safe='')}&live=long-poll"
            if self.cursor:
                target += f"&cursor={q(self.cursor, safe='')}"
        else:
            target = f"{g.path}?offset={q(self.offset, safe='')}&live=sse"
            if self.cursor:
                target += f"&cursor={q(self.cursor, safe='')}"
        g.requests[self.phase] += 1
        self.transport.write(f"GET {target} HTTP/1.1\r\nHost: {g.hostport}\r\n\r\n".encode())
        if self.phase == "long_poll" and not self.ready:
            self.mark_ready()

    def mark_ready(self):
        self.ready = True
        g = self.group
        g.ready_count += 1
        if g.ready_count >= g.n:
            g.ready_event.set()

    # ---- responses
    def on_head(self, status, headers):
        g = self.group
        self.status, self.headers = status, headers
        self.body = []
        g.status[status] = g.status.get(status, 0) + 1
        xc = headers.get("x-cache") or headers.get("x-cache-status")
        if xc:
            k = f"{self.phase}:{xc}"
            g.xcache[k] = g.xcache.get(k, 0) + 1
        if status != 200 and not (status == 204 and self.phase == "long_poll"):
            g.error(f"reader {self.idx}: {self.phase} offset={self.offset} cursor={self.cursor} -> {status} "
                    f"(X-Cache {xc})")

    def on_body(self, data, stamp):
        if self.phase == "sse":
            if self.status == 200:
                self.sse_feed(data, stamp)
        else:
            self.body.append(data)

    def on_complete(self, stamp):
        g = self.group
        if self.phase == "sse":
            # The SSE response ended (reconnect interval, or an error): resume where the last
            # control event said, on this connection if it stays open, else on a new one.
            if g.stopping:
                return
            if self.status != 200:
                asyncio.get_running_loop().call_later(0.1, self.next_request)
            else:
                self.next_request()
            return
        status, h = self.status, self.headers
        if status == 200:
            self.deliver(b"".join(self.body), stamp)
        if status in (200, 204):
            off = h.get("stream-next-offset")
            if off:
                self.offset = off
            else:
                g.error(f"reader {self.idx}: {status} without Stream-Next-Offset")
            cur = h.get("stream-cursor")
            if cur:
                self.cursor = cur
            if self.phase == "catch_up":
                self.phase = "long_poll"
            self.next_request()
        else:
            asyncio.get_running_loop().call_later(0.1, self.next_request)

    def on_lost(self, exc):
        g = self.group
        if g.stopping:
            return
        g.error(f"reader {self.idx}: connection closed by server during {self.phase} "
                f"(offset={self.offset}){': ' + str(exc) if exc else ''}")
        if self.reconnects >= self.MAX_RECONNECTS:
            return
        self.reconnects += 1
        g.reconnects += 1
        asyncio.get_running_loop().create_task(reconnect(g, self))

    def on_protocol_error(self, what):
        self.group.error(f"reader {self.idx}: bad response: {what}")

    # ---- SSE
    def sse_feed(self, data, stamp):
        buf = self.sse_buf
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                return
            line = bytes(buf[:nl])
            del buf[:nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                self.sse_dispatch(stamp)
                continue
            if line.startswith(b":"):
                continue
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"event":
                self.event = value
            elif field == b"data":
                self.data_lines.append(value)

    def sse_dispatch(self, stamp):
        event, lines = self.event, self.data_lines
        self.event, self.data_lines = b"", []
        if not lines and not event:
            return
        if event == b"data":
            self.deliver(b"\n".join(lines), stamp)
        elif event == b"control":
            try:
                c = json.loads(b"\n".join(lines))
            except ValueError:
                self.group.error(f"reader {self.idx}: bad control event {lines!r}")
                return
            if c.get("streamNextOffset"):
                self.offset = c["streamNextOffset"]
            if c.get("streamCursor"):
                self.cursor = str(c["streamCursor"])
            if not self.ready:
                self.mark_ready()

    # ---- messages
    def deliver(self, payload, stamp):
        g = self.group
        for line in payload.split(b"\n"):
            if not line.startswith(b"seq="):
                continue
            try:
                parts = line.split(b" ", 2)
                seq = int(parts[0][4:])
                t = int(parts[1][2:])
            except (IndexError, ValueError):
                g.error(f"reader {self.idx}: unparsable line {line[:40]!r}")
                continue
            if not 0 <= seq < g.messages:
                g.error(f"reader {self.idx}: unexpected seq {seq}")
                continue
            if seq < self.last_seq:
                self.out_of_order += 1
            if seq > self.last_seq:
                self.last_seq = seq
            if self.seen[seq]:
                self.dups += 1
                continue
            self.seen[seq] = 1
            self.unique += 1
            g.latencies.append(stamp - t)
            if self.unique == g.messages:
                g.complete += 1
                if g.complete >= g.n:
                    g.done_event.set()


async def reconnect(g, old):
    """A new connection for a reader whose connection the server closed, resuming from its
    offset and cursor (bounded by Reader.MAX_RECONNECTS)."""
    await asyncio.sleep(0.05)
    if g.stopping:
        return
    new = Reader(g, old.idx)
    new.inherit(old)
    g.readers[old.idx] = new
    try:
        await asyncio.get_running_loop().create_connection(lambda: new, g.host, g.port)
    except OSError as e:
        g.error(f"reader {old.idx}: reconnect failed: {e}")


async def reader_worker(a, indices, conn):
    """One worker process: connect its readers (paced), report "ready", then read until it holds
    every message or the parent says "stop"; then close and send its results."""
    g = ReaderGroup(a, indices)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_pipe():
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = "stop"
        if msg == "stop":
            stop.set()
            loop.remove_reader(conn.fileno())

    loop.add_reader(conn.fileno(), on_pipe)
    deadline = loop.time() + a.max_seconds

    async def open_one(i):
        r = Reader(g, i)
        g.readers[i] = r
        try:
            await asyncio.wait_for(loop.create_connection(lambda: r, g.host, g.port), 10)
        except (OSError, asyncio.TimeoutError) as e:
            g.connect_failures += 1
            g.error(f"reader {i}: connect failed: {e!r}")

    # Paced: the whole run opens connect_rate connections per second, a batch every 10 ms.
    rate = a.connect_rate / a.procs
    batch = max(1, round(rate / 100))
    tasks = []
    for k in range(0, g.n, batch):
        if stop.is_set():
            break
        for i in indices[k:k + batch]:
            tasks.append(loop.create_task(open_one(i)))
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    try:
        await asyncio.wait_for(g.ready_event.wait(), a.ready_timeout)
    except asyncio.TimeoutError:
        g.error(f"only {g.ready_count}/{g.n} readers of this worker live after {a.ready_timeout}s")
    conn.send(("ready", g.ready_count))

    waiters = [loop.create_task(g.done_event.wait()), loop.create_task(stop.wait())]
    await asyncio.wait(waiters, timeout=max(0.1, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED)
    if g.done_event.is_set():
        conn.send(("complete", g.complete))
        try:
            await asyncio.wait_for(stop.wait(), max(0.1, deadline - loop.time()))
        except asyncio.TimeoutError:
            pass
    for w in waiters:
        w.cancel()
    g.stopping = True
    for r in g.readers.values():
        if r.transport is not None:
            r.transport.close()
    await asyncio.sleep(0.1)
    conn.send(("result", {
        "latencies": g.latencies,
        "readers": {i: (bytes(r.seen), r.dups, r.out_of_order, r.connected, r.offset, r.cursor, r.phase)
                    for i, r in g.readers.items()},
        "missing": [i for i in indices if i not in g.readers],
        "requests": g.requests, "status": g.status, "xcache": g.xcache, "errors": g.errors,
        "error_count": g.error_count, "reconnects": g.reconnects, "connect_failures": g.connect_failures,
        "complete": g.complete,
    }))


def worker_main(a, indices, conn):
    try:
        asyncio.run(reader_worker(a, indices, conn))
    finally:
        conn.close()


# --------------------------------------------------------------------------- writer (parent process)


class Writer(HTTPClient):
    """POSTs `seq=NNNNNN t=<time_ns> mmm…\\n` lines straight to the origin on one keep-alive
    connection, pipelining if a response is late; records acknowledgements."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.host, self.port, _ = parse_base(a.origin)
        self.path = f"/v1/stream/{a.stream}"
        self.inflight = []           # seqs awaiting a response, in order
        self.sent_ns = {}            # seq -> time_ns just before the POST was written
        self.appended = set()        # seqs acknowledged with 2xx
        self.rtt = []                # ns
        self.errors = []
        self.status = 0
        self.stopping = False

    def post(self, seq):
        t = time.time_ns()
        line = f"seq={seq:06d} t={t} ".encode()
        line += b"m" * max(0, self.a.bytes - 1 - len(line)) + b"\n"
        self.sent_ns[seq] = t
        self.inflight.append(seq)
        self.send("POST", self.path, f"{self.host}:{self.port}", {"Content-Type": "text/plain"}, line)

    def on_head(self, status, headers):
        self.status = status

    def on_complete(self, stamp):
        seq = self.inflight.pop(0)
        if 200 <= self.status < 300:
            self.appended.add(seq)
            self.rtt.append(stamp - self.sent_ns[seq])
        else:
            self.errors.append(f"append seq {seq} -> {self.status}")

    def on_lost(self, exc):
        if not self.stopping:
            self.errors.append(f"writer connection lost: {exc}")


async def sample_gauges(origin, peaks, errors, stop):
    """Peaks of the origin's open long-poll / SSE / connection gauges while the writer runs."""
    names = ("ds_origin_open_long_polls", "ds_origin_open_sse_connections", "ds_origin_open_connections")
    url = origin.rstrip("/") + "/metrics"
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            text = await loop.run_in_executor(None, scrape, url)
            for n in names:
                v = metric_value(text, n)
                if v is not None:
                    peaks[n] = max(peaks.get(n, 0), int(v))
        except Exception as e:  # sampling is best effort
            errors.append(f"gauge sample failed: {e}")
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def coordinate(a, conns):
    """Parent: wait for every worker's readers to be live, write, wait for delivery, stop."""
    loop = asyncio.get_running_loop()
    inbox = asyncio.Queue()
    alive = set(range(len(conns)))

    def reader_for(w, conn):
        def on_pipe():
            try:
                inbox.put_nowait((w,) + tuple(conn.recv()))
            except (EOFError, OSError):
                loop.remove_reader(conn.fileno())
                alive.discard(w)
                inbox.put_nowait((w, "gone", None))
        return on_pipe

    for w, conn in enumerate(conns):
        loop.add_reader(conn.fileno(), reader_for(w, conn))

    async def collect(kind, n, timeout):
        got, end = {}, loop.time() + timeout
        while len(got) < n:
            left = end - loop.time()
            if left <= 0:
                break
            try:
                w, k, v = await asyncio.wait_for(inbox.get(), left)
            except asyncio.TimeoutError:
                break
            if k == kind:
                got[w] = v
            elif k == "gone" and w not in got:
                n -= 1  # died without sending this message: do not wait for it
            elif k == "result":  # a worker that gave up early
                results[w] = v
        return got

    results = {}
    notes = []
    t_start = time.monotonic()
    connect_time = a.readers / a.connect_rate
    ready = await collect("ready", len(conns), connect_time + a.ready_timeout + 10)
    live = sum(ready.values())
    t_ready = time.monotonic()
    if live < a.readers:
        notes.append(f"only {live}/{a.readers} readers live before writing")
    await asyncio.sleep(a.settle)

    writer = Writer(a)
    await loop.create_connection(lambda: writer, writer.host, writer.port)
    peaks, stop_sampling = {}, asyncio.Event()
    sampler = loop.create_task(sample_gauges(a.origin, peaks, notes, stop_sampling))
    t0 = loop.time()
    t_write = time.monotonic()
    for seq in range(a.messages):
        delay = t0 + seq * a.interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.post(seq)
    t_written = time.monotonic()
    complete = await collect("complete", len(conns), a.drain)
    t_drained = time.monotonic()
    end = time.monotonic() + 2
    while writer.inflight and time.monotonic() < end:
        await asyncio.sleep(0.01)

    stop_sampling.set()
    await sampler
    for conn in conns:
        try:
            conn.send("stop")
        except OSError:
            pass
    writer.stopping = True
    writer.transport.close()
    results.update(await collect("result", len(conns) - len(results), 30))
    for conn in conns:
        try:
            loop.remove_reader(conn.fileno())
        except (ValueError, OSError):
            pass
    phases = {
        "connect_and_ready_s": round(t_ready - t_start, 2),
        "write_s": round(t_written - t_write, 2),
        "drain_s": round(t_drained - t_written, 2),
        "workers_complete": len(complete),
    }
    return writer, results, peaks, phases, notes


def cmd_fanout(a):
    import multiprocessing
    for url in (a.base, a.origin) + ((a.edge,) if a.edge else ()):
        parse_base(url)  # loopback only
    a.procs = max(1, min(a.procs, a.readers))
    # The stream (text/plain: lines stay lines in SSE data events), created at the origin.
    ohost, oport, _ = parse_base(a.origin)
    c = Conn(ohost, oport)
    status, _, _ = c.roundtrip("PUT", f"/v1/stream/{a.stream}", {"Content-Type": "text/plain"})
    c.close()
    if status not in (200, 201, 204):
        sys.exit(f"PUT /v1/stream/{a.stream} -> {status}")

    before = snapshot(a.origin, a.edge)
    started = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    conns, procs = [], []
    for w in range(a.procs):
        parent_end, child_end = ctx.Pipe()
        indices = list(range(w, a.readers, a.procs))
        p = ctx.Process(target=worker_main, args=(a, indices, child_end), daemon=True)
        p.start()
        child_end.close()
        conns.append(parent_end)
        procs.append(p)

    async def main():
        return await asyncio.wait_for(coordinate(a, conns), a.max_seconds + 40)

    try:
        writer, results, peaks, phases, notes = asyncio.run(main())
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    time.sleep(a.after)  # let the servers account for the requests the readers abandoned
    after = snapshot(a.origin, a.edge)
    d = delta(before, after)

    expected = sorted(writer.appended)
    latencies, requests, statuses, xcache, errors = [], {}, {}, {}, list(notes)
    error_count, reconnects, connect_failures = len(notes), 0, 0
    per_reader = {}
    for w, res in sorted(results.items()):
        latencies += res["latencies"]
        per_reader.update(res["readers"])
        for src, dst in ((res["requests"], requests), (res["status"], statuses), (res["xcache"], xcache)):
            for k, v in src.items():
                dst[str(k)] = dst.get(str(k), 0) + v
        errors += res["errors"]
        error_count += res["error_count"]
        reconnects += res["reconnects"]
        connect_failures += res["connect_failures"]
    if len(results) < a.procs:
        error_count += 1
        errors.insert(0, f"only {len(results)}/{a.procs} reader processes reported (their readers count as lost)")

    lost_total = dup_total = ooo_total = readers_lost = readers_dup = 0
    worst = []
    for i in range(a.readers):
        if i in per_reader:
            seen, dups, ooo, connected, offset, cursor, phase = per_reader[i]
            lost = sum(1 for s in expected if not seen[s]) if connected else len(expected)
        else:
            dups = ooo = 0
            lost = len(expected)
            offset = cursor = phase = None
        lost_total += lost
        dup_total += dups
        ooo_total += ooo
        readers_lost += lost > 0
        readers_dup += dups > 0
        if (lost or dups) and len(worst) < 5:
            worst.append(f"reader {i}: lost {lost}, duplicated {dups}, last offset {offset}, cursor {cursor}, phase {phase}")
    lat_ms = sorted(x / 1e6 for x in latencies)
    rtt_ms = sorted(x / 1e6 for x in writer.rtt)
    op = "long_poll" if a.mode == "long-poll" else "sse"
    reader_live = requests.get(op, 0)
    origin_live = d["origin"].get(op, 0)
    out = {
        "target": a.label,
        "mode": a.mode,
        "readers": a.readers,
        "procs": a.procs,
        "connect_rate": a.connect_rate,
        "connect_failures": connect_failures,
        "messages_sent": len(writer.sent_ns),
        "messages_appended": len(expected),
        "append_errors": writer.errors[:5],
        "append_rtt_p50_ms": round(percentile(rtt_ms, 50), 3) if rtt_ms else None,
        "deliveries": len(lat_ms),
        "expected_deliveries": len(expected) * a.readers,
        "p50_ms": round(percentile(lat_ms, 50), 3) if lat_ms else None,
        "p90_ms": round(percentile(lat_ms, 90), 3) if lat_ms else None,
        "p99_ms": round(percentile(lat_ms, 99), 3) if lat_ms else None,
        "max_ms": round(lat_ms[-1], 3) if lat_ms else None,
        "lost": lost_total,
        "readers_with_loss": readers_lost,
        "duplicates": dup_total,
        "readers_with_duplicates": readers_dup,
        "out_of_order": ooo_total,
        "reader_requests": requests,
        "reader_live_requests": reader_live,
        "origin_delta": d["origin"],
        "origin_live_requests": origin_live,
        "collapse_ratio": round(reader_live / origin_live, 1) if origin_live else None,
        "edge_delta": d.get("edge"),
        "status": statuses,
        "x_cache": xcache,
        "reconnects": reconnects,
        "errors": error_count,
        "error_samples": errors[:5],
        "loss_samples": worst,
        "origin_gauge_peaks": peaks,
        "phases": phases,
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(out))


# --------------------------------------------------------------------------- report


def cmd_render(a):
    with open(a.results) as f:
        R = json.load(f)
    m, w, F = R["machine"], R["wrk_settings"], R["fanout_settings"]

    def f(x, nd=0):
        if x is None or x == "":
            return "n/a"
        try:
            return f"{float(x):,.{nd}f}"
        except (TypeError, ValueError):
            return str(x)

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f} %"

    rows = []
    A = R["catchup"]

    def sample(x):
        s = x.get("sample")
        if not s:
            return ""
        vals = ", ".join(f"{k} {v}" for k, v in sorted(s["values"].items()))
        return f"; {s['header']} of {s['count']} requests after the run: {vals}"

    for key, title in (("edge", "edge"), ("nginx", "nginx proxy_cache"), ("origin", "origin direct")):
        x = A[key]
        reqs = float(x["requests"] or 0)
        if key == "edge":
            hit = x["edge_hits"] / x["edge_catch_up"] if x.get("edge_catch_up") else None
            note = (f"hit ratio {pct(hit)} (ds_edge_requests_total catch_up: {x['edge_hits']:,} HIT of "
                    f"{x['edge_catch_up']:,}); origin reads during the run {x['origin_reads']:,}{sample(x)}")
        elif key == "nginx":
            hit = max(0.0, 1 - x["origin_reads"] / reqs) if reqs else None
            note = (f"hit ratio {pct(hit)} (1 - origin reads during the run {x['origin_reads']:,} / wrk requests "
                    f"{int(reqs):,}){sample(x)}")
        else:
            note = f"origin reads during the run {x['origin_reads']:,} (wrk completed {int(reqs):,})"
        rows.append((f"(a) catch-up 1 KiB, {title}", f"{f(x['rps'])} req/s",
                     f"p50 {f(x['lat_p50_ms'], 2)} ms, p99 {f(x['lat_p99_ms'], 2)} ms, socket errors {x['errors']}, "
                     f"non-2xx {x['wrk_status_err']}; {note}"))
    re_, rn, ro = (float(A[k]["rps"] or 0) for k in ("edge", "nginx", "origin"))
    rows.append(("(a) ratio edge / nginx", f"{re_ / rn:.2f}" if rn else "n/a",
                 f"edge / origin direct {re_ / ro:.2f}" if ro else ""))

    def fan_rows(section, label, kinds):
        for key, title in kinds:
            x = R.get(section, {}).get(key)
            if not x:
                continue
            ok = "OK" if x["lost"] == 0 and x["duplicates"] == 0 else "LOSS/DUPLICATION"
            op = "long_poll" if x["mode"] == "long-poll" else "sse"
            detail = (f"{x['deliveries']:,}/{x['expected_deliveries']:,} deliveries, lost {x['lost']} "
                      f"({x['readers_with_loss']} readers), duplicated {x['duplicates']} "
                      f"({x['readers_with_duplicates']} readers), out of order {x['out_of_order']} -> {ok}; "
                      f"p90 {f(x['p90_ms'], 1)} ms, max {f(x['max_ms'], 1)} ms; "
                      f"reader {op} requests {x['reader_live_requests']:,} vs origin {op} "
                      f"{x['origin_live_requests']:,} -> collapse ratio {f(x['collapse_ratio'], 1)}")
            if op == "sse":
                peak = x["origin_gauge_peaks"].get("ds_origin_open_sse_connections")
                detail += f"; origin open SSE peak {peak if peak is not None else 'n/a'}"
            else:
                peak = x["origin_gauge_peaks"].get("ds_origin_open_long_polls")
                detail += f"; origin open long-polls peak {peak if peak is not None else 'n/a'}"
            if x.get("edge_delta"):
                e = x["edge_delta"]
                cls = e.get("requests", {}).get(op, {})
                outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(cls.items()) if v)
                detail += (f"; edge {op} outcomes: {outcomes or 'none'}; edge upstream {op} "
                           f"{e.get('upstream', {}).get(op, 0):,}, upstream errors {e.get('upstream_errors', 0)}")
            xc = {k: v for k, v in x["x_cache"].items() if not k.startswith("catch_up:")}
            if xc and not x.get("edge_delta"):
                detail += "; X-Cache-Status seen: " + ", ".join(f"{k.split(':', 1)[1]} {v:,}" for k, v in sorted(xc.items()))
            st = ", ".join(f"{k}: {v:,}" for k, v in sorted(x["status"].items()))
            detail += f"; reader statuses {st}; errors {x['errors']}, reconnects {x['reconnects']}, " \
                      f"connect failures {x['connect_failures']}"
            detail += f"; writer append RTT p50 {f(x['append_rtt_p50_ms'], 2)} ms"
            if x["append_errors"]:
                detail += f"; APPEND ERRORS {x['append_errors']}"
            rows.append((f"{label}, {title}", f"p50 {f(x['p50_ms'], 1)} ms / p99 {f(x['p99_ms'], 1)} ms", detail))

    kinds = (("edge", "edge"), ("nginx", "nginx"), ("origin", "origin direct"))
    fan_rows("longpoll", f"(b) long-poll fan-out x{F['readers']}", kinds)
    fan_rows("sse", f"(c) SSE fan-out x{F['readers']}", kinds)

    facts = [
        ("date (UTC)", R["date"]),
        ("git commit", R["git"]),
        ("kernel", m["kernel"]),
        ("CPU", m["cpu"]),
        ("nproc", m["nproc"]),
        ("memory", m["mem"]),
        ("load", R["load"]),
        ("fd limit", R["fd_limit"]),
        ("wrk", m["wrk"]),
        ("nginx", f"{m['nginx']} (worker_processes {R['nginx_workers']}); {R['nginx_config']}"),
        ("edge", f"durable-streams edge, defaults (= edge.conf: 256 MiB cache, 64 upstream connections, "
                 f"upstream long-poll timeout 40s, SSE reconnect 60s); binary built {R['binary']}"),
        ("origin", f"durable-streams origin, in-memory, --long-poll-timeout {R['long_poll_timeout']}"),
        ("swift", m["swift"]),
        ("python", m["python"]),
        ("wrk settings", f"-t{w['threads']} -c{w['connections']} -d{w['duration']} (+ {w['warmup']} warm-up per target, "
                         f"not counted); client and servers share the same {m['nproc']} CPUs"),
        ("fan-out", f"{F['readers']} readers ({F['procs']} asyncio processes, connections opened at {F['connect_rate']}/s), "
                    f"{F['messages']} messages of {F['bytes']} bytes every {F['interval']}s appended straight to the "
                    f"origin; settle {F['settle']}s, drain up to {F['drain']}s"),
    ]

    findings = []
    for sec, name in (("longpoll", "long-poll"), ("sse", "SSE")):
        for key, x in R.get(sec, {}).items():
            if x["lost"] or x["duplicates"]:
                findings.append(f"{name} via {key}: {x['lost']} lost / {x['duplicates']} duplicated deliveries "
                                f"({x['readers_with_loss']} / {x['readers_with_duplicates']} readers): "
                                f"{x['loss_samples'][:3]}")
            if x["errors"]:
                findings.append(f"{name} via {key}: {x['errors']} reader errors, e.g. {x['error_samples'][:3]}")
    e_sse = R.get("sse", {}).get("edge")
    if e_sse and e_sse["origin_live_requests"]:
        if e_sse["collapse_ratio"] and e_sse["collapse_ratio"] <= 1.5:
            findings.append(f"SSE via the edge: the origin saw {e_sse['origin_live_requests']:,} SSE request(s) for "
                            f"{e_sse['reader_live_requests']:,} reader SSE requests: one upstream SSE per client "
                            f"(no shared fan-out).")
        else:
            findings.append(f"SSE via the edge: the origin saw {e_sse['origin_live_requests']:,} SSE request(s) for "
                            f"{e_sse['reader_live_requests']:,} reader SSE requests (shared upstream fan-out).")
    e_lp = R.get("longpoll", {}).get("edge")
    if e_lp and e_lp["collapse_ratio"] is not None and e_lp["collapse_ratio"] < 10:
        findings.append(f"long-poll via the edge collapsed poorly: ratio {e_lp['collapse_ratio']}")

    width = max(len(r[0]) for r in rows)
    lines = ["", "=" * 78, "Durable Streams edge benchmark — summary", "=" * 78]
    for k, v in facts:
        lines.append(f"{k:>13}: {v}")
    lines.append("-" * 78)
    for name, value, detail in rows:
        lines.append(f"{name:<{width}}  {value}")
        if detail:
            lines.append(f"{'':<{width}}    {detail}")
    if findings:
        lines.append("-" * 78)
        lines += [f"note: {x}" for x in findings]
    lines.append("=" * 78)
    print("\n".join(lines))

    md = [f"# Durable Streams edge benchmark — {R['date']}", "",
          "Produced by `loadtest/bench-edge.sh`. Client (wrk / Python) and servers run on the same machine, "
          "so every figure includes the load generator's own CPU use.", "", "## Machine and settings", "",
          "| fact | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in facts]
    md += ["", "## Results", "", "| measurement | figure | details |", "| --- | --- | --- |"]
    md += [f"| {n} | {v} | {d} |" for n, v, d in rows]
    if findings:
        md += ["", "## Notes", ""] + [f"- {x}" for x in findings]
    md += ["", "## Method", "",
           "- (a) `PUT /v1/stream/bench` with a 1024-byte body at the origin, then "
           "`wrk GET /v1/stream/bench?offset=-1` through the edge, through nginx (caching reverse proxy, config "
           "below) and against the origin directly; same wrk settings, back to back, each after its own warm-up. "
           "Hit ratio: edge from `ds_edge_requests_total{class=\"catch_up\"}` deltas over the measured run (HIT / all "
           "outcomes); nginx from the origin's `ds_origin_requests_total{operation=\"read\"}` delta over the "
           "measured run (1 - origin reads / wrk requests) plus an `X-Cache-Status` sample after it; for both, "
           "the origin's read delta is shown.",
           "- (b) `edgebench.py fanout --mode long-poll`: readers do a catch-up `GET ?offset=-1`, then long-poll "
           "echoing `Stream-Cursor` as `cursor=` and following `Stream-Next-Offset`. Collapse ratio = reader "
           "long-poll requests / the origin's `ds_origin_requests_total{operation=\"long_poll\"}` delta "
           "(all statuses, read after the readers closed, so the long-polls parked at the end are counted on both "
           "sides).",
           "- (c) `edgebench.py fanout --mode sse`: readers `GET ?offset=-1&live=sse`, parse `event: data` / "
           "`event: control`, follow `streamNextOffset`/`streamCursor`, reconnect with them if a response ends. "
           "Upstream SSE requests = the origin's `ds_origin_requests_total{operation=\"sse\"}` delta; the open SSE "
           "peak is sampled from `ds_origin_open_sse_connections` every 0.5 s while the writer runs.",
           "- Latency (b, c): from the writer's clock reading just before the POST (straight to the origin, one "
           "message every interval) to the reader's clock reading when the bytes carrying that message were read "
           "from its socket; every first delivery of every message to every reader counts. The readers are spread "
           "over a few Python processes (FANOUT_PROCS) on the same CPUs as the servers, so a burst of N "
           "deliveries is read largely one socket after another: p50/p99 include the client's own serial "
           "processing of the burst (the same for every target), so compare targets rather than read the "
           "figures as server latency. Append RTT = writer POST to its 204, straight at the origin.",
           "- nginx long-polls: with `proxy_cache_lock on`, requests waiting on the lock re-check it on a "
           "500 ms timer (nginx has no wake-up on unlock), so collapsed long-polls are answered up to 500 ms "
           "late; the SSE runs use the second server block (unbuffered relay, one upstream SSE per client).",
           "- Loss = a message the origin acknowledged that a reader never saw (a reader that never connected loses "
           "all); duplicate = a message a reader saw twice. The script exits non-zero on either.", "",
           "### nginx configuration (generated, temp dir)", "", "```nginx", R["nginx_conf_text"].rstrip(), "```", ""]
    os.makedirs(os.path.dirname(a.md) or ".", exist_ok=True)
    with open(a.md, "w") as fh:
        fh.write("\n".join(md))


def cmd_brief(a):
    with open(a.file) as fh:
        d = json.load(fh)
    print(f"{d['mode']} via {d['target']}: p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, "
          f"{d['deliveries']}/{d['expected_deliveries']} deliveries, lost {d['lost']}, duplicated {d['duplicates']}, "
          f"reader requests {d['reader_live_requests']} vs origin {d['origin_live_requests']} "
          f"(collapse ratio {d['collapse_ratio']}), errors {d['errors']}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("xcache")
    x.add_argument("url")
    x.add_argument("--count", type=int, default=100)
    x.add_argument("--header", default="X-Cache")
    x.set_defaults(fn=cmd_xcache)
    s = sub.add_parser("snapshot")
    s.add_argument("--origin", required=True)
    s.add_argument("--edge")
    s.set_defaults(fn=cmd_snapshot)
    fo = sub.add_parser("fanout")
    fo.add_argument("--mode", choices=("long-poll", "sse"), required=True)
    fo.add_argument("--base", required=True, help="where readers connect (edge, nginx or origin)")
    fo.add_argument("--origin", required=True, help="the origin: writer and counters")
    fo.add_argument("--edge", help="the edge's base URL, to report its counters too")
    fo.add_argument("--label", default="")
    fo.add_argument("--stream", required=True)
    fo.add_argument("--readers", type=int, default=1000)
    fo.add_argument("--connect-rate", type=float, default=500, help="new reader connections per second")
    fo.add_argument("--procs", type=int, default=2, help="reader processes (readers are spread round-robin)")
    fo.add_argument("--messages", type=int, default=50)
    fo.add_argument("--interval", type=float, default=0.2)
    fo.add_argument("--bytes", type=int, default=100)
    fo.add_argument("--ready-timeout", type=float, default=15)
    fo.add_argument("--settle", type=float, default=1.0)
    fo.add_argument("--drain", type=float, default=5.0)
    fo.add_argument("--after", type=float, default=1.0, help="seconds to wait after closing before the counters")
    fo.add_argument("--max-seconds", type=float, default=60)
    fo.set_defaults(fn=cmd_fanout)
    b = sub.add_parser("brief")
    b.add_argument("file")
    b.set_defaults(fn=cmd_brief)
    r = sub.add_parser("render")
    r.add_argument("results")
    r.add_argument("md")
    r.set_defaults(fn=cmd_render)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
