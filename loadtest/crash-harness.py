#!/usr/bin/env python3
"""Crash-test harness: does a durable origin keep its promises across `kill -9`?

It runs `durable-streams origin --data-dir DIR`, appends to several streams from idempotent
producers as fast as it can, kills the server with SIGKILL at a random instant, restarts it on
the same data directory and, before anything new is appended, checks the durability contract:

1. Every acknowledged append (answered 200, or 204) is present exactly once, byte-exact, in
   order (per producer).
2. A retry of an acknowledged (producer, epoch, seq) answers 204 (duplicate), never 409/403,
   and adds nothing.
3. An append whose answer was lost to the kill is either entirely present (its retry answers
   204) or entirely absent (its retry answers 200, and then it is there) - never torn, never
   partly present, never a false 409.

Every third cycle (--term-every) stops the server with SIGTERM instead, while the producers are
still appending: a drain must keep the same promises, and the server must exit by itself.

It also checks that everything verified after an earlier restart is still there, unchanged, at
the start of the stream (offsets are stable), that no bytes other than whole records exist,
and, after the last cycle, that a clean shutdown (SIGTERM) and restart changes nothing.

Forks (Durable Streams §4.2), unless --forks 0: while the producers append, two more threads
make --forks N forks per cycle (default 3), one after another each: forks of the producer
streams (at an offset a catch-up read returned, or at the tail: no Stream-Fork-Offset), forks of
dedicated extra source streams, forks of forks; they append a few records of the same kind to
forks and extra sources (single writer each, idempotent), DELETE forks, and now and then DELETE
an extra source that forks still use (a soft delete; the producer streams are never deleted).
Every fork made stays in the model across cycles until deleted, and after each restart, before
anything new happens:

4. An acknowledged fork (201) exists and reads exactly, byte for byte, its source's bytes below
   the fork point, then its own acknowledged appends in order. A fork at a producer stream's
   tail must lie within what survived of the source, on a record boundary.
5. A fork PUT, append or DELETE whose answer was lost either happened entirely or not at all: a
   fork is absent or reads right, and the identical PUT then answers 201 or 200 accordingly; an
   append is present whole or absent, its retry answering 204 or 200 (as in 3); a DELETE left
   the stream readable as before, or gone.
6. An acknowledged DELETE stays: 404 for a stream no live fork uses; 410 for GET and HEAD and
   409 for a PUT of its name while forks use it (soft delete), and 404 once the last of those
   forks is deleted (acknowledged): the cascade, which recovery finishes if a kill cut it short.

Every record is self-describing, `#<stream>|<producer>|<epoch>|<seq>|<length>|<payload>\\n`,
with a payload of 1..2000 bytes whose length and content derive from --seed and the tuple, so
any record found can be regenerated and compared byte for byte: a torn write, a record spliced
into another, or garbage shows up as bytes that match no record. Payloads never contain `#`,
so the checker resynchronises on the next `#` after a bad patch and reports every one.

Run it from the repository root once the server is built:

    loadtest/crash-harness.py                              # 10 cycles, 4 streams x 2 producers, 3 forks
    loadtest/crash-harness.py --cycles 200 --fsync batch --seed 7 --time-limit 1800
    loadtest/crash-harness.py --binary .build/debug/durable-streams --keep -v

One line is printed per cycle (with forks: `forks: made X, deleted Y, checked Z (R read, S at
410, G at 404[, C by a cascade]); in doubt: ...`) and a summary line at the end:
`crash-harness: N cycles, M acknowledged appends, V violations`. Exit status: 0 = all cycles
completed without a violation; 1 = violations (each printed with stream, producer, seq, what
was expected and what was found; the data directory and the server log are kept); 2 = the
harness could not finish its job (server would not start, --time-limit reached, interrupted).
By default the run stops after the first cycle with a violation, so the data directory shows
the state that broke the contract; --keep-going continues (see adopt_server_state).

Python 3 standard library only. Talks to 127.0.0.1 only; every request has a timeout and every
loop is bounded in count and in time.
"""

import argparse
import hashlib
import http.client
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

HOST = "127.0.0.1"
PREFIX = "/v1/stream/"
# Producers keep one epoch across restarts: continuing a sequence after a crash is exactly what
# the contract has to support. Only --keep-going moves to a new epoch, after a violation.
FIRST_EPOCH = 1
MAX_PAYLOAD = 2000
APPEND_TIMEOUT = 5.0
# A catch-up read returns up to the server's chunk limit (4 MiB by default) in one answer.
READ_TIMEOUT = 30.0
MAX_APPENDS_PER_PRODUCER_CYCLE = 1_000_000
MAX_READ_REQUESTS = 100_000
READ_STREAM_SECONDS = 120.0
MAX_PRINTED_VIOLATIONS = 40
LOG_TAIL_LINES = 25


class HarnessError(Exception):
    """The harness could not do its job; says nothing about the server's durability."""


class ServerFailure(Exception):
    """The restarted server stopped answering properly while being checked."""


# ---------------------------------------------------------------------------------------------
# Records

# 64 symbols, none of them '#', '|' or '\n': the record framing stays unambiguous.
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_ALPHABET = bytes(_ALPHABET[b % 64] for b in range(256))
_HEADER = re.compile(rb"#([A-Za-z0-9._-]{1,128})\|([A-Za-z0-9._-]{1,128})\|(\d{1,16})\|(\d{1,16})\|(\d{1,5})\|")


def make_record(seed, stream, producer, epoch, seq):
    """The exact bytes of one append; a pure function of the seed and the tuple."""
    digest = hashlib.shake_256(f"{seed}|{stream}|{producer}|{epoch}|{seq}".encode()).digest(2 + MAX_PAYLOAD)
    length = 1 + int.from_bytes(digest[:2], "big") % MAX_PAYLOAD
    payload = digest[2:2 + length].translate(_TO_ALPHABET)
    return b"#%s|%s|%d|%d|%d|%s\n" % (stream.encode(), producer.encode(), epoch, seq, length, payload)


def first_difference(a, b):
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit


def parse_records(data, seed):
    """Splits a stream's bytes into records.

    Returns (records, problems): records as (offset, stream, producer, epoch, seq) for every
    byte-exact record, problems as (offset, length, description) for every run of bytes that
    is not one (torn, corrupt or foreign bytes).
    """
    records, problems = [], []
    position = 0
    # Each iteration consumes at least one byte, so this ends.
    while position < len(data):
        match = _HEADER.match(data, position)
        expected = None
        if match:
            stream, producer = match.group(1).decode(), match.group(2).decode()
            epoch, seq = int(match.group(3)), int(match.group(4))
            expected = make_record(seed, stream, producer, epoch, seq)
            if data.startswith(expected, position):
                records.append((position, stream, producer, epoch, seq))
                position += len(expected)
                continue
        end = data.find(b"#", position + 1)
        if end < 0:
            end = len(data)
        found = data[position:end]
        if expected is not None:
            at = first_difference(expected, found)
            text = (f"record {stream}/{producer}/epoch {epoch}/seq {seq} is torn or corrupt: "
                    f"{len(found)} bytes up to the next record where {len(expected)} were due; "
                    f"first difference at byte {at}: expected {expected[at:at + 24]!r}, found {found[at:at + 24]!r}")
        else:
            text = f"{len(found)} bytes that are not a record: {found[:48]!r}{'...' if len(found) > 48 else ''}"
        problems.append((position, len(found), text))
        position = end
    return records, problems


def seq_ranges(seqs):
    """'0..41, 43, 50..52' for a set of sequence numbers."""
    parts, ordered = [], sorted(seqs)
    index = 0
    while index < len(ordered):
        start = index
        while index + 1 < len(ordered) and ordered[index + 1] == ordered[index] + 1:
            index += 1
        parts.append(str(ordered[start]) if start == index else f"{ordered[start]}..{ordered[index]}")
        index += 1
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# What the harness believes the server holds


