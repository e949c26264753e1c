#!/usr/bin/env python3
"""Many streams on a file-backed origin: do they fit within --max-file-handles?

Starts `durable-streams origin --data-dir <temp> --max-file-handles H`, creates N streams, appends
to each, reads each back, and samples how many descriptors the server has open (/proc/PID/fd)
and its `ds_origin_store_open_files` gauge along the way; then restarts it and reads every stream
again. Prints the figures; exits 1 if any stream reads back wrong.

    loadtest/many-streams.py --binary .build/release/durable-streams --streams 100000

Talks to 127.0.0.1 only; every loop is bounded by --streams and a time limit.
"""
import argparse, http.client, os, re, shutil, socket, subprocess, sys, tempfile, threading, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, port, data, handles):
    log = open(os.path.join(os.path.dirname(data), "server.log"), "ab")
    proc = subprocess.Popen([binary, "origin", "--port", str(port), "--data-dir", data,
                             "--max-file-handles", str(handles)], stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("origin did not start")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def work(port, names, action, errors, deadline):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for name in names:
        if time.time() > deadline:
            errors.append("time limit")
            return
        path = f"/v1/stream/{name}"
        if action == "create":
            conn.request("PUT", path, headers={"Content-Type": "text/plain"})
            ok = {201, 200}
        elif action == "append":
            conn.request("POST", path, body=f"payload of {name}\n", headers={"Content-Type": "text/plain"})
            ok = {204}
        else:
            conn.request("GET", path + "?offset=-1")
            ok = {200}
        response = conn.getresponse()
        body = response.read()
        if response.status not in ok or (action == "read" and body != f"payload of {name}\n".encode()):
            errors.append(f"{action} {name}: {response.status} {body[:80]!r}")


def phase(port, names, action, threads, deadline):
    errors = []
    chunks = [names[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(port, chunk, action, errors, deadline)) for chunk in chunks]
    started = time.time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.time() - started, errors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=".build/release/durable-streams")
    p.add_argument("--streams", type=int, default=100_000)
    p.add_argument("--max-file-handles", type=int, default=100)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--time-limit", type=float, default=900)
    a = p.parse_args()
    deadline = time.time() + a.time_limit
    work_dir = tempfile.mkdtemp(prefix="many-streams-")
    data = os.path.join(work_dir, "data")
    port = free_port()
    names = [f"many-{i}" for i in range(a.streams)]
    proc = start(a.binary, port, data, a.max_file_handles)
    failed = []
    peak = 0
    try:
        for action in ("create", "append", "read"):
            seconds, errors = phase(port, names, action, a.threads, deadline)
            fds = open_fds(proc.pid)
            peak = max(peak, fds)
            failed += errors
            print(f"{action}: {a.streams} streams in {seconds:.1f} s ({a.streams / seconds:,.0f}/s); "
                  f"server descriptors now {fds}; errors {len(errors)}")
        metrics = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        metrics.request("GET", "/metrics")
        text = metrics.getresponse().read().decode()
        gauge = re.search(r"^ds_origin_store_open_files (\S+)", text, re.M)
        print(f"ds_origin_store_open_files {gauge.group(1) if gauge else '?'} (limit {a.max_file_handles})")
        proc.terminate()
        proc.wait(timeout=60)
        started = time.time()
        proc = start(a.binary, port, data, a.max_file_handles)
        print(f"restart: port answering after {time.time() - started:.2f} s; "
              + (re.findall(rb"recovered[^\n]*", open(os.path.join(work_dir, "server.log"), "rb").read()) or [b"?"])[-1].decode())
        seconds, errors = phase(port, names, "read", a.threads, deadline)
        failed += errors
        print(f"read after restart: {a.streams} streams in {seconds:.1f} s; server descriptors {open_fds(proc.pid)}; errors {len(errors)}")
    finally:
        proc.kill()
        proc.wait()
    if failed:
        print("\n".join(failed[:20]))
        print(f"many-streams: FAILED ({len(failed)} errors); data in {work_dir}")
        sys.exit(1)
    shutil.rmtree(work_dir)
    print(f"many-streams: ok, {a.streams} streams with --max-file-handles {a.max_file_handles}")


if __name__ == "__main__":
    main()
