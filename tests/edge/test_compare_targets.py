"""compare --targets: the edge gate's verdicts on each ONNX row (columns, results.json, report), torch rows n/a."""
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import CompareConfig
from qonnx.errors import ConfigError
from qonnx.parity import PROBE_TEXTS
from qonnx.report import deploy, tables
from qonnx.run.compare import compare


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    f = tmp_path_factory.mktemp("data") / "reviews.jsonl"
    pd.DataFrame({"text": PROBE_TEXTS * 2, "label": ["positive", "negative"] * len(PROBE_TEXTS)}).to_json(
        f, orient="records", lines=True)
    return f


def run(model, data, out, targets, variants=("torch-fp32", "onnx-fp32", "onnx-int8-dynamic")):
    cfg = CompareConfig(model=str(model), output=out, dataset=str(data), variants=list(variants), providers=["cpu"],
                        latency_samples=3, warmup=1, batch_size=4, rounds=0, targets=targets)
    return compare(cfg)


@pytest.fixture(scope="module")
def gated(tiny_classifier, reviews, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    return out, run(tiny_classifier, reviews, out, ["coreml", "nnapi"])


def test_each_onnx_row_carries_the_static_targets_verdicts_and_torch_rows_are_na(gated):
    out, doc = gated
    rows = {r["variant"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    for v in ("onnx-fp32", "onnx-int8-dynamic"):
        t = rows[v]["targets"]
        assert list(t) == ["nnapi", "coreml"]  # the gate's order, whatever order was given
        for name in t:
            assert t[name]["verdict"] in ("pass", "warn", "fail") and t[name]["executed"] is False
            assert t[name]["reasons"] and t[name]["partitions"] is not None
    # a dynamic-shape encoder with com.microsoft ops is no win on NNAPI: the verdict says why
    assert rows["onnx-int8-dynamic"]["targets"]["nnapi"]["verdict"] == "fail"
    assert any(r.startswith("FAIL") for r in rows["onnx-int8-dynamic"]["targets"]["nnapi"]["reasons"])
    assert {t["verdict"] for t in rows["torch-fp32"]["targets"].values()} == {"n/a"}


def test_the_verdicts_are_columns_and_a_deployable_section(gated):
    out, doc = gated
    headers, shown = tables.display_rows(doc)
    assert headers[-2:] == ["nnapi", "coreml"]
    by_variant = {r[0]: r for r in shown}
    assert by_variant["torch-fp32"][-1] == "n/a"
    assert by_variant["onnx-int8-dynamic"][-2] == "fail"
    md = (out / "report.md").read_text()
    assert "## Deployable?" in md and "onnx-int8-dynamic on cpu: nnapi fail (checked statically): " in md
    html = (out / "report.html").read_text()
    assert 'id="deployable"' in html and "Deployable? (the edge gate" in html
    csv = pd.read_csv(out / "results.csv", keep_default_na=False)  # "n/a" is text here
    assert list(csv.set_index("variant")["target_nnapi"][["torch-fp32", "onnx-int8-dynamic"]]) == ["n/a", "fail"]


def test_the_summary_names_a_deployable_row_or_says_none_is():
    doc = {"settings": {"kind": "classification"}, "rows": [
        {"variant": "onnx-fp32", "provider": "cpu", "status": "ok", "accuracy_drop": 0.0, "latency_ms": {"p50": 9.0},
         "targets": {"wasm": {"verdict": "pass", "how": "executed here", "reasons": []}}},
        {"variant": "onnx-int8", "provider": "cpu", "status": "ok", "accuracy_drop": 0.0, "latency_ms": {"p50": 4.0},
         "targets": {"wasm": {"verdict": "fail", "how": "executed here", "reasons": ["FAIL: top-1 changed."]}}}]}
    text = deploy.sentence(doc, {"row": doc["rows"][1]})
    assert "onnx-int8 is not deployable on wasm" in text and "deployable: onnx-fp32 on cpu (p50 9.00 ms)" in text
    assert deploy.lines(doc)[1] == "onnx-int8 on cpu: wasm fail (executed here): top-1 changed"
    doc["rows"][0]["targets"]["wasm"]["verdict"] = "fail"
    none = deploy.sentence(doc, {"row": None})
    assert "No row within the quality budget passes every edge target (wasm)" in none
    assert none.endswith("Fastest within the budget per target: wasm: none.")
    doc["rows"][1]["targets"]["wasm"]["verdict"] = "warn"
    assert deploy.sentence(doc, {"row": doc["rows"][1]}).startswith("Deployable: onnx-int8 passes or warns")


def test_an_unknown_target_is_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="Unknown edge target .--targets. 'wsm'.*Did you mean 'wasm'"):
        CompareConfig(targets=["wsm"])
    done = CliRunner().invoke(main, ["compare", "demo:sentiment", "--targets", "nnapi,wsm", "-o", str(tmp_path / "r")])
    assert done.exit_code == 1 and "Error: Unknown edge target (--targets) 'wsm'" in done.output
    assert not (tmp_path / "r").exists()


def test_wasm_runs_the_onnx_row_in_node(ort_web, tiny_classifier, reviews, tmp_path):
    doc = run(tiny_classifier, reviews, tmp_path / "run", ["wasm"], variants=("onnx-fp32",))
    t = doc["rows"][0]["targets"]["wasm"]
    assert t["executed"] is True and t["verdict"] in ("pass", "warn") and t["latency_ms_p50"] > 0


def test_a_resume_with_other_targets_gates_the_measured_rows_again(gated, tiny_classifier, reviews):
    out, first = gated
    cfg = CompareConfig(model=str(tiny_classifier), output=out, dataset=str(reviews),
                        variants=["torch-fp32", "onnx-fp32", "onnx-int8-dynamic"], providers=["cpu"],
                        latency_samples=3, warmup=1, batch_size=4, rounds=0, targets=["qnn"], resume=True)
    again = {r["variant"]: r for r in compare(cfg)["rows"]}
    before = {r["variant"]: r for r in first["rows"]}
    assert list(again["onnx-fp32"]["targets"]) == ["qnn"]
    assert again["onnx-fp32"]["latency_ms"] == before["onnx-fp32"]["latency_ms"]  # not measured again
    assert "not a QDQ graph" in " ".join(again["onnx-fp32"]["targets"]["qnn"]["reasons"])


def test_a_torch_row_picked_to_ship_is_said_to_have_no_edge_verdicts():
    doc = {"settings": {"kind": "classification"}, "rows": [
        {"variant": "torch-fp32", "provider": "cuda", "status": "ok", "accuracy_drop": 0.0, "latency_ms": {"p50": 1.0},
         "targets": {"nnapi": {"verdict": "n/a", "reasons": ["a PyTorch row"]}}},
        {"variant": "onnx-fp32", "provider": "cuda", "status": "ok", "accuracy_drop": 0.0, "latency_ms": {"p50": 2.0},
         "targets": {"nnapi": {"verdict": "warn", "how": "checked statically", "reasons": ["WARN: two partitions."]}}}]}
    text = deploy.sentence(doc, {"row": doc["rows"][0]})
    assert text.startswith("torch-fp32 has no edge verdicts") and "deployable: onnx-fp32 on cuda" in text
    assert deploy.lines(doc) == ["onnx-fp32 on cuda: nnapi warn (checked statically): two partitions"]
