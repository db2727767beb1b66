"""`spate topics` against a real server: create (with a schema), list,
describe, delete, and the exit codes for conflicts, unknown topics and bad
usage."""
import json
import subprocess

from conftest import spate_bin


def run(*args):
    p = subprocess.run([spate_bin(), "topics"] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_topics_cli_round_trip(spate, tmp_path):
    url = "http://127.0.0.1:%d" % spate.port
    schema = tmp_path / "ticks.json"
    schema.write_text('{"type":"object","required":["symbol"]}')
    rc, out, err = run("--url", url, "create", "ticks", "--partitions", "3", "--schema", str(schema))
    assert rc == 0, err
    t = json.loads(out)
    assert t["name"] == "ticks" and t["partitions"] == 3
    assert t["schema"] == {"type": "object", "required": ["symbol"]}

    rc, out, _ = run("--url", url, "list")
    assert rc == 0 and "ticks" in json.loads(out)["topics"]
    rc, out, _ = run("--url", url, "describe", "ticks")
    assert rc == 0 and len(json.loads(out)["partition_info"]) == 3

    rc, _, err = run("--url", url, "create", "ticks")
    assert rc == 1 and json.loads(err) == {"detail": "Topic 'ticks' already exists"}
    rc, _, _ = run("--url", url, "delete", "ticks")
    assert rc == 0
    rc, _, err = run("--url", url, "describe", "ticks")
    assert rc == 1 and json.loads(err) == {"detail": "Topic 'ticks' not found"}


def test_topics_cli_usage_errors(spate):
    url = "http://127.0.0.1:%d" % spate.port
    for args in (["create", "bad/name"], ["describe"], ["frobnicate", "x"], ["create", "t", "--partitions", "x"],
                 ["create", "t", "--schema", "/nonexistent.json"]):
        rc, out, err = run("--url", url, *args)
        assert rc == 2, (args, out, err)
        assert len(err.strip().splitlines()) == 1, err
    rc, _, err = run("--url", "http://127.0.0.1:1", "list")
    assert rc == 1 and "cannot connect" in err
