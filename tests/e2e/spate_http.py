"""Raw-socket HTTP/1.1 client for spate's e2e tests.

Protocol-level tests need to send exactly the bytes they mean (smuggling
cases, bare LF, NUL bytes, dribbled headers) and to see exactly what comes
back, including whether the server closed the connection afterwards, so
this speaks HTTP by hand instead of through a client library.
"""
import errno
import re
import socket
import time

DEFAULT_TIMEOUT = 5.0


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Closed(Exception):
    """The server closed the connection before a full response arrived."""


class Conn:
    """One client connection with a read buffer, so pipelined responses can
    be read one at a time."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise Closed("connection closed; buffered %r" % self.buf[:200])
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed; buffered %r" % self.buf[:200])
        self.buf += chunk

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method="GET"):
        """Reads one response (a 1xx interim response counts as one)."""
        head = self.read_head()
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.1 (\d{3}) (.*)$", lines[0])
        assert m, "bad status line %r" % lines[0]
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name and name == name.strip(), "bad header line %r" % line
            headers.append((name, value.strip()))
        resp = Response(status, m.group(2), headers, b"", head)
        if status < 200 or status in (204, 304) or method == "HEAD":
            return resp
        cl = resp.header("content-length")
        assert cl is not None, "response without Content-Length: %r" % head
        resp.body = self.read_exact(int(cl))
        return resp

    def wait_closed(self, timeout=3.0):
        """True when the server closes the connection (FIN or RST) within
        timeout with no further bytes; raises if it sends more bytes."""
        assert self.buf == b"", "unexpected bytes after the response: %r" % self.buf[:200]
        if self.eof:
            return True
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return True
            raise AssertionError("unexpected bytes instead of close: %r" % chunk[:200])

    def read_until_close(self, timeout=5.0):
        """Everything the server sends until it closes."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close; got %r" % self.buf[:300])
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out


def get(path, host="x"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode()


def request(port, raw, method="GET", timeout=DEFAULT_TIMEOUT):
    """Sends raw bytes on a new connection and reads one response."""
    with Conn(port, timeout=timeout) as c:
        c.send(raw)
        return c.read_response(method)


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def metrics(port):
    r = request(port, get("/metrics"))
    assert r.status == 200, r
    return parse_metrics(r.body.decode())


def is_refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError as e:
        return e.errno in (errno.ECONNREFUSED,)
