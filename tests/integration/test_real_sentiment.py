"""The real demo classifier: its FP32 export and the three quantize methods, built by one compare on a
user's file; every figure checked in plain onnxruntime on the saved folders; the sweep example on
the same builds.

Marked `real`: builds demo:sentiment on first use (about 5 minutes on 2 cores), then cached.
"""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.real


METHODS = {"fp32": "onnx-fp32", "fp16": "onnx-fp16", "int8-dynamic": "onnx-int8-dynamic",
           "int8-static": "onnx-int8-static"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One compare of the ONNX rows on a user's csv: the demo's test split with other column names,
    labels in capitals, sorted by label. Its builds (in the session's artifact store, int8-static
    calibrated on the demo's calibration split) are the folders every test here scores.
    Returns dir (the run), rows {variant: row}, folders {method: saved folder}, test (2,000 sentences)."""
    from qonnx import demo
    from qonnx.config import CompareConfig
    from qonnx.run.compare import compare

    d = tmp_path_factory.mktemp("sentiment")
    test = pd.read_csv(demo.ensure("sentiment") / "data" / "test.csv")
    users = test.rename(columns={"text": "review", "label": "verdict"}).sort_values("verdict")
    users["verdict"] = users["verdict"].str.upper()
    users.to_csv(d / "mine.csv", index=False)
    results = compare(CompareConfig(model="demo:sentiment", output=d / "run", dataset=str(d / "mine.csv"),
                                    text_column="review", label_column="verdict", max_samples=200, batch_size=16,
                                    warmup=1, latency_samples=10, variants=list(METHODS.values())))
    rows = {r["variant"]: r for r in results["rows"]}
    assert all(r["status"] == "ok" for r in rows.values()), {v: r["reason"] for v, r in rows.items()}
    return SimpleNamespace(dir=d / "run", rows=rows, test=test,
                           folders={m: Path(rows[v]["artifact"]) for m, v in METHODS.items()})


def plain_ort(folder):
    """(tokenizer, session, its input names) from the folder alone, with plain onnxruntime."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    sess = ort.InferenceSession(str(Path(folder) / "model.onnx"), providers=["CPUExecutionProvider"])
    return AutoTokenizer.from_pretrained(folder), sess, {i.name for i in sess.get_inputs()}


def accuracy_in_plain_ort(folder, test):
    """Only onnxruntime and the tokenizer files in the folder: the folder is deployable. Batches of
    64 texts of about one length (sorted by token count: little padding), scored back in order."""
    tok, sess, names = plain_ort(folder)
    label2id = json.loads((folder / "config.json").read_text())["label2id"]
    texts, labels = test["text"].tolist(), test["label"].map(label2id).to_numpy()
    order = np.argsort([len(ids) for ids in tok(texts, truncation=True, max_length=128)["input_ids"]], kind="stable")
    preds = np.full(len(texts), -1)
    for i in range(0, len(texts), 64):
        batch = order[i:i + 64]
        enc = tok([texts[j] for j in batch], padding=True, truncation=True, max_length=128, return_tensors="np")
        preds[batch] = sess.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0].argmax(-1)
    assert (preds >= 0).all()
    return float((preds == labels).mean())


@pytest.fixture(scope="module")
def fp32_accuracy(run):
    """FP32's accuracy over the 2,000 test sentences, computed once for every test here."""
    return accuracy_in_plain_ort(run.folders["fp32"], run.test)


def test_demo_accuracy_is_real(run, fp32_accuracy):
    assert len(run.test) == 2000
    assert fp32_accuracy > 0.83


@pytest.mark.parametrize("method,max_drop,max_size", [("fp16", 0.005, 0.55), ("int8-dynamic", 0.015, 0.30),
                                                      ("int8-static", 0.015, 0.35)])  # QKV stays float inside the fused Attention
def test_variant_accuracy_and_size(run, fp32_accuracy, method, max_drop, max_size):
    folders, ref = run.folders, fp32_accuracy
    acc = accuracy_in_plain_ort(folders[method], run.test)
    assert ref - acc <= max_drop, f"{method}: {acc:.4f} vs FP32 {ref:.4f}"
    size = (folders[method] / "model.onnx").stat().st_size / (folders["fp32"] / "model.onnx").stat().st_size
    assert size <= max_size, f"{method} is {size:.0%} of FP32"


def test_demo_splits_do_not_overlap():
    """No text in two splits (VADER repeats a few sentences under other ids); validation held out of
    fine-tuning; the test split the same 2,000 rows as before validation was carved out."""
    import random

    from qonnx import demo
    from qonnx.cache import cache_dir
    from qonnx.demo.fetch import fetch
    from qonnx.demo.vader import VADER, read_ground_truth

    data = demo.ensure("sentiment") / "data"
    splits = {name: pd.read_csv(data / f"{name}.csv") for name in ("test", "calibration", "validation", "train")}
    texts = {name: set(df["text"]) for name, df in splits.items()}
    assert {name: len(df) for name, df in splits.items() if name != "train"} == \
        {"test": 2000, "calibration": 512, "validation": 1000}
    for a in texts:
        for b in texts:
            assert a == b or not texts[a] & texts[b], f"{a} and {b} share {len(texts[a] & texts[b])} text(s)"
    rows = [(s, "positive" if r > 0 else "negative")
            for _, r, s in read_ground_truth(fetch(VADER, cache_dir() / "downloads"), "movieReviewSnippets") if r != 0]
    random.Random(0).shuffle(rows)  # the recipe's first 2,000 (OFFLINE_ASSETS.md)
    assert list(splits["test"].itertuples(index=False, name=None)) == rows[:2000]


def test_compare_on_a_users_file_agrees_with_plain_onnxruntime(run):
    """Every accuracy in results.json (the user's csv through the whole ONNX matrix) recomputed from the
    saved folders with plain onnxruntime on the rows the run recorded, each text alone (accuracy is
    scored at batch 1)."""
    rows = run.rows
    scored = json.loads((run.dir / "work" / "data.json").read_text())
    assert len(scored["texts"]) == 200 and 0.3 < np.mean(scored["labels"]) < 0.7  # both classes scored
    assert set(rows) == set(METHODS.values())
    for row in rows.values():
        tok, sess, names = plain_ort(row["artifact"])
        preds = []
        for text in scored["texts"]:
            enc = tok([text], truncation=True, max_length=128, return_tensors="np")
            preds.append(sess.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0].argmax(-1))
        independent = float((np.concatenate(preds) == np.array(scored["labels"])).mean())
        assert abs(independent - row["accuracy"]) <= 1 / 200, (row["variant"], independent, row["accuracy"])


