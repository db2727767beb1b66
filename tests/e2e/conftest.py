"""Fixtures that run the real `spate` binary.

`spate_factory(*sets, ...)` starts `$SPATE_BIN serve --port 0 --threads 2
--data-dir <tmp> --set KEY=VALUE...`, waits for the JSON "listening" line on
stderr and returns a Server with its port. Every server is stopped at
teardown with SIGTERM, and the test fails unless it exits 0 within a
bounded time with a clean stderr: no sanitizer report, no "leaked libuv
handle" (sp_loop_join's report when a loop closes with handles left), and
every line a JSON log object. That is how each e2e test ends by proving the
loops closed with nothing leaked.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

SANITIZE = os.environ.get("SPATE_SANITIZE", "0") in ("1", "ON", "TRUE", "true")
# Everything takes ~3x longer under ASan+UBSan; scale waits, never limits.
SLOW = 3.0 if SANITIZE else 1.0

BAD_STDERR = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "leaked libuv handle",
    "ThreadSanitizer",
)


def spate_bin():
    b = os.environ.get("SPATE_BIN")
    if not b:
        pytest.skip("SPATE_BIN is not set (run through ctest)")
    return b


def check_stderr(text):
    for bad in BAD_STDERR:
        assert bad not in text, "server stderr holds %r:\n%s" % (bad, text[-4000:])
    for line in text.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)  # every log line is one JSON object
        assert {"time", "level", "msg"} <= obj.keys(), line


class Server:
    def __init__(self, args, data_dir, env=None):
        self.data_dir = data_dir
        self.err_path = os.path.normpath(data_dir) + ".stderr"
        self.err = open(self.err_path, "w+b")
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            e.update(env)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err, env=e)
        self.port = None
        self.host = "127.0.0.1"
        self.stopped = False
        self.signaled = False
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            for obj in self.log_lines():
                if obj.get("msg") == "listening":
                    self.port = int(obj["port"])
                    self.listening = obj
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError("spate did not start: rc=%s stderr=%s" % (self.proc.returncode, self.stderr()))

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def signal(self, sig=signal.SIGTERM):
        self.signaled = True
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("spate did not exit within %.1fs of SIGTERM; stderr:\n%s"
                                 % (timeout, self.stderr()[-4000:]))

    def stop(self, timeout=None):
        """SIGTERM, then exit 0 within timeout and a clean stderr."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None and not self.signaled:
            # only once: a second SIGTERM during the drain kills the process
            self.signal(signal.SIGTERM)
        rc = self.wait_exit(timeout or 10 * SLOW)
        text = self.stderr()
        self.err.close()
        assert rc == 0, "spate exited %d; stderr:\n%s" % (rc, text[-4000:])
        check_stderr(text)


@pytest.fixture
def spate_factory(tmp_path):
    servers = []

    def start(*sets, threads=2, args=(), env=None):
        d = tmp_path / ("data%d" % len(servers))
        cmd = [spate_bin(), "serve", "--port", "0", "--threads", str(threads), "--data-dir", str(d)]
        for s in sets:
            cmd += ["--set", s]
        cmd += list(args)
        srv = Server(cmd, str(d), env=env)
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


@pytest.fixture
def spate(spate_factory):
    """A server with the default limits."""
    return spate_factory()


@pytest.fixture(scope="module")
def shared_spate(tmp_path_factory):
    """One server for a whole module of tests that do not change settings."""
    d = tmp_path_factory.mktemp("shared") / "data"
    srv = Server([spate_bin(), "serve", "--port", "0", "--threads", "2", "--data-dir", str(d)], str(d))
    yield srv
    srv.stop()
