"""compare on a tiny classifier: rows, files, skipped providers, failures as rows, resume."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import CompareConfig
from qonnx.errors import ConfigError
from qonnx.parity import PROBE_TEXTS
from qonnx.run.compare import compare

ROW_FIELDS = {"variant", "provider", "status", "reason", "accuracy", "accuracy_drop", "agreement",
              "latency_ms", "speedup", "throughput_per_s", "peak_memory_mb", "size_mb",
              "size_reduction", "artifact"}


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """A user's own file: other column names, label names in mixed case."""
    f = tmp_path_factory.mktemp("data") / "reviews.jsonl"
    pd.DataFrame({"review": PROBE_TEXTS * 3,
                  "sentiment": ["Positive", "NEGATIVE", "negative"] * 8}).to_json(f, orient="records", lines=True)
    return f


@pytest.fixture(scope="module")
def run(tiny_classifier, reviews, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    empty = tmp_path_factory.mktemp("calib") / "empty.csv"
    empty.write_text("text\n")
    cfg = CompareConfig(model=str(tiny_classifier), output=out, dataset=str(reviews),
                        text_column="review", label_column="sentiment", providers=["cpu", "cuda"],
                        variants=["torch-fp32", "onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static"],
                        calibration=str(empty), latency_samples=5, warmup=1, batch_size=8)
    return cfg, compare(cfg)


def rows(results):
    return {(r["variant"], r["provider"]): r for r in results["rows"]}


def test_every_row_has_the_fields_and_ok_rows_have_numbers(run):
    _, results = run
    by = rows(results)
    assert len(by) == 8
    for key in [("torch-fp32", "cpu"), ("onnx-fp32", "cpu"), ("onnx-int8-dynamic", "cpu")]:
        r = by[key]
        assert r["status"] == "ok", r.get("reason")
        assert ROW_FIELDS <= set(r), ROW_FIELDS - set(r)
        assert 0 <= r["accuracy"] <= 1 and r["latency_ms"]["p50"] > 0 and r["peak_memory_mb"] > 50
        assert set(r["latency_ms"]) >= {"p50", "p90", "p99", "mean"}
    assert by[("onnx-fp32", "cpu")]["agreement"] == 1.0  # same FP32 model through ORT
    assert by[("onnx-int8-dynamic", "cpu")]["size_reduction"] > 1.5
    assert results["reference"] == "torch-fp32@cpu"


def test_a_failing_variant_is_a_row_with_its_reason(run):
    _, results = run
    r = rows(results)[("onnx-int8-static", "cpu")]
    assert r["status"] == "failed" and "has no rows" in r["reason"]


def test_missing_cuda_is_a_skipped_row_not_a_crash(run):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, results = run
    for v in ("torch-fp32", "onnx-fp32"):
        r = rows(results)[(v, "cuda")]
        assert r["status"] == "skipped" and "CUDA" in r["reason"]


def test_files_written(run):
    cfg, results = run
    saved = json.loads((cfg.output / "results.json").read_text())
    assert set(saved) >= {"rows", "environment", "settings"}
    csv = pd.read_csv(cfg.output / "results.csv")
    assert {"variant", "latency_ms_p50", "latency_ms_p99", "accuracy_drop"} <= set(csv.columns)
    assert "| onnx-int8-dynamic | cpu | ok |" in (cfg.output / "report.md").read_text()
    for png in ("latency.png", "size.png", "memory.png", "accuracy.png", "tradeoff.png"):
        assert (cfg.output / png).stat().st_size > 5000


def test_existing_run_needs_resume(run):
    cfg, _ = run
    with pytest.raises(ConfigError, match="already holds results; pass --resume"):
        compare(CompareConfig(**{**vars(cfg), "resume": False}))


def test_resume_measures_only_what_is_missing(run):
    cfg, _ = run
    kept = cfg.output / "rows" / "onnx-fp32@cpu.json"
    lost = cfg.output / "rows" / "torch-fp32@cpu.json"
    before = kept.stat().st_mtime_ns
    lost.unlink()
    results = compare(CompareConfig(**{**vars(cfg), "resume": True}))
    assert kept.stat().st_mtime_ns == before
    assert rows(results)[("torch-fp32", "cpu")]["status"] == "ok"


def test_report_rerenders(run):
    cfg, _ = run
    (cfg.output / "report.md").unlink()
    r = CliRunner().invoke(main, ["report", str(cfg.output)])
    assert r.exit_code == 0, r.output
    assert (cfg.output / "report.md").is_file()


def test_validate_gate(run):
    cfg, _ = run
    ok = CliRunner().invoke(main, ["validate", str(cfg.output), "--variant", "onnx-fp32", "--max-accuracy-drop", "0"])
    assert ok.exit_code == 0 and "PASSED" in ok.output
    assert "NOTE" not in ok.output  # compare's derived figures are the ones validate recomputes
    bad = CliRunner().invoke(main, ["validate", str(cfg.output), "--variant", "onnx-int8-dynamic",
                                    "--max-size-mb", "0.0001"])
    assert bad.exit_code == 2 and "FAIL  size_mb" in bad.output
    missing = CliRunner().invoke(main, ["validate", str(cfg.output), "--variant", "bnb-int4", "--min-speedup", "1"])
    assert missing.exit_code == 1 and "has no row bnb-int4@cpu" in missing.output


def test_unknown_label_in_user_file(tiny_classifier, tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a"], "label": ["meh"]}).to_csv(f, index=False)
    r = CliRunner().invoke(main, ["compare", str(tiny_classifier), "--dataset", str(f), "-o", str(tmp_path / "r")])
    assert r.exit_code == 1
    assert "Unknown label 'meh'" in r.output and "negative (0), positive (1)" in r.output


def test_resume_refuses_other_settings(run):
    cfg, _ = run
    with pytest.raises(ConfigError, match="settings differ from the first run .*batch_size: 8 -> 4"):
        compare(CompareConfig(**{**vars(cfg), "resume": True, "batch_size": 4}))


def test_quality_is_each_text_alone_as_plain_onnxruntime_gives_it(run, tiny_classifier):
    """Dynamic INT8 scales activations over the whole padded batch, so its answers depend on the
    batch; the row's outputs are each text alone (as deployed, as the budget search validates): a
    plain onnxruntime session on the saved folder, one text at a time, gives the same logits."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    cfg, results = run
    row = rows(results)[("onnx-int8-dynamic", "cpu")]
    texts = json.loads((cfg.output / "work" / "data.json").read_text())["texts"]
    tok = AutoTokenizer.from_pretrained(tiny_classifier)
    sess = ort.InferenceSession(str(Path(row["artifact"]) / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}

    def logits(batch):
        enc = tok(batch, padding="longest", truncation=True, max_length=128, return_tensors="np")
        return sess.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0]

    alone = np.concatenate([logits([t]) for t in texts])
    saved = np.load(row["outputs"])
    batched = np.concatenate([logits(texts[i:i + 8]) for i in range(0, len(texts), 8)])
    assert np.abs(saved - alone).max() < 1e-7, np.abs(saved - alone).max()
    assert np.abs(batched - alone).max() > 1e-6  # what a batched pass would have scored instead


def test_failed_rows_exit_3_and_are_named_skipped_rows_do_not(tiny_classifier, reviews, tmp_path):
    """CI: a run whose requested rows failed exits 3 (not 0), names them, and still writes its
    results and report; a row skipped with its reason (no CUDA) is not a failure."""
    import torch

    empty = tmp_path / "empty.csv"
    empty.write_text("text\n")
    common = [str(tiny_classifier), "--dataset", str(reviews), "--text-column", "review", "--label-column",
              "sentiment", "--latency-samples", "3", "--warmup", "1", "--threads", "1"]
    out = tmp_path / "failed"
    r = CliRunner().invoke(main, ["compare", *common, "-o", str(out), "--variants", "torch-fp32,onnx-int8-static",
                                  "--calibration", str(empty)])
    assert r.exit_code == 3, r.output
    assert "1 requested row(s) failed: onnx-int8-static@cpu" in r.output and "Traceback" not in r.output
    assert (out / "results.json").is_file() and (out / "report.html").is_file()
    if torch.cuda.is_available():
        return
    skipped = CliRunner().invoke(main, ["compare", *common, "-o", str(tmp_path / "skipped"), "--variants",
                                        "torch-fp32", "--providers", "cpu,cuda"])
    assert skipped.exit_code == 0, skipped.output


def test_compare_help_lists_the_exit_codes():
    r = CliRunner().invoke(main, ["compare", "--help"])
    text = " ".join(r.output.split())  # click wraps the epilog
    assert "Exit codes:" in text and "3 the run finished but requested rows failed" in text
