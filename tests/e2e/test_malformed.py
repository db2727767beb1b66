"""A table of well over 1,000 malformed requests: real smuggling and framing
cases (CL+TE, duplicate Content-Length, bad chunk sizes, bare LF/CR, NUL
bytes, obs-fold, broken request lines, unknown versions), each multiplied
over methods, targets and header positions. Every row must get its exact
documented status, the connection must close afterwards, the server's
spate_http_parse_errors_total must go up by exactly one, and /healthz must
keep answering (probed after every batch of rows).

A row the server wrongly accepts is marked xfail(strict=True) with a reason
starting "BUG:"; once the server is fixed the XPASS fails the suite so the
mark gets removed.
"""
import itertools

import pytest

from conftest import SLOW, Server, spate_bin
from spate_http import Conn, Closed, get, metrics, request

MAX_BODY = 64 * 1024
HOST = b"Host: example.com\r\n"

# Rows once marked as server bugs, all fixed by the strict head scanner in
# src/http/parser.c (bare LF/CR, obs-fold, empty names, request-line spaces,
# version syntax) and its chunk/TE checks; kept as names so the table reads.
BUG_BARE_LF = BUG_FOLD_EMPTY = BUG_EMPTY_NAME = BUG_RL_SPACES = None
BUG_TE_EMPTY = BUG_VERSION_SYNTAX = BUG_CHUNK_EXT = None

