"""WebSocket conformance in the spirit of Autobahn's fuzzingclient: raw
frames against GET /v1/topics/{t}/ws, each case asserting the close code
the server sends (RFC 6455 sections 5 and 7.4), plus the handshake's
failure answers (400 / 426 / 403)."""
import json
import struct

import pytest

from conftest import SLOW
from sse_helpers import Rest
from ws_helpers import RawWS, close_payload, frame

PATH = "/v1/topics/conf/ws"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Server, spate_bin
    d = tmp_path_factory.mktemp("wsconf") / "data"
    s = Server([spate_bin(), "serve", "--port", "0", "--threads", "2", "--data-dir", str(d),
                "--set", "ws.max_message_bytes=64KiB",
                "--set", "ws.origins=http://good.example, https://also.example"], str(d))
    rest = Rest(s)
    rest.create_topic("conf")
    rest.close()
    yield s
    s.stop()


def ws(srv, **kw):
    c = RawWS(srv.port, PATH, headers={"Origin": "http://good.example"}, **kw)
    assert c.status == 101
    return c


def close_code_after(srv, data):
    c = ws(srv)
    c.send(data)
    code = c.expect_close()
    c.close()
    return code


# ---- the handshake -----------------------------------------------------------------

def test_handshake_accept_value(srv):
    c = RawWS(srv.port, PATH, handshake=False)
    st = c.handshake(PATH, {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                            "Origin": "http://good.example"})
    assert st == 101
    assert c.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3
    assert c.headers["upgrade"].lower() == "websocket"
    c.close()


@pytest.mark.parametrize("headers,status", [
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Sec-WebSocket-Version": None}, 426),
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),                    # 5 bytes
    ({"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}, 400),  # 22 bytes
    ({"Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="}, 400),
    ({"Upgrade": "h2c"}, 400),
    ({"Connection": "keep-alive"}, 400),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": None}, 403),
])
def test_bad_handshakes(srv, headers, status):
    h = {"Origin": "http://good.example"}
    h.update(headers)
    c = RawWS(srv.port, PATH, handshake=False)
    assert c.handshake(PATH, h) == status
    if status == 426:
        assert c.headers["sec-websocket-version"] == "13"
    assert "detail" in json.loads(c.body)
    c.close()


def test_second_allowed_origin_and_connection_token_list(srv):
    c = RawWS(srv.port, PATH, handshake=False)
    assert c.handshake(PATH, {"Origin": "https://also.example",
                              "Connection": "keep-alive, Upgrade"}) == 101
    c.close()


def test_unknown_topic_is_404(srv):
    c = RawWS(srv.port, "/v1/topics/nope/ws", handshake=False)
    assert c.handshake("/v1/topics/nope/ws", {"Origin": "http://good.example"}) == 404
    c.close()


# ---- frames ------------------------------------------------------------------------

def test_echoes_ping_and_closes_normally(srv):
    c = ws(srv)
    c.send(frame(0x9, b"hello"))
    fin, op, payload = c.read_frame()
    assert (fin, op, payload) == (True, 0xA, b"hello")
    c.send(frame(0x8, close_payload(1000)))
    assert c.expect_close() == 1000
    c.close()


def test_invalid_utf8_text_is_1007(srv):
    assert close_code_after(srv, frame(0x1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")) == 1007


def test_invalid_utf8_across_fragments_is_1007(srv):
    data = frame(0x1, b"{\"a\":\"\xf0\x90", fin=False) + frame(0x0, b"\x28\"}", fin=True)
    assert close_code_after(srv, data) == 1007


def test_truncated_utf8_at_message_end_is_1007(srv):
    assert close_code_after(srv, frame(0x1, b"\"abc\xe2\x82")) == 1007


def test_unmasked_client_frame_is_1002(srv):
    assert close_code_after(srv, frame(0x1, b"\"hi\"", mask=False)) == 1002


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
def test_rsv_bits_are_1002(srv, rsv):
    assert close_code_after(srv, frame(0x1, b"\"hi\"", rsv=rsv)) == 1002


def test_fragmented_ping_is_1002(srv):
    assert close_code_after(srv, frame(0x9, b"ab", fin=False) + frame(0x0, b"cd")) == 1002


def test_ping_over_125_bytes_is_1002(srv):
    assert close_code_after(srv, frame(0x9, b"x" * 126)) == 1002


def test_close_over_125_bytes_is_1002(srv):
    assert close_code_after(srv, frame(0x8, close_payload(1000, b"x" * 124))) == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_are_1002(srv, opcode):
    assert close_code_after(srv, frame(opcode, b"x")) == 1002


def test_orphan_continuation_is_1002(srv):
    assert close_code_after(srv, frame(0x0, b"\"x\"")) == 1002


def test_text_inside_fragmented_message_is_1002(srv):
    assert close_code_after(srv, frame(0x1, b"\"a", fin=False) + frame(0x1, b"b\"")) == 1002


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535])
def test_invalid_close_codes_are_1002(srv, code):
    assert close_code_after(srv, frame(0x8, close_payload(code))) == 1002


def test_one_byte_close_payload_is_1002(srv):
    assert close_code_after(srv, frame(0x8, b"\x03")) == 1002


def test_close_reason_with_invalid_utf8_is_1007_or_1002(srv):
    assert close_code_after(srv, frame(0x8, close_payload(1000, b"\xff\xfe"))) in (1002, 1007)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4999])
