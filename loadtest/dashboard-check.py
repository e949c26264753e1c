#!/usr/bin/env python3
"""The dashboards as a user sees them: rendered by headless Chromium, checked against the stats.

Starts, on 127.0.0.1, an origin, two edges in front of it, and `durable-streams dashboard` for
both edges and the origin. Drives reads through both edges until each edge's history holds
them, stops the traffic, then loads `/__edge/` (first edge) and the fleet page in headless
Chromium (`--dump-dom` after the page's scripts ran) and checks, from the rendered DOM:

- the charts drew data points (hit ratio, requests by outcome and by class, bandwidth);
- the tiles show what `/__edge/stats` says (client and upstream requests, hit ratio), and the
  top-streams table names the streams read;
- the fleet page counts both edges up, its totals are the sums of the two edges' stats, each
  edge's row matches that edge, it reaches the origin's /__origin/stats, and its charts drew
  data points.

With --screenshots DIR it also saves edge-dashboard.png and fleet-dashboard.png, taken while
traffic runs.

    python3 loadtest/dashboard-check.py --binary .build/debug/durable-streams

Installs Debian's chromium when it is missing. Bounded: traffic stops after --seconds, every
wait has a deadline, every process is stopped on exit.
"""
import argparse
import html.parser
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=10):
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def stats(port, query=""):
    status, body = request(port, "GET", "/__edge/stats" + query)
    assert status == 200, f"stats on {port}: {status}"
    return json.loads(body)


def wait_for(what, condition, deadline_seconds=60):
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise SystemExit(f"dashboard-check: timed out waiting for {what}")


class Page(html.parser.HTMLParser):
    """What the checks read from a rendered page: `data-stat` tiles, `data-points` of charts,
    table rows by `data-stream` / `data-edge` with their `data-field` cells."""

    def __init__(self):
        super().__init__()
        self.stats, self.points, self.streams, self.edges = {}, {}, [], {}
        self._capture = None  # (kind, key) whose text is being read
        self._text = []
        self._edge = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-points" in attrs and attrs.get("id"):
            self.points[attrs["id"]] = int(attrs["data-points"])
        if "data-stream" in attrs:
            self.streams.append(attrs["data-stream"])
        if "data-edge" in attrs:
            self._edge = attrs["data-edge"]
            self.edges[self._edge] = {}
        if "data-stat" in attrs:
            self._capture, self._text = ("stat", attrs["data-stat"]), []
        elif "data-field" in attrs and self._edge:
            self._capture, self._text = ("field", attrs["data-field"]), []

    def handle_data(self, data):
        if self._capture:
            self._text.append(data)

    def handle_endtag(self, tag):
        if self._capture and tag in ("div", "td"):
            kind, key = self._capture
            text = "".join(self._text).strip()
            if kind == "stat":
                self.stats[key] = text
            else:
                self.edges[self._edge][key] = text
            self._capture = None
        if tag == "tr":
            self._edge = None


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    print("dashboard-check: installing chromium", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True,
                   stdout=subprocess.DEVNULL)
    return shutil.which("chromium")


def chromium(binary, profile, url, screenshot=None):
    arguments = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                 f"--user-data-dir={profile}", "--window-size=1280,2000", "--virtual-time-budget=5000"]
    arguments += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    result = subprocess.run(arguments + [url], capture_output=True, text=True, timeout=90)
    if result.returncode != 0:
        raise SystemExit(f"dashboard-check: chromium failed on {url}: {result.stderr[-2000:]}")
    return result.stdout


def percent(value):
    return f"{value * 100:.1f} %"


def integer(value):
    return f"{value:,}"


