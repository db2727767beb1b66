"""Routes declared in the configuration file (`routes:`): the real binary
started with a config file, driven over HTTP.

Covers: produce and latest routes on custom paths with an inline schema and
a schema_file (422 bodies, 200 positions, ack=none 202, newest-first reads),
topics created at start with the route's schema and kept across restarts,
OpenAPI describing the declared routes, `routes: []` serving none, the
defaults following demo.*_topic, --print-config round-tripping, and bad
declarations: load-time errors exit 2 naming file, line, route and field;
start-up errors (a path a built-in route owns, a schema that conflicts with
an existing topic's, a schema that does not compile, a missing
schema_file) exit non-zero with a log line naming the route.
"""
import json
import os
import subprocess

import pytest

from api_helpers import Api, wait_for
from conftest import SLOW, spate_bin

ORDER_SCHEMA = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}$"},
                   "qty": {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}
NOTE_SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def custom_config(tmp_path):
    schema_file = write(tmp_path / "note.schema.json", json.dumps(NOTE_SCHEMA))
    return write(tmp_path / "spate.yaml", """\
routes:
  - {method: POST, path: /shop/orders, topic: orders, action: produce,
     schema: '%s'}
  - method: GET
    path: /shop/orders
    topic: orders
    action: latest
    limit: 2
  - {method: PUT, path: /notes, topic: notes, action: produce, schema_file: "%s"}
  - {method: GET, path: /notes/newest, topic: notes, action: latest, limit: 1}
""" % (json.dumps(ORDER_SCHEMA), schema_file))