class Producer:
    def __init__(self, stream, index):
        self.stream = stream
        self.id = f"{stream}.p{index}"
        self.epoch = FIRST_EPOCH
        self.next_seq = 0
        # (epoch, seq) the server acknowledged, or an unknown append later found present.
        self.acked = set()
        self.last_acked = None
        # The one (epoch, seq) whose request went out but whose answer was lost, if any.
        self.unknown = None
        self.unknown_why = ""
        self.unknown_present = False
        self.cycle_acked = 0
        self.cycle_bytes = 0

    def note_acked(self, epoch, seq):
        self.acked.add((epoch, seq))
        if self.last_acked is None or (epoch, seq) > self.last_acked:
            self.last_acked = (epoch, seq)
        self.next_seq = seq + 1


class Stream:
    def __init__(self, name, producers):
        self.name = name
        self.path = PREFIX + name
        self.producers = [Producer(name, index) for index in range(producers)]
        self.created = False
        self.missing = False
        # The bytes known to be in the stream after the last check (retries included): a later
        # restart must still start with exactly these.
        self.verified = b""
        self.tail = None
        # How many bytes it held after the last restart, before the retries appended more.
        self.restart_len = 0


class Violations:
    """Thread-safe list of contract violations, each a self-contained sentence."""

    def __init__(self):
        self.items = []
        self._lock = threading.Lock()

    def add(self, cycle, stream, producer, seq, expected, found):
        where = f"cycle {cycle}: " + (f"stream {stream}" if stream else "server")
        if producer:
            where += f" producer {producer}"
        if seq is not None:
            where += f" seq {seq}"
        with self._lock:
            self.items.append(f"{where}: expected {expected}; found {found}")

    def __len__(self):
        with self._lock:
            return len(self.items)


# ---------------------------------------------------------------------------------------------
# HTTP


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, {name.lower(): value for name, value in response.getheaders()}, data


def append_headers(producer_id, epoch, seq):
    return {"Content-Type": "application/octet-stream", "Producer-Id": producer_id,
            "Producer-Epoch": str(epoch), "Producer-Seq": str(seq)}


def answer_text(status, headers, body):
    """A status with the headers that explain it, for violation reports."""
    extra = [f"{name}: {headers[name]}" for name in ("producer-expected-seq", "producer-received-seq",
                                                      "producer-epoch", "producer-seq") if name in headers]
    text = str(status) + (f" ({', '.join(extra)})" if extra else "")
    if body and status >= 300:
        text += f" {body[:160]!r}"
    return text


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def read_all(port, path, name, start="-1", conn=None):
    """(status, bytes, tail offset): every byte of the stream at `path` from `start` to its end
    (status 200), or the status and body of a first answer that is not a 200 (404 for a missing
    stream, 410 for a soft-deleted one) with tail None. On `conn` if given (left open)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(HOST, port, timeout=READ_TIMEOUT)
    deadline = time.monotonic() + READ_STREAM_SECONDS
    chunks, offset = [], start
    try:
        for _ in range(MAX_READ_REQUESTS):
            try:
                status, headers, body = request(conn, "GET", f"{path}?offset={offset}")
            except (OSError, http.client.HTTPException) as error:
                raise ServerFailure(f"GET {name}?offset={offset}: {type(error).__name__}: {error}")
            if status != 200 and not chunks:
                return status, body, None
            if status != 200:
                raise ServerFailure(f"GET {name}?offset={offset} answered {answer_text(status, headers, body)}")
            chunks.append(body)
            next_offset = headers.get("stream-next-offset")
            if not next_offset:
                raise ServerFailure(f"GET {name}?offset={offset} answered 200 without Stream-Next-Offset")
            if headers.get("stream-up-to-date", "").lower() == "true":
                return 200, b"".join(chunks), next_offset
            if not body and next_offset == offset:
                raise ServerFailure(f"GET {name}?offset={offset}: no data, same offset, and not up to date")
            offset = next_offset
            if time.monotonic() > deadline:
                break
    finally:
        if own:
            conn.close()
    raise ServerFailure(f"reading {name} did not reach Stream-Up-To-Date within "
                        f"{MAX_READ_REQUESTS} requests / {READ_STREAM_SECONDS:.0f} s")


def read_stream(port, stream, start="-1"):
    """The stream's bytes from `start` to its end and the tail offset, or (None, None) on 404."""
    status, data, tail = read_all(port, stream.path, stream.name, start)
    if status == 404:
        return None, None
    if status != 200:
        raise ServerFailure(f"GET {stream.name}?offset={start} answered {status} {data[:160]!r}")
    return data, tail


# ---------------------------------------------------------------------------------------------
# The server process


