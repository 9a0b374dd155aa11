"""quantize --max-accuracy-drop: the search keeps units FP32 until the drop on the validation rows
is within the budget; the figure holds when recomputed with plain onnxruntime; an unreachable
budget exits 2 and writes nothing."""
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.variants.search.budget import steps

TEXTS = [f"{a} {b} {c}" for a in ["the film", "the food", "a day", "this movie", "the service", "it"]
         for b in ["was", "is", "seemed"] for c in ["a delight", "boring", "great", "awful", "fine", "a mess"]]


def _predict(folder, texts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    s = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    out = []
    for t in texts:  # one text per call, as deployed (dynamic INT8 scales depend on the batch)
        enc = tok([t], truncation=True, max_length=128, return_tensors="np")
        out.append(s.run(None, {i.name: enc[i.name].astype(np.int64) for i in s.get_inputs()})[0].argmax(-1)[0])
    return np.array(out)


@pytest.fixture(scope="module")
def fragile(tmp_path_factory):
    """A tiny classifier that INT8 hurts: one huge head weight (per-tensor scales crush the rest),
    the bias set so FP32 splits the texts about evenly, and labels = FP32's own answers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import tiny
    from qonnx.config import ExportConfig
    from qonnx.export import export

    d = tmp_path_factory.mktemp("budget")
    folder = tiny.build("bert", d / "model")
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.weight[0, 0] = 1000.0
        logits = model(**AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt")).logits
        model.classifier.bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    model.save_pretrained(folder)
    export(ExportConfig(model=str(folder), output=d / "onnx"))
    pred = _predict(d / "onnx", TEXTS)
    assert 30 < pred.sum() < 78  # both classes
    pd.DataFrame({"sentence": TEXTS, "gold": np.array(["negative", "positive"])[pred]}).to_csv(d / "val.csv", index=False)
    pd.DataFrame({"text": ["it was fine", "awful service", "a delight"] * 4}).to_csv(d / "cal.csv", index=False)
    return d


def args(d, method, budget, out):
    return ["quantize", str(d / "onnx"), "-m", method, "--calibration", str(d / "cal.csv"), "--max-accuracy-drop",
            str(budget), "--validation", str(d / "val.csv"), "--validation-text-column", "sentence",
            "--validation-label-column", "gold", "-o", str(out)]


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_search_meets_the_budget_and_plain_onnxruntime_agrees(fragile, tmp_path, method):
    out = tmp_path / "q"
    r = CliRunner().invoke(main, args(fragile, method, 0.0, out))
    assert r.exit_code == 0, r.output
    search = json.loads((out / "manifest.json").read_text())["settings"]["budget_search"]
    assert search["steps"][0]["kept_fp32"] == [] and search["steps"][0]["accuracy_drop"] > 0  # INT8 hurts here
    assert search["accuracy_drop"] <= 0.0 and len(search["kept_fp32"]) < 10
    assert search["budget"] == {"max_accuracy_drop": 0.0} and search["validation_rows"] == len(TEXTS)
    assert search["validation"]["source"] == str(fragile / "val.csv") and search["validation"]["rows_sha256"]
    # independent: the saved folder, plain onnxruntime, the validation file
    gold = pd.read_csv(fragile / "val.csv")["gold"].map({"negative": 0, "positive": 1}).to_numpy()
    assert (_predict(out, TEXTS) == gold).mean() == pytest.approx(1.0 - search["accuracy_drop"])
    assert f"with {len(search['kept_fp32'])} unit(s) kept FP32" in r.output
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert settings.get("graph", settings)["fused"] is True  # searched on the plain build's fused graph
    if method == "int8-dynamic":  # per-tensor first, then per-channel where per-tensor does not hold
        first = search["steps"][0]
        assert (first["weights"], first["per_channel_units"]) == ("per-tensor", [])
        units = [r["unit"] for r in search["ranking_per_tensor"]]
        assert set(units) >= {"embeddings", "layer 0 attn-in", "layer 1 ffn-out"} and "head" not in units  # FP32
        refined = [s["per_channel_units"] for s in search["steps"][1:] if not s["kept_fp32"]]
        assert [len(u) for u in refined] == steps(len(units))[1:len(refined) + 1], search["steps"]
        assert all(u == refined[-1][:len(u)] for u in refined)  # the most damaging first, one ranking
        assert settings["per_channel_units"] == search["per_channel_units"]
        assert settings["per_channel"] == {"per-tensor": False, "per-channel": True}.get(search["weights"], "mixed")
        if search["weights"] == "mixed":
            assert not search["kept_fp32"] and "per-tensor elsewhere" in r.output
        if search["kept_fp32"]:  # FP32 units only once per-channel everywhere was not enough; they
            # start from the granularity step closest to FP32 (lowest KL)
            assert len(refined[-1]) == len(units) and {r["unit"] for r in search["ranking"]} == set(units)
            grain = [s for s in search["steps"] if not s["kept_fp32"]]
            assert search["per_channel_units"] == min(grain, key=lambda s: s["kl"])["per_channel_units"]
        # the per-channel units hold per-channel scales in the saved model, the rest one scale
        scales = {i.name: len(i.dims) and i.dims[0] for i in onnx.load(str(out / "model.onnx")).graph.initializer
                  if i.name.endswith("_scale") and i.data_type == onnx.TensorProto.FLOAT}
        assert any(v and v > 1 for v in scales.values()) == bool(search["per_channel_units"])
    if method == "int8-static":  # every calibration choice tried with all units quantized, configured first
        whole = [s["calibration"] for s in search["steps"] if not s["kept_fp32"]]
        assert whole[0] == {"method": "minmax", "per_channel": True} and len(whole) == 6
        assert len({(c["method"], c["per_channel"]) for c in whole}) == 6
        assert search["calibration"] == search["steps"][-1]["calibration"]
        assert (settings["calibration_method"], settings["per_channel"]) == tuple(search["calibration"].values())


def test_a_search_past_its_time_limit_exits_2_and_writes_nothing(fragile, tmp_path):
    out = tmp_path / "q"
    r = CliRunner().invoke(main, args(fragile, "int8-static", 0.0, out) + ["--search-time-limit", "0.001"])
    assert r.exit_code == 2, r.output
    assert "(time limit of 0.001 s reached): the best step kept 0 unit(s)" in r.output
    assert not out.exists() and not list(tmp_path.glob(".q.partial-*"))


def test_an_unreachable_budget_exits_2_and_writes_nothing(fragile, tmp_path):
    out = tmp_path / "q"
    r = CliRunner().invoke(main, args(fragile, "int8-static", 0.0, out) + ["--per-tensor", "--static-ffn-out", "static"])
    assert r.exit_code == 2, r.output
    assert "no set of FP32 units meets --max-accuracy-drop 0.0: the best step kept" in r.output
    assert not out.exists() and not list(tmp_path.glob(".q.partial-*"))


@pytest.mark.parametrize("more,msg", [
    (["-m", "fp16", "--max-accuracy-drop", "0.01"], "--max-accuracy-drop applies to int8-static and int8-dynamic"),
    (["-m", "int8-static", "--max-accuracy-drop", "0.01", "--validation", "{cal}", "--calibration", "{cal}"],
     "--validation is the --calibration data"),
    (["-m", "int8-dynamic", "--max-accuracy-drop", "0.01"], "--max-accuracy-drop needs --validation"),
])
def test_bad_budget_input(fragile, tmp_path, more, msg):
    r = CliRunner().invoke(main, ["quantize", str(fragile / "onnx"), "-o", str(tmp_path / "o")]
                           + [m.format(cal=fragile / "cal.csv") for m in more])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output


def test_compare_builds_every_int8_row_within_the_budget(fragile, tmp_path):
    """compare --max-accuracy-drop: the INT8 rows are the budgeted builds; at batch 1 on rows with the
    validation's content, the int8-dynamic row loses nothing against onnx-fp32."""
    # the validation rows as the eval set, on purpose, in another format (a byte copy is refused as
    # the same data: test_rundir.py::test_a_copy_of_the_eval_set_is_the_eval_set)
    evalset = tmp_path / "eval.jsonl"
    pd.read_csv(fragile / "val.csv").to_json(evalset, orient="records", lines=True)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["compare", str(fragile / "model"), "-o", str(out), "--dataset", str(evalset),
                                  "--text-column", "sentence", "--label-column", "gold", "--max-samples", "200",
                                  "--variants", "onnx-fp32,onnx-int8-dynamic", "--batch-size", "1",
                                  "--latency-samples", "3", "--max-accuracy-drop", "0", "--validation",
                                  str(fragile / "val.csv"), "--validation-text-column", "sentence",
                                  "--validation-label-column", "gold"])
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    rows = {row["variant"]: row for row in results["rows"]}
    assert results["settings"]["max_accuracy_drop"] == 0.0
    search = json.loads((Path(rows["onnx-int8-dynamic"]["artifact"]) / "manifest.json").read_text())["settings"]["budget_search"]
    assert search["steps"][0]["accuracy_drop"] > 0 and search["accuracy_drop"] <= 0.0 and search["kept_fp32"]
    assert rows["onnx-int8-dynamic"]["accuracy"] == rows["onnx-fp32"]["accuracy"]
    page = (out / "report.html").read_text()  # the method notes say the rows were searched, on what data
    assert "Accuracy budget (onnx-int8-dynamic, onnx-int8-static)" in page and str(fragile / "val.csv") in page


