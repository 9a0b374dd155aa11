"""Layer sensitivity: units read from the graph, one build per unit and view, figures that plain
onnxruntime reproduces, resume, and clear errors."""
import json

import numpy as np
import onnx
import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.analysis.sensitivity import SensitivityConfig, analyze
from qonnx.cli import main
from qonnx.variants.units import units

TEXTS = ["the film was a delight", "boring predictable mess", "it rained all day", "great good fine",
         "i would not recommend this restaurant", "what a boring movie", "love the service", "awful food"]


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory):
    f = tmp_path_factory.mktemp("sens") / "eval.csv"
    pd.DataFrame({"sentence": TEXTS * 2, "gold": ["positive", "negative"] * 8}).to_csv(f, index=False)
    return f


@pytest.fixture(scope="module")
def analysis(tiny_classifier_onnx, eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("sens-run") / "a"
    doc = analyze(SensitivityConfig(model=str(tiny_classifier_onnx), dataset=str(eval_csv), text_column="sentence",
                                    label_column="gold", output=out, max_samples=16, batch_size=4))
    return out, doc


def test_units_come_from_the_graph(tiny_classifier_onnx):
    found = units(onnx.load(str(tiny_classifier_onnx / "model.onnx"), load_external_data=False))
    assert list(found) == ["embeddings"] + [f"layer {i} {g}" for i in (0, 1)
                                            for g in ("attn-in", "attn-out", "ffn-in", "ffn-out")] + ["head"]
    assert len(found["layer 0 attn-in"]) == 3 and all("layer.0/attention/self" in n for n in found["layer 0 attn-in"])


def test_every_unit_in_both_views_with_files(analysis):
    out, doc = analysis
    seen = {(r["view"], r["unit"]) for r in doc["results"]}
    assert seen == {("all", "all")} | {(v, u) for v in ("only", "all-but") for u in doc["units"]}
    for name in ("sensitivity.json", "sensitivity.csv", "sensitivity.md", "sensitivity.png", "units.jsonl"):
        assert (out / name).stat().st_size > 0, name
    only = [r for r in doc["results"] if r["view"] == "only"]
    assert all(r["kl"] >= 0 and 0 <= r["agreement"] <= 1 for r in only)
    # a unit the method leaves in float (the graph unchanged) is flagged, and then changes nothing
    assert all(r["kl"] == 0 and r["agreement"] == 1 for r in only if r.get("untouched"))
    md = (out / "sensitivity.md").read_text()
    kls = [float(line.split("|")[-2]) for line in md.split("## only")[1].split("## all-but")[0].splitlines()
           if line.startswith("| layer") or line.startswith("| embeddings")]
    assert kls == sorted(kls, reverse=True)  # sorted by damage


def test_a_unit_figure_matches_plain_onnxruntime(analysis, tiny_classifier_onnx, eval_csv, tmp_path):
    """Independent computation: quantize the same nodes with ORT directly, run plain sessions."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    _, doc = analysis
    unit = "layer 1 ffn-in"
    src = tiny_classifier_onnx / "model.onnx"
    dst = tmp_path / "q.onnx"
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     nodes_to_quantize=doc["units"][unit], extra_options={"DefaultTensorType": 1})
    tok = AutoTokenizer.from_pretrained(tiny_classifier_onnx)
    df = pd.read_csv(eval_csv)
    enc = tok(list(df["sentence"]), padding=True, return_tensors="np")

    def logits(path):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: enc[i.name].astype(np.int64) for i in s.get_inputs()}
        return s.run(None, feed)[0].astype(np.float64)

    ref, q = logits(src), logits(dst)
    labels = np.array([{"negative": 0, "positive": 1}[g] for g in df["gold"]])
    rec = next(r for r in doc["results"] if r["view"] == "only" and r["unit"] == unit)
    assert rec["accuracy"] == pytest.approx(float((q.argmax(-1) == labels).mean()))
    p = np.exp(ref) / np.exp(ref).sum(-1, keepdims=True)
    r = np.exp(q) / np.exp(q).sum(-1, keepdims=True)
    assert rec["kl"] == pytest.approx(float(np.mean(np.sum(p * np.log(p / r), -1))), rel=1e-3, abs=1e-9)


def test_resume_measures_only_what_is_missing(analysis, tiny_classifier_onnx, eval_csv, tmp_path):
    import shutil

    out, doc = analysis
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lines = (copy / "units.jsonl").read_text().splitlines()
    # as if killed with kill -9 while writing the sixth unit, its scratch folder left behind
    (copy / "units.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])
    (copy / ".sensitivity-dead").mkdir()
    args = ["analyze", "sensitivity", str(tiny_classifier_onnx), "--dataset", str(eval_csv), "--text-column",
            "sentence", "--label-column", "gold", "--max-samples", "16", "-o", str(copy)]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "pass --resume" in again.output
    changed = CliRunner().invoke(main, args + ["--resume", "--seed", "1"])
    assert changed.exit_code == 1 and "the settings differ" in changed.output and "seed" in changed.output
    r = CliRunner().invoke(main, args + ["--resume", "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    assert not (copy / ".sensitivity-dead").exists()
    resumed = json.loads((copy / "sensitivity.json").read_text())["results"]
    key = lambda x: (x["view"], x["unit"])  # noqa: E731
    assert sorted(map(key, resumed)) == sorted(map(key, doc["results"]))
    by = {key(x): x["kl"] for x in doc["results"]}
    assert all(x["kl"] == pytest.approx(by[key(x)], rel=1e-6, abs=1e-12) for x in resumed)


def test_lm_int4_units(tiny_lm_onnx, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(TEXTS * 8))
    doc = analyze(SensitivityConfig(model=str(tiny_lm_onnx), method="int4-weight", dataset=str(corpus),
                                    output=tmp_path / "lm", views=("only",), eval_tokens=64, window=32, stride=16))
    only = {r["unit"]: r for r in doc["results"] if r["view"] == "only"}
    assert {"layer 0 attn-in", "layer 1 ffn-out"} <= set(only)
    assert "embeddings" not in only  # MatMulNBits quantizes MatMuls; the tied embedding is a Gather
    assert all(np.isfinite(r["perplexity_change_pct"]) for r in only.values())


@pytest.mark.parametrize("args,msg", [
    (["-m", "int8-dynamc"], "Did you mean 'int8-dynamic'"),
    (["--views", "only,some"], "Unknown view 'some'"),
    (["-o", "{foreign}"], "is not empty and is not a qonnx analysis"),
])
def test_bad_input(tiny_classifier_onnx, eval_csv, tmp_path, args, msg):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    base = ["analyze", "sensitivity", str(tiny_classifier_onnx), "--dataset", str(eval_csv),
            "--text-column", "sentence", "--label-column", "gold"]
    r = CliRunner().invoke(main, base + [a.format(foreign=foreign) for a in args])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output
    assert (foreign / "notes.txt").read_text() == "mine"


def test_a_demo_models_analysis_defaults_to_its_validation_split(tiny_classifier_onnx, tmp_path, monkeypatch):
    """Held-out data, as the budget searches take: not compare's eval (test) split."""
    import shutil

    from qonnx import data

    model = tmp_path / "export"
    shutil.copytree(tiny_classifier_onnx, model)
    m = json.loads((model / "manifest.json").read_text())
    m["source"] = {**(m.get("source") or {}), "demo": "sentiment"}
    (model / "manifest.json").write_text(json.dumps(m))
    built = tmp_path / "demo"
    (built / "data").mkdir(parents=True)
    for split, texts in (("test", TEXTS), ("validation", TEXTS[::-1])):
        pd.DataFrame({"text": texts, "label": ["positive", "negative"] * 4}).to_csv(built / "data" / f"{split}.csv",
                                                                                   index=False)
    monkeypatch.setattr(data.demo, "ensure", lambda name: built)
    doc = analyze(SensitivityConfig(model=str(model), output=tmp_path / "a", views=("only",), batch_size=4))
    assert doc["data"]["source"] == str(built / "data" / "validation.csv")


def test_lm_text_is_joined_as_compare_joins_it(tiny_lm_onnx, tmp_path, monkeypatch):
    """compare scores data.TextData.corpus (the lines joined by one newline); so does the analysis."""
    from qonnx.analysis import sensitivity

    lines = [" ".join(TEXTS[i:i + 4]) for i in range(5)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    real, tokenized = sensitivity.models.load_tokenizer, []

    class Recording:
        def __init__(self, tok):
            self.tok = tok

        def __call__(self, text, *a, **kw):
            tokenized.append(text)
            return self.tok(text, *a, **kw)

        def __getattr__(self, name):
            return getattr(self.tok, name)

    monkeypatch.setattr(sensitivity.models, "load_tokenizer", lambda folder: Recording(real(folder)))
    analyze(SensitivityConfig(model=str(tiny_lm_onnx), method="int4-weight", dataset=str(corpus),
                              output=tmp_path / "lm", views=("only",), eval_tokens=64, window=32, stride=16))
    assert tokenized == ["\n".join(lines)]
