"""--executor ray on a real local Ray cluster started here; missing cluster/tracking extras named."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.parity import PROBE_TEXTS

ray = pytest.importorskip("ray", reason="the cluster extra is not installed: pip install 'qonnx-compare[cluster]'")

SAME = ("status", "accuracy", "agreement", "size_mb", "artifact")  # all but timings and memory


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    f = tmp_path_factory.mktemp("data") / "reviews.csv"
    pd.DataFrame({"review": PROBE_TEXTS * 3, "sentiment": ["positive", "negative", "negative"] * 8}).to_csv(f, index=False)
    return f


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head` with 2 CPUs on a free port of 127.0.0.1; stopped afterwards. Token
    authentication off, explicitly: Ray turns it on for `ray start` when ~/.ray/auth_token exists
    (any earlier local ray.init writes one), and a driver given an address sends a token only
    with RAY_AUTH_MODE=token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = Path("/tmp") / f"qray{os.getpid()}"  # short: Ray's unix sockets live here
    ray_bin = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--node-ip-address=127.0.0.1",
                    f"--temp-dir={temp}", "--disable-usage-stats"], check=True, capture_output=True, env=env, timeout=120)
    yield f"127.0.0.1:{port}"
    subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env, timeout=120)
    subprocess.run(["rm", "-rf", str(temp)])


def sweep_file(folder, model, reviews, **extra):
    doc = {"name": "tiny-ray", "model": str(model), "dataset": str(reviews), "text_column": "review",
           "label_column": "sentiment", "max_samples": 12, "latency_samples": 5, "warmup": 1, "threads": 1,
           "variants": ["onnx-fp32", "onnx-int8-dynamic"], "batch_sizes": [1, 4], "sequence_lengths": [16], **extra}
    f = folder / "sweep.yaml"
    f.write_text(yaml.safe_dump(doc))
    return f


def rows_of(run_dir):
    return {r["variant"]: r for r in json.loads((Path(run_dir) / "results.json").read_text())["rows"]}


def test_ray_rows_match_local_rows(cluster, tiny_classifier, reviews, tmp_path):
    f = sweep_file(tmp_path, tiny_classifier, reviews)
    for name, flags in (("local", []), ("ray", ["--executor", "ray", "--address", cluster])):
        res = CliRunner().invoke(main, ["sweep", str(f), "-o", str(tmp_path / name), *flags])
        assert res.exit_code == 0, res.output
    local, remote = (rows_of(next((tmp_path / n / "points").iterdir())) for n in ("local", "ray"))
    assert set(local) == set(remote) == {"onnx-fp32", "onnx-int8-dynamic"}
    for v in local:
        assert {k: local[v][k] for k in SAME} == {k: remote[v][k] for k in SAME}
        assert [(s["batch"], s["length"], s["padding"]) for s in local[v]["shapes"]] == \
            [(s["batch"], s["length"], s["padding"]) for s in remote[v]["shapes"]]
        node = remote[v]["node"]
        assert node["hostname"] == socket.gethostname() and node["node_id"] and not node["retried"]
        assert 0 <= node["overhead_s"] < node["round_trip_s"]
        assert local[v]["node"] is None


def test_a_node_process_killed_mid_row_is_retried_or_reported(cluster, tiny_classifier, reviews, tmp_path):
    import psutil

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "qonnx", "compare", str(tiny_classifier), "-o", str(out), "--dataset", str(reviews),
           "--text-column", "review", "--label-column", "sentiment", "--variants", "onnx-fp32,onnx-int8-dynamic",
           "--latency-samples", "20000", "--threads", "1", "--executor", "ray", "--address", cluster]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    job = out / "work" / "onnx-fp32@cpu" / "job.json"
    deadline = time.time() + 120
    while not job.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert job.is_file(), "the row never started"
    time.sleep(0.3)  # the worker is starting (its imports alone take longer) or measuring
    actors = [p for p in psutil.process_iter(["cmdline"]) if "ray::NodeRunner" in " ".join(p.info["cmdline"] or [])]
    assert actors, "no NodeRunner actor process found"
    for p in actors:
        os.kill(p.pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    rows = rows_of(out)
    assert set(rows) == {"onnx-fp32", "onnx-int8-dynamic"}, output  # nothing lost
    killed = rows["onnx-fp32"]
    assert (killed["status"] == "ok" and killed["node"]["retried"]) or \
        (killed["status"] == "failed" and "died" in killed["reason"]), killed
    after = rows["onnx-int8-dynamic"]
    assert after["status"] == "ok" and not after["node"]["retried"], after


def test_ray_without_a_cluster_is_one_clear_error(tiny_classifier, reviews, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(main, ["compare", str(tiny_classifier), "-o", str(tmp_path / "r"), "--dataset", str(reviews),
                                    "--text-column", "review", "--label-column", "sentiment", "--variants", "onnx-fp32",
                                    "--executor", "ray", "--address", f"127.0.0.1:{port}"])
    assert res.exit_code == 1 and "cannot reach the Ray cluster at 127.0.0.1:" in res.output, res.output
    assert not (tmp_path / "r").exists()


def test_missing_extras_are_named(monkeypatch, tiny_classifier, reviews, tmp_path):
    for module, flags, extra in (("ray", ["--executor", "ray"], "qonnx-compare[cluster]"),
                                 ("mlflow", ["--mlflow", str(tmp_path / "m.db")], "qonnx-compare[tracking]")):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
        res = CliRunner().invoke(main, ["compare", str(tiny_classifier), "-o", str(tmp_path / module), "--dataset",
                                        str(reviews), "--text-column", "review", "--label-column", "sentiment",
                                        "--variants", "onnx-fp32", *flags])
        assert res.exit_code == 1 and f"pip install '{extra}'" in res.output, res.output
        assert not (tmp_path / module).exists()  # refused before the run started


def compare_args(model, reviews, out, *flags):
    return ["compare", str(model), "-o", str(out), "--dataset", str(reviews), "--text-column", "review",
            "--label-column", "sentiment", "--max-samples", "12", "--latency-samples", "5", "--warmup", "1", *flags]


def node_cores():
    """What the test cluster's one node offers: this machine's usable cores, at most the 2 CPUs it gives Ray."""
    return min(len(os.sched_getaffinity(0)), 2)


def test_rows_run_at_their_nodes_cores(cluster, tiny_classifier, reviews, tmp_path, monkeypatch):
    """No --threads on Ray: each row at its node's usable cores, not at the driver's (made 1 here),
    and each row says which."""
    from qonnx.config import parts

    monkeypatch.setattr(parts, "usable_cores", lambda: 1)
    res = CliRunner().invoke(main, compare_args(tiny_classifier, reviews, tmp_path / "r", "--variants", "onnx-fp32",
                                                "--executor", "ray", "--address", cluster))
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["settings"]["threads"] is None
    row = doc["rows"][0]
    assert row["status"] == "ok" and row["threads"] == row["node"]["cores"] == node_cores(), row
    assert "each Ray node's usable cores" in " ".join(doc["method"])


def test_threads_beyond_every_nodes_cores_fail_the_rows_saying_why(cluster, tiny_classifier, reviews, tmp_path):
    too_many = node_cores() + 1
    res = CliRunner().invoke(main, compare_args(tiny_classifier, reviews, tmp_path / "r", "--variants", "onnx-fp32",
                                                "--threads", str(too_many), "--executor", "ray", "--address", cluster))
    assert res.exit_code != 0, res.output
    row = rows_of(tmp_path / "r")["onnx-fp32"]
    assert row["status"] == "failed" and row["reason"] == (
        f"--threads {too_many} is more than the usable cores of every Ray node that could take this row "
        f"({socket.gethostname()}: {node_cores()}); give --threads {node_cores()} or fewer, or leave --threads out: "
        "each node then uses its own cores"), row


def test_a_local_cluster_refuses_more_threads_than_this_machine_has(tiny_classifier, reviews, tmp_path):
    from qonnx.config import usable_cores

    res = CliRunner().invoke(main, compare_args(tiny_classifier, reviews, tmp_path / "r", "--variants", "onnx-fp32",
                                                "--threads", str(usable_cores() + 1), "--executor", "ray"))
    assert res.exit_code == 1 and f"--threads {usable_cores() + 1} is more than the" in res.output, res.output
    assert not (tmp_path / "r").exists()


def test_resume_refuses_a_node_that_changed_since_it_measured(cluster, tiny_classifier, reviews, tmp_path):
    """Each row carries its node's environment; a resume checks every node that measured rows (the
    driver's own check passes here: it is the same machine), then measures only what is missing."""
    out = tmp_path / "r"
    ray_flags = ["--variants", "onnx-fp32,onnx-int8-dynamic", "--threads", "1", "--executor", "ray", "--address", cluster]
    res = CliRunner().invoke(main, compare_args(tiny_classifier, reviews, out, *ray_flags))
    assert res.exit_code == 0, res.output
    kept = out / "rows" / "onnx-fp32@cpu.json"
    original = kept.read_text()
    (out / "rows" / "onnx-int8-dynamic@cpu.json").unlink()
    row = json.loads(original)
    was = row["environment"]["versions"]["onnxruntime"]
    row["environment"]["cpu"]["model"] = "Some Other CPU"
    row["environment"]["versions"]["onnxruntime"] = "1.0.0"
    kept.write_text(json.dumps(row))
    res = CliRunner().invoke(main, compare_args(tiny_classifier, reviews, out, *ray_flags, "--resume"))
    assert res.exit_code == 1, res.output
    assert f"Ray node {socket.gethostname()} is not the machine that measured its rows (cpu.model: Some Other CPU ->" \
        in " ".join(res.output.split()), res.output
    assert f"versions.onnxruntime: 1.0.0 -> {was}" in " ".join(res.output.split()), res.output
    assert not (out / "rows" / "onnx-int8-dynamic@cpu.json").exists()  # refused before any row was measured
    kept.write_text(original)  # the node as it was: the resume measures the missing row only
    res = CliRunner().invoke(main, compare_args(tiny_classifier, reviews, out, *ray_flags, "--resume"))
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert rows["onnx-int8-dynamic"]["status"] == "ok" and kept.read_text() == original