def test_compare_budget_refuses_an_lm_and_the_eval_set(fragile, tiny_lm, tmp_path):
    r = CliRunner().invoke(main, ["compare", str(tiny_lm), "--dataset", str(fragile / "cal.csv"),
                                  "--max-accuracy-drop", "0.01", "-o", str(tmp_path / "a")])
    assert r.exit_code == 1 and "--max-accuracy-drop is for classifiers" in r.output, r.output
    r = CliRunner().invoke(main, ["compare", str(fragile / "model"), "--dataset", str(fragile / "val.csv"),
                                  "--validation", str(fragile / "val.csv"), "--max-accuracy-drop", "0.01",
                                  "-o", str(tmp_path / "b")])
    assert r.exit_code == 1 and "--validation is the --dataset data" in r.output, r.output


def test_int8_dynamic_weights_fixed_by_the_user_are_not_searched(fragile, tmp_path):
    """Every step keeps --per-channel weights. A zero budget is met on some CPUs and not on others
    (INT8 kernels differ: AVX2 against AVX-512 VNNI), so the steps are read from the manifest or,
    when no step met it, from the search's error."""
    from qonnx.config import QuantizeConfig
    from qonnx.variants import quantize
    from qonnx.variants.search.budget import BudgetNotMet

    try:
        data = quantize(QuantizeConfig(onnx_dir=fragile / "onnx", method="int8-dynamic", per_channel=True,
                                       max_accuracy_drop=0.0, validation=str(fragile / "val.csv"),
                                       validation_text_column="sentence", validation_label_column="gold",
                                       output=tmp_path / "q"))
        search = data["settings"]["budget_search"]
    except BudgetNotMet as e:
        search = e.record
        assert not (tmp_path / "q").exists()
    assert {s["weights"] for s in search["steps"]} == {"per-channel"} and "ranking_per_tensor" not in search
    assert search["steps"][0]["kept_fp32"] == []  # everything quantized first, as asked
    r = CliRunner().invoke(main, args(fragile, "int8-dynamic", 0.9, tmp_path / "easy") + ["--per-channel"])
    easy = json.loads((tmp_path / "easy" / "manifest.json").read_text())["settings"]["budget_search"]
    assert r.exit_code == 0 and len(easy["steps"]) == 1 and easy["kept_fp32"] == [], r.output


def test_a_demos_budget_is_checked_on_its_validation_split(monkeypatch):
    """Not the train split: demo:sentiment was fine-tuned on it (a budget met there says little)."""
    from types import SimpleNamespace

    from qonnx.variants.search import budget

    asked = []
    monkeypatch.setattr(budget, "validation_batches", lambda spec, *a, **k: asked.append(spec))
    monkeypatch.setattr(budget.models, "load_tokenizer", lambda folder: None)
    budget.validation(SimpleNamespace(validation=None), {"source": {"demo": "sentiment"}}, "export", {})
    assert asked == ["demo:sentiment:validation"]


@pytest.mark.parametrize("more,msg", [
    (["--split", "validation"], "--split validation evaluates on the demo's validation split, which the budget is "
                                "checked on by default"),
    (["--dataset", "demo:sentiment:validation"], "--dataset demo:sentiment:validation is the data the budget is "
                                                 "checked on by default"),
    (["--calibration", "demo:sentiment:validation"], "--calibration demo:sentiment:validation is the data"),
])
def test_compare_refuses_the_default_validation_split_as_other_data(more, msg):
    r = CliRunner().invoke(main, ["compare", "demo:sentiment", "--max-accuracy-drop", "0.01", *more])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output