def check(condition, message):
    if not condition:
        raise SystemExit("dashboard-check: " + message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=float, default=4.0, help="how long the readers run")
    parser.add_argument("--screenshots", help="directory for edge-dashboard.png and fleet-dashboard.png")
    arguments = parser.parse_args()
    browser = chromium_binary()
    work = tempfile.mkdtemp(prefix="ds-dashboard-")
    origin_port, edge_ports, fleet_port = free_port(), [free_port(), free_port()], free_port()
    processes = []
    log = open(os.path.join(work, "servers.log"), "w")

    def start(*args):
        processes.append(subprocess.Popen([arguments.binary, *args], stdout=log, stderr=log))

    try:
        start("origin", "--port", str(origin_port), "--long-poll-timeout", "1s")
        for port in edge_ports:
            start("edge", "--listen", f"{HOST}:{port}", "--upstream", f"http://{HOST}:{origin_port}")
        fleet_arguments = ["dashboard", "--listen", f"{HOST}:{fleet_port}", "--origin", f"http://{HOST}:{origin_port}"]
        for port in edge_ports:
            fleet_arguments += ["--edge", f"http://{HOST}:{port}"]
        start(*fleet_arguments)
        for port in [origin_port, *edge_ports, fleet_port]:
            wait_for(f"port {port}", lambda port=port: request(port, "GET", "/healthz" if port != fleet_port else "/")[0] == 200)

        streams = ["orders", "prices", "news"]
        for name in streams:
            status, _ = request(origin_port, "PUT", f"/v1/stream/{name}", body=b"first event\n",
                                headers={"Content-Type": "text/plain"})
            check(status == 201, f"creating {name}: {status}")

        stop = threading.Event()
        failures = []

        def reader(port, offset):
            count = 0
            while not stop.is_set() and count < 5000:
                for name in streams:
                    status, _ = request(port, "GET", f"/v1/stream/{name}?offset=-1")
                    if status != 200:
                        failures.append(status)
                count += 1
                time.sleep(0.02 + offset)

        def writer():
            for index in range(200):
                if stop.is_set():
                    return
                request(origin_port, "POST", "/v1/stream/news", body=f"event {index}\n".encode(),
                        headers={"Content-Type": "text/plain"})
                time.sleep(0.3)

        threads = [threading.Thread(target=reader, args=(port, 0.01 * k)) for k, port in enumerate(edge_ports)]
        threads.append(threading.Thread(target=writer))
        for thread in threads:
            thread.start()
        time.sleep(arguments.seconds)
        if arguments.screenshots:
            os.makedirs(arguments.screenshots, exist_ok=True)
            chromium(browser, os.path.join(work, "shot-edge"), f"http://{HOST}:{edge_ports[0]}/__edge/",
                     os.path.abspath(os.path.join(arguments.screenshots, "edge-dashboard.png")))
            chromium(browser, os.path.join(work, "shot-fleet"), f"http://{HOST}:{fleet_port}/",
                     os.path.abspath(os.path.join(arguments.screenshots, "fleet-dashboard.png")))
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        check(not failures, f"reads failed: {failures[:5]}")

        # Every request must be in the history before the page is loaded: the sampler takes
        # one sample a second.
        for port in edge_ports:
            # Columns 2–7 are the six cache outcomes: together, every client request.
            wait_for(f"edge {port}'s history", lambda port=port: sum(
                sum(row[2:8]) for row in stats(port, "?history=hour")["history"]["rows"]
            ) == stats(port)["clientRequestsTotal"])

        # The edge page.
        dom = chromium(browser, os.path.join(work, "edge"), f"http://{HOST}:{edge_ports[0]}/__edge/")
        edge_stats = stats(edge_ports[0])
        page = Page()
        page.feed(dom)
        check('data-loaded="true"' in dom, "the edge page never rendered its stats")
        for chart in ("c-hit", "c-outcome", "c-class", "c-bytes", "c-conns"):
            check(page.points.get(chart, 0) >= 2, f"edge chart {chart} drew {page.points.get(chart)} points")
        check(page.stats.get("clientRequestsTotal") == integer(edge_stats["clientRequestsTotal"]),
              f"edge tile client requests {page.stats.get('clientRequestsTotal')} vs stats {edge_stats['clientRequestsTotal']}")
        check(page.stats.get("upstreamRequestsTotal") == integer(edge_stats["upstreamRequestsTotal"]),
              f"edge tile upstream requests {page.stats.get('upstreamRequestsTotal')} vs stats {edge_stats['upstreamRequestsTotal']}")
        check(page.stats.get("hitRate") == percent(edge_stats["hitRate"]),
              f"edge tile hit ratio {page.stats.get('hitRate')} vs stats {edge_stats['hitRate']}")
        check(sorted(page.streams) == sorted(streams), f"top streams {page.streams}")

        # The fleet page.
        dom = chromium(browser, os.path.join(work, "fleet"), f"http://{HOST}:{fleet_port}/")
        both = [stats(port) for port in edge_ports]
        fleet = Page()
        fleet.feed(dom)
        check('data-loaded="true"' in dom, "the fleet page never rendered")
        check(fleet.stats.get("edgesUp") == "2 of 2", f"fleet edges up: {fleet.stats.get('edgesUp')}")
        total = sum(s["clientRequestsTotal"] for s in both)
        check(fleet.stats.get("clientRequestsTotal") == integer(total),
              f"fleet client requests {fleet.stats.get('clientRequestsTotal')} vs the edges' sum {total}")
        upstream = sum(s["upstreamRequestsTotal"] for s in both)
        check(fleet.stats.get("upstreamRequestsTotal") == integer(upstream),
              f"fleet upstream requests {fleet.stats.get('upstreamRequestsTotal')} vs the edges' sum {upstream}")
        for port, edge in zip(edge_ports, both):
            row = fleet.edges.get(f"http://{HOST}:{port}", {})
            check(row.get("status") == "up", f"fleet row for {port}: {row}")
            check(row.get("clientRequestsTotal") == integer(edge["clientRequestsTotal"]), f"fleet row for {port}: {row} vs {edge['clientRequestsTotal']}")
        check(fleet.stats.get("originRate", "unreachable") not in ("unreachable", "not configured"),
              f"fleet origin rate: {fleet.stats.get('originRate')}")
        for chart in ("c-hit", "c-origin", "c-outcome"):
            check(fleet.points.get(chart, 0) >= 2, f"fleet chart {chart} drew {fleet.points.get(chart)} points")
        print(f"dashboard-check: ok (edge page: {page.points['c-hit']} hit-ratio points, {edge_stats['clientRequestsTotal']} requests; "
              f"fleet page: 2 edges, {total} requests)")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