# ---- header-level families ---------------------------------------------------
# (id, status, header lines (without Host), body bytes after the blank line, bug)
CHUNKED = b"Transfer-Encoding: chunked\r\n"
HEADER_FAMILIES = [
    # CL + TE in both orders and case variants (RFC 9112 6.1: 400 and close)
    ("cl_te", 400, b"Content-Length: 4\r\n" + CHUNKED, b"0\r\n\r\n", None),
    ("te_cl", 400, CHUNKED + b"Content-Length: 4\r\n", b"0\r\n\r\n", None),
    ("cl0_te", 400, b"Content-Length: 0\r\n" + CHUNKED, b"0\r\n\r\n", None),
    ("te_cl_upper", 400, b"TRANSFER-ENCODING: chunked\r\ncontent-length: 3\r\n", b"0\r\n\r\n", None),
    ("cl_te_identity", 400, b"Content-Length: 3\r\nTransfer-Encoding: identity\r\n", b"abc", None),
    ("te_gzip_cl", 400, b"Transfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n", b"0\r\n\r\n", None),
    # duplicate Content-Length, same and different values
    ("dup_cl_same", 400, b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello", None),
    ("dup_cl_diff", 400, b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!", None),
    ("dup_cl_case", 400, b"content-length: 5\r\nCONTENT-LENGTH: 5\r\n", b"hello", None),
    ("dup_cl_zero", 400, b"Content-Length: 0\r\nContent-Length: 5\r\n", b"hello", None),
    ("cl_list_same", 400, b"Content-Length: 5, 5\r\n", b"hello", None),
    ("cl_list_diff", 400, b"Content-Length: 5, 6\r\n", b"hello!", None),
    # Content-Length with sign, space, hex, overflow, junk
    ("cl_plus", 400, b"Content-Length: +5\r\n", b"hello", None),
    ("cl_minus", 400, b"Content-Length: -5\r\n", b"hello", None),
    ("cl_hex", 400, b"Content-Length: 0x5\r\n", b"hello", None),
    ("cl_inner_space", 400, b"Content-Length: 1 2\r\n", b"hello", None),
    ("cl_empty", 400, b"Content-Length: \r\n", b"hello", None),
    ("cl_overflow", 400, b"Content-Length: 99999999999999999999999\r\n", b"hello", None),
    ("cl_u64_wrap", 400, b"Content-Length: 18446744073709551621\r\n", b"hello", None),
    ("cl_exp", 400, b"Content-Length: 5e0\r\n", b"hello", None),
    ("cl_decimal", 400, b"Content-Length: 5.0\r\n", b"hello", None),
    ("cl_nul", 400, b"Content-Length: 5\x00\r\n", b"hello", None),
    ("cl_alpha", 400, b"Content-Length: five\r\n", b"hello", None),
    ("cl_name_space", 400, b"Content-Length : 5\r\n", b"hello", None),
    ("cl_fold_empty", 400, b"Content-Length:\r\n 5\r\n", b"hello", BUG_FOLD_EMPTY),
    # Transfer-Encoding variants
    ("te_chunked_identity", 400, b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n", None),
    ("te_xchunked", 400, b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n", None),
    ("te_chunkedx", 400, b"Transfer-Encoding: chunkedx\r\n", b"0\r\n\r\n", None),
    ("te_chunk", 400, b"Transfer-Encoding: chunk\r\n", b"0\r\n\r\n", None),
    ("te_identity", 400, b"Transfer-Encoding: identity\r\n", b"", None),
    ("te_chunked_twice", 400, b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n", None),
    ("te_dup_header", 400, CHUNKED + CHUNKED, b"0\r\n\r\n", None),
    ("te_trailing_comma", 400, b"Transfer-Encoding: chunked,\r\n", b"0\r\n\r\n", None),
    ("te_params", 400, b"Transfer-Encoding: chunked;q=1\r\n", b"0\r\n\r\n", None),
    ("te_quoted", 400, b"Transfer-Encoding: \"chunked\"\r\n", b"0\r\n\r\n", None),
    ("te_vtab", 400, b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n", None),
    ("te_formfeed", 400, b"Transfer-Encoding:\x0cchunked\r\n", b"0\r\n\r\n", None),
    ("te_name_space", 400, b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n", None),
    ("te_name_tab", 400, b"Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n", None),
    ("te_lead_fold", 400, b"X-A: b\r\n Transfer-Encoding: chunked\r\n", b"0\r\n\r\n", None),
    ("te_fold_gzip", 400, b"Transfer-Encoding: gzip\r\n ,chunked\r\n", b"0\r\n\r\n", None),
    ("te_fold_tab", 400, b"Transfer-Encoding: gzip,\r\n\tchunked\r\n", b"0\r\n\r\n", None),
    ("te_fold_empty", 400, b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n", BUG_FOLD_EMPTY),
    ("te_empty", 400, b"Transfer-Encoding: \r\n", b"", BUG_TE_EMPTY),
    # bad chunk sizes, missing CRLFs, chunk extension abuse
    ("chunk_hex_overflow", 400, CHUNKED, b"FFFFFFFFFFFFFFFFF\r\n", None),
    ("chunk_hex_overflow2", 400, CHUNKED, b"10000000000000000\r\nabc\r\n", None),
    ("chunk_negative", 400, CHUNKED, b"-1\r\n\r\n", None),
    ("chunk_plus", 400, CHUNKED, b"+3\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_0x", 400, CHUNKED, b"0x3\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_nonhex", 400, CHUNKED, b"3g\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_space", 400, CHUNKED, b"3 \r\nabc\r\n0\r\n\r\n", None),
    ("chunk_space_ext", 400, CHUNKED, b"3 ;a=b\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_empty_size", 400, CHUNKED, b"\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_missing_crlf", 400, CHUNKED, b"3\r\nabcX\r\n0\r\n\r\n", None),
    ("chunk_data_lf", 400, CHUNKED, b"3\r\nabc\n0\r\n\r\n", None),
    ("chunk_data_cr", 400, CHUNKED, b"3\r\nabc\r0\r\n\r\n", None),
    ("chunk_size_lf", 400, CHUNKED, b"3\nabc\r\n0\r\n\r\n", None),
    ("chunk_too_long", 400, CHUNKED, b"2\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_ext_ctl", 400, CHUNKED, b"3;a=\"\x01\"\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_ext_bare", 400, CHUNKED, b"3;\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_ext_nul", 400, CHUNKED, b"3;a\x00\r\nabc\r\n0\r\n\r\n", None),
    ("chunk_ext_lf", 400, CHUNKED, b"3;a=b\nabc\r\n0\r\n\r\n", None),
    ("chunk_ext_flood", 413, CHUNKED, b"3" + b";a" * (35 * 1024) + b"\r\nabc\r\n0\r\n\r\n", BUG_CHUNK_EXT),
    ("chunk_last_lf", 400, CHUNKED, b"0\r\n\n", BUG_BARE_LF),
    ("chunk_trailer_space", 400, CHUNKED, b"0\r\nX : y\r\n\r\n", None),
    ("chunk_trailer_nul", 400, CHUNKED, b"0\r\nX\x00: y\r\n\r\n", None),
    # bare LF / bare CR / NUL / control bytes in header lines
    ("bare_lf_header", 400, b"X-A: b\n", b"", None),
    ("bare_lf_header_mid", 400, b"X-A: b\nX-B: c\r\n", b"", None),
    ("bare_cr_value", 400, b"X-A: b\rX-B: c\r\n", b"", None),
    ("bare_cr_name", 400, b"X\rY: z\r\n", b"", None),
    ("nul_name", 400, b"X\x00Y: z\r\n", b"", None),
    ("nul_value", 400, b"X-A: a\x00b\r\n", b"", None),
    ("nul_value_lead", 400, b"X-A: \x00\r\n", b"", None),
    ("ctl_value", 400, b"X-A: a\x01b\r\n", b"", None),
    ("del_value", 400, b"X-A: a\x7fb\r\n", b"", None),
    ("esc_value", 400, b"X-A: a\x1bb\r\n", b"", None),
    # obs-fold continuation lines
    ("obs_fold_sp", 400, b"X-A: a\r\n b\r\n", b"", None),
    ("obs_fold_tab", 400, b"X-A: a\r\n\tb\r\n", b"", None),
    ("obs_fold_multi", 400, b"X-A: a\r\n b\r\n c\r\n", b"", None),
    ("obs_fold_empty", 400, b"X-A:\r\n b\r\n", b"", BUG_FOLD_EMPTY),
    # invalid header names
    ("space_before_colon", 400, b"X-A : b\r\n", b"", None),
    ("tab_before_colon", 400, b"X-A\t: b\r\n", b"", None),
    ("name_inner_space", 400, b"X A: b\r\n", b"", None),
    ("name_paren", 400, b"X(A): b\r\n", b"", None),
    ("name_slash", 400, b"X/A: b\r\n", b"", None),
    ("name_at", 400, b"X@A: b\r\n", b"", None),
    ("name_bracket", 400, b"X[A]: b\r\n", b"", None),
    ("name_utf8", 400, b"X\xc3\xa9: b\r\n", b"", None),
    ("name_quote", 400, b"X\"A: b\r\n", b"", None),
    ("name_empty", 400, b": b\r\n", b"", BUG_EMPTY_NAME),
    ("no_colon", 400, b"X-A b\r\n", b"", None),
    # Host and Expect semantics
    ("dup_host", 400, b"Host: other.example\r\n", b"", None),
    ("expect_unknown", 417, b"Expect: foo\r\n", b"", None),
    ("expect_102", 417, b"Expect: 102-processing\r\n", b"", None),
]

METHODS = ["POST", "PUT", "GET"]
TARGETS = ["/", "/v1/a/b?c=d"]
HOST_POS = ["hostfirst", "hostlast"]


def header_rows():
    for (fid, status, lines, body, bug), m, t, pos in itertools.product(
            HEADER_FAMILIES, METHODS, TARGETS, HOST_POS):
        head = ("%s %s HTTP/1.1\r\n" % (m, t)).encode()
        if fid == "te_lead_fold" or pos == "hostfirst":
            # te_lead_fold needs its X-A line first so the fold follows a header
            raw = head + HOST + lines + b"\r\n" + body
        else:
            raw = head + lines + HOST + b"\r\n" + body
        yield ("%s-%s-%s-%s" % (fid, m, "root" if t == "/" else "deep", pos), status, raw, bug)


# ---- request-line-level families ---------------------------------------------
# (id, status, template with {m} {t}, methods, targets, bug)
H = "Host: example.com\r\n"
ALL_M = ["GET", "POST", "DELETE"]
T2 = ["/", "/healthz?x=1"]
RL_FAMILIES = [
    ("rl_two_sp_after_method", 400, "{m}  {t} HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, BUG_RL_SPACES),
    ("rl_two_sp_before_version", 400, "{m} {t}  HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, BUG_RL_SPACES),
    ("rl_tab_after_method", 400, "{m}\t{t} HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("rl_tab_before_version", 400, "{m} {t}\tHTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("rl_tab_in_target", 400, "{m} {t}\tx HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("rl_trailing_space", 400, "{m} {t} HTTP/1.1 \r\n" + H + "\r\n", ALL_M, T2, None),
    ("rl_leading_space", 400, " {m} {t} HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("rl_space_in_target", 400, "{m} {t} x HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("rl_bare_lf", 400, "{m} {t} HTTP/1.1\n" + H + "\r\n", ALL_M, T2, BUG_BARE_LF),
    ("rl_bare_cr", 400, "{m} {t} HTTP/1.1\r" + H + "\r\n", ALL_M, T2, None),
    ("end_bare_lf", 400, "{m} {t} HTTP/1.1\r\n" + H + "\n", ALL_M, T2, BUG_BARE_LF),
    ("all_bare_lf", 400, "{m} {t} HTTP/1.1\nHost: example.com\n\n", ALL_M, T2, None),
    ("http10_bare_lf", 400, "{m} {t} HTTP/1.0\n\n", ALL_M, T2, BUG_BARE_LF),
    ("end_bare_cr", 400, "{m} {t} HTTP/1.1\r\n" + H + "\rX", ALL_M, T2, None),
    ("nul_method", 400, "G\x00ET {t} HTTP/1.1\r\n" + H + "\r\n", ["-"], T2, None),
    ("nul_target", 400, "{m} {t}\x00 HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("nul_version", 400, "{m} {t} HTTP/1.\x001\r\n" + H + "\r\n", ALL_M, T2, BUG_VERSION_SYNTAX),
    ("ctl_target", 400, "{m} /a\x01b HTTP/1.1\r\n" + H + "\r\n", ALL_M, ["-"], None),
    ("del_target", 400, "{m} /a\x7fb HTTP/1.1\r\n" + H + "\r\n", ALL_M, ["-"], None),
    ("high_target", 400, "{m} /a\xffb HTTP/1.1\r\n" + H + "\r\n", ALL_M, ["-"], None),
    ("absolute_form", 400, "{m} http://example.com{t} HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("absolute_form_https", 400, "{m} https://example.com{t} HTTP/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("asterisk_form", 400, "{m} * HTTP/1.1\r\n" + H + "\r\n", ALL_M + ["OPTIONS"], ["-"], None),
    ("authority_form", 400, "CONNECT example.com:80 HTTP/1.1\r\n" + H + "\r\n", ["-"], ["-"], None),
    ("relative_target", 400, "{m} a/b HTTP/1.1\r\n" + H + "\r\n", ALL_M, ["-"], None),
    ("empty_target", 400, "{m}  HTTP/1.1\r\n" + H + "\r\n", ALL_M, ["-"], None),
    ("query_only_target", 400, "{m} ?a=b HTTP/1.1\r\n" + H + "\r\n", ALL_M, ["-"], None),
    # HTTP/0.9-style simple request: a version spate does not speak -> 505
    ("missing_version", 400, "{m} {t}\r\n" + H + "\r\n", ["GET"], T2, None),
    ("method_only", 400, "{m}\r\n" + H + "\r\n", ALL_M, ["-"], None),
    ("lowercase_version", 400, "{m} {t} http/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("mixedcase_version", 400, "{m} {t} Http/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("https_version", 400, "{m} {t} HTTPS/1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_no_minor", 400, "{m} {t} HTTP/1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_long_minor", 400, "{m} {t} HTTP/1.10\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_suffix", 400, "{m} {t} HTTP/1.1x\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_space", 400, "{m} {t} HTTP /1.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_alpha_minor", 400, "{m} {t} HTTP/1.x\r\n" + H + "\r\n", ALL_M, T2, BUG_VERSION_SYNTAX),
    ("version_alpha_major", 400, "{m} {t} HTTP/x.1\r\n" + H + "\r\n", ALL_M, T2, BUG_VERSION_SYNTAX),
    ("version_no_minor_digit", 400, "{m} {t} HTTP/1.\r\n" + H + "\r\n", ALL_M, T2, BUG_VERSION_SYNTAX),
    ("version_no_major_digit", 400, "{m} {t} HTTP/.1\r\n" + H + "\r\n", ALL_M, T2, BUG_VERSION_SYNTAX),
    ("version_two_digit_major", 400, "{m} {t} HTTP/11.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_1_2", 505, "{m} {t} HTTP/1.2\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_2_0", 505, "{m} {t} HTTP/2.0\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_3_1", 505, "{m} {t} HTTP/3.1\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_0_9", 505, "{m} {t} HTTP/0.9\r\n" + H + "\r\n", ALL_M, T2, None),
    ("version_9_9", 505, "{m} {t} HTTP/9.9\r\n" + H + "\r\n", ALL_M, T2, None),
    ("h2_preface", 505, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ["-"], ["-"], None),
    ("method_lowercase", 400, "get {t} HTTP/1.1\r\n" + H + "\r\n", ["-"], T2, None),
    ("method_unknown", 400, "FOO {t} HTTP/1.1\r\n" + H + "\r\n", ["-"], T2, None),
    ("method_utf8", 400, "G\xc3\x89T {t} HTTP/1.1\r\n" + H + "\r\n", ["-"], T2, None),
    ("missing_host", 400, "{m} {t} HTTP/1.1\r\nX-A: b\r\n\r\n", ALL_M, T2, None),
    ("missing_host_no_headers", 400, "{m} {t} HTTP/1.1\r\n\r\n", ALL_M, T2, None),
    # HTTP/1.0 with Transfer-Encoding: framing is faulty (RFC 9112 6.1)
    ("http10_te_keepalive", 400,
     "POST {t} HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     ["-"], T2,
     None),
]


def rl_rows():
    for fid, status, tmpl, methods, targets, bug in RL_FAMILIES:
        for m, t in itertools.product(methods, targets):
            raw = tmpl.replace("{m}", m).replace("{t}", t).encode("latin-1")
            name = fid
            if m != "-":
                name += "-" + m
            if t != "-":
                name += "-" + ("root" if t == "/" else "deep")
            yield (name, status, raw, bug)


ROWS = list(header_rows()) + list(rl_rows())
BATCH = 50


def params():
    out = []
    for i, (name, status, raw, bug) in enumerate(ROWS):
        marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
        out.append(pytest.param(i, status, raw, id=name, marks=marks))
    return out


def test_table_is_big_enough():
    assert len(ROWS) >= 1000, len(ROWS)
    assert len({r[0] for r in ROWS}) == len(ROWS)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("malformed") / "data"
    s = Server([spate_bin(), "serve", "--port", "0", "--threads", "2", "--data-dir", str(d),
                "--set", "http.max_body_bytes=%d" % MAX_BODY], str(d))
    s.parse_errors = None
    yield s
    # The table ran against this one process: it must still drain and exit 0.
    r = request(s.port, get("/healthz"))
    assert r.status == 200
    s.stop()


def parse_errors(port):
    return metrics(port)["spate_http_parse_errors_total"]


@pytest.mark.parametrize("idx,status,raw", params())
def test_malformed(srv, idx, status, raw):
    before, srv.parse_errors = srv.parse_errors, None
    if before is None:
        before = parse_errors(srv.port)
    with Conn(srv.port, timeout=3 * SLOW) as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before all of a long row is sent
        try:
            r = c.read_response()
        except Closed:
            pytest.fail("closed without a response")
        assert r.status == status, "expected %d for %r, got %r" % (status, raw, r)
        assert r.header("connection") == "close", r
        assert r.header("content-type") == "application/json"
        assert "detail" in r.json()
        assert c.wait_closed(timeout=3 * SLOW), "connection left open after %d" % status
    after = parse_errors(srv.port)
    assert after == before + 1, "parse_errors went %d -> %d" % (before, after)
    srv.parse_errors = after
    if idx % BATCH == BATCH - 1 or idx == len(ROWS) - 1:
        r = request(srv.port, get("/healthz"))
        assert r.status == 200 and r.json() == {"status": "ok"}


def test_healthy_after_table(srv):
    """After the whole table a normal keep-alive exchange still works and
    no connection is left behind."""
    with Conn(srv.port) as c:
        for _ in range(3):
            c.send(get("/"))
            r = c.read_response()
            assert r.status == 200
    m = metrics(srv.port)
    assert m["spate_http_connections_open"] == 1  # the scrape itself
    assert m["spate_http_parse_errors_total"] >= sum(1 for r in ROWS if not r[3])
