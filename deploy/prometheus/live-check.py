#!/usr/bin/env python3
"""A real Prometheus scraping a real edge, computing ds_edge:hit_ratio:rate5m (stdlib only).

Starts an origin and an edge (in memory, 127.0.0.1, free ports), then Prometheus (scrape and
rule evaluation every second, storage in a temporary directory, rules.yml loaded) scraping both.
Once Prometheus has scraped the idle edge, traffic goes through the edge: for each new stream
(created at the origin directly) two to five catch-up reads (a MISS, then cache hits), a HEAD and
an append to another stream (both PASS, which the hit ratio leaves out). Traffic keeps going until
the recording rule has a value, and a little longer; then it stops, and the rule must settle on
hits / (all but PASS) as the edge's own /metrics counts them (and the request offload likewise).

Every counter starts at 0 in Prometheus (scraped before any traffic) and all of them are sampled
together, so the ratio of two rates over the 5-minute window is the ratio of the counts (rate()
extrapolates every series by the same factor, and not before a first sample of 0).

Everything started is stopped on exit. Every loop is bounded in time; the whole run by --deadline.

At the end, every rule must have been evaluated without an error, and every query of the Grafana
dashboard (with --dashboard; all edges selected) must be accepted by this Prometheus.

Usage: live-check.py --binary .build/debug/durable-streams --rules deploy/prometheus/rules.yml \
           [--dashboard deploy/grafana/durable-streams.json]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SERVED_FROM_CACHE = {"HIT", "STALE", "REVALIDATED", "COLLAPSED"}
# The ratio of the rates is the ratio of the counts (see above), up to rounding.
TOLERANCE = 0.001


class Failure(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class Processes:
    """What this script started, stopped by pid (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []

    def start(self, name, argv):
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=self.workdir)
        self.started.append((name, process, log))
        return process

    def log_tail(self, name, lines=30):
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def check_running(self):
        for name, process, _ in self.started:
            if process.poll() is not None:
                raise Failure(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def stop_all(self):
        for _, process, _ in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for _, process, log in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()
        self.started = []


def wait_until(what, predicate, deadline, processes, interval=0.2):
    """Polls predicate() until it returns something truthy; bounded by the deadline."""
    last_error = None
    while time.monotonic() < deadline:
        processes.check_running()
        try:
            value = predicate()
            if value:
                return value
        except (OSError, http.client.HTTPException, ValueError) as error:
            last_error = error
        time.sleep(interval)
    raise Failure(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the Prometheus text format."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not match:
            continue
        labels = frozenset(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def edge_expectations(edge_url):
    """Hit ratio, request offload and counts from the edge's own counters."""
    _, body = http_get(f"{edge_url}/metrics")
    samples = parse_metrics(body.decode())
    served = cacheable = stream = every_outcome = upstream = 0.0
    for (name, labels), value in samples.items():
        labels = dict(labels)
        if labels.get("class") == "route":
            continue
        if name == "ds_edge_requests_total":
            every_outcome += value
            stream += value
            if labels.get("cache") != "PASS":
                cacheable += value
            if labels.get("cache") in SERVED_FROM_CACHE:
                served += value
        elif name == "ds_edge_upstream_requests_total":
            upstream += value
    if cacheable == 0 or stream == 0:
        raise Failure("the edge counted no cacheable stream request")
    return {"hit_ratio": served / cacheable, "request_offload": 1 - upstream / stream,
            "served": served, "cacheable": cacheable, "stream": stream, "upstream": upstream,
            "with_pass": served / every_outcome}


class Prometheus:
    def __init__(self, url):
        self.url = url

    def query(self, expr):
        """The instant vector's values, as a list of (labels, float)."""
        _, body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise Failure(f"query {expr!r} failed: {answer}")
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]

    def scalar(self, expr):
        """The single value of expr, or None when it has no sample."""
        result = self.query(expr)
        if len(result) > 1:
            raise Failure(f"{expr!r} has {len(result)} samples, expected one: {result}")
        return result[0][1] if result else None


class Traffic:
    """Requests through the edge over one keep-alive connection, tallied by X-Cache."""

    def __init__(self, edge_port, origin_port):
        self.edge_port = edge_port
        self.origin_port = origin_port
        self.edge = None
        self.origin = None
        self.seen = {}
        self.requests = 0
        self.streams = 0

    def _request(self, which, method, path, body=None, headers=None):
        for attempt in range(3):
            if which == "edge" and self.edge is None:
                self.edge = http.client.HTTPConnection("127.0.0.1", self.edge_port, timeout=10)
            if which == "origin" and self.origin is None:
                self.origin = http.client.HTTPConnection("127.0.0.1", self.origin_port, timeout=10)
            connection = self.edge if which == "edge" else self.origin
            try:
                connection.request(method, path, body=body, headers=headers or {})
                response = connection.getresponse()
                response.read()
                return response
            except (OSError, http.client.HTTPException):
                connection.close()
                if which == "edge":
                    self.edge = None
                else:
                    self.origin = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _expect(self, response, method, path, statuses):
        if response.status not in statuses:
            raise Failure(f"{method} {path}: {response.status}, expected one of {sorted(statuses)}")

    def batch(self):
        """One new stream read two to five times, a HEAD and an append, through the edge."""
        self.streams += 1
        path = f"/v1/stream/prom-check-{os.getpid()}-{self.streams}"
        self._expect(self._request("origin", "PUT", path, b"x", {"Content-Type": "text/plain"}), "PUT", path, {200, 201})
        for _ in range(2 + self.streams % 4):
            response = self._request("edge", "GET", f"{path}?offset=-1")
            self._expect(response, "GET", path, {200})
            self._tally(response)
        response = self._request("edge", "HEAD", path)
        self._expect(response, "HEAD", path, {200})
        self._tally(response)
        sink = f"/v1/stream/prom-check-{os.getpid()}-sink"
        response = self._request("edge", "POST", sink, b"y", {"Content-Type": "text/plain"})
        self._expect(response, "POST", sink, {200, 204})
        self._tally(response)

    def _tally(self, response):
        self.requests += 1
        outcome = response.getheader("X-Cache", "none")
        self.seen[outcome] = self.seen.get(outcome, 0) + 1

    def close(self):
        for connection in (self.edge, self.origin):
            if connection is not None:
                connection.close()


def run(args, workdir, processes):
    started = time.monotonic()
    deadline = started + args.deadline
    origin_port, edge_port, prometheus_port = free_port(), free_port(), free_port()
    origin_url = f"http://127.0.0.1:{origin_port}"
    edge_url = f"http://127.0.0.1:{edge_port}"
    prometheus = Prometheus(f"http://127.0.0.1:{prometheus_port}")

    processes.start("origin", [args.binary, "origin", "--host", "127.0.0.1", "--port", str(origin_port)])
    wait_until("the origin", lambda: http_get(f"{origin_url}/healthz")[0] == 200, deadline, processes)
    processes.start("edge", [args.binary, "edge", "--listen", f"127.0.0.1:{edge_port}", "--upstream", origin_url])
    wait_until("the edge", lambda: http_get(f"{edge_url}/metrics")[0] == 200, deadline, processes)
    # The sink stream the appends go to, created before Prometheus looks (its PUT is not counted).
    sink = f"/v1/stream/prom-check-{os.getpid()}-sink"
    request = urllib.request.Request(f"{origin_url}{sink}", data=b"", method="PUT", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=5).read()

    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {json.dumps(os.path.abspath(args.rules))}
scrape_configs:
  - job_name: edge
    static_configs:
      - targets: ['127.0.0.1:{edge_port}']
  - job_name: origin
    static_configs:
      - targets: ['127.0.0.1:{origin_port}']
""")
    processes.start("prometheus", [
        args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"])
    wait_until("Prometheus to be ready", lambda: http_get(f"{prometheus.url}/-/ready")[0] == 200, deadline, processes)
    wait_until("the first scrape of the idle edge",
               lambda: prometheus.scalar('count(ds_edge_requests_total{job="edge"})'), deadline, processes)
    before = edge_expectations_or_none(edge_url)
    if before is not None:
        raise Failure(f"the edge counted requests before the traffic started: {before}")

    # Traffic until the rule has a value, then SETTLE seconds more.
    traffic = Traffic(edge_port, origin_port)
    first_value_at = None
    next_query = 0.0
    try:
        for _ in range(args.max_batches):
            if time.monotonic() > deadline:
                raise Failure("timed out waiting for ds_edge:hit_ratio:rate5m to have a value")
            traffic.batch()
            now = time.monotonic()
            if first_value_at is None and now >= next_query:
                processes.check_running()
                next_query = now + 0.5
                if prometheus.scalar("ds_edge:hit_ratio:rate5m") is not None:
                    first_value_at = now
            if first_value_at is not None and now - first_value_at >= args.settle:
                break
            time.sleep(0.03)
        else:
            raise Failure(f"{args.max_batches} batches sent and the rule still has no value")
    finally:
        traffic.close()
    if first_value_at is None:
        raise Failure("ds_edge:hit_ratio:rate5m never had a value")

    # Traffic has stopped: the counters are final. Wait for Prometheus to have scraped them, and
    # for a rule evaluation after that scrape (the next one, to be clear of the scrape's commit).
    expected = edge_expectations(edge_url)
    wait_until("Prometheus to scrape the final counters",
               lambda: prometheus.scalar('sum(ds_edge_requests_total{job="edge",class!="route"})') == expected["stream"],
               deadline, processes)
    final_scrape = prometheus.scalar('max(timestamp(ds_edge_requests_total{job="edge"}))')
    wait_until("a rule evaluation after the final scrape",
               lambda: (prometheus.scalar("timestamp(ds_edge:hit_ratio:rate5m)") or 0) >= final_scrape + 1.5,
               deadline, processes)
    hit = prometheus.scalar("ds_edge:hit_ratio:rate5m")
    offload = prometheus.scalar("ds_edge:request_offload:rate5m")
    if (hit is None or offload is None or abs(hit - expected["hit_ratio"]) > TOLERANCE
            or abs(offload - expected["request_offload"]) > TOLERANCE):
        raise Failure(f"Prometheus says hit ratio {hit}, request offload {offload}; the edge's counters say "
                      f"{expected['hit_ratio']:.4f}, {expected['request_offload']:.4f} ({expected})")
    fleet = prometheus.scalar("ds_edge_fleet:hit_ratio:rate5m")
    if fleet is None or abs(fleet - hit) > TOLERANCE:
        raise Failure(f"ds_edge_fleet:hit_ratio:rate5m is {fleet} with a single edge whose ratio is {hit}")
    if not prometheus.query("ds_origin:requests:rate5m"):
        raise Failure("ds_origin:requests:rate5m has no sample")
    rules = check_rule_health(prometheus)
    queries = check_dashboard_queries(prometheus, args.dashboard) if args.dashboard else 0
    print(f"prometheus-check: ok (hit ratio {hit:.6f} in Prometheus, {expected['hit_ratio']:.6f} by the edge's "
          f"counters ({int(expected['served'])} of {int(expected['cacheable'])} cacheable, PASS left out; "
          f"{expected['with_pass']:.4f} with PASS); request offload {offload:.4f}; "
          f"{traffic.requests} requests through the edge on {traffic.streams} streams, X-Cache {traffic.seen}; "
          f"{rules} rules evaluated without error; {queries} dashboard queries accepted; "
          f"{time.monotonic() - started:.1f} s)")


def check_rule_health(prometheus):
    """Every rule of rules.yml loaded and evaluated by this Prometheus without an error."""
    _, body = http_get(f"{prometheus.url}/api/v1/rules")
    groups = json.loads(body)["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    bad = [f"{rule.get('name')}: {rule.get('health')} {rule.get('lastError', '')}" for rule in rules
           if rule.get("health") != "ok"]
    if not rules or bad:
        raise Failure("rules not evaluated cleanly: " + ("; ".join(bad) or "none loaded"))
    return len(rules)


def check_dashboard_queries(prometheus, path):
    """Every query of the Grafana dashboard accepted by this Prometheus (all edges selected)."""
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    count = 0
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            expr = target.get("expr", "").replace("$instance", ".*")
            try:
                prometheus.query(expr)
            except urllib.error.HTTPError as error:
                raise Failure(f"dashboard panel {panel.get('title')!r}: Prometheus refuses {expr!r}: "
                              f"{error.read().decode(errors='replace')}")
            count += 1
    return count


def edge_expectations_or_none(edge_url):
    try:
        return edge_expectations(edge_url)
    except Failure:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the durable-streams executable")
    parser.add_argument("--rules", required=True, help="deploy/prometheus/rules.yml")
    parser.add_argument("--dashboard", help="a Grafana dashboard whose queries Prometheus must accept")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    parser.add_argument("--deadline", type=float, default=90, help="seconds the whole run may take")
    parser.add_argument("--settle", type=float, default=3, help="seconds of traffic after the rule has a value")
    parser.add_argument("--max-batches", type=int, default=3000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, TSDB)")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        print(f"prometheus-check: {args.binary} is not an executable (build it first)")
        return 2

    workdir = tempfile.mkdtemp(prefix="ds-prometheus-check-")
    processes = Processes(workdir)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run(args, workdir, processes)
        return 0
    except (Failure, OSError, http.client.HTTPException, urllib.error.URLError) as error:
        print(f"prometheus-check: FAILED: {error}")
        for name in ("prometheus", "edge", "origin"):
            tail = processes.log_tail(name, 15)
            if tail.strip():
                print(f"--- {name} log (last lines) ---\n{tail}", end="" if tail.endswith("\n") else "\n")
        return 1
    finally:
        processes.stop_all()
        if args.keep:
            print(f"prometheus-check: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
