#!/usr/bin/env python3
"""Hostile-client probes against a running origin or edge on loopback: what one misbehaving
client costs the server (resident memory, CPU, descriptors) and whether it is cut off.

    loadtest/hostile-probe.py --port 4437 --pid $(pgrep -f 'durable-streams origin') idle
    loadtest/hostile-probe.py --port 4437 --pid PID slowloris|pipeline|uploads|all

Every probe is bounded in connections and time and only talks to 127.0.0.1.
"""
import argparse
import os
import resource
import socket
import sys
import time
import urllib.request

HOST = "127.0.0.1"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_percent(pid, seconds=2.0):
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / seconds


def fresh_request(port, path="/v1/stream/probe-missing?offset=-1"):
    started = time.time()
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    except Exception as error:  # refused, reset, timed out
        return f"failed ({type(error).__name__})"
    return f"{status} in {1000 * (time.time() - started):.1f} ms"


def closed_count(sockets):
    closed = 0
    for sock in sockets:
        try:
            sock.setblocking(False)
            if sock.recv(65536, socket.MSG_PEEK) == b"":
                closed += 1
            else:
                data = sock.recv(65536)
                closed += 1 if data.startswith(b"HTTP/1.1 408") else 0
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def wait_closed(sockets, bound):
    deadline = time.time() + bound
    while time.time() < deadline:
        if closed_count(sockets) == len(sockets):
            return True
        time.sleep(0.5)
    return False


def report(title, pid, port, extra=""):
    print(f"  {title}: server RSS {rss_mib(pid):.0f} MiB, fds {open_fds(pid)}, CPU {cpu_percent(pid):.0f} %, "
          f"fresh request {fresh_request(port)} {extra}")


def probe_idle(args):
    count = args.connections or 18_000
    print(f"idle: {count} connections that send nothing")
    report("before", args.pid, args.port)
    sockets = []
    for _ in range(count):
        try:
            sockets.append(socket.create_connection((HOST, args.port), timeout=5))
        except OSError:
            break
    report(f"{len(sockets)} open", args.pid, args.port)
    closed = wait_closed(sockets, args.wait)
    report(f"after idle_timeout ({'all closed' if closed else f'{closed_count(sockets)} closed'})", args.pid, args.port)
    for sock in sockets:
        sock.close()


def probe_slowloris(args):
    count = args.connections or 2_000
    print(f"slowloris: {count} connections sending one header line a second")
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((HOST, args.port), timeout=5)
        sock.sendall(b"GET /v1/stream/x HTTP/1.1\r\nHost: x\r\n")
        sockets.append(sock)
    report("open", args.pid, args.port)
    deadline = time.time() + args.wait
    while time.time() < deadline and closed_count(sockets) < len(sockets):
        for sock in sockets:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass
        time.sleep(1)
    report(f"after header_timeout ({closed_count(sockets)} of {len(sockets)} answered 408 or closed)", args.pid, args.port)
    for sock in sockets:
        sock.close()


def make_stream(port, size):
    path = f"/v1/stream/probe-{os.getpid()}-{time.time_ns()}"
    data = os.urandom(size)
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(request, timeout=30)
    return path


def probe_pipeline(args):
    count = args.connections or 3
    size = 4 << 20
    print(f"pipeline: {count} connections x 100 pipelined reads of a {size >> 20} MiB stream (gzip asked), never reading")
    path = make_stream(args.port, size)
    report("before", args.pid, args.port)
    sockets = []
    for connection in range(count):
        # Each read starts at its own offset, so no two answers are the same bytes (an edge
        # would otherwise queue one shared cached buffer many times over).
        reads = b"".join(
            f"GET {path}?offset=0000000000000000_{connection * 100 + i:016d} HTTP/1.1\r\nHost: x\r\n"
            f"Accept-Encoding: gzip\r\n\r\n".encode() for i in range(100))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((HOST, args.port))
        sock.sendall(reads)
        sockets.append(sock)
    time.sleep(3)
    report("while not reading", args.pid, args.port)
    for sock in sockets:
        sock.close()
    time.sleep(2)
    report("after the clients closed", args.pid, args.port)


def probe_uploads(args):
    count = args.connections or 8
    print(f"uploads: {count} uploads declaring 64 MiB, sending 4 MiB, then stalling")
    path = make_stream(args.port, 1)
    report("before", args.pid, args.port)
    sockets = []
    chunk = b"a" * (4 << 20)
    for _ in range(count):
        sock = socket.create_connection((HOST, args.port), timeout=30)
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     f"Content-Length: {64 << 20}\r\n\r\n".encode() + chunk)
        sockets.append(sock)
    report("stalled", args.pid, args.port)
    closed = wait_closed(sockets, args.wait)
    report(f"after body_timeout ({'all answered 408 or closed' if closed else 'NOT all closed'})", args.pid, args.port)
    for sock in sockets:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id (for RSS, CPU, fds)")
    parser.add_argument("--connections", type=int, default=0, help="override the probe's connection count")
    parser.add_argument("--wait", type=float, default=90, help="most seconds to wait for the server to cut clients off")
    parser.add_argument("probe", choices=["idle", "slowloris", "pipeline", "uploads", "all"])
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    probes = {"idle": probe_idle, "slowloris": probe_slowloris, "pipeline": probe_pipeline, "uploads": probe_uploads}
    for name in (probes if args.probe == "all" else [args.probe]):
        probes[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
