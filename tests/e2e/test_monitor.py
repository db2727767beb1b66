"""The server watching itself: a handler that blocks its event loop past
monitor.slow_handler is logged with its route (aiodebug's slow-callback
warning), counted per route in /metrics, and shows up as loop lag; the
other loop keeps serving meanwhile. GET /debug/sleep exists only with
debug.routes=true."""
import threading
import time

from spate_http import get, metrics, request


def test_debug_routes_are_off_by_default(spate):
    assert request(spate.port, get("/debug/sleep?ms=1")).status == 404


def test_slow_handler_is_logged_with_its_route(spate_factory):
    srv = spate_factory("debug.routes=true", "monitor.slow_handler=50ms",
                        "monitor.loop_lag_interval=20ms", threads=2)
    fast = []

    def probe():  # the other loop answers while one is blocked
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.25:
            r = request(srv.port, get("/healthz"))
            fast.append((r.status, time.monotonic()))
            time.sleep(0.01)

    th = threading.Thread(target=probe)
    th.start()
    r = request(srv.port, get("/debug/sleep?ms=200"))
    th.join()
    assert r.status == 200 and r.json() == {"slept_ms": 200}
    assert fast and all(status == 200 for status, _ in fast)

    time.sleep(0.1)  # let the lag timer of the blocked loop fire once more
    warn = [l for l in srv.log_lines() if l.get("msg") == "slow handler blocked the event loop"]
    assert len(warn) == 1, srv.stderr()[-2000:]
    assert warn[0]["route"] == "/debug/sleep" and warn[0]["ms"] >= 200
    assert warn[0]["level"] == "warn" and warn[0]["threshold_ms"] == 50
    lag = [l for l in srv.log_lines() if l.get("msg") == "event loop lag"]
    assert lag and max(l["lag_ms"] for l in lag) >= 150

    m = metrics(srv.port)
    assert m['spate_slow_handlers_total{route="/debug/sleep"}'] == 1
    assert max(v for k, v in m.items() if k.startswith("spate_loop_lag_max_seconds")) >= 0.15


def test_fast_handlers_are_not_reported(spate_factory):
    srv = spate_factory("debug.routes=true", "monitor.slow_handler=500ms")
    assert request(srv.port, get("/debug/sleep?ms=10")).status == 200
    assert request(srv.port, get("/debug/sleep?ms=20000")).status == 422  # bounded
    assert not [l for l in srv.log_lines() if l.get("msg") == "slow handler blocked the event loop"]
