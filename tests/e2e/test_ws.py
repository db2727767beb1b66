"""WebSocket end to end (Debian's python3-websockets, asyncio client):
news POSTed arrives over WS within milliseconds; resume after a
disconnect with no gap and no duplicate; publishing with acks and schema
errors; chat between three clients; a client that stops reading is closed
with 1008 while the others keep receiving; /v1/ws multiplexing; keep-alive
pings; shutdown sends 1001."""
import asyncio
import json
import socket
import statistics
import time

import pytest
import websockets

from conftest import SANITIZE, SLOW
from sse_helpers import Rest
from spate_http import Conn
from ws_helpers import RawWS, close_payload, frame


def url(srv, path):
    return "ws://127.0.0.1:%d%s" % (srv.port, path)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60 * SLOW))


async def next_json(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout * SLOW))


async def records(ws, n, timeout=5.0):
    """The next n record frames (acks and other notices skipped)."""
    out = []
    while len(out) < n:
        m = await next_json(ws, timeout)
        if "type" not in m:
            out.append(m)
    return out


def test_news_arrives_within_milliseconds(spate_factory):
    srv = spate_factory("store.fsync=interval")
    rest = Rest(srv)
    rest.create_topic("news")
    producer = Conn(srv.port)

    async def main():
        lat = []
        async with websockets.connect(url(srv, "/v1/topics/news/ws")) as ws:
            for i in range(30):
                body = json.dumps({"title": "story %d" % i})
                t0 = time.monotonic()
                producer.send("POST /v1/topics/news/records HTTP/1.1\r\nHost: x\r\n"
                              "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(body), body))
                m = await next_json(ws)
                lat.append((time.monotonic() - t0) * 1000)
                assert producer.read_response().status == 200
                assert m["id"] == "0-%d" % i
                assert m["value"] == {"title": "story %d" % i}
                assert set(m) == {"id", "partition", "offset", "timestamp", "key", "value"}
        return lat

    lat = sorted(run(main()))
    print("POST -> WS latency ms: median %.2f p90 %.2f max %.2f"
          % (statistics.median(lat), lat[int(len(lat) * 0.9)], lat[-1]))
    assert lat[-1] < 200 * SLOW, lat
    producer.close()
    rest.close()


def test_resume_after_disconnect_no_gap_no_dup(spate):
    rest = Rest(spate)
    rest.create_topic("r", partitions=1)
    rest.produce("r", [{"n": i} for i in range(10)])

    async def main():
        async with websockets.connect(url(spate, "/v1/topics/r/ws?from=earliest")) as ws:
            first = await records(ws, 4)
        last = first[-1]["id"]
        rest.produce("r", [{"n": i} for i in range(10, 15)])  # while away
        async with websockets.connect(url(spate, "/v1/topics/r/ws?from=" + last)) as ws:
            rest_ = await records(ws, 11)
            with pytest.raises(asyncio.TimeoutError):  # nothing more: no duplicate
                await asyncio.wait_for(ws.recv(), 0.2)
        return first + rest_

    got = run(main())
    assert [m["value"]["n"] for m in got] == list(range(15))
    assert [m["offset"] for m in got] == list(range(15))
    rest.close()


def test_resume_from_offset_latest_and_bad_from(spate):
    rest = Rest(spate)
    rest.create_topic("o", partitions=1)
    rest.produce("o", [{"n": i} for i in range(5)])

    async def main():
        async with websockets.connect(url(spate, "/v1/topics/o/ws?from=3")) as ws:
            assert [m["offset"] for m in await records(ws, 2)] == [3, 4]
        async with websockets.connect(url(spate, "/v1/topics/o/ws?from=latest")) as ws:
            rest.produce("o", {"n": 5})
            assert [m["offset"] for m in await records(ws, 1)] == [5]
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with websockets.connect(url(spate, "/v1/topics/o/ws?from=bogus")):
                pass
        assert e.value.status_code == 422

    run(main())
    rest.close()


def test_publish_acks_ids_and_schema_errors(spate):
    rest = Rest(spate)
    schema = {"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string"}}}
    rest.create_topic("pub", partitions=1, schema=schema)

    async def main():
        async with websockets.connect(url(spate, "/v1/topics/pub/ws")) as ws:
            await ws.send(json.dumps({"id": "r1", "value": {"text": "hi"}}))
            await ws.send(json.dumps({"id": "r2", "value": {"text": 5}}))
            await ws.send(json.dumps({"text": "plain"}))
            await ws.send("{not json")
            await ws.send(json.dumps({"id": 7, "key": "k", "value": {"text": "keyed"}}))
            got = []
            while (len([m for m in got if m.get("type") in ("ack", "error")]) < 5
                   or len([m for m in got if "type" not in m]) < 3):
                got.append(await next_json(ws))
            return got

    got = run(main())
    # rejections are answered at once, acks once durable: match them by id
    replies = sorted([m for m in got if m.get("type") in ("ack", "error")],
                     key=lambda m: {"r1": 0, "r2": 1, None: 2 if m["type"] == "ack" else 3, 7: 4}[m.get("id")])
    assert replies[0]["type"] == "ack" and replies[0]["id"] == "r1"
    assert replies[0]["partition"] == 0 and replies[0]["offset"] == 0
    assert replies[1]["type"] == "error" and replies[1]["id"] == "r2"
    assert replies[1]["status"] == 422
    assert replies[1]["detail"][0]["loc"] == ["body", "text"]
    assert replies[2]["type"] == "ack" and "id" not in replies[2]
    assert replies[3]["type"] == "error" and replies[3]["status"] == 422
    assert replies[3]["detail"][0]["type"] == "json_invalid"
    assert replies[4]["type"] == "ack" and replies[4]["id"] == 7
    recs = [m for m in got if "type" not in m]
    assert [r["value"] for r in recs] == [{"text": "hi"}, {"text": "plain"}, {"text": "keyed"}]
    assert recs[2]["key"] == "k"
    status, body = rest.request("GET", "/v1/topics/pub/records?from=0")
    # stored exactly as sent (raw bytes, not re-encoded)
    assert [r["value"] for r in body["records"]] == [{"text": "hi"}, {"text": "plain"}, {"text": "keyed"}]
    rest.close()


