"""Graceful shutdown on SIGTERM/SIGINT: stop accepting, finish in-flight
requests, close idle keep-alive connections, bounded by
server.shutdown_timeout, exit 0 with no leaked handle (checked by
Server.stop)."""
import signal
import time

from conftest import SLOW
from spate_http import Conn, get, is_refused


def test_inflight_request_completes_and_idle_closes(spate_factory):
    srv = spate_factory("server.shutdown_timeout=5s")
    busy = Conn(srv.port)
    idle = Conn(srv.port)
    fresh = Conn(srv.port)
    idle.send(get("/healthz"))
    assert idle.read_response().status == 200  # now idle keep-alive
    busy.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: inflight\r\nContent-Length: 10\r\n\r\nhello")
    time.sleep(0.1)  # the head is parsed, the body is still arriving
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    # idle and never-used connections are closed promptly
    assert idle.wait_closed(timeout=2 * SLOW)
    assert fresh.wait_closed(timeout=2 * SLOW)
    # the listener is gone: new connections are refused
    deadline = time.monotonic() + 2 * SLOW
    while not is_refused(srv.port):
        assert time.monotonic() < deadline, "still accepting after SIGTERM"
        time.sleep(0.02)
    assert srv.proc.poll() is None, "exited with a request in flight"
    time.sleep(0.3)
    busy.send(b"world")
    r = busy.read_response()
    assert r.status == 200 and r.header("x-request-id") == "inflight"
    assert r.header("connection") == "close"
    assert busy.wait_closed(timeout=2 * SLOW)
    busy.close()  # else the server lingers up to 2 s for our FIN
    assert srv.wait_exit(5 * SLOW) == 0
    assert time.monotonic() - t0 < 3 * SLOW  # not the 5 s bound: it finished early
    msgs = [l["msg"] for l in srv.log_lines()]
    assert "shutting down" in msgs and msgs[-1] == "stopped"
    for c in (busy, idle, fresh):
        c.close()
    srv.stop()


def test_pipelined_batch_with_last_in_flight(spate_factory):
    """Ten pipelined requests answered, the eleventh's body still arriving
    at SIGTERM: it is answered too (with Connection: close), in order."""
    srv = spate_factory()
    with Conn(srv.port) as c:
        batch = b"".join(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: p%d\r\n\r\n" % i for i in range(10))
        c.send(batch + b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: p10\r\nContent-Length: 4\r\n\r\nab")
        for i in range(10):
            assert c.read_response().header("x-request-id") == "p%d" % i
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        c.send(b"cd")
        r = c.read_response()
        assert r.status == 200 and r.header("x-request-id") == "p10"
        assert r.header("connection") == "close"
        assert c.wait_closed()
    assert srv.wait_exit(5 * SLOW) == 0
    srv.stop()


def test_readyz_reports_draining(spate_factory):
    """A request whose head completes after SIGTERM sees /readyz say 503."""
    srv = spate_factory()
    with Conn(srv.port) as c:
        c.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")  # mid-request: kept while draining
        time.sleep(0.1)
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        c.send(b"\r\n")
        r = c.read_response()
        assert r.status == 503 and r.json()["status"] == "draining"
        assert c.wait_closed()
    srv.stop()


def test_shutdown_timeout_bounds_the_drain(spate_factory):
    """A client that never finishes its body is cut off at
    server.shutdown_timeout, and the process still exits 0."""
    srv = spate_factory("server.shutdown_timeout=500ms", "http.body_timeout=30s")
    with Conn(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        time.sleep(0.1)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert srv.wait_exit(5 * SLOW) == 0
        assert 0.4 <= time.monotonic() - t0 < 2 * SLOW
        c.read_until_close(timeout=2)
    assert any(l["msg"].startswith("shutdown timeout") for l in srv.log_lines())
    srv.stop()


def test_sigint_is_graceful_too(spate_factory):
    srv = spate_factory()
    with Conn(srv.port) as c:
        c.send(get("/"))
        assert c.read_response().status == 200
    srv.signal(signal.SIGINT)
    assert srv.wait_exit(5 * SLOW) == 0
    assert any(l.get("signal") == "SIGINT" for l in srv.log_lines())
    srv.stop()


def test_shutdown_with_many_idle_connections(spate_factory):
    srv = spate_factory()
    conns = [Conn(srv.port) for _ in range(50)]
    for c in conns[:25]:
        c.send(get("/healthz"))
        assert c.read_response().status == 200
    t0 = time.monotonic()
    srv.stop(timeout=5 * SLOW)  # exit 0, no leaked handle, clean stderr
    assert time.monotonic() - t0 < 2 * SLOW
    for c in conns:
        assert c.wait_closed(timeout=1)
        c.close()