class Server:
    def __init__(self, binary, data_dir, fsync, log_path, start_timeout):
        self.binary = binary
        self.data_dir = data_dir
        self.fsync = fsync
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process = None
        self.port = None
        self.starts = 0

    def start(self):
        self.starts += 1
        # A fresh port per start: no waiting for the killed process's socket to be released.
        self.port = free_port()
        args = [self.binary, "origin", "--port", str(self.port)]
        if self.data_dir is not None:
            args += ["--data-dir", self.data_dir]
        if self.fsync:
            args += ["--fsync", self.fsync]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== crash-harness: start {self.starts}: {' '.join(args)}\n".encode())
            log.flush()
            # A session of its own: a Ctrl-C at the harness must not reach the server; the
            # harness kills it itself.
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        started = time.monotonic()
        deadline = started + self.start_timeout
        while True:
            status = self.process.poll()
            if status is not None:
                raise HarnessError(f"the server exited with status {status} while starting "
                                   f"(start {self.starts}); the end of {self.log_path}:\n{self.log_tail()}")
            if self._answers():
                return time.monotonic() - started
            if time.monotonic() > deadline:
                self.kill()
                raise HarnessError(f"the server did not answer on {HOST}:{self.port} within {self.start_timeout:.0f} s "
                                   f"(start {self.starts}); the end of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=1.0)
        try:
            request(conn, "GET", PREFIX + "__probe")  # any answer will do; 404 is the usual one
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL; returns the exit status if the process had already ended on its own."""
        if self.process is None:
            return None
        already = self.process.poll()
        if already is None:
            self._signal_group(signal.SIGKILL)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"server process {self.process.pid} did not die within 10 s of SIGKILL")
        return already

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL after `timeout`; True if it ended on SIGTERM."""
        if not self.running():
            return True
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def _signal_group(self, signum):
        # The server leads a session of its own, so its group holds it and anything it started
        # (a wrapper script's child, say) and nothing else.
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as log:
                lines = log.read().decode(errors="replace").splitlines()
            return "\n".join("    " + line for line in lines[-LOG_TAIL_LINES:])
        except OSError as error:
            return f"    (cannot read the log: {error})"


# ---------------------------------------------------------------------------------------------
# One cycle: create, append, kill


def create_streams(cycle, server, streams, violations):
    conn = http.client.HTTPConnection(HOST, server.port, timeout=APPEND_TIMEOUT)
    try:
        for stream in streams:
            try:
                status, headers, body = request(conn, "PUT", stream.path, b"",
                                                {"Content-Type": "application/octet-stream"})
            except (OSError, http.client.HTTPException) as error:
                raise ServerFailure(f"PUT {stream.name}: {type(error).__name__}: {error}")
            if status == 201 and stream.created and not stream.missing:
                violations.add(cycle, stream.name, None, None, "200 (the stream exists since its creation was acknowledged)",
                               "201: the stream was created anew")
            elif status == 200 and not stream.created:
                # Stream names carry a random tag, so this is a leftover of another run.
                raise HarnessError(f"stream {stream.name} already existed before the harness created it")
            elif status not in (200, 201):
                raise ServerFailure(f"PUT {stream.name} answered {answer_text(status, headers, body)}")
            stream.created = True
            stream.missing = False
    finally:
        conn.close()


def produce(producer, port, seed, cycle, killed, deadline, violations):
    """Appends in sequence until the kill; leaves at most one append with an unknown outcome."""
    conn = http.client.HTTPConnection(HOST, port, timeout=APPEND_TIMEOUT)
    path = PREFIX + producer.stream
    try:
        for _ in range(MAX_APPENDS_PER_PRODUCER_CYCLE):
            if killed.is_set() or time.monotonic() > deadline:
                return
            epoch, seq = producer.epoch, producer.next_seq
            body = make_record(seed, producer.stream, producer.id, epoch, seq)
            try:
                status, headers, answer = request(conn, "POST", path, body, append_headers(producer.id, epoch, seq))
            except ConnectionRefusedError:
                # No connection, so nothing was sent: the same seq is simply the next to send.
                if not killed.is_set():
                    violations.add(cycle, producer.stream, producer.id, seq, "connections accepted until the kill",
                                   "connection refused before the kill")
                return
            except (OSError, http.client.HTTPException) as error:
                # Sent (perhaps partly) but unanswered: the append may or may not have happened.
                producer.unknown = (epoch, seq)
                producer.unknown_why = f"{type(error).__name__}"
                if not killed.is_set():
                    violations.add(cycle, producer.stream, producer.id, seq, "an answer (the server was not killed yet)",
                                   f"{type(error).__name__}: {error}")
                return
            if status in (200, 204):
                if status == 204:
                    # This seq was never sent before, so the server cannot have it already. It
                    # still vouched that the append is applied, so it is held to that.
                    violations.add(cycle, producer.stream, producer.id, seq, "200 for a first delivery",
                                   f"{answer_text(status, headers, answer)}: a duplicate of an append never sent")
                elif headers.get("producer-seq") != str(seq):
                    violations.add(cycle, producer.stream, producer.id, seq, f"Producer-Seq: {seq} echoed with the 200",
                                   repr(headers.get("producer-seq")))
                producer.note_acked(epoch, seq)
                producer.cycle_acked += 1
                producer.cycle_bytes += len(body)
            elif status >= 500:
                producer.unknown = (epoch, seq)
                producer.unknown_why = f"answered {status}"
                violations.add(cycle, producer.stream, producer.id, seq, "200", f"{answer_text(status, headers, answer)} (server failure)")
                return
            else:
                # Refused (409 gap, 403 stale epoch, ...): nothing appended; it stays the next seq.
                violations.add(cycle, producer.stream, producer.id, seq, "200 for the next seq in order",
                               answer_text(status, headers, answer))
                return
    finally:
        conn.close()


def run_phase(cycle, server, streams, seed, run_ms, violations, forks=None, graceful=False):
    producers = [producer for stream in streams for producer in stream.producers]
    for producer in producers:
        producer.cycle_acked = producer.cycle_bytes = 0
    killed = threading.Event()
    # Producers also stop on their own should the kill never come.
    deadline = time.monotonic() + run_ms / 1000 + 15
    threads = [threading.Thread(target=produce, args=(producer, server.port, seed, cycle, killed, deadline, violations),
                                daemon=True, name=producer.id) for producer in producers]
    if forks is not None:
        forks.start_cycle()
        threads += forks.threads(server.port, cycle, run_ms, killed, deadline, violations)
    for thread in threads:
        thread.start()
    time.sleep(run_ms / 1000)
    # Set before the signal: any failure a producer sees after this may be the kill's doing.
    killed.set()
    if graceful:
        # A drain under traffic: the same promises must hold, and the server must stop by itself.
        if not server.running():
            violations.add(cycle, None, None, None, "the server running until SIGTERM", f"it had exited; see {server.log_path}")
        elif not server.stop(timeout=20):
            violations.add(cycle, None, None, None, "the server draining and exiting on SIGTERM",
                           f"it was still running 20 s later and was killed; see {server.log_path}")
    else:
        died_on_its_own = server.kill()
        if died_on_its_own is not None:
            violations.add(cycle, None, None, None, "the server running until the kill",
                           f"it had exited with status {died_on_its_own}; see {server.log_path}")
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + APPEND_TIMEOUT)
    if any(thread.is_alive() for thread in threads):
        raise HarnessError("producer (or fork) threads did not stop after the kill")
    return sum(p.cycle_acked for p in producers), sum(p.cycle_bytes for p in producers)


# ---------------------------------------------------------------------------------------------
# After the restart: read, check, retry


def check_stream(cycle, stream, content, seed, violations):
    """Holds the stream's bytes against what the producers were told."""
    prefix_ok = content.startswith(stream.verified)
    if not prefix_ok:
        at = first_difference(content, stream.verified)
        violations.add(cycle, stream.name, None, None,
                       f"the {len(stream.verified)} bytes read after the previous restart to be still there, unchanged",
                       f"the stream ({len(content)} bytes now) differs from byte {at}: was {stream.verified[at:at + 24]!r}, "
                       f"is {content[at:at + 24]!r}")
    # Problems inside bytes already checked were reported then (only with --keep-going).
    new_from = len(stream.verified) if prefix_ok else 0
    records, problems = parse_records(content, seed)
    for offset, length, text in problems:
        if offset + length > new_from:
            violations.add(cycle, stream.name, None, None, f"only whole records (at byte {offset})", text)
    by_id = {producer.id: producer for producer in stream.producers}
    seen = defaultdict(list)
    counts = Counter()
    for offset, name, producer_id, epoch, seq in records:
        if name != stream.name or producer_id not in by_id:
            if offset >= new_from:
                violations.add(cycle, stream.name, None, None, f"records of this stream's producers only (at byte {offset})",
                               f"record {name}/{producer_id}/epoch {epoch}/seq {seq}")
            continue
        counts[(producer_id, epoch, seq)] += 1
        if counts[(producer_id, epoch, seq)] > 1:
            if offset >= new_from:
                violations.add(cycle, stream.name, producer_id, seq, "the record exactly once",
                               f"another copy of epoch {epoch} seq {seq} at byte {offset}")
            continue
        seen[producer_id].append((epoch, seq, offset))
    for producer in stream.producers:
        order = seen[producer.id]
        for previous, current in zip(order, order[1:]):
            if current[:2] <= previous[:2] and current[2] >= new_from:
                violations.add(cycle, stream.name, producer.id, current[1], "the producer's records in (epoch, seq) order",
                               f"epoch {current[0]} seq {current[1]} at byte {current[2]} "
                               f"after epoch {previous[0]} seq {previous[1]} at byte {previous[2]}")
                break
        present = {(epoch, seq) for epoch, seq, _ in order}
        missing = producer.acked - present
        for epoch in sorted({e for e, _ in missing}):
            seqs = {s for e, s in missing if e == epoch}
            total = sum(1 for e, _ in producer.acked if e == epoch)
            violations.add(cycle, stream.name, producer.id, seq_ranges(seqs),
                           f"every acknowledged append of epoch {epoch} present",
                           f"{len(seqs)} of {total} missing")
        allowed = producer.acked | ({producer.unknown} if producer.unknown else set())
        extra = present - allowed
        for epoch in sorted({e for e, _ in extra}):
            seqs = {s for e, s in extra if e == epoch}
            violations.add(cycle, stream.name, producer.id, seq_ranges(seqs),
                           "only acknowledged appends, or the one in flight at the kill",
                           f"{len(seqs)} unacknowledged record(s) of epoch {epoch} present")
        producer.unknown_present = producer.unknown is not None and producer.unknown in present


def retry(conn, cycle, stream, producer, epoch, seq, expected_status, why, seed, violations):
    """Sends an append again; returns the bytes it added per the server's answer."""
    body = make_record(seed, stream.name, producer.id, epoch, seq)
    try:
        status, headers, answer = request(conn, "POST", stream.path, body, append_headers(producer.id, epoch, seq))
    except (OSError, http.client.HTTPException) as error:
        raise ServerFailure(f"retry of {producer.id} epoch {epoch} seq {seq}: {type(error).__name__}: {error}")
    if status != expected_status:
        violations.add(cycle, stream.name, producer.id, seq, f"{expected_status} for the retry of {why}",
                       answer_text(status, headers, answer))
    return status, body if status == 200 else b""


