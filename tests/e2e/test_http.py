"""HTTP/1.1 behaviour of the real binary with its default settings:
keep-alive, pipelining in order, HEAD, 404/405, request ids, standard
headers, 100-continue, Host and version rules, HTTP/1.0, the built-in
endpoints and the Prometheus metrics."""
import email.utils
import re
import time

import httpx
import pytest

from spate_http import Conn, get, metrics, parse_metrics, request


def test_root_health_ready(shared_spate):
    p = shared_spate.port
    assert request(p, get("/")).json() == {"message": "Hello World"}
    assert request(p, get("/healthz")).json() == {"status": "ok"}
    assert request(p, get("/readyz")).json() == {"status": "ready"}
    assert request(p, get("/noop")).status == 200


def test_httpx_client_keepalive(shared_spate):
    """A real client library, reusing one connection."""
    with httpx.Client(base_url="http://127.0.0.1:%d" % shared_spate.port) as c:
        for _ in range(5):
            r = c.get("/healthz")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = c.post("/", content=b"x" * 100)
        assert r.status_code == 405


def test_keepalive_many_requests_one_connection(shared_spate):
    p = shared_spate.port
    before = metrics(p)["spate_http_connections_total"]
    with Conn(p) as c:
        for path in ["/", "/healthz", "/readyz", "/noop", "/nope", "/"] * 5:
            c.send(get(path))
            r = c.read_response()
            assert r.status == (404 if path == "/nope" else 200)
            assert r.header("connection") is None  # HTTP/1.1 default: stays open
        assert not c.wait_closed(timeout=0.2)
    after = metrics(p)["spate_http_connections_total"]
    # the keep-alive connection plus the second scrape, nothing else
    assert after - before == 2


def test_100_pipelined_requests_answered_in_order(shared_spate):
    """100 requests in one write (more than http.max_pipelined=32 in flight,
    so reading pauses and resumes), mixing routes, a 404 and HEAD."""
    paths = ["/", "/healthz", "/nope", "/readyz", "/noop"]
    reqs, expect = [], []
    for i in range(100):
        path = paths[i % len(paths)]
        method = "HEAD" if i % 7 == 3 else "GET"
        rid = "pipe-%03d" % i
        reqs.append(("%s %s HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n" % (method, path, rid)).encode())
        expect.append((method, 404 if path == "/nope" else 200, rid))
    with Conn(shared_spate.port) as c:
        c.send(b"".join(reqs))
        for method, status, rid in expect:
            r = c.read_response(method)
            assert (r.status, r.header("x-request-id")) == (status, rid)
            if method == "HEAD":
                assert r.body == b""
        # the connection is still usable after the batch
        c.send(get("/healthz"))
        assert c.read_response().status == 200