def test_declared_produce_and_latest(spate_factory, tmp_path):
    srv = spate_factory(args=["--config", custom_config(tmp_path)])
    with Api(srv.port) as api:
        # the routes' topics exist, with the routes' schemas
        assert api.describe("orders")["schema"] == ORDER_SCHEMA
        assert api.describe("notes")["schema"] == NOTE_SCHEMA
        # the defaults are gone: only what the file declares is served
        assert api.post("/items", {"name": "a", "price": 1}).status_code == 404
        assert api.get("/latest-news").status_code == 404
        assert api.get("/v1/topics/items").status_code == 404

        # 422 with FastAPI's body, nothing appended
        r = api.post("/shop/orders", {"sku": "abc", "qty": 0, "x": 1})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert {d["type"] for d in detail} >= {"string_pattern_mismatch", "greater_than_equal"}
        assert {tuple(d["loc"]) for d in detail} >= {("body", "sku"), ("body", "qty")}
        r = api.post("/shop/orders", {"qty": 1})
        assert r.status_code == 422
        assert r.json()["detail"][0]["type"] == "missing"
        assert r.json()["detail"][0]["loc"] == ["body", "sku"]
        r = api.post("/shop/orders", b"{\"sku\":")
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
        assert api.end_offsets("orders") == [0]

        # 200 once durable, with the record's position
        for i, sku in enumerate(["AAA", "BBB", "CCC"]):
            r = api.post("/shop/orders", {"sku": sku, "qty": i + 1})
            assert r.status_code == 200, r.text
            ans = r.json()
            assert list(ans) == ["timestamp", "partition", "offset"]
            assert ans["partition"] == 0 and ans["offset"] == i and ans["timestamp"] > 0
        # fire and forget
        r = api.post("/shop/orders", {"sku": "DDD", "qty": 9}, params={"ack": "none"})
        assert r.status_code == 202, r.text

        # the declared latest route: the newest `limit` values, newest first
        got = wait_for(lambda: (lambda j: j if j and j[0]["sku"] == "DDD" else None)(
            api.get("/shop/orders").json()), "GET /shop/orders to show DDD")
        assert got == [{"sku": "DDD", "qty": 9}, {"sku": "CCC", "qty": 3}]

        # PUT route with its schema from schema_file
        r = api.c.put("/notes", content=b'{"text": 5}', headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
        r = api.c.put("/notes", content=b'{"text": "hi"}',
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["offset"] == 0
        got = wait_for(lambda: api.get("/notes/newest").json() or None, "GET /notes/newest")
        assert got == [{"text": "hi"}]

        # methods the file does not declare
        assert api.get("/notes").status_code == 405
        assert api.post("/notes/newest", {"text": "x"}).status_code == 405


def test_openapi_lists_declared_routes(spate_factory, tmp_path):
    srv = spate_factory(args=["--config", custom_config(tmp_path)])
    with Api(srv.port) as api:
        paths = api.get("/openapi.json").json()["paths"]
    post = paths["/shop/orders"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == ORDER_SCHEMA
    assert {"200", "202", "422", "503", "504"} <= set(post["responses"])
    assert post["responses"]["422"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/HTTPValidationError"}
    assert [p["name"] for p in post["parameters"]] == ["ack"]
    get = paths["/shop/orders"]["get"]
    assert get["summary"] and get["operationId"] == "GET /shop/orders"
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == \
        {"type": "array", "items": ORDER_SCHEMA}
    put = paths["/notes"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == NOTE_SCHEMA
    assert "/items" not in paths and "/latest-news" not in paths


def test_empty_routes_declares_none(spate_factory, tmp_path):
    srv = spate_factory(args=["--config", write(tmp_path / "c.yaml", "routes: []\n")])
    with Api(srv.port) as api:
        assert api.post("/items", {"name": "a", "price": 1}).status_code == 404
        assert api.get("/latest-news").status_code == 404
        assert api.get("/v1/topics").json()["topics"] == []
        assert api.get("/healthz").status_code == 200


def test_defaults_follow_demo_keys(spate_factory):
    srv = spate_factory("demo.items_topic=things", "demo.news_topic=")
    with Api(srv.port) as api:
        r = api.post("/items", {"name": "a", "price": 1})
        assert r.status_code == 200, r.text
        assert api.end_offsets("things") == [1]
        assert api.post("/items", {"name": "a"}).status_code == 422  # the Item schema
        assert api.get("/latest-news").status_code == 404
        assert api.get("/v1/topics/items").status_code == 404


def test_restart_keeps_topic_and_schema(spate_factory, tmp_path):
    cfg = custom_config(tmp_path)
    srv = spate_factory(args=["--config", cfg])
    data = srv.data_dir
    with Api(srv.port) as api:
        assert api.post("/shop/orders", {"sku": "AAA", "qty": 1}).status_code == 200
    srv.stop()
    # same routes on the same data: the topic and its record are kept
    srv = spate_factory(args=["--config", cfg, "--data-dir", data])
    with Api(srv.port) as api:
        assert api.end_offsets("orders") == [1]
        assert api.describe("orders")["schema"] == ORDER_SCHEMA
    srv.stop()
    # a route without a schema on an existing topic: the topic keeps its own
    plain = write(tmp_path / "plain.yaml", "routes:\n"
                  "  - {method: POST, path: /o, topic: orders, action: produce}\n")
    srv = spate_factory(args=["--config", plain, "--data-dir", data])
    with Api(srv.port) as api:
        assert api.post("/o", {"sku": "bad"}).status_code == 422
        assert api.post("/o", {"sku": "BBB", "qty": 2}).json()["offset"] == 1
    srv.stop()
    # a route whose schema differs from the existing topic's: refused at start
    other = write(tmp_path / "other.yaml", "routes:\n"
                  "  - {method: POST, path: /o, topic: orders, action: produce,\n"
                  "     schema: '{\"type\": \"object\"}'}\n")
    rc, err = run_serve(tmp_path, ["--config", other, "--data-dir", data])
    assert rc == 2
    assert "routes[0] (line 2): POST /o: topic 'orders' exists with a different schema" in err


def test_print_config_round_trip(tmp_path):
    cfg = custom_config(tmp_path)
    first = subprocess.run([spate_bin(), "serve", "--config", cfg, "--print-config"],
                           capture_output=True, text=True, timeout=30 * SLOW)
    assert first.returncode == 0, first.stderr
    assert "\nroutes:\n  - {method: POST, path: \"/shop/orders\", topic: \"orders\"" in first.stdout
    assert "  - {method: GET, path: \"/notes/newest\", topic: \"notes\", action: latest, " \
           "limit: 1}\n" in first.stdout
    printed = write(tmp_path / "printed.yaml", first.stdout)
    again = subprocess.run([spate_bin(), "serve", "--config", printed, "--print-config"],
                           capture_output=True, text=True, timeout=30 * SLOW)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    # without routes: the defaults are printed
    plain = subprocess.run([spate_bin(), "serve", "--print-config"], capture_output=True,
                           text=True, timeout=30 * SLOW)
    assert "routes:\n  - {method: GET, path: \"/latest-news\", topic: \"latest-news\", " \
           "action: latest, limit: 10}\n  - {method: POST, path: \"/items\", topic: \"items\", " \
           "action: produce, schema: \"builtin:item\"}\n" in plain.stdout


def run_serve(tmp_path, args):
    """Runs `spate serve` expecting it to stop on its own; returns (rc, stderr)."""
    cmd = [spate_bin(), "serve", "--port", "0", "--threads", "1"]
    if "--data-dir" not in args:
        cmd += ["--data-dir", str(tmp_path / "fail-data")]
    p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30 * SLOW)
    return p.returncode, p.stderr


LOAD_ERRORS = [
    ("  - {method: GET, path: /a, topic: t, action: latest}\n"
     "  - {method: FETCH, path: /b, topic: t, action: latest}\n",
     ":3: routes[1].method: 'FETCH' is not one of GET, POST, PUT"),
    ("  - {method: GET, path: a, topic: t, action: latest}\n",
     ":2: routes[0].path: 'a' does not start with '/'"),
    ("  - {method: GET, path: /a, topic: t}\n", ":2: routes[0]: missing field 'action'"),
    ("  - {method: GET, path: /a, topic: t, action: latest, colour: red}\n",
     ":2: routes[0]: unknown field 'colour'"),
    ("  - {method: GET, path: /v1/topics/x, topic: t, action: latest}\n",
     ":2: routes[0].path: '/v1/topics/x' is under /v1, which is reserved"),
    ("  - {method: GET, path: /a, topic: 'no way', action: latest}\n",
     ":2: routes[0].topic: 'no way' is not a topic name"),
    ("  - {method: GET, path: /a, topic: t, action: latest, limit: 5000}\n",
     ":2: routes[0].limit: '5000' is not a whole number from 1 to 1024"),
    ("  - {method: GET, path: /a, topic: t, action: latest}\n"
     "  - {method: GET, path: /a, topic: u, action: latest}\n",
     ":3: routes[1]: GET /a is already declared by routes[0] (line 2)"),
    ("  - {method: GET, path: /a, topic: t, action: produce}\n",
     ":2: routes[0].method: action produce takes POST or PUT, not GET"),
    ("".join("  - {method: GET, path: /r%d, topic: t, action: latest}\n" % i for i in range(33)),
     ":34: routes[32]: more than 32 routes"),
]


@pytest.mark.parametrize("routes,want", LOAD_ERRORS)
def test_bad_declarations_exit_2(tmp_path, routes, want):
    cfg = write(tmp_path / "bad.yaml", "routes:\n" + routes)
    rc, err = run_serve(tmp_path, ["--config", cfg])
    assert rc == 2, err
    assert err.startswith("spate serve: %s%s" % (cfg, want)), err
    assert not os.path.exists(tmp_path / "fail-data")  # stopped before touching anything


def test_routes_only_in_the_file(tmp_path):
    rc, err = run_serve(tmp_path, ["--set", "routes=[]"])
    assert rc == 2 and "routes are declared in the configuration file only" in err


STARTUP_ERRORS = [
    ("  - {method: GET, path: /healthz, topic: t, action: latest}\n",
     "routes[0] (line 2): GET /healthz: the path is taken by spate's own route GET /healthz"),
    ("  - {method: POST, path: /metrics, topic: t, action: produce}\n",
     "routes[0] (line 2): POST /metrics: the path is taken by spate's own route GET /metrics"),
    ("  - {method: GET, path: /docs/extra, topic: t, action: latest}\n",
     "GET /docs/extra: the path is taken by spate's own route GET /docs/{file}"),
    ("  - {method: POST, path: /z, topic: z, action: produce, schema: '{\"type\": \"objekt\"}'}\n",
     "routes[0] (line 2): POST /z: cannot create topic 'z': "),
    ("  - {method: POST, path: /z, topic: z, action: produce, schema: '{\"type\": '}\n",
     "routes[0] (line 2): POST /z: cannot create topic 'z': "),
    ("  - {method: POST, path: /z, topic: z, action: produce, schema_file: /nonexistent.json}\n",
     "routes[0] (line 2): POST /z: cannot read schema_file '/nonexistent.json': No such file"),
    ("  - {method: GET, path: /a, topic: z, action: latest}\n"
     "  - {method: POST, path: /b, topic: z, action: produce, schema: builtin:item}\n"
     "  - {method: POST, path: /c, topic: z, action: produce, schema: '{\"type\": \"object\"}'}\n",
     "routes[2] (line 4): POST /c: topic 'z' exists with a different schema"),
]


@pytest.mark.parametrize("routes,want", STARTUP_ERRORS)
def test_bad_declarations_at_start(tmp_path, routes, want):
    cfg = write(tmp_path / "bad.yaml", "routes:\n" + routes)
    rc, err = run_serve(tmp_path, ["--config", cfg])
    assert rc == 2, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line is a JSON log line
    assert not any(e["msg"] == "listening" for e in lines), err
    assert any(e["level"] == "error" and want in e.get("error", "") for e in lines), err


def test_existing_topic_without_schema_takes_the_routes(spate_factory, tmp_path):
    # a topic made without a schema (on Kafka: by another tool), then a
    # route that validates it: the topic takes the route's schema
    plain = write(tmp_path / "plain.yaml", "routes:\n"
                  "  - {method: POST, path: /o, topic: orders, action: produce}\n")
    srv = spate_factory(args=["--config", plain])
    data = srv.data_dir
    with Api(srv.port) as api:
        assert api.post("/o", {"anything": True}).status_code == 200
        assert api.describe("orders")["schema"] is None
    srv.stop()
    srv = spate_factory(args=["--config", custom_config(tmp_path), "--data-dir", data])
    with Api(srv.port) as api:
        assert api.describe("orders")["schema"] == ORDER_SCHEMA
        assert api.post("/shop/orders", {"sku": "bad"}).status_code == 422
        assert api.post("/shop/orders", {"sku": "AAA", "qty": 1}).json()["offset"] == 1
    srv.stop()