def verify(cycle, server, streams, seed, violations):
    """The checks after a restart. Returns (unknowns found present, unknowns found absent)."""
    found_present = found_absent = 0
    for stream in streams:
        content, tail = read_stream(server.port, stream)
        stream.missing = content is None
        if stream.missing:
            if stream.created:
                violations.add(cycle, stream.name, None, None, "the stream (its creation was acknowledged)",
                               "404: it is gone")
            content = b""
        stream.restart_len = len(content)
        check_stream(cycle, stream, content, seed, violations)

        conn = http.client.HTTPConnection(HOST, server.port, timeout=APPEND_TIMEOUT)
        added = []
        try:
            for producer in stream.producers:
                previous = producer.last_acked
                if producer.unknown is not None:
                    epoch, seq = producer.unknown
                    present = producer.unknown_present
                    why = (f"the append in flight at the kill ({producer.unknown_why}), "
                           f"{'present' if present else 'absent'} after the restart")
                    status, body = retry(conn, cycle, stream, producer, epoch, seq, 204 if present else 200, why,
                                         seed, violations)
                    added.append(body)
                    if status in (200, 204):
                        if present:
                            found_present += 1
                        else:
                            found_absent += 1
                        producer.note_acked(epoch, seq)
                        # A second retry is now a retry of an acknowledged append.
                        _, body = retry(conn, cycle, stream, producer, epoch, seq, 204,
                                        "an append acknowledged by its first retry", seed, violations)
                        added.append(body)
                    producer.unknown = None
                if previous is not None:
                    _, body = retry(conn, cycle, stream, producer, previous[0], previous[1], 204,
                                    "the last acknowledged append before the kill", seed, violations)
                    added.append(body)
        finally:
            conn.close()

        # The retries must have added exactly what their answers said (every 200, no 204).
        if stream.missing:
            stream.verified, stream.tail = b"", None
            continue
        after, tail_after = read_stream(server.port, stream, start=tail)
        expected = b"".join(added)
        if after is None:
            violations.add(cycle, stream.name, None, None, "the stream after the retries", "404: it is gone")
            after, tail_after = b"", None
        elif after != expected:
            at = first_difference(after, expected)
            violations.add(cycle, stream.name, None, None,
                           f"the retries to add exactly {len(expected)} bytes after byte {len(content)} "
                           f"(one record per retry answered 200)",
                           f"{len(after)} bytes, differing from byte {at}: {after[at:at + 40]!r}")
        stream.verified, stream.tail = content + after, tail_after
    return found_present, found_absent


def adopt_server_state(streams, seed):
    """--keep-going: after a violation the model no longer matches the server, so take what the
    server holds now as the truth and move each producer to a fresh epoch (sequence 0), which
    the server accepts whatever it remembers and which keeps every record's tuple unique."""
    for stream in streams:
        records, _ = parse_records(stream.verified, seed)
        for producer in stream.producers:
            present = {(e, s) for _, name, pid, e, s in records if name == stream.name and pid == producer.id}
            producer.acked = present
            # Retrying an older epoch's append would rightly be refused once the new epoch is in.
            producer.last_acked = None
            producer.unknown = None
            producer.epoch = max([producer.epoch] + [e for e, _ in present]) + 1
            producer.next_seq = 0


def final_clean_restart(cycle, server, streams, violations):
    """A clean shutdown and restart must change nothing at all."""
    if not server.stop():
        violations.add(cycle, None, None, None, "the server to exit within 15 s of SIGTERM", "it had to be killed")
    server.start()
    for stream in streams:
        content, _ = read_stream(server.port, stream)
        if content is None:
            if stream.created:
                violations.add(cycle, stream.name, None, None, "the stream after a clean restart", "404: it is gone")
            continue
        if content != stream.verified:
            at = first_difference(content, stream.verified)
            violations.add(cycle, stream.name, None, None,
                           f"the same {len(stream.verified)} bytes after a clean shutdown and restart",
                           f"{len(content)} bytes, differing from byte {at}")


# ---------------------------------------------------------------------------------------------
# Forks (§4.2): made, appended to and deleted during the run phase, checked after each restart

FORK_EPOCH = 1
# Forks of forks go this deep at most (a producer stream or an extra source is depth 0).
MAX_FORK_DEPTH = 3
# A removed stream is checked (404) after this many restarts, then forgotten.
GONE_CHECKS = 2
# How many older verified tails of a producer stream stay candidate fork points.
KEPT_STREAM_OFFSETS = 6


class StopForks(Exception):
    """The fork thread stops: the server was killed, or it answered wrongly (already reported)."""


def offset_position(offset):
    """The byte position of an offset `<16 digits>_<16 digits>`, or None if it is not one."""
    match = re.fullmatch(r"\d{16}_(\d{16})", offset or "")
    return int(match.group(1)) if match else None


class Node:
    """A stream the fork phase made: an extra source (parent None) or a fork of a producer
    stream, of an extra source or of another fork. Its bytes are `base` (the source's bytes
    below the fork point) followed by its own appends, records of its single writer."""

    def __init__(self, name, parent, depth, lane):
        self.name = name
        self.path = PREFIX + name
        self.parent = parent  # a Stream, a Node, or None
        self.depth = depth
        self.lane = lane  # the fork thread that owns its tree
        self.children = []  # Nodes forked from this one, not yet forgotten
        self.soft = False  # deleted while forks used its data: its removal is a cascade's
        self.writer = f"{name}.w"
        self.headers = {}  # the creating PUT's headers: a retry sends the same
        # The source's bytes below the fork point. None: a fork of a producer stream at its tail
        # (no Stream-Fork-Offset): the bytes are taken from the source after the next restart,
        # when they are known to be durable.
        self.base = b""
        self.point = 0  # the fork point's byte position
        self.min_point = 0  # no-offset fork: what the source already held before the PUT
        self.own = b""  # its own acknowledged appends
        self.seqs = 0
        self.offsets = []  # (offset, byte position) the server handed out for this stream
        self.state = "pending"  # -> "live" once created, "deleted" once its DELETE is acknowledged
        self.gone_checks = 0
        self.soft_checks = 0

    def content(self):
        return self.base + self.own

    def gone(self):
        """Deleted, and no fork uses its data any more: must be 404 (after a restart)."""
        return self.state == "deleted" and all(child.gone() for child in self.children)


