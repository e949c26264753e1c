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

It also checks that everything verified after an earlier restart is still there, unchanged, at
the start of the stream (offsets are stable), that no bytes other than whole records exist,
and, after the last cycle, that a clean shutdown (SIGTERM) and restart changes nothing.

Every record is self-describing, `#<stream>|<producer>|<epoch>|<seq>|<length>|<payload>\\n`,
with a payload of 1..2000 bytes whose length and content derive from --seed and the tuple, so
any record found can be regenerated and compared byte for byte: a torn write, a record spliced
into another, or garbage shows up as bytes that match no record. Payloads never contain `#`,
so the checker resynchronises on the next `#` after a bad patch and reports every one.

Run it from the repository root once the server is built:

    loadtest/crash-harness.py                              # 10 cycles, 4 streams x 2 producers
    loadtest/crash-harness.py --cycles 200 --fsync batch --seed 7 --time-limit 1800
    loadtest/crash-harness.py --binary .build/debug/durable-streams --keep -v

One line is printed per cycle and a summary line at the end:
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


def read_stream(port, stream, start="-1"):
    """The stream's bytes from `start` to its end and the tail offset, or (None, None) on 404."""
    conn = http.client.HTTPConnection(HOST, port, timeout=READ_TIMEOUT)
    deadline = time.monotonic() + READ_STREAM_SECONDS
    chunks, offset = [], start
    try:
        for _ in range(MAX_READ_REQUESTS):
            try:
                status, headers, body = request(conn, "GET", f"{stream.path}?offset={offset}")
            except (OSError, http.client.HTTPException) as error:
                raise ServerFailure(f"GET {stream.name}?offset={offset}: {type(error).__name__}: {error}")
            if status == 404 and offset == start:
                return None, None
            if status != 200:
                raise ServerFailure(f"GET {stream.name}?offset={offset} answered {answer_text(status, headers, body)}")
            chunks.append(body)
            next_offset = headers.get("stream-next-offset")
            if not next_offset:
                raise ServerFailure(f"GET {stream.name}?offset={offset} answered 200 without Stream-Next-Offset")
            if headers.get("stream-up-to-date", "").lower() == "true":
                return b"".join(chunks), next_offset
            if not body and next_offset == offset:
                raise ServerFailure(f"GET {stream.name}?offset={offset}: no data, same offset, and not up to date")
            offset = next_offset
            if time.monotonic() > deadline:
                break
    finally:
        conn.close()
    raise ServerFailure(f"reading {stream.name} did not reach Stream-Up-To-Date within "
                        f"{MAX_READ_REQUESTS} requests / {READ_STREAM_SECONDS:.0f} s")


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


def run_phase(cycle, server, streams, seed, run_ms, violations):
    producers = [producer for stream in streams for producer in stream.producers]
    for producer in producers:
        producer.cycle_acked = producer.cycle_bytes = 0
    killed = threading.Event()
    # Producers also stop on their own should the kill never come.
    deadline = time.monotonic() + run_ms / 1000 + 15
    threads = [threading.Thread(target=produce, args=(producer, server.port, seed, cycle, killed, deadline, violations),
                                daemon=True, name=producer.id) for producer in producers]
    for thread in threads:
        thread.start()
    time.sleep(run_ms / 1000)
    # Set before the signal: any failure a producer sees after this may be the kill's doing.
    killed.set()
    died_on_its_own = server.kill()
    if died_on_its_own is not None:
        violations.add(cycle, None, None, None, "the server running until the kill",
                       f"it had exited with status {died_on_its_own}; see {server.log_path}")
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + APPEND_TIMEOUT)
    if any(thread.is_alive() for thread in threads):
        raise HarnessError("producer threads did not stop after the kill")
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


def default_binary():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    release = os.path.join(root, ".build", "release", "durable-streams")
    debug = os.path.join(root, ".build", "debug", "durable-streams")
    return release if os.path.exists(release) else debug


def parse_arguments():
    parser = argparse.ArgumentParser(
        description="kill -9 a durable Durable Streams origin at random instants and check that every "
                    "acknowledged append survives exactly once, byte-exact, in order.")
    parser.add_argument("--binary", default=None,
                        help="the durable-streams binary (default: .build/release/durable-streams if built, else debug)")
    parser.add_argument("--cycles", type=int, default=10, help="kill/restart cycles (default 10)")
    parser.add_argument("--streams", type=int, default=4, help="streams (default 4)")
    parser.add_argument("--producers-per-stream", type=int, default=2, help="idempotent producers per stream (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for payloads and kill times (default: random, printed)")
    parser.add_argument("--data-dir", default=None,
                        help="the server's data directory (default: a fresh temporary one, removed after a clean run)")
    parser.add_argument("--fsync", default=None, help="passed through as --fsync (always, batch or never)")
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
    server = Server(binary, data_dir, args.fsync, log_path, args.start_timeout)
    violations = Violations()
    print(f"crash-harness: {binary} origin{' --data-dir ' + data_dir if data_dir else ' (IN MEMORY: self-test)'}"
          f"{' --fsync ' + args.fsync if args.fsync else ''}; {args.streams} streams x {args.producers_per_stream} producers; "
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
            acked, acked_bytes = run_phase(cycle, server, streams, seed, run_ms, violations)
            total_acked += acked
            start_seconds = server.start()
            present, absent = verify(cycle, server, streams, seed, violations)
            completed = cycle
            new = violations.items[reported:]
            reported = len(violations.items)
            print(f"cycle {cycle}/{args.cycles}: killed after {run_ms} ms; {acked} appends acknowledged, "
                  f"{acked_bytes} bytes; restart {start_seconds * 1000:.0f} ms; unknowns resolved: {present} present, "
                  f"{absent} absent; violations: {len(new)}", flush=True)
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
        if completed == args.cycles and not violations.items:
            final_clean_restart(completed, server, streams, violations)
            for item in violations.items[reported:]:
                print(f"  VIOLATION {item}")
            print(f"final: clean shutdown and restart: "
                  f"{'streams unchanged' if len(violations) == reported else 'VIOLATIONS'}", flush=True)
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
