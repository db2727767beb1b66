"""Helpers for test_kafka.py: the dev broker (`spate dev kafka`) as a
subprocess whose stdin is its control channel, kcat as the independent
Kafka client, and the spate CLI's direct Kafka clients.

kcat (Debian package `kcat`) is the reference: what spate writes, kcat must
read back the same, and what kcat writes, spate must serve unchanged.
"""
import json
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import SLOW, spate_bin


class DevKafka:
    """`spate dev kafka` with its control channel. control("broker down 1")
    sends one line and returns the one-line answer."""

    def __init__(self, brokers=3, partitions=3, topics=(), port_file=None):
        cmd = [spate_bin(), "dev", "kafka", "--brokers", str(brokers), "--partitions",
               str(partitions)]
        for t in topics:
            cmd += ["--topic", t]
        if port_file:
            cmd += ["--port-file", str(port_file)]
        self.brokers = brokers
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.bootstrap = self._line(10).strip()
        assert self.bootstrap.count(":") == brokers, self.bootstrap

    def _line(self, timeout):
        """One line of stdout, within timeout seconds."""
        buf = b""
        deadline = time.monotonic() + timeout * SLOW
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not r:
                raise AssertionError("dev broker: no answer in %.1fs (got %r)" % (timeout, buf))
            c = self.proc.stdout.read(1)
            if not c:
                raise AssertionError("dev broker exited: rc=%s stderr=%s" % (
                    self.proc.poll(), self.proc.stderr.read().decode(errors="replace")))
            buf += c
        return buf.decode()

    def control(self, line, timeout=10):
        self.proc.stdin.write((line + "\n").encode())
        return self._line(timeout).rstrip("\n")

    def ok(self, line):
        answer = self.control(line)
        assert answer == "ok", "%s -> %s" % (line, answer)

    def topic(self, name, partitions=3):
        self.ok("topic %s %d" % (name, partitions))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("dev broker did not exit on SIGTERM")
        err = self.proc.stderr.read().decode(errors="replace")
        for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in err, err[-4000:]
        assert rc == 0, "dev broker exited %d: %s" % (rc, err[-2000:])


def need_kcat():
    if not shutil.which("kcat"):
        pytest.fail("kcat is not installed (Debian package kcat; scripts/install-deps.sh test)")


def kcat_produce(bootstrap, topic, lines, key_sep=":", headers=(), partition=None):
    """kcat -P: each line KEY<sep>VALUE; headers (k, v) go on every record;
    all into one partition when given."""
    cmd = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", key_sep, "-X", "linger.ms=1",
           "-X", "partitioner=murmur2_random"]
    if partition is not None:
        cmd += ["-p", str(partition)]
    for k, v in headers:
        cmd += ["-H", "%s=%s" % (k, v)]
    p = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=30 * SLOW)
    assert p.returncode == 0, p.stderr


def kcat_read(bootstrap, topic, expect=None, timeout=20):
    """Every record of topic as kcat -C -J sees it (dicts with partition,
    offset, key, payload, headers), read until the end of every partition.
    With expect, rereads until that many records are there."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        p = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-J", "-e", "-q",
                            "-X", "fetch.wait.max.ms=10"],
                           capture_output=True, text=True, timeout=timeout * SLOW)
        assert p.returncode == 0, p.stderr
        recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        if expect is None or len(recs) >= expect or time.monotonic() > deadline:
            return sorted(recs, key=lambda r: (r["partition"], r["offset"]))
        time.sleep(0.1)


def cli(*args, stdin=None, timeout=60):
    """Runs `spate <args>` and returns the CompletedProcess (text)."""
    p = subprocess.run([spate_bin()] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=timeout * SLOW)
    for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in p.stderr, p.stderr[-4000:]
    return p


def envelope_value(payload):
    """What spate's envelope carries for a Kafka payload: the JSON value
    when the payload is JSON, else the payload as a string."""
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def serve_supports_kafka():
    p = subprocess.run([spate_bin(), "serve", "--help"], capture_output=True, text=True,
                       timeout=10)
    return "--kafka" in p.stdout + p.stderr