@pytest.mark.all_cores  # the example asks for --threads 2
def test_sweep_example_runs_on_the_demo(run, tmp_path):
    """examples/sweep.yaml as shipped, made cheaper by overrides (as CLI flags would): 2 of its variants,
    fewer rows and calls, batch sizes 1 and 8 at length 32 (10 calls a point at least: batch 32 would
    double the test); every point and row measured, curves written, on the builds compare made
    above (the store's keys hold across commands: nothing is built again)."""
    from qonnx import sweep

    plan = sweep.load(Path(__file__).resolve().parents[2] / "examples" / "sweep.yaml",
                      overrides={"variants": ["onnx-fp32", "onnx-int8-dynamic"], "max_samples": 40,
                                 "latency_samples": 3, "warmup": 1, "batch_sizes": [1, 8],
                                 "sequence_lengths": [32]},
                      output=tmp_path / "sweep")
    doc = sweep.run(plan)
    assert [p["settings"] for p in doc["points"]] == [{"threads": 1}, {"threads": 2}]
    for p in doc["points"]:
        rows = json.loads((Path(p["run"]) / "results.json").read_text())["rows"]
        assert [r["status"] for r in rows] == ["ok", "ok"], [r["reason"] for r in rows]
        assert all(len(r["shapes"]) == 2 * 2 for r in rows)  # 2 batch sizes x (padded, real)
        assert [Path(r["artifact"]) for r in rows] == [run.folders["fp32"], run.folders["int8-dynamic"]]
    shapes = pd.read_csv(tmp_path / "sweep" / "shapes.csv")
    assert len(shapes) == 2 * 2 * 4 and (shapes["latency_p50_ms"] > 0).all()
    assert (tmp_path / "sweep" / "curves.png").is_file()