def test_chat_between_three_clients(spate):
    rest = Rest(spate)
    rest.create_topic("chat", partitions=1)

    async def client(name, start, results):
        async with websockets.connect(url(spate, "/v1/topics/chat/ws?from=latest")) as ws:
            await start.wait()
            for i in range(5):
                await ws.send(json.dumps({"id": "%s-%d" % (name, i),
                                          "value": {"user": name, "text": "msg %d" % i}}))
            acks, recs = [], []
            while len(recs) < 15 or len(acks) < 5:
                m = await next_json(ws)
                (acks if m.get("type") == "ack" else recs).append(m)
            results[name] = (acks, recs)

    async def main():
        start = asyncio.Event()
        results = {}
        tasks = [asyncio.create_task(client(n, start, results)) for n in ("ann", "bob", "cy")]
        await asyncio.sleep(0.3 * SLOW)  # all subscribed
        start.set()
        await asyncio.gather(*tasks)
        return results

    results = run(main())
    orders = []
    for name, (acks, recs) in results.items():
        assert [a["id"] for a in acks] == ["%s-%d" % (name, i) for i in range(5)]
        assert sorted((r["value"]["user"], r["value"]["text"]) for r in recs) == sorted(
            (n, "msg %d" % i) for n in ("ann", "bob", "cy") for i in range(5))
        orders.append([r["id"] for r in recs])
    assert orders[0] == orders[1] == orders[2]  # everyone sees the same order
    rest.close()


