"""The `spate` command line: help, version, exit codes, one-line errors that
name the key, and --print-config showing flags > env > file > defaults."""
import os
import re
import socket
import subprocess

import pytest

from conftest import spate_bin


def run(*args, env=None, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SPATE_") or k == "SPATE_BIN"}
    e.update(env or {})
    return subprocess.run([spate_bin(), *args], capture_output=True, text=True, env=e, cwd=cwd,
                          timeout=30)


def parse_printed(text):
    """The printed YAML is two levels of `key: value`; flatten to dotted keys."""
    out, section = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            section = line.rstrip(":")
            continue
        k, _, v = line.strip().partition(": ")
        out["%s.%s" % (section, k)] = v.strip('"')
    return out


def test_version():
    r = run("--version")
    assert r.returncode == 0 and re.fullmatch(r"spate \S+\n", r.stdout), r


def test_help():
    for args in (["--help"], ["-h"], ["help"]):
        r = run(*args)
        assert r.returncode == 0, args
        assert r.stdout.startswith("usage: spate") and "serve" in r.stdout


def test_help_serve():
    for args in (["help", "serve"], ["serve", "--help"]):
        r = run(*args)
        assert r.returncode == 0
        for flag in ["--host", "--port", "--threads", "--data-dir", "--config", "--set",
                     "--print-config", "--shutdown-timeout", "--access-log", "--log-level"]:
            assert flag in r.stdout, flag


def one_line_error(r):
    assert r.returncode == 2, r
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize("args,needle", [
    (["serve", "--bogus"], "--bogus"),
    (["serve", "--port"], "--port"),
    (["serve", "extra-arg"], "extra-arg"),
    (["serve", "--set", "novalue"], "novalue"),
    (["frobnicate"], "frobnicate"),
    (["help", "frobnicate"], "frobnicate"),
])
def test_usage_errors_exit_2_with_one_line(args, needle):
    assert needle in one_line_error(run(*args))


@pytest.mark.parametrize("args,key", [
    (["serve", "--port", "abc"], "http.port"),
    (["serve", "--port", "70000"], "http.port"),
    (["serve", "--threads", "-1"], "server.threads"),
    (["serve", "--set", "http.max_body_bytes=lots"], "http.max_body_bytes"),
    (["serve", "--set", "http.header_timeout=soon"], "http.header_timeout"),
    (["serve", "--set", "no.such_key=1"], "no.such_key"),
    (["serve", "--log-level", "loud"], "log.level"),
])
def test_bad_value_exit_2_naming_the_key(args, key):
    assert key in one_line_error(run(*args))


def test_bad_env_and_file_name_the_key(tmp_path):
    line = one_line_error(run("serve", "--print-config", env={"SPATE_HTTP_MAX_HEADERS": "many"}))
    assert "SPATE_HTTP_MAX_HEADERS" in line
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("http:\n  port: 8080\n  max_headers: lots\n")
    line = one_line_error(run("serve", "--config", str(cfg), "--print-config"))
    assert "bad.yaml:3" in line and "http.max_headers" in line
    line = one_line_error(run("serve", "--config", str(tmp_path / "missing.yaml")))
    assert "missing.yaml" in line


def test_no_args_prints_usage_and_exits_2():
    r = run()
    assert r.returncode == 2 and "usage: spate" in r.stderr


def test_print_config_defaults():
    r = run("serve", "--print-config")
    assert r.returncode == 0, r.stderr
    c = parse_printed(r.stdout)
    assert c["http.host"] == "127.0.0.1" and c["http.port"] == "8000"
    assert c["http.max_request_line"] == "8KiB" and c["http.max_header_bytes"] == "16KiB"
    assert c["http.max_headers"] == "100" and c["http.max_body_bytes"] == "1MiB"
    assert c["http.header_timeout"] == "10s" and c["http.keepalive_timeout"] == "30s"
    assert c["server.shutdown_timeout"] == "10s" and c["monitor.slow_handler"] == "50ms"


def test_print_config_precedence_flags_env_file_defaults(tmp_path):
    cfg = tmp_path / "spate.yaml"
    cfg.write_text("http:\n  port: 1111\n  max_headers: 50\n  max_body_bytes: 2MiB\n"
                   "server:\n  shutdown_timeout: 3s\n")
    env = {"SPATE_HTTP_PORT": "2222", "SPATE_HTTP_MAX_HEADERS": "60",
           "SPATE_HTTP_HEADER_TIMEOUT": "4s"}
    r = run("serve", "--config", str(cfg), "--port", "3333", "--set", "http.header_timeout=5s",
            "--print-config", env=env)
    assert r.returncode == 0, r.stderr
    c = parse_printed(r.stdout)
    assert c["http.port"] == "3333"             # flag beats env and file
    assert c["http.header_timeout"] == "5s"     # --set beats env
    assert c["http.max_headers"] == "60"        # env beats file
    assert c["http.max_body_bytes"] == "2MiB"   # file beats default
    assert c["server.shutdown_timeout"] == "3s"
    assert c["http.keepalive_timeout"] == "30s"  # default
    # SPATE_CONFIG names the file when --config is absent
    r2 = run("serve", "--print-config", env={"SPATE_CONFIG": str(cfg)})
    assert parse_printed(r2.stdout)["http.port"] == "1111"
    # the printed configuration loads back to itself
    printed = tmp_path / "printed.yaml"
    printed.write_text(r.stdout)
    r3 = run("serve", "--config", str(printed), "--print-config")
    assert r3.returncode == 0 and r3.stdout == r.stdout


def test_port_in_use_fails_cleanly(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()  # no SO_REUSEPORT: spate's bind must fail
    port = s.getsockname()[1]
    try:
        r = run("serve", "--port", str(port), "--threads", "1", "--data-dir", str(tmp_path / "d"))
    finally:
        s.close()
    assert r.returncode == 1
    assert "cannot listen" in r.stderr