def test_pipelined_byte_by_byte(shared_spate):
    """Requests dribbled one byte per write still parse and answer in order."""
    raw = b"".join(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: b%d\r\n\r\n" % i for i in range(3))
    with Conn(shared_spate.port) as c:
        for i in range(len(raw)):
            c.send(raw[i:i + 1])
        for i in range(3):
            assert c.read_response().header("x-request-id") == "b%d" % i


def test_head(shared_spate):
    with Conn(shared_spate.port) as c:
        c.send(get("/"))
        g = c.read_response()
        c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read_response("HEAD")
        assert h.status == 200
        assert h.header("content-length") == str(len(g.body))
        assert h.header("content-type") == "application/json"
        # no body bytes follow a HEAD response: the next response parses cleanly
        c.send(get("/healthz"))
        assert c.read_response().json() == {"status": "ok"}


def test_404_json(shared_spate):
    r = request(shared_spate.port, get("/does/not/exist?x=1"))
    assert r.status == 404
    assert r.header("content-type") == "application/json"
    assert r.json() == {"detail": "Not Found"}
    r = request(shared_spate.port, get("/healthz/"))  # trailing slash is another path
    assert r.status == 404


def test_405_with_allow(shared_spate):
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
        raw = ("%s /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" % method).encode()
        r = request(shared_spate.port, raw)
        assert r.status == 405, method
        assert r.header("allow") == "GET, HEAD"
        assert r.json() == {"detail": "Method Not Allowed"}


def test_request_id_echo_and_generation(shared_spate):
    p = shared_spate.port
    r = request(p, b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: my-id.123_ABC\r\n\r\n")
    assert r.header("x-request-id") == "my-id.123_ABC"
    ids = set()
    with Conn(p) as c:
        for _ in range(20):
            c.send(get("/"))
            rid = c.read_response().header("x-request-id")
            assert re.fullmatch(r"[0-9a-f]{16}", rid), rid
            ids.add(rid)
    assert len(ids) == 20
    # an id that is too long or has spaces is replaced, never echoed
    for bad in ["a" * 129, "has space", ""]:
        r = request(p, ("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n" % bad).encode())
        assert re.fullmatch(r"[0-9a-f]{16}", r.header("x-request-id")), bad
    # errors carry the id too
    r = request(p, b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: err-1\r\n\r\n")
    assert r.header("x-request-id") == "err-1"


def test_standard_headers(shared_spate):
    r = request(shared_spate.port, get("/"))
    assert r.header("server") == "spate"
    assert int(r.header("content-length")) == len(r.body)
    date = email.utils.parsedate_to_datetime(r.header("date"))
    assert date.tzinfo is not None and abs(date.timestamp() - time.time()) < 5
    assert r.raw_head.startswith(b"HTTP/1.1 200 OK\r\n")
    # each header exactly once
    for name in ["date", "server", "content-length", "x-request-id"]:
        assert len(r.header_all(name)) == 1, name


def test_expect_100_continue(shared_spate):
    with Conn(shared_spate.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        r = c.read_response()
        assert r.status == 100 and r.reason == "Continue"
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.json() == {"message": "Hello World"}
        # without a body there is no interim response
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
        assert c.read_response().status == 200


def test_http11_without_host_is_400(shared_spate):
    with Conn(shared_spate.port) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        r = c.read_response()
        assert r.status == 400 and "Host" in r.json()["detail"]
        assert c.wait_closed()


def test_unknown_versions_are_505(shared_spate):
    for v in ["HTTP/1.2", "HTTP/2.0", "HTTP/3.1"]:
        with Conn(shared_spate.port) as c:
            c.send(("GET / %s\r\nHost: x\r\n\r\n" % v).encode())
            r = c.read_response()
            assert r.status == 505, v
            assert r.header("connection") == "close"
            assert c.wait_closed()


def test_http10_closes_unless_keepalive(shared_spate):
    with Conn(shared_spate.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")  # no Host needed in 1.0
        r = c.read_response()
        assert r.status == 200 and r.header("connection") == "close"
        assert c.wait_closed()
    with Conn(shared_spate.port) as c:
        for _ in range(3):
            c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.header("connection").lower() == "keep-alive"
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert c.read_response().header("connection") == "close"
        assert c.wait_closed()


def test_connection_close_request(shared_spate):
    with Conn(shared_spate.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("connection") == "close"
        assert c.wait_closed()


def test_chunked_request_body(shared_spate):
    """A well-formed chunked body is read completely, then routed (GET / takes it)."""
    with Conn(shared_spate.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        assert c.read_response().status == 200
        c.send(get("/healthz"))
        assert c.read_response().status == 200


def test_metrics_prometheus(shared_spate):
    p = shared_spate.port
    r = request(p, get("/metrics"))
    assert r.header("content-type").startswith("text/plain; version=0.0.4")
    m0 = parse_metrics(r.body.decode())
    with Conn(p) as c:
        for _ in range(7):
            c.send(get("/healthz"))
            c.read_response()
        c.send(get("/missing"))
        c.read_response()
        c.send(b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        c.read_response()
    text = request(p, get("/metrics")).body.decode()
    m1 = parse_metrics(text)

    def d(key):
        return m1.get(key, 0) - m0.get(key, 0)

    assert d('spate_http_requests_total{route="/healthz",method="GET",status="200"}') == 7
    assert d('spate_http_requests_total{route="unmatched",method="GET",status="404"}') == 1
    assert d('spate_http_requests_total{route="unmatched",method="DELETE",status="405"}') == 1
    assert d('spate_http_requests_total{route="/metrics",method="GET",status="200"}') == 1
    # latency histogram: cumulative buckets, +Inf == count
    assert d('spate_http_request_duration_seconds_count{route="/healthz"}') == 7
    buckets = [(float(le), v) for (le, v) in re.findall(
        r'spate_http_request_duration_seconds_bucket\{route="/healthz",le="([0-9.e+-]+)"\} (\d+)', text)]
    assert len(buckets) >= 10
    counts = [v for _, v in buckets]
    assert counts == sorted(counts, key=int)
    assert m1['spate_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}'] == \
        m1['spate_http_request_duration_seconds_count{route="/healthz"}']
    assert m1['spate_http_request_duration_seconds_sum{route="/healthz"}'] > 0
    # connections and bytes
    assert m1["spate_http_connections_open"] >= 1
    assert d("spate_http_connections_total") == 2
    assert d("spate_http_received_bytes_total") >= 9 * len(get("/healthz"))
    assert d("spate_http_sent_bytes_total") > 9 * 100
    # loop lag, one gauge per I/O thread (--threads 2)
    for loop in ("0", "1"):
        assert 0 <= m1['spate_loop_lag_seconds{loop="%s"}' % loop] < 5
        assert 'spate_loop_lag_max_seconds{loop="%s"}' % loop in m1
    for name in ["spate_http_parse_errors_total", "spate_http_timeouts_total",
                 "spate_http_connections_rejected_total", "spate_http_accept_errors_total",
                 "process_cpu_seconds_total", "process_resident_memory_bytes"]:
        assert name in m1, name
    for line in text.splitlines():  # exposition format: comments or `name{labels} value`
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or \
            re.fullmatch(r'[a-z_]+(\{[^}]*\})? [0-9.e+-]+', line), line


def test_access_log(spate_factory):
    srv = spate_factory(args=["--access-log"])
    request(srv.port, b"GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: acc-1\r\n\r\n")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [l for l in srv.log_lines() if l.get("msg") == "request"]
        if lines:
            break
        time.sleep(0.02)
    (line,) = lines
    assert line["method"] == "GET" and line["path"] == "/healthz" and line["status"] == 200
    assert line["request_id"] == "acc-1" and line["route"] == "/healthz"
    assert line["level"] == "info" and "ms" in line


def test_header_value_trailing_whitespace_ignored(shared_spate):
    r = request(shared_spate.port, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue \r\n"
                b"X-Request-Id: abc \r\n\r\n")
    assert r.status == 200 and r.header("x-request-id") == "abc"


def test_chunked_trailers_keep_request_intact(spate_factory):
    srv = spate_factory()
    with Conn(srv.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: trailer-1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: " + b"a" * 6000 + b"\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("x-request-id") == "trailer-1"
        c.send(get("/healthz"))
        assert c.read_response().status == 200
    srv.stop()  # inside the test: an ASan report here is this test's failure