def test_slow_reader_closed_1008_while_others_receive(spate_factory):
    srv = spate_factory("hub.subscriber_queue_bytes=64KiB", "hub.subscriber_queue_records=64")
    rest = Rest(srv)
    rest.create_topic("fan", partitions=1)
    slow = RawWS(srv.port, "/v1/topics/fan/ws")
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    assert slow.status == 101
    payload = "x" * 10000  # 8 MB in all: more than the kernel's socket buffers hold
    n = 800

    async def main():
        fast = [await websockets.connect(url(srv, "/v1/topics/fan/ws"), max_queue=None)
                for _ in range(5)]

        async def drain(ws):
            return await records(ws, n, timeout=20)

        tasks = [asyncio.create_task(drain(ws)) for ws in fast]
        for i in range(0, n, 20):
            rest.produce("fan", [{"i": j, "pad": payload} for j in range(i, i + 20)])
            await asyncio.sleep(0.01)
        got = await asyncio.gather(*tasks)
        for ws in fast:
            await ws.close()
        return got

    t0 = time.monotonic()
    got = run(main())
    print("fan-out to the fast clients took %.2fs" % (time.monotonic() - t0))
    for g in got:
        assert [m["value"]["i"] for m in g] == list(range(n))
    # the slow one now reads: whatever it was sent, then close 1008
    slow.sock.settimeout(10 * SLOW)
    code = slow.expect_close(timeout=10)
    assert (code, slow.reason) == (1008, b"slow consumer")
    slow.close()
    rest.close()


def test_multiplexed_socket(spate):
    rest = Rest(spate)
    rest.create_topic("a", partitions=1)
    rest.create_topic("b", partitions=1)
    rest.produce("a", [{"a": 0}, {"a": 1}])

    async def main():
        async with websockets.connect(url(spate, "/v1/ws")) as ws:
            await ws.send(json.dumps({"op": "subscribe", "topic": "a", "from": "earliest", "sub": "s1"}))
            await ws.send(json.dumps({"op": "subscribe", "topic": "b", "sub": "s2"}))
            await ws.send(json.dumps({"op": "subscribe", "topic": "nope", "sub": "s3"}))
            await ws.send(json.dumps({"op": "subscribe", "topic": "a", "sub": "s1"}))
            seen = []
            while len(seen) < 6:
                seen.append(await next_json(ws))
            kinds = [(m.get("type"), m.get("sub")) for m in seen]
            assert ("subscribed", "s1") in kinds and ("subscribed", "s2") in kinds
            errs = [m for m in seen if m.get("type") == "error"]
            assert {(e["sub"], e["status"]) for e in errs} == {("s3", 404), ("s1", 409)}
            recs = [m for m in seen if "type" not in m]
            assert [(r["sub"], r["value"]) for r in recs] == [("s1", {"a": 0}), ("s1", {"a": 1})]
            await ws.send(json.dumps({"op": "publish", "topic": "b", "id": "p1", "value": {"b": 1}}))
            got = [await next_json(ws), await next_json(ws)]
            ack = [m for m in got if m.get("type") == "ack"][0]
            rec = [m for m in got if "type" not in m][0]
            assert ack["id"] == "p1" and ack["offset"] == 0
            assert rec["sub"] == "s2" and rec["value"] == {"b": 1} and rec["id"] == "0-0"
            await ws.send(json.dumps({"op": "unsubscribe", "sub": "s2"}))
            m = await next_json(ws)
            assert m == {"type": "unsubscribed", "sub": "s2"}
            rest.produce("b", {"b": 2})
            rest.produce("a", {"a": 2})
            m = await next_json(ws)  # only s1's record: s2 is gone
            assert m["sub"] == "s1" and m["value"] == {"a": 2}
            await ws.send(json.dumps({"op": "dance"}))
            m = await next_json(ws)
            assert m["type"] == "error" and m["status"] == 422

    run(main())
    rest.close()


def test_keepalive_ping_and_pong_timeout(spate_factory):
    srv = spate_factory("ws.ping_interval=100ms", "ws.pong_timeout=200ms")
    Rest(srv).create_topic("k")
    c = RawWS(srv.port, "/v1/topics/k/ws")
    c.sock.settimeout(5 * SLOW)
    fin, op, payload = c.read_frame()
    assert op == 0x9  # a ping after the silence
    c.send(frame(0xA, payload))
    fin, op, payload = c.read_frame()
    assert op == 0x9  # answered: the next one comes, the socket lives
    # now stay silent: closed with 1011 after the pong timeout
    assert c.expect_close(timeout=5) == 1011
    c.close()