def test_valid_close_codes_are_echoed(srv, code):
    assert close_code_after(srv, frame(0x8, close_payload(code))) == code


def test_empty_close_is_answered(srv):
    assert close_code_after(srv, frame(0x8, b"")) in (None, 1000)


def test_oversized_message_is_1009_from_the_declared_length(srv):
    """Only the header claiming 10 MB is sent: the verdict cannot wait for
    the payload."""
    c = ws(srv)
    c.send(frame(0x1, b"", length=10 * 1000 * 1000)[:14])  # header + mask key only
    assert c.expect_close(timeout=3) == 1009
    c.close()


def test_oversized_fragmented_message_is_1009(srv):
    data = frame(0x1, b"\"" + b"a" * 40000, fin=False) + frame(0x0, b"", fin=True, length=40000)[:8]
    assert close_code_after(srv, data) == 1009


def test_binary_message_is_1003(srv):
    assert close_code_after(srv, frame(0x2, b"\x00\x01")) == 1003


def test_valid_fragmented_text_with_interleaved_ping_is_published(srv):
    c = ws(srv)
    msg = json.dumps({"id": "f1", "value": {"n": 1}}).encode()
    c.send(frame(0x1, msg[:5], fin=False) + frame(0x9, b"p") + frame(0x0, msg[5:], fin=True))
    fin, op, payload = c.read_frame()
    assert (op, payload) == (0xA, b"p")
    while True:
        m = json.loads(c.read_message())
        if m.get("type") == "ack":
            break
    assert m["id"] == "f1"
    c.send(frame(0x8, close_payload(1000)))
    assert c.expect_close() == 1000
    c.close()


def test_frames_sent_behind_the_handshake_are_read(srv):
    c = RawWS(srv.port, PATH, handshake=False)
    msg = json.dumps({"id": "early", "value": 1})
    st = c.handshake(PATH, {"Origin": "http://good.example"}, extra=frame(0x1, msg))
    assert st == 101
    while True:
        m = json.loads(c.read_message())
        if m.get("type") == "ack":
            break
    assert m["id"] == "early"
    c.close()


def test_bytes_one_at_a_time(srv):
    # The pong is read before the close is sent: when a ping and a close
    # reach the server in one read, wslay drops the queued pong in favour of
    # the close (send_ctrl_queue_pop keeps only the close once one is
    # queued), which RFC 6455 allows; sending both byte by byte without
    # waiting made this test depend on how the server's reads were split.
    c = ws(srv)
    ping = frame(0x9, b"slow")
    for i in range(len(ping)):
        c.send(ping[i:i + 1])
    fin, op, payload = c.read_frame()
    assert (op, payload) == (0xA, b"slow")
    close = frame(0x8, close_payload(1000))
    for i in range(len(close)):
        c.send(close[i:i + 1])
    assert c.expect_close() == 1000
    c.close()
