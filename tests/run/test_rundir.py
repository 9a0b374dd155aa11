"""compare's run lifecycle: inputs made once, resume that refuses to mix, workers tied to the
parent, interruption that keeps finished rows, and the numbers each row carries."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import CompareConfig, usable_cores
from qonnx.errors import ConfigError, DataError
from qonnx.run.compare import compare
from qonnx.schema import read as load_results

WORDS = "the film was a delight good great awful boring predictable mess it rained all day".split()


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A user's eval file (other column names, string labels, sorted by label) and a
    calibration file with yet another column name."""
    import random

    d = tmp_path_factory.mktemp("user")
    rng = random.Random(0)
    rows = [(" ".join(rng.choice(WORDS) for _ in range(6)), lab) for lab in ["negative"] * 60 + ["positive"] * 40]
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(d / "eval.csv", index=False)
    pd.DataFrame({"sentence": [r[0] for r in rows[::4]]}).to_csv(d / "calib.csv", index=False)
    return d


def cfg_for(model, files, out, **kw):
    base = dict(model=str(model), output=out, dataset=str(files / "eval.csv"), text_column="review",
                label_column="sentiment", calibration=str(files / "calib.csv"), calibration_text_column="sentence",
                max_samples=20, latency_samples=5, warmup=1, batch_size=8,
                variants=["torch-fp32", "onnx-fp32", "onnx-int8-static"])
    return CompareConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(tiny_classifier, user_files, tmp_path_factory):
    cfg = cfg_for(tiny_classifier, user_files, tmp_path_factory.mktemp("runs") / "run")
    return cfg, compare(cfg)


def by(results):
    return {(r["variant"], r["provider"]): r for r in results["rows"]}


def test_users_file_with_other_columns_runs_every_row(run):
    _, results = run
    assert {r["variant"]: r["status"] for r in results["rows"]} == {
        "torch-fp32": "ok", "onnx-fp32": "ok", "onnx-int8-static": "ok"}, [r["reason"] for r in results["rows"]]


def test_sample_is_stratified_and_recorded(run):
    _, results = run
    sel = results["settings"]["dataset_selection"]
    assert sel["rows"] == 20 and sel["of"] == 100 and sel["method"].startswith("seeded, stratified")
    labels = json.loads((run[0].output / "work" / "data.json").read_text())["labels"]
    assert sorted(labels).count(1) == 8 and labels.count(0) == 12  # 40 % positive, as in the file


def test_results_are_versioned_typed_and_absolute(run):
    cfg, results = run
    doc = json.loads((cfg.output / "results.json").read_text())
    assert doc["schema_version"] == 2 and doc["units"]["size_mb"] == "MiB"
    for r in doc["rows"]:
        assert os.path.isabs(r["artifact"]) and os.path.isabs(r["outputs"])
        assert r["environment"]["cpu"]["model"]
        # a model holds at least its weights once loaded (tests/measure/test_memory.py holds the
        # figures against allocations made on purpose)
        assert r["model_memory_mb"] >= r["size_mb"] > 0 and r["load_peak_mb"] >= r["baseline_mb"]
        assert r["latency_ms"]["n"] == 5 and r["latency_ms"]["p90"] is None and r["latency_ms"]["p99"] is None
        assert r["threads"] == doc["settings"]["threads"] == usable_cores()  # the thread count it ran with


def test_onnx_workers_do_not_import_torch(run):
    rows = by(run[1])
    assert rows[("onnx-fp32", "cpu")]["imported_torch"] is False
    assert rows[("torch-fp32", "cpu")]["imported_torch"] is True
    assert rows[("onnx-fp32", "cpu")]["baseline_mb"] < rows[("torch-fp32", "cpu")]["baseline_mb"] - 100


def test_another_calibration_file_builds_another_artifact(run, tiny_classifier, user_files, tmp_path):
    cfg, results = run
    other = tmp_path / "calib2.csv"
    pd.DataFrame({"sentence": ["it rained all day", "a great film"]}).to_csv(other, index=False)
    second = compare(cfg_for(tiny_classifier, user_files, tmp_path / "run2", calibration=str(other),
                             variants=["onnx-int8-static"]))
    a = by(results)[("onnx-int8-static", "cpu")]["artifact"]
    b = by(second)[("onnx-int8-static", "cpu")]["artifact"]
    assert a != b
    prov = json.loads(open(os.path.join(b, "manifest.json")).read())["settings"]["calibration"]
    assert prov["count"] == 2


@pytest.mark.parametrize("change", [{"text_column": "sentiment"}, {"seed": 3}, {"warmup": 2},
                                    {"calibration_text_column": "review"}, {"task": "text-classification"}])
def test_resume_refuses_changed_settings_and_writes_nothing(run, change):
    cfg, _ = run
    data_json = cfg.output / "work" / "data.json"
    before = data_json.stat().st_mtime_ns, (cfg.output / "run.json").read_text()
    if "task" in change:  # the same task given explicitly is not a change
        compare(CompareConfig(**{**vars(cfg), "resume": True, **change}))
        return
    with pytest.raises(ConfigError, match="settings differ from the first run"):
        compare(CompareConfig(**{**vars(cfg), "resume": True, **change}))
    assert (data_json.stat().st_mtime_ns, (cfg.output / "run.json").read_text()) == before


def test_resume_refuses_changed_data(run, tmp_path):
    cfg, _ = run
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(cfg.output, copy)
    changed = tmp_path / "eval.csv"
    df = pd.read_csv(cfg.dataset)
    df.loc[0, "review"] = "something else entirely"
    df.to_csv(changed, index=False)
    with pytest.raises(ConfigError, match="dataset"):
        compare(CompareConfig(**{**vars(cfg), "output": copy, "resume": True, "dataset": str(changed)}))