def test_shutdown_sends_1001(spate_factory):
    srv = spate_factory()
    Rest(srv).create_topic("bye")
    c = RawWS(srv.port, "/v1/topics/bye/ws")
    m = RawWS(srv.port, "/v1/ws")
    assert c.status == 101 and m.status == 101
    time.sleep(0.1)
    srv.stop()
    assert c.expect_close() == 1001
    assert c.reason == b"server shutting down"
    assert m.expect_close() == 1001
    c.close()
    m.close()


def test_client_close_is_answered_and_server_keeps_working(spate):
    rest = Rest(spate)
    rest.create_topic("cc")
    for _ in range(3):
        c = RawWS(spate.port, "/v1/topics/cc/ws")
        c.send(frame(0x8, close_payload(1000, b"bye")))
        assert c.expect_close() == 1000
        c.close()
    assert rest.topic("cc")["name"] == "cc"
    rest.close()


def test_socket_state_is_rebuilt_between_frames(spate):
    """The server keeps no wslay state for a socket at rest and makes it
    again on the next byte: a message fragmented across pauses, a frame
    header split over two TCP segments, a ping and more messages all work
    across those rests, and the limits still apply afterwards."""
    rest = Rest(spate)
    rest.create_topic("rest", partitions=1)
    c = RawWS(spate.port, "/v1/topics/rest/ws")
    assert c.status == 101

    def next_of(kind):
        while True:
            m = json.loads(c.read_message())
            if m.get("type") == kind or (kind == "record" and "type" not in m):
                return m

    msg = json.dumps({"id": "frag", "value": {"text": "in three parts"}}).encode()
    c.send(frame(0x1, msg[:10], fin=False))
    time.sleep(0.1)  # the server is at rest inside a fragmented message
    c.send(frame(0x0, msg[10:20], fin=False))
    time.sleep(0.1)
    c.send(frame(0x0, msg[20:]))
    assert next_of("ack")["id"] == "frag"
    assert next_of("record")["value"] == {"text": "in three parts"}

    whole = frame(0x1, json.dumps({"id": "split", "value": {"n": 1}}))
    c.send(whole[:1])  # one byte of a header, then a rest
    time.sleep(0.1)
    c.send(whole[1:])
    assert next_of("ack")["id"] == "split"

    c.send(frame(0x9, b"still there?"))
    while True:
        fin, op, payload = c.read_frame()
        if op == 0xA:
            assert payload == b"still there?"
            break

    time.sleep(0.1)
    c.send(frame(0x1, b"x" * 10, length=2 << 20))  # a header claiming 2 MiB
    assert c.expect_close() == 1009
    c.close()
    rest.close()


def test_idle_sockets_cost_little_memory(spate_factory):
    """An idle WebSocket subscriber costs the server well under 8 KiB
    (RSS growth per connection; wslay's two 4 KiB buffers exist only while
    a socket has something in flight)."""
    srv = spate_factory(threads=1)
    rest = Rest(srv)
    rest.create_topic("idle", partitions=1)
    warm = [RawWS(srv.port, "/v1/topics/idle/ws") for _ in range(20)]

    def rss_kib():
        with open("/proc/%d/status" % srv.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    n = 400
    before = rss_kib()
    socks = [RawWS(srv.port, "/v1/topics/idle/ws") for _ in range(n)]
    assert all(s.status == 101 for s in socks)
    # every socket has been set up: a record reaches the last one
    rest.request("POST", "/v1/topics/idle/records", {"n": 1})
    assert json.loads(socks[-1].read_message())["value"] == {"n": 1}
    per_conn = (rss_kib() - before) / n
    # ASan's redzones and quarantine put ~2-4 KiB on top (8.0 once seen):
    # the sanitizer build checks the bound loosely, the release build tightly
    limit = 12 if SANITIZE else 8
    assert per_conn < limit, "%.1f KiB per idle WebSocket" % per_conn
    for s in socks + warm:
        s.close()
    rest.close()
