"""Helpers for test_api.py: a REST client, Kafka's murmur2 partitioner, and
a server fixture that can restart on the same data directory.

conftest.py's `spate_factory` gives every server a fresh data directory;
the persistence test needs to stop a server and start another on the same
one, so `restartable` below builds on conftest's Server class instead (same
start-up wait, same clean-exit and clean-stderr checks at stop).
"""
import json
import os
import subprocess
import time

import httpx
import pytest

from conftest import SLOW, Server, spate_bin

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SWAGGER_DIR = os.path.join(REPO, "web", "node_modules", "swagger-ui-dist")
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


# ---- Kafka's default partitioner -------------------------------------------

def wait_for(fn, what, timeout=3.0):
    """Polls fn() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.01)


def _i32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def murmur2(data):
    """org.apache.kafka.common.utils.Utils.murmur2, with Java's 32-bit
    signed wrap-around and `>>>` (logical shift) spelled out."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = data[4 * i] | data[4 * i + 1] << 8 | data[4 * i + 2] << 16 | data[4 * i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail, rest = length & ~3, length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return _i32(h)


def kafka_partition(key, partitions):
    """BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % n."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# ---- a small REST client ----------------------------------------------------

class Api:
    """httpx over one keep-alive connection, with the few calls the tests
    repeat. Methods that assert take the expected status."""

    def __init__(self, port):
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.c = httpx.Client(base_url=self.url, timeout=10.0 * SLOW)

    def close(self):
        self.c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get(self, path, **kw):
        return self.c.get(path, **kw)

    def delete(self, path, **kw):
        return self.c.delete(path, **kw)

    def post(self, path, body=None, headers=None, params=None):
        """POSTs bytes/str as they are, or a Python value as JSON."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":"))
        h = dict(JSON)
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        return self.c.post(path, content=body, headers=h, params=params)

    def create_topic(self, name, partitions=1, schema=None, status=201):
        body = {"name": name, "partitions": partitions}
        if schema is not None:
            body["schema"] = schema
        r = self.post("/v1/topics", body)
        assert r.status_code == status, r.text
        return r.json()

    def produce(self, topic, body, status=200, **kw):
        r = self.post("/v1/topics/%s/records" % topic, body, **kw)
        assert r.status_code == status, r.text
        return r.json()

    def describe(self, topic):
        r = self.get("/v1/topics/%s" % topic)
        assert r.status_code == 200, r.text
        return r.json()

    def end_offsets(self, topic):
        return [p["end_offset"] for p in self.describe(topic)["partition_info"]]

    def history(self, topic, status=200, **params):
        r = self.get("/v1/topics/%s/records" % topic, params=params)
        assert r.status_code == status, r.text
        return r.json()

    def history_all(self, topic, partition=0, limit=1000):
        """Every record of a partition, following the `next` cursor."""
        out, frm = [], "earliest"
        while True:
            page = self.history(topic, partition=partition, limit=limit, **{"from": frm})
            if not page["records"]:
                return out
            out += page["records"]
            frm = page["next"]


# ---- servers -----------------------------------------------------------------

@pytest.fixture
def restartable(tmp_path):
    """start(data_dir=None, *sets) -> Server. A data_dir used before (after
    that server was stopped) restarts on the same data. Every server still
    running is stopped at teardown, which asserts exit 0 and a clean
    stderr, as conftest's fixtures do."""
    servers = []

    def start(data_dir=None, *sets, threads=2):
        d = data_dir or str(tmp_path / ("data%d" % len(servers)))
        cmd = [spate_bin(), "serve", "--port", "0", "--threads", str(threads), "--data-dir", d]
        for s in sets:
            cmd += ["--set", s]
        srv = Server(cmd, d)
        servers.append(srv)
        return srv

    yield start
    errors = []
    for s in servers:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def raw_request(port, method, target, body=b"", headers=None):
    """Sends exactly `target` (no client-side normalization or escaping)
    on a new connection; returns spate_http's Response."""
    from spate_http import Conn
    h = {"Host": "x", "Content-Length": str(len(body))}
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, target, "".join("%s: %s\r\n" % kv for kv in h.items()))
    with Conn(port, timeout=10 * SLOW) as c:
        c.send(head.encode("latin-1") + body)
        return c.read_response(method)


def config_has_key(key):
    """True when `spate serve --print-config` knows `key` (a dotted key).
    False when SPATE_BIN is unset or cannot run (the tests skip or fail
    on their own then); never raises, since it runs at collection."""
    b = os.environ.get("SPATE_BIN")
    if not b:
        return False
    try:
        out = subprocess.run([b, "serve", "--print-config"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False  # no binary: the test itself reports that
    section, _, leaf = key.rpartition(".")
    cur = None
    for line in out.splitlines():
        if line and not line[0].isspace():
            cur = line.split(":")[0].strip()
        elif cur == section and line.strip().split(":")[0] == leaf:
            return True
    return False


def run_cli(*args, stdin=None, timeout=60):
    """Runs `spate <args>`; returns CompletedProcess (text). Asserts that
    the tool's stderr holds no sanitizer report."""
    p = subprocess.run([spate_bin()] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=timeout * SLOW)
    for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in p.stderr, p.stderr[-4000:]
    return p