class ForkPhase:
    """Two fork threads ("lanes") run while the producers append, each on fork trees of its own:
    one forks the producer streams (and forks those forks), the other makes extra source streams,
    forks them and soft-deletes them. Each runs its operations one after another, so each leaves
    at most one operation in doubt at the kill, and the two never touch the same streams."""

    LANES = ("streams", "sources")

    def __init__(self, tag, seed, per_cycle, streams):
        self.tag = tag
        self.seed = seed
        self.streams = streams
        # Forks per cycle in each lane.
        self.quota = {"streams": (per_cycle + 1) // 2, "sources": per_cycle // 2}
        self.lanes = {lane: [] for lane in self.LANES}  # its streams, parents before their forks
        self.counter = itertools.count(1)
        # Per lane, the one operation whose answer was lost to the kill: (kind, node, seq).
        self.unknowns = {}
        self.op_ms = {lane: 40.0 for lane in self.LANES}
        # Per producer stream: (offset, byte position) of tails verified after restarts, and
        # what this run phase read of it so far.
        self.stream_offsets = defaultdict(list)
        self.run_seen = {}
        self.run_offsets = defaultdict(list)
        # Acknowledged this cycle, per lane; deleted extra sources counted apart.
        self.made, self.deleted = Counter(), Counter()
        self.total_made = self.total_deleted = self.total_sources_deleted = self.total_cascades = 0
        self._boundary_cache = {}

    @property
    def nodes(self):
        return [node for lane in self.LANES for node in self.lanes[lane]]

    # --- the model

    def _new(self, kind, parent, depth, lane):
        node = Node(f"crash-{self.tag}-{kind}{next(self.counter)}", parent, depth, lane)
        self.lanes[lane].append(node)
        if isinstance(parent, Node):
            parent.children.append(node)
        return node

    def _forget(self, node):
        if node in self.lanes[node.lane]:
            self.lanes[node.lane].remove(node)
        if isinstance(node.parent, Node) and node in node.parent.children:
            node.parent.children.remove(node)
        for child in list(node.children):
            self._forget(child)

    def forget_all(self):
        """--keep-going after a violation: the model may be wrong; start afresh with new names."""
        self.lanes = {lane: [] for lane in self.LANES}
        self.unknowns = {}
        self.stream_offsets.clear()

    def _live(self, lane, sources=None):
        return [node for node in self.lanes[lane] if node.state == "live"
                and (sources is None or (node.parent is None) == sources)]

    # --- the run phase (one thread per lane)

    def _plan(self, lane, rng):
        """The lane's operations for one cycle, forks interleaved with appends and deletes (each
        waits for a sync, so a short run ends the plan early). Deletes keep the lane at about
        3 live forks per fork made per cycle, so checks stay cheap however long the run."""
        forks = self.quota[lane]
        if not forks and not self.lanes[lane]:
            return []
        start = [] if lane == "streams" or self._live(lane, sources=True) else ["source", "append"]
        others = ["append"] * max(1, forks // 2 + (lane == "sources"))
        live_cap = max(3, 3 * forks)
        others += ["delete"] * (max(1, (forks + 1) // 2) + max(0, len(self._live(lane, sources=False)) + forks - live_cap))
        if lane == "sources" and rng.random() < 0.5:
            others.append("delete-source")
        rng.shuffle(others)
        plan = []
        while forks or others:
            if forks and (not others or rng.random() < 0.6):
                plan.append("fork")
                forks -= 1
            else:
                plan.append(others.pop())
        return start + plan

    def start_cycle(self):
        self.made.clear()
        self.deleted.clear()
        self.run_seen.clear()
        self.run_offsets.clear()

    def threads(self, port, cycle, run_ms, killed, deadline, violations):
        return [threading.Thread(target=self.work, args=(lane, port, cycle, run_ms, killed, deadline, violations),
                                 daemon=True, name=f"forks-{lane}") for lane in self.LANES]

    def work(self, lane, port, cycle, run_ms, killed, deadline, violations):
        """One fork thread: runs the lane's plan, one operation after another, until the kill
        or the plan's end; leaves at most one operation with an unknown outcome."""
        rng = random.Random(f"{self.seed}/forks/{lane}/{cycle}")
        plan = self._plan(lane, rng)
        # Half the cycles the plan starts early and mostly completes; the other half it starts
        # late enough to end about when the kill comes, which then finds an operation in flight.
        planned_ms = len(plan) * self.op_ms[lane]
        if rng.random() < 0.5:
            delay_ms = rng.uniform(0, min(30, run_ms / 4))
        else:
            delay_ms = max(0.0, run_ms - planned_ms + rng.uniform(-0.5, 1.5) * self.op_ms[lane])
        conn = http.client.HTTPConnection(HOST, port, timeout=APPEND_TIMEOUT)
        timed = []
        try:
            if killed.wait(delay_ms / 1000):
                return
            for op in plan:
                if killed.is_set() or time.monotonic() > deadline:
                    return
                began = time.monotonic()
                getattr(self, "_op_" + op.replace("-", "_"))(lane, rng, conn, port, cycle, killed, violations)
                timed.append(time.monotonic() - began)
        except StopForks:
            pass
        finally:
            conn.close()
            # How long an operation takes here (each waits for a sync), for the next plan.
            if timed:
                self.op_ms[lane] = 0.5 * self.op_ms[lane] + 0.5 * 1000 * sum(timed) / len(timed)

    def _call(self, conn, cycle, killed, violations, method, node, body, headers, unknown):
        """One request of the fork thread; on no answer, notes `unknown` and stops the thread."""
        try:
            return request(conn, method, node.path, body, headers)
        except ConnectionRefusedError:
            # Nothing was sent: a stream about to be created simply does not exist.
            if node.state == "pending":
                self._forget(node)
            if not killed.is_set():
                violations.add(cycle, node.name, None, None, "connections accepted until the kill",
                               "connection refused before the kill")
            raise StopForks()
        except (OSError, http.client.HTTPException) as error:
            self.unknowns[node.lane] = unknown
            if not killed.is_set():
                violations.add(cycle, node.name, None, None, f"an answer to {method} (the server was not killed yet)",
                               f"{type(error).__name__}: {error}")
            raise StopForks()

    def _refused(self, cycle, node, violations, method, expected, status, headers, answer):
        """A wrong answer while the server runs: reported; the operation counts as not done
        (as in doubt if a 5xx: it may have been)."""
        if status >= 500:
            self.unknowns[node.lane] = ("delete" if method == "DELETE" else "create" if node.parent is None else "fork",
                                        node, None)
        elif node.state == "pending":
            self._forget(node)
        violations.add(cycle, node.name, None, None, f"{expected} for {method}", answer_text(status, headers, answer))
        raise StopForks()

    def _op_source(self, lane, rng, conn, port, cycle, killed, violations):
        node = self._new("s", None, 0, lane)
        status, headers, answer = self._call(conn, cycle, killed, violations, "PUT", node, b"",
                                             {"Content-Type": "application/octet-stream"}, ("create", node, None))
        if status != 201:
            self._refused(cycle, node, violations, "PUT", "201 (a new stream)", status, headers, answer)
        node.state = "live"
        node.offsets = [(headers.get("stream-next-offset"), 0)]

    def _op_append(self, lane, rng, conn, port, cycle, killed, violations):
        candidates = self._live(lane)
        if not candidates:
            return
        node = rng.choice(candidates)
        seq = node.seqs
        record = make_record(self.seed, node.name, node.writer, FORK_EPOCH, seq)
        status, headers, answer = self._call(conn, cycle, killed, violations, "POST", node, record,
                                             append_headers(node.writer, FORK_EPOCH, seq), ("append", node, seq))
        if status not in (200, 204):
            if status >= 500:
                self.unknowns[lane] = ("append", node, seq)
            violations.add(cycle, node.name, node.writer, seq, "200 for the next seq in order",
                           answer_text(status, headers, answer))
            raise StopForks()
        if status == 204:
            violations.add(cycle, node.name, node.writer, seq, "200 for a first delivery",
                           f"{answer_text(status, headers, answer)}: a duplicate of an append never sent")
        self._appended(node, record, headers.get("stream-next-offset"), cycle, violations)

    def _appended(self, node, record, next_offset, cycle, violations):
        node.own += record
        node.seqs += 1
        position = node.point + len(node.own)
        if offset_position(next_offset) != position:
            violations.add(cycle, node.name, node.writer, node.seqs - 1,
                           f"Stream-Next-Offset at byte {position} after the append", repr(next_offset))
        else:
            node.offsets.append((next_offset, position))

    def _catch_up(self, stream, port, cycle, killed, violations):
        """Reads what a producer stream gained since it was last read; returns its bytes."""
        offset, known = self.run_seen.get(stream.name) or (stream.tail or "-1", stream.verified if stream.tail else b"")
        try:
            status, data, tail = read_all(port, stream.path, stream.name, offset)
        except ServerFailure as failure:
            if not killed.is_set():
                violations.add(cycle, stream.name, None, None, "a catch-up read until the kill", str(failure))
            raise StopForks()
        if status != 200:
            if not killed.is_set():
                violations.add(cycle, stream.name, None, None, f"200 for a catch-up read from {offset}",
                               f"{status} {data[:160]!r}")
            raise StopForks()
        known += data
        if offset_position(tail) != len(known):
            violations.add(cycle, stream.name, None, None, f"Stream-Next-Offset at byte {len(known)} after a catch-up read",
                           repr(tail))
            raise StopForks()
        self.run_seen[stream.name] = (tail, known)
        self.run_offsets[stream.name].append((tail, len(known)))
        return known

    def _op_fork(self, lane, rng, conn, port, cycle, killed, violations):
        forks = [node for node in self._live(lane, sources=False) if node.base is not None and node.depth < MAX_FORK_DEPTH]
        if lane == "streams":
            roots = [stream for stream in self.streams if stream.created and not stream.missing]
        else:
            roots = self._live(lane, sources=True)
        if not roots and not forks:
            return
        parent = rng.choice(forks if forks and (rng.random() < 0.25 or not roots) else roots)
        explicit = rng.random() < 0.7
        node = self._new("f", parent, parent.depth + 1 if isinstance(parent, Node) else 1, lane)
        headers = {"Stream-Forked-From": parent.path}
        if isinstance(parent, Node):
            offsets = [pair for pair in parent.offsets if pair[0]] if explicit else None
            if offsets:
                offset, node.point = offsets[-1] if rng.random() < 0.6 else rng.choice(offsets)
                headers["Stream-Fork-Offset"] = offset
            else:
                node.point = len(parent.content())
            node.base = parent.content()[:node.point]
        elif explicit:
            known = self._catch_up(parent, port, cycle, killed, violations)
            offsets = self.stream_offsets[parent.name] + self.run_offsets[parent.name]
            offset, node.point = offsets[-1] if rng.random() < 0.6 else rng.choice(offsets)
            headers["Stream-Fork-Offset"] = offset
            node.base = known[:node.point]
        else:
            node.base = None
            node.min_point = len(self.run_seen.get(parent.name, (None, parent.verified))[1])
        node.headers = headers
        status, answer_headers, answer = self._call(conn, cycle, killed, violations, "PUT", node, b"", headers,
                                                    ("fork", node, None))
        if status != 201:
            self._refused(cycle, node, violations, "PUT", "201 (a new fork)", status, answer_headers, answer)
        next_offset = answer_headers.get("stream-next-offset")
        position = offset_position(next_offset)
        node.state = "live"
        self.made[lane] += 1
        if node.base is None:
            if position is None or position < node.min_point:
                violations.add(cycle, node.name, None, None,
                               f"Stream-Next-Offset at the source's tail (at least byte {node.min_point}) with the 201",
                               repr(next_offset))
                self._forget(node)
                raise StopForks()
            node.point = position
        elif position != node.point:
            violations.add(cycle, node.name, None, None, f"Stream-Next-Offset at the fork point (byte {node.point}) with the 201",
                           repr(next_offset))
            self._forget(node)
            raise StopForks()
        node.offsets = [(next_offset, node.point)]

    def _delete(self, node, conn, cycle, killed, violations):
        status, headers, answer = self._call(conn, cycle, killed, violations, "DELETE", node, None, {},
                                             ("delete", node, None))
        if status not in (200, 204):
            self._refused(cycle, node, violations, "DELETE", "204", status, headers, answer)
        self._deleted(node)
        self.deleted["extra sources" if node.parent is None else node.lane] += 1

    def _deleted(self, node):
        node.state = "deleted"
        node.soft = any(not child.gone() for child in node.children)

    def _op_delete(self, lane, rng, conn, port, cycle, killed, violations):
        candidates = self._live(lane, sources=False)
        if candidates:
            # Forks of deleted streams first, so that cascades happen.
            weights = [4 if isinstance(node.parent, Node) and node.parent.state == "deleted" else 1 for node in candidates]
            self._delete(rng.choices(candidates, weights)[0], conn, cycle, killed, violations)

    def _op_delete_source(self, lane, rng, conn, port, cycle, killed, violations):
        sources = self._live(lane, sources=True)
        used = [node for node in sources if any(not child.gone() for child in node.children)]
        if used or sources:
            self._delete(rng.choice(used or sources), conn, cycle, killed, violations)

    # --- after a restart

    def verify(self, cycle, port, violations):
        """The fork contract after a restart, before anything new happens. Returns the cycle's
        part of the per-cycle line: made, deleted, checked, and what became of operations in doubt."""
        self._boundary_cache = {}
        self._settle_tail_forks(cycle, violations)
        doubts = [self._resolve(cycle, port, self.unknowns.pop(lane), violations)
                  for lane in self.LANES if lane in self.unknowns]
        checked = self.check_all(cycle, port, violations)
        for stream in self.streams:
            if stream.tail:
                kept = self.stream_offsets[stream.name]
                kept.append((stream.tail, len(stream.verified)))
                del kept[:-KEPT_STREAM_OFFSETS]
        made, deleted = sum(self.made.values()), sum(self.deleted[lane] for lane in self.LANES)
        self.total_made += made
        self.total_deleted += deleted
        self.total_sources_deleted += self.deleted["extra sources"]
        self.total_cascades += checked["cascade"]
        cascades = f", {checked['cascade']} by a cascade" if checked["cascade"] else ""
        doubt = "; ".join(doubt for doubt in doubts if doubt)
        return (f"made {made}, deleted {deleted}, checked {checked['read'] + checked['410'] + checked['404']} "
                f"({checked['read']} read, {checked['410']} at 410, {checked['404']} at 404{cascades})"
                + (f"; in doubt: {doubt}" if doubt else ""))

    def _boundaries(self, stream):
        """Where the producer stream's records start, and its end."""
        key = (stream.name, len(stream.verified))
        if key not in self._boundary_cache:
            records, _ = parse_records(stream.verified, self.seed)
            self._boundary_cache[key] = {0, len(stream.verified)} | {record[0] for record in records}
        return self._boundary_cache[key]

    def _tail_fork_fits(self, node, point, surviving):
        stream = node.parent
        return node.min_point <= point <= surviving and point in self._boundaries(stream)

    def _settle_tail_forks(self, cycle, violations):
        """Forks of producer streams made at the tail: the source's bytes below the fork point
        are now known (they must have survived: the fork was acknowledged)."""
        for node in list(self.nodes):
            if node.base is not None or node.state == "pending":
                continue
            stream = node.parent
            if self._tail_fork_fits(node, node.point, stream.restart_len):
                node.base = stream.verified[:node.point]
            elif node.state == "live":
                violations.add(cycle, node.name, None, None,
                               f"the fork point (byte {node.point}, acknowledged with the 201) within the source's "
                               f"{stream.restart_len} bytes that survived the restart, at a record boundary, "
                               f"at or after byte {node.min_point}",
                               "it is not")
                self._forget(node)
            else:
                node.base = b""  # deleted, and never forked: only its status is checked

    def _retry_put(self, conn, cycle, node, expected, violations):
        try:
            status, headers, answer = request(conn, "PUT", node.path, b"", node.headers)
        except (OSError, http.client.HTTPException) as error:
            raise ServerFailure(f"retry of PUT {node.name}: {type(error).__name__}: {error}")
        if status != expected:
            violations.add(cycle, node.name, None, None, f"{expected} for the retry of the PUT in flight at the kill",
                           answer_text(status, headers, answer))
        return status, headers.get("stream-next-offset")

    def _resolve(self, cycle, port, unknown, violations):
        kind, node, seq = unknown
        if node not in self.lanes[node.lane]:
            return ""
        status, data, _ = read_all(port, node.path, node.name)
        conn = http.client.HTTPConnection(HOST, port, timeout=APPEND_TIMEOUT)
        try:
            if kind == "create":
                present = status == 200
                if status not in (200, 404) or data:
                    violations.add(cycle, node.name, None, None, "an empty stream or 404 (its PUT was in flight at the kill)",
                                   f"{status}, {len(data)} bytes")
                retried, next_offset = self._retry_put(conn, cycle, node, 200 if present else 201, violations)
                if retried in (200, 201):
                    node.state, node.offsets = "live", [(next_offset, 0)]
                else:
                    self._forget(node)
                return f"create {'done' if present else 'not done'}"
            if kind == "fork":
                return self._resolve_fork(conn, cycle, node, status, data, violations)
            if kind == "append":
                record = make_record(self.seed, node.name, node.writer, FORK_EPOCH, seq)
                expected = node.content()
                present = status == 200 and data == expected + record
                if status != 200 or (not present and data != expected):
                    # The content check reports what is wrong; the retry would only add to it.
                    return "append, stream wrong"
                for attempt, want in enumerate((204 if present else 200, 204)):
                    try:
                        retried, headers, answer = request(conn, "POST", node.path, record,
                                                           append_headers(node.writer, FORK_EPOCH, seq))
                    except (OSError, http.client.HTTPException) as error:
                        raise ServerFailure(f"retry of {node.writer} seq {seq}: {type(error).__name__}: {error}")
                    if retried != want:
                        violations.add(cycle, node.name, node.writer, seq,
                                       f"{want} for the retry of the append in flight at the kill, "
                                       f"{'present' if present else 'absent'} after the restart" if attempt == 0 else
                                       f"{want} for a second retry of the append in flight at the kill",
                                       answer_text(retried, headers, answer))
                    if attempt == 0 and retried in (200, 204):
                        self._appended(node, record, headers.get("stream-next-offset"), cycle, violations)
                    elif attempt == 0:
                        break
                return f"append {'present' if present else 'absent'}"
            # A DELETE in flight at the kill: it happened (404 or 410, whichever the forks make
            # due; check_all sees to that) or not (the stream reads as before).
            if status == 200:
                return "delete not done"
            if status in (404, 410):
                self._deleted(node)
                return "delete done"
            violations.add(cycle, node.name, None, None, "200, 404 or 410 (its DELETE was in flight at the kill)",
                           f"{status} {data[:160]!r}")
            self._forget(node)
            return "delete wrong status"
        finally:
            conn.close()

    def _resolve_fork(self, conn, cycle, node, status, data, violations):
        parent = node.parent
        at_stream_tail = node.base is None
        if status == 404:
            present = False
        elif status == 200:
            present = True
            if at_stream_tail:
                if data == parent.verified[:len(data)] and self._tail_fork_fits(node, len(data), parent.restart_len):
                    node.base, node.point = data, len(data)
                else:
                    violations.add(cycle, node.name, None, None,
                                   f"the fork in flight at the kill to read the source's first bytes up to a record "
                                   f"boundary at or after byte {node.min_point} ({parent.restart_len} survived)",
                                   f"{len(data)} bytes, differing from the source from byte "
                                   f"{first_difference(data, parent.verified)}")
                    self._forget(node)
                    return "fork wrong"
            elif data != node.base:
                at = first_difference(data, node.base)
                violations.add(cycle, node.name, None, None,
                               f"the fork in flight at the kill absent or reading its source's {len(node.base)} bytes "
                               f"below the fork point",
                               f"{len(data)} bytes, differing from byte {at}: {data[at:at + 40]!r}")
                self._forget(node)
                return "fork wrong"
        else:
            violations.add(cycle, node.name, None, None, "200 or 404 (its fork PUT was in flight at the kill)",
                           f"{status} {data[:160]!r}")
            self._forget(node)
            return "fork wrong status"
        if present and at_stream_tail:
            # Sent again, the same PUT would fork at the source's tail now: a different fork.
            node.state, node.offsets = "live", []
            return "fork present"
        retried, next_offset = self._retry_put(conn, cycle, node, 200 if present else 201, violations)
        if retried not in (200, 201):
            self._forget(node)
            return f"fork {'present' if present else 'absent'}, retry refused"
        position = offset_position(next_offset)
        if at_stream_tail:
            # A fork at the tail now: after the retries of the producers, all acknowledged.
            if position != len(parent.verified):
                violations.add(cycle, node.name, None, None,
                               f"Stream-Next-Offset at the source's tail (byte {len(parent.verified)}) with the 201",
                               repr(next_offset))
                self._forget(node)
                return "fork absent, retry wrong"
            node.base, node.point = parent.verified, position
        elif position != node.point:
            violations.add(cycle, node.name, None, None,
                           f"Stream-Next-Offset at the fork point (byte {node.point}) with the retry's {retried}",
                           repr(next_offset))
        node.state, node.offsets = "live", [(next_offset, node.point)]
        return f"fork {'present' if present else 'absent, made by the retry'}"

    def check_all(self, cycle, port, violations):
        """Every stream of the model against what it must be now. Returns a Counter of what was
        checked: "read" (live, read in full), "410" (soft-deleted), "404" (removed), "cascade"
        (removed as the last fork using its data went)."""
        checked = Counter()
        conn = http.client.HTTPConnection(HOST, port, timeout=READ_TIMEOUT)
        try:
            for node in list(self.nodes):
                if node not in self.lanes[node.lane] or node.state == "pending":
                    continue
                what = "fork" if node.parent is not None else "extra source"
                if node.state == "live":
                    checked["read"] += 1
                    self._check_live(cycle, port, conn, node, what, violations)
                    continue
                if node.gone():
                    checked["404"] += 1
                    checked["cascade"] += node.soft and node.gone_checks == 0
                    status, _, _ = self._ask(conn, "HEAD", node)
                    if status != 404:
                        violations.add(cycle, node.name, None, None,
                                       f"404 for HEAD: the {what}'s DELETE was acknowledged and no fork uses its data",
                                       str(status))
                    node.gone_checks += 1
                    if node.gone_checks >= GONE_CHECKS:
                        self._forget(node)
                    continue
                checked["410"] += 1
                users = sum(1 for child in node.children if not child.gone())
                # GET after every restart; HEAD, POST, DELETE and PUT of its name once.
                node.soft_checks += 1
                asks = (("GET", 410),)
                if node.soft_checks == 1:
                    asks += (("HEAD", 410), ("POST", 410), ("DELETE", 410), ("PUT", 409))
                for method, expected in asks:
                    status, headers, answer = self._ask(conn, method, node)
                    if status != expected:
                        violations.add(cycle, node.name, None, None,
                                       f"{expected} for {method}: the {what} is deleted (acknowledged) but "
                                       f"{users} fork(s) still use its data",
                                       answer_text(status, headers, answer))
        finally:
            conn.close()
        return checked

    def _ask(self, conn, method, node):
        """One request to a deleted stream: GET, HEAD, DELETE, PUT (a plain create of its name)
        or POST (the writer's next append, which must be refused)."""
        path = node.path + ("?offset=-1" if method == "GET" else "")
        body, headers = None, {}
        if method == "PUT":
            body, headers = b"", {"Content-Type": "application/octet-stream"}
        elif method == "POST":
            body = make_record(self.seed, node.name, node.writer, FORK_EPOCH, node.seqs)
            headers = append_headers(node.writer, FORK_EPOCH, node.seqs)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise ServerFailure(f"{method} {node.name}: {type(error).__name__}: {error}")
        return response.status, {name.lower(): value for name, value in response.getheaders()}, answer

    def _check_live(self, cycle, port, conn, node, what, violations):
        expected = node.content()
        status, data, tail = read_all(port, node.path, node.name, conn=conn)
        if status != 200:
            violations.add(cycle, node.name, None, None,
                           f"the {what} ({len(expected)} bytes; its creation was acknowledged, no DELETE was)",
                           f"{status} {data[:160]!r}")
            return
        if data != expected:
            at = first_difference(data, expected)
            part = (f"below the fork point (byte {node.point}): the source's bytes" if at < node.point
                    else "in its own appends")
            violations.add(cycle, node.name, None, None,
                           f"the {what}'s {len(expected)} bytes ({node.point} of its source, {node.seqs} own appends)",
                           f"{len(data)} bytes, differing from byte {at} {part}: expected {expected[at:at + 24]!r}, "
                           f"found {data[at:at + 24]!r}")
        elif offset_position(tail) != len(expected):
            violations.add(cycle, node.name, None, None, f"Stream-Next-Offset at byte {len(expected)} at the end",
                           repr(tail))


# ---------------------------------------------------------------------------------------------


def default_binary():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    release = os.path.join(root, ".build", "release", "durable-streams")
    debug = os.path.join(root, ".build", "debug", "durable-streams")
    return release if os.path.exists(release) else debug


def parse_arguments():
    parser = argparse.ArgumentParser(
        description="kill -9 a durable Durable Streams origin at random instants and check that every "
                    "acknowledged append survives exactly once, byte-exact, in order, and every acknowledged "
                    "fork (and fork delete) as acknowledged.")
    parser.add_argument("--binary", default=None,
                        help="the durable-streams binary (default: .build/release/durable-streams if built, else debug)")
    parser.add_argument("--cycles", type=int, default=10, help="kill/restart cycles (default 10)")
    parser.add_argument("--term-every", type=int, default=3,
                        help="every Nth cycle stops the server with SIGTERM (a drain under traffic) instead of SIGKILL; "
                             "the same checks apply, and the server must exit by itself (default 3; 0: never)")
    parser.add_argument("--streams", type=int, default=4, help="streams (default 4)")
    parser.add_argument("--producers-per-stream", type=int, default=2, help="idempotent producers per stream (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for payloads and kill times (default: random, printed)")
    parser.add_argument("--data-dir", default=None,
                        help="the server's data directory (default: a fresh temporary one, removed after a clean run)")
    parser.add_argument("--fsync", default=None, help="passed through as --fsync (always, batch or never)")
    parser.add_argument("--forks", type=int, default=3,
                        help="forks made per cycle while the producers append (default 3; 0: no fork phase)")
    parser.add_argument("--min-run-ms", type=int, default=50, help="shortest time from the start of the append phase to the kill (default 50)")
    parser.add_argument("--max-run-ms", type=int, default=400, help="longest time from the start of the append phase to the kill (default 400)")
    parser.add_argument("--time-limit", type=float, default=600, help="overall bound in seconds, checked before each cycle; stop early and report (default 600)")
    parser.add_argument("--start-timeout", type=float, default=30, help="seconds a (re)start may take to answer (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory and log even after a clean run")
    parser.add_argument("--keep-going", action="store_true",
                        help="continue after a cycle with violations (the model then adopts the server's state)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every violation, not just the first 40 per cycle")
    # Self-test of the harness against the in-memory server: every restart loses everything,
    # which the checker must report.
    parser.add_argument("--no-data-dir", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cycles < 1 or args.streams < 1 or args.producers_per_stream < 1:
        parser.error("--cycles, --streams and --producers-per-stream must be at least 1")
    if args.forks < 0:
        parser.error("--forks must be at least 0")
    if not 0 <= args.min_run_ms <= args.max_run_ms:
        parser.error("need 0 <= --min-run-ms <= --max-run-ms")
    if args.no_data_dir and args.data_dir:
        parser.error("--no-data-dir and --data-dir exclude each other")
    return args


def main():
    args = parse_arguments()
    began = time.monotonic()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    binary = os.path.abspath(args.binary or default_binary())
    if not os.access(binary, os.X_OK):
        print(f"crash-harness: no executable server at {binary} (build it, or pass --binary)", file=sys.stderr)
        return 2

    own_work_dir = args.data_dir is None
    if own_work_dir:
        work_dir = tempfile.mkdtemp(prefix="crash-harness-")
        data_dir = None if args.no_data_dir else os.path.join(work_dir, "data")
        log_path = os.path.join(work_dir, "server.log")
    else:
        data_dir = os.path.abspath(args.data_dir)
        work_dir = os.path.dirname(data_dir)
        log_path = os.path.join(work_dir, f"{os.path.basename(data_dir)}-server-{time.strftime('%Y%m%d-%H%M%S')}.log")
    if data_dir is not None:
        os.makedirs(data_dir, exist_ok=True)

    # A random tag keeps names (and so producer state) apart when a --data-dir is reused.
    tag = os.urandom(3).hex()
    streams = [Stream(f"crash-{tag}-{index}", args.producers_per_stream) for index in range(args.streams)]
    forks = ForkPhase(tag, seed, args.forks, streams) if args.forks else None
    server = Server(binary, data_dir, args.fsync, log_path, args.start_timeout)
    violations = Violations()
    print(f"crash-harness: {binary} origin{' --data-dir ' + data_dir if data_dir else ' (IN MEMORY: self-test)'}"
          f"{' --fsync ' + args.fsync if args.fsync else ''}; {args.streams} streams x {args.producers_per_stream} producers; "
          f"{f'{args.forks} forks per cycle' if forks else 'no forks'}; "
          f"seed {seed}; log {log_path}", flush=True)

    completed = total_acked = 0
    stopped_because = None
    harness_error = None
    reported = 0
    try:
        server.start()
        for cycle in range(1, args.cycles + 1):
            if time.monotonic() - began > args.time_limit:
                stopped_because = f"--time-limit {args.time_limit:g} s reached"
                break
            create_streams(cycle, server, streams, violations)
            run_ms = rng.randint(args.min_run_ms, args.max_run_ms)
            graceful = args.term_every > 0 and cycle % args.term_every == 0
            acked, acked_bytes = run_phase(cycle, server, streams, seed, run_ms, violations, forks, graceful=graceful)
            total_acked += acked
            start_seconds = server.start()
            present, absent = verify(cycle, server, streams, seed, violations)
            fork_text = ""
            if forks is not None:
                fork_text = f"forks: {forks.verify(cycle, server.port, violations)}; "
            completed = cycle
            new = violations.items[reported:]
            reported = len(violations.items)
            print(f"cycle {cycle}/{args.cycles}: {'drained (SIGTERM)' if graceful else 'killed'} after {run_ms} ms; {acked} appends acknowledged, "
                  f"{acked_bytes} bytes; restart {start_seconds * 1000:.0f} ms; unknowns resolved: {present} present, "
                  f"{absent} absent; {fork_text}violations: {len(new)}", flush=True)
            shown = new if args.verbose else new[:MAX_PRINTED_VIOLATIONS]
            for item in shown:
                print(f"  VIOLATION {item}")
            if len(shown) < len(new):
                print(f"  ... and {len(new) - len(shown)} more (all in the violations file, or use -v)")
            if new:
                if not args.keep_going:
                    stopped_because = "stopped after the first cycle with violations (--keep-going continues)"
                    break
                adopt_server_state(streams, seed)
                if forks is not None:
                    forks.forget_all()
        if completed == args.cycles and not violations.items:
            final_clean_restart(completed, server, streams, violations)
            if forks is not None:
                forks.check_all(completed, server.port, violations)
            for item in violations.items[reported:]:
                print(f"  VIOLATION {item}")
            fork_totals = ""
            if forks is not None:
                fork_totals = (f" (forks too; in all {forks.total_made} forks made, {forks.total_deleted} deleted; "
                               f"{forks.total_sources_deleted} extra sources deleted, "
                               f"{forks.total_cascades} removals by a cascade)")
            print(f"final: clean shutdown and restart: "
                  f"{'streams unchanged' if len(violations) == reported else 'VIOLATIONS'}{fork_totals}", flush=True)
    except ServerFailure as failure:
        violations.add(completed + 1, None, None, None, "the restarted server to answer", str(failure))
        print(f"  VIOLATION {violations.items[-1]}")
        stopped_because = "the server stopped answering properly"
    except HarnessError as error:
        harness_error = str(error)
    except KeyboardInterrupt:
        stopped_because = "interrupted"
    finally:
        try:
            if server.running():
                # With violations, keep the data exactly as it was checked: no clean shutdown.
                if violations.items:
                    server.kill()
                else:
                    server.stop()
        except HarnessError as error:
            harness_error = harness_error or str(error)

    if harness_error:
        print(f"crash-harness: ERROR: {harness_error}", file=sys.stderr)
    if stopped_because:
        print(f"crash-harness: {stopped_because} after {completed} of {args.cycles} cycles")
    print(f"crash-harness: {completed} cycles, {total_acked} acknowledged appends, {len(violations)} violations", flush=True)

    success = not violations.items and not harness_error and completed == args.cycles
    if violations.items:
        listing = os.path.join(work_dir, f"crash-harness-violations-{tag}.txt")
        try:
            with open(listing, "w") as out:
                out.write("\n".join(violations.items) + "\n")
            print(f"crash-harness: all violations in {listing}")
        except OSError:
            pass
    if success and own_work_dir and not args.keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        if data_dir:
            print(f"crash-harness: data dir kept: {data_dir} (streams crash-{tag}-*)")
        print(f"crash-harness: server log: {log_path}")
    if success:
        return 0
    return 1 if violations.items else 2


if __name__ == "__main__":
    sys.exit(main())
