"""A raw-socket WebSocket client for conformance tests: frames are built
byte by byte, so a test can send exactly the malformed thing it means and
read back the server's close frame."""
import base64
import os
import socket
import struct
import time

from conftest import SLOW


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One client frame. `length` overrides the declared payload length
    (to claim more than is sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawWS:
    """A WebSocket connection over a plain socket."""

    def __init__(self, port, path, headers=None, handshake=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.status = None
        if handshake:
            self.handshake(path, headers)

    def handshake(self, path, headers=None, extra=b""):
        h = {
            "Host": "127.0.0.1",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
        }
        for k, v in (headers or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.sock.sendall(req.encode() + extra)
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:  # read the error body too
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
            self.body = self.buf[:n]
        return self.status

    def send(self, data):
        self.sock.sendall(data)

    def send_text(self, text):
        self.sock.sendall(frame(0x1, text))

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buf += data

    def read_frame(self):
        """Returns (fin, opcode, payload)."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def read_message(self):
        """The next text frame's payload as str (pings are answered)."""
        while True:
            fin, op, payload = self.read_frame()
            if op == 0x9:
                self.send(frame(0xA, payload))
                continue
            if op == 0x1:
                return payload.decode()
            if op == 0x8:
                raise EOFError("close %r" % (payload,))

    def expect_close(self, timeout=5.0):
        """Reads until the close frame; returns its code (None: no code);
        then checks the server closes the TCP connection."""
        self.sock.settimeout(timeout * SLOW)
        while True:
            fin, op, payload = self.read_frame()
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.reason = payload[2:]
                break
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:  # the server ends the connection after its close
            try:
                if not self.sock.recv(65536):
                    break
            except ConnectionResetError:
                break
        else:
            raise AssertionError("server did not close the connection after its close frame")
        return code

    def close(self):
        self.sock.close()
