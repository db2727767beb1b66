"""Helpers for test_sse.py: a raw-socket Server-Sent Events client, a
byte-counting fan-out reader for many subscribers at once, and small REST
and process helpers.

The SSE client speaks HTTP/1.1 by hand so a test controls exactly what the
server sees: the Last-Event-ID header, a tiny receive buffer, a client that
simply stops reading.
"""
import json
import os
import select
import socket
import threading
import time

from conftest import SLOW, Server, spate_bin
from spate_http import Conn


# ---- REST ---------------------------------------------------------------------

class Rest:
    """A keep-alive REST client over one raw connection that sends each
    request in one write with TCP_NODELAY (a client library's separate
    head and body writes meet Nagle and delayed ACKs: +40 ms a request)."""

    def __init__(self, srv):
        self.port = srv.port
        self.conn = Conn(srv.port, timeout=30 * SLOW)

    def close(self):
        self.conn.close()

    def request(self, method, path, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
               "Content-Length: %d\r\n\r\n" % (method, path, len(data))
        self.conn.send(head.encode() + data)
        r = self.conn.read_response(method)
        return r.status, (json.loads(r.body) if r.body and r.header("content-type", "").startswith(
            "application/json") else r.body.decode())

    def create_topic(self, name, **cfg):
        status, body = self.request("POST", "/v1/topics", dict(name=name, **cfg))
        assert status == 201, body
        return body

    def topic(self, name):
        status, body = self.request("GET", "/v1/topics/" + name)
        assert status == 200, body
        return body

    def produce(self, topic, values, key=None):
        """POSTs one value or a list (one append); returns the records' ids."""
        path = "/v1/topics/%s/records" % topic + ("?key=" + key if key else "")
        status, body = self.request("POST", path, values)
        assert status == 200, body
        return [x["id"] for x in body["records"]]

    def metric(self, name):
        status, text = self.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("metric %s not found" % name)


def restartable(data_dir, *sets, threads=2, env=None):
    """Starts spate on a given data directory (conftest's factory always
    makes a new one); stop it with .stop() (clean exit asserted)."""
    cmd = [spate_bin(), "serve", "--port", "0", "--threads", str(threads), "--data-dir", str(data_dir)]
    for s in sets:
        cmd += ["--set", s]
    return Server(cmd, str(data_dir), env=env)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- one SSE stream -----------------------------------------------------------

class Event:
    def __init__(self, event, id, data):
        self.event = event or "message"
        self.id = id
        self.data = data

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "<Event %s id=%r %r>" % (self.event, self.id, self.data[:120])


class SSE:
    """One stream over a raw socket. `events()` parses the wire format as
    a browser's EventSource does (fields, comments, blank-line dispatch) and
    keeps last_id, retry and the comments seen."""

    def __init__(self, port, path, headers=None, rcvbuf=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(("127.0.0.1", port))
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Accept: text/event-stream"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        self.eof = False
        self.last_id = None
        self.retry = None
        self.comments = []
        self.status, self.headers = None, {}

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no SSE data in time; buffered %r" % self.buf[-300:])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def head(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise AssertionError("closed before the head: %r" % self.buf)
            self._fill(deadline)
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        return self.status

    def next_event(self, timeout=10.0):
        """The next dispatched event, or None at EOF."""
        if self.status is None:
            self.head(timeout)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            while b"\n\n" not in self.buf:
                if self.eof:
                    return None
                self._fill(deadline)
            block, self.buf = self.buf.split(b"\n\n", 1)
            ev = self._parse(block.decode())
            if ev is not None:
                return ev

    def _parse(self, block):
        event, data, id_ = None, [], None
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                id_ = self.last_id = value
            elif name == "retry":
                self.retry = int(value)
        if not data:
            return None  # EventSource dispatches nothing without data
        return Event(event, id_, "\n".join(data))

    def events(self, n, timeout=10.0):
        out = []
        for _ in range(n):
            ev = self.next_event(timeout)
            assert ev is not None, "stream ended after %d of %d events" % (len(out), n)
            out.append(ev)
        return out

    def rest(self, timeout=10.0):
        """Every event until the server closes the stream."""
        out = []
        while True:
            ev = self.next_event(timeout)
            if ev is None:
                return out
            out.append(ev)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def offsets(events):
    return [e.json()["offset"] for e in events if e.event == "message"]


# ---- many subscribers at once -------------------------------------------------

class FanReader:
    """Reads N streams on one thread with select(), counting record events
    (`\\nid: ` lines) and remembering when each stream saw a given marker
    string. Counting works across reads: the pattern cannot fit entirely in
    the carried tail, so no match is counted twice."""

    PATTERN = b"\nid: "

    def __init__(self, port, path, n):
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
            s.setblocking(False)
            self.socks.append(s)
        self.count = [0] * n
        self.carry = [b""] * n
        self.closed = [False] * n
        self.marker = None
        self.marker_seen = [None] * n
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def watch(self, marker):
        with self.lock:
            self.marker = marker.encode()
            self.marker_seen = [None] * len(self.socks)

    def _chunk(self, i, data):
        buf = self.carry[i] + data
        self.count[i] += buf.count(self.PATTERN)
        keep = max(len(self.PATTERN) - 1, len(self.marker or b"") - 1)
        with self.lock:
            if self.marker and self.marker_seen[i] is None and self.marker in buf:
                self.marker_seen[i] = time.monotonic()
        self.carry[i] = buf[-keep:] if keep else b""

    def _run(self):
        index = {s.fileno(): i for i, s in enumerate(self.socks)}
        while not self.stop:
            live = [s for i, s in enumerate(self.socks) if not self.closed[i]]
            if not live:
                return
            ready, _, _ = select.select(live, [], [], 0.05)
            for s in ready:
                i = index[s.fileno()]
                try:
                    data = s.recv(262144)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.closed[i] = True
                    continue
                self._chunk(i, data)

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if pred(self):
                return True
            time.sleep(0.01)
        return pred(self)

    def close(self):
        self.stop = True
        self.thread.join()
        for s in self.socks:
            s.close()