def test_resume_refuses_another_machine(run, monkeypatch, tmp_path):
    cfg, _ = run
    import shutil

    from qonnx.run import compare as pipeline

    copy = tmp_path / "run"
    shutil.copytree(cfg.output, copy)
    real = pipeline.collect

    def other():
        env = real()
        env["cpu"] = {**env["cpu"], "model": "Some Other CPU"}
        return env

    monkeypatch.setattr(pipeline, "collect", other)
    with pytest.raises(ConfigError, match="measured on another machine .*cpu.model: .* -> Some Other CPU"):
        compare(CompareConfig(**{**vars(cfg), "output": copy, "resume": True}))


def test_resume_adds_rows_with_their_own_environment(run, tmp_path):
    cfg, _ = run
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(cfg.output, copy)
    (copy / "rows" / "onnx-fp32@cpu.json").unlink()
    results = compare(CompareConfig(**{**vars(cfg), "output": copy, "resume": True,
                                       "variants": ["torch-fp32", "onnx-fp32", "onnx-int8-static", "onnx-fp16"]}))
    assert {r["variant"] for r in results["rows"] if r["status"] == "ok"} >= {"onnx-fp32", "onnx-fp16"}


@pytest.mark.parametrize("opt,value,msg", [
    ("--threads", "0", "--threads must be at least 1, got 0"),
    ("--threads", "1000", "--threads 1000 is more than the"),
    ("--eval-tokens", "0", "--eval-tokens must be at least 32, got 0"),
    ("--eval-tokens", "1000000000", "--eval-tokens 1000000000 is more than 100,000,000"),
    ("--batch-size", "0", "--batch-size must be at least 1, got 0"),
    ("--warmup", "0", "--warmup must be at least 1, got 0"),
    ("--max-samples", "0", "--max-samples must be at least 1, got 0"),
])
def test_numeric_options_are_checked(opt, value, msg):
    r = CliRunner().invoke(main, ["compare", "demo:sentiment", opt, value])
    assert r.exit_code == 1 and msg in r.output


def test_calibration_equal_to_the_eval_set_is_refused(user_files):
    f = str(user_files / "eval.csv")
    r = CliRunner().invoke(main, ["compare", "demo:sentiment", "--dataset", f, "--calibration", f])
    assert r.exit_code == 1 and "--calibration is the evaluation set" in r.output


def test_a_copy_of_the_eval_set_is_the_eval_set(user_files, tmp_path):
    """Data is kept apart by content, not by path: a copy under another name is refused too."""
    f = user_files / "eval.csv"
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(f.read_bytes())
    r = CliRunner().invoke(main, ["compare", "demo:sentiment", "--dataset", str(f), "--calibration", str(copy)])
    assert r.exit_code == 1 and "--calibration is the evaluation set" in r.output


def test_empty_and_missing_texts_are_one_clear_error(tiny_classifier, tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": ["fine", None, "  "], "label": ["positive", "negative", "negative"]}).to_csv(f, index=False)
    r = CliRunner().invoke(main, ["compare", str(tiny_classifier), "--dataset", str(f), "-o", str(tmp_path / "r")])
    assert r.exit_code == 1 and "2 row(s) have an empty or missing 'text' text (first at row 2)" in r.output
    assert not (tmp_path / "r").exists()


def test_output_that_is_a_users_folder_or_a_file(tiny_classifier, user_files, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="is not empty and is not a qonnx run"):
        compare(cfg_for(tiny_classifier, user_files, mine))
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        compare(cfg_for(tiny_classifier, user_files, f))
    assert (mine / "notes.txt").read_text() == "x" and f.read_text() == "x"


@pytest.mark.parametrize("doc,msg", [({"settings": {"kind": "classification"}}, "has no list of rows"),
                                     ({"rows": [{"variant": "x", "status": "ok"}], "settings": {"kind": "lm"}},
                                      "a row lacks provider")])
def test_broken_results_file(tmp_path, doc, msg):
    (tmp_path / "results.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=msg):
        load_results(tmp_path)
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 1 and msg in r.output


def _start(tiny_classifier, user_files, out, env_extra=None):
    """A compare whose worker runs for a long time (many timed requests)."""
    cmd = [sys.executable, "-m", "qonnx", "compare", str(tiny_classifier), "--dataset", str(user_files / "eval.csv"),
           "--text-column", "review", "--label-column", "sentiment", "--variants", "onnx-fp32",
           "--latency-samples", "2000000", "--max-samples", "8", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env_extra or {})})


def _workers(parent_pid):
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if "qonnx.run.worker" in " ".join(p.info["cmdline"] or [])
            and str(parent_pid) == p.environ().get("QONNX_PARENT_PID")]


def _wait_for_worker(proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        found = _workers(proc.pid)
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        time.sleep(0.5)
    raise AssertionError("no worker started")


def test_kill_9_of_the_parent_ends_its_workers(tiny_classifier, user_files, tmp_path):
    proc = _start(tiny_classifier, user_files, tmp_path / "run")
    workers = _wait_for_worker(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    import psutil

    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def test_sigterm_is_handled_like_ctrl_c(tiny_classifier, user_files, tmp_path):
    proc = _start(tiny_classifier, user_files, tmp_path / "run")
    workers = _wait_for_worker(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; the finished rows are kept in" in err and "--resume" in err
    import psutil

    assert not psutil.wait_procs(workers, timeout=10)[1]
