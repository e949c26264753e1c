#!/usr/bin/env python3
"""SIGHUP under traffic, then SIGTERM: no request fails, nothing acknowledged is lost.

Starts, on 127.0.0.1, a file-backed origin and an edge in front of it, both listening with TLS
and checking credentials (the origin: API keys; the edge: credentials = "verify" with an HS256
secret, reading upstream over https with a key of its own). Writers append through the edge with
a writer key; readers read through the edge with a JWT, half on fresh connections (so each
reload's certificate is the one they meet), half on kept-alive ones (which must keep working).

While they run, ROUNDS times: a new server certificate (same CA) for each server, a new writer
key added to the origin's key file (the old one stays valid), a new upstream key for the edge
(the origin learns it first and forgets the one from two rounds before), then SIGHUP to both. Every server must log its reload without a
failure, every request must get the answer it expects, and after the last reload a new
connection must see the newest certificate and new keys must work.

Then SIGTERM to both: each exits 0 within 15 s, and a restarted origin on the same data
directory holds every acknowledged append exactly once, in order.

    python3 loadtest/reload-check.py --binary .build/debug/durable-streams

Bounded: each worker stops after --seconds or --max-requests, whichever comes first. Needs
openssl (certificates) and Python's standard library.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import ssl
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


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Certificates:
    """A CA made once, and server certificates it signs, each with a serial of its own."""

    def __init__(self, directory):
        self.directory = directory
        self.ca_key = os.path.join(directory, "ca-key.pem")
        self.ca = os.path.join(directory, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                "-subj", "/CN=reload-check CA", "-keyout", self.ca_key, "-out", self.ca)
        self.serial = 1000

    def issue(self, name):
        """Writes <name>.pem and <name>-key.pem (replacing them whole) and returns the serial."""
        self.serial += 1
        key, csr, cert = (os.path.join(self.directory, f"{name}{suffix}") for suffix in ("-key.tmp", ".csr", ".tmp"))
        ext = os.path.join(self.directory, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                "-keyout", key, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-set_serial", str(self.serial),
                "-days", "1", "-extfile", ext, "-out", cert)
        # Key first: a reload between the two renames would pair the new key with the old
        # certificate and fail, which the servers must survive, but the check wants clean reloads.
        os.replace(key, os.path.join(self.directory, f"{name}-key.pem"))
        os.replace(cert, os.path.join(self.directory, f"{name}.pem"))
        return self.serial


def token(secret, subject, scope):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": subject, "scope": scope, "exp": int(time.time()) + 3600}).encode())
    signature = b64(hmac.new(secret.encode(), header + b"." + claims, hashlib.sha256).digest())
    return (header + b"." + claims + b"." + signature).decode()


def write_keys(path, keys):
    """keys: [(name, secret, scope)]; written whole, atomically."""
    text = "".join(f'[[key]]\nname = "{n}"\nsha256 = "{hashlib.sha256(s.encode()).hexdigest()}"\nscope = "{c}"\n\n'
                   for n, s, c in keys)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_file(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class Server:
    def __init__(self, name, args, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def signal(self, sig):
        self.process.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM; the exit status, or None if it had to be killed."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()


def wait_ready(port, context, deadline):
    while time.time() < deadline:
        try:
            conn = http.client.HTTPSConnection(HOST, port, timeout=2, context=context)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def served_serial(port, context):
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    # The serial, read back with openssl (the standard library does not parse DER).
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                         capture_output=True, check=True).stdout.decode()
    return int(out.strip().split("=")[1], 16)


class Traffic:
    """Workers append and read through the edge until told to stop; every failure is kept."""

    def __init__(self, port, context, writer_key, reader_token, stream, seconds, max_requests):
        self.port, self.context = port, context
        self.writer_key = writer_key
        self.reader_token = reader_token
        self.stream = stream
        self.until = time.time() + seconds
        self.max_requests = max_requests
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures = []
        self.acked = []      # payloads whose append was acknowledged, in acknowledgement order per writer
        self.requests = 0

    def _count(self):
        with self.lock:
            self.requests += 1
            return self.requests <= self.max_requests

    def _connection(self):
        return http.client.HTTPSConnection(HOST, self.port, timeout=10, context=self.context)

    def writer(self, index):
        conn = self._connection()
        sequence = 0
        while not self.stop.is_set() and time.time() < self.until and self._count():
            payload = f"w{index}-{sequence:06d};"
            try:
                conn.request("POST", self.stream, body=payload.encode(), headers={
                    "Authorization": f"Bearer {self.writer_key()}", "Content-Type": "text/plain"})
                response = conn.getresponse()
                response.read()
                if response.status in (200, 204):
                    with self.lock:
                        self.acked.append(payload)
                    sequence += 1
                else:
                    self.failures.append(f"append {payload}: {response.status}")
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(f"append {payload}: {error!r}")
                conn.close()
                conn = self._connection()
        conn.close()

    def reader(self, fresh):
        conn = None if fresh else self._connection()
        while not self.stop.is_set() and time.time() < self.until and self._count():
            if fresh:
                conn = self._connection()
            try:
                conn.request("GET", self.stream + "?offset=-1", headers={"Authorization": f"Bearer {self.reader_token}"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(f"read ({'fresh' if fresh else 'kept'}): {response.status}")
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(f"read ({'fresh' if fresh else 'kept'}): {error!r}")
                conn.close()
                conn = self._connection()
            if fresh:
                conn.close()
        if conn is not None:
            conn.close()


def read_back(port, context, stream, key):
    """(status, text): the whole stream, following Stream-Next-Offset until up to date."""
    conn = http.client.HTTPSConnection(HOST, port, timeout=10, context=context)
    offset, parts = "-1", []
    for _ in range(10_000):
        conn.request("GET", f"{stream}?offset={offset}", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            conn.close()
            return response.status, ""
        parts.append(body)
        offset = response.getheader("Stream-Next-Offset")
        if response.getheader("Stream-Up-To-Date") == "true" or not body:
            break
    conn.close()
    return 200, b"".join(parts).decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60, help="bound on the traffic phase")
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="ds-reload-check-")
    certs = Certificates(work)
    certs.issue("origin")
    certs.issue("edge")
    secret = "reload-check-secret-0123456789abcdef"
    write_file(os.path.join(work, "jwt.secret"), secret)
    keys_path = os.path.join(work, "keys.toml")
    upstream_key_path = os.path.join(work, "upstream.key")
    admin_key = "admin-" + os.urandom(12).hex()
    writer_keys = ["writer-" + os.urandom(12).hex()]
    edge_keys = ["edge-" + os.urandom(12).hex()]

    def keys():
        # The edge's last two keys only: the one it uses until its reload, and the new one. A
        # key two rounds old is gone, so an edge that did not rotate would be refused upstream.
        return ([("admin", admin_key, "admin")] + [(f"writer{i}", k, "write") for i, k in enumerate(writer_keys)]
                + [(f"edge{i}", k, "read") for i, k in enumerate(edge_keys)][-2:])

    write_keys(keys_path, keys())
    write_file(upstream_key_path, edge_keys[-1] + "\n")
    origin_port, edge_port = free_port(), free_port()
    data_dir = os.path.join(work, "data")
    origin_conf = os.path.join(work, "origin.conf")
    write_file(origin_conf, f'tls_certificate_file = "{work}/origin.pem"\ntls_key_file = "{work}/origin-key.pem"\n'
                            f'api_keys_file = "{keys_path}"\n')
    edge_conf = os.path.join(work, "edge.conf")
    write_file(edge_conf, f'tls_certificate_file = "{work}/edge.pem"\ntls_key_file = "{work}/edge-key.pem"\n'
                          f'upstream = "https://127.0.0.1:{origin_port}"\nupstream_ca_file = "{certs.ca}"\n'
                          f'credentials = "verify"\napi_keys_file = "{keys_path}"\n'
                          f'jwt_hs256_secret_file = "{work}/jwt.secret"\nupstream_authorization_file = "{upstream_key_path}"\n')
    context = ssl.create_default_context(cafile=certs.ca)

    def start_origin():
        return Server("origin", [args.binary, "origin", "--config", origin_conf, "--port", str(origin_port),
                                 "--data-dir", data_dir], os.path.join(work, "origin.log"))

    origin = start_origin()
    edge = Server("edge", [args.binary, "edge", "--config", edge_conf, "--listen", f"{HOST}:{edge_port}"],
                  os.path.join(work, "edge.log"))
    problems = []
    try:
        deadline = time.time() + 60
        if not (wait_ready(origin_port, context, deadline) and wait_ready(edge_port, context, deadline)):
            print(f"servers did not start; logs in {work}", file=sys.stderr)
            return 1
        stream = "/v1/stream/reload-check"
        conn = http.client.HTTPSConnection(HOST, edge_port, timeout=10, context=context)
        conn.request("PUT", stream, headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "text/plain"})
        status = conn.getresponse().status
        conn.close()
        if status != 201:
            print(f"creating the stream through the edge answered {status}", file=sys.stderr)
            return 1

        current_writer = [writer_keys[-1]]
        traffic = Traffic(edge_port, context, lambda: current_writer[0], token(secret, "reader", "read"), stream,
                          args.seconds, args.max_requests)
        threads = [threading.Thread(target=traffic.writer, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=traffic.reader, args=(fresh,)) for fresh in (True, False, True, False)]
        for thread in threads:
            thread.start()
        serials = {}
        for round_number in range(1, args.rounds + 1):
            time.sleep(0.4)
            serials["origin"] = certs.issue("origin")
            serials["edge"] = certs.issue("edge")
            writer_keys.append("writer-" + os.urandom(12).hex())
            edge_keys.append("edge-" + os.urandom(12).hex())
            write_keys(keys_path, keys())
            write_file(upstream_key_path, edge_keys[-1] + "\n")
            # The origin first: the edge's new upstream key must be known before the edge uses it.
            origin.signal(signal.SIGHUP)
            want = round_number
            until = time.time() + 10
            while origin.text().count("origin: reloaded") < want and time.time() < until:
                time.sleep(0.02)
            edge.signal(signal.SIGHUP)
            until = time.time() + 10
            while edge.text().count("edge: reloaded") < want and time.time() < until:
                time.sleep(0.02)
            current_writer[0] = writer_keys[-1]
        time.sleep(0.4)
        traffic.stop.set()
        for thread in threads:
            thread.join(60)

        for server in (origin, edge):
            lines = [line for line in server.text().splitlines() if f"{server.name}: reload" in line]
            if len(lines) != args.rounds:
                problems.append(f"{server.name}: {len(lines)} reload lines for {args.rounds} SIGHUPs")
            for line in lines:
                if "failed" in line or "unchanged" in line or "needs a restart" in line:
                    problems.append(f"{server.name}: {line}")
        for name, port in (("origin", origin_port), ("edge", edge_port)):
            seen = served_serial(port, context)
            if seen != serials[name]:
                problems.append(f"{name}: a new connection got certificate serial {seen}, not the newest {serials[name]}")
        problems += traffic.failures[:20]
        if len(traffic.failures) > 20:
            problems.append(f"… and {len(traffic.failures) - 20} more failed requests")

        codes = {server.name: server.stop() for server in (edge, origin)}
        for name, code in codes.items():
            if code != 0:
                problems.append(f"{name}: SIGTERM ended it with {code} (None: killed after 15 s)")
        origin = start_origin()
        if not wait_ready(origin_port, context, time.time() + 60):
            problems.append("the origin did not start again on its data directory")
        else:
            status, body = read_back(origin_port, context, stream, admin_key)
            stored = [part + ";" for part in body.split(";") if part]
            if status != 200:
                problems.append(f"reading back after restart: {status}")
            for index in range(3):
                mine = [p for p in stored if p.startswith(f"w{index}-")]
                acked = [p for p in traffic.acked if p.startswith(f"w{index}-")]
                if mine[:len(acked)] != acked:
                    problems.append(f"writer {index}: the stored appends do not begin with the {len(acked)} acknowledged, in order")
            if len(stored) != len(set(stored)):
                problems.append("an append is stored twice")
        print(f"{args.rounds} reloads of origin and edge under traffic: {traffic.requests} requests, "
              f"{len(traffic.acked)} appends acknowledged, {len(traffic.failures)} failed; SIGTERM exits {codes}")
    finally:
        for server in (origin, edge):
            if server.process.poll() is None:
                server.stop()
    if problems:
        print("PROBLEMS (logs in " + work + "):", *problems, sep="\n  ", file=sys.stderr)
        return 1
    subprocess.run(["rm", "-rf", work])
    print("reload check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
