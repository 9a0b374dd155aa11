"""The real demo classifier: export, the three quantize methods, accuracy in plain onnxruntime.

Marked `real`: builds demo:sentiment on first use (about 5 minutes on 2 cores), then cached.
"""
import json

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from qonnx import demo
    from qonnx.config import ExportConfig, QuantizeConfig
    from qonnx.export import export
    from qonnx.variants import quantize

    root = tmp_path_factory.mktemp("sentiment")
    export(ExportConfig(model="demo:sentiment", output=root / "fp32"))
    for method in ("fp16", "int8-dynamic", "int8-static"):
        quantize(QuantizeConfig(onnx_dir=root / "fp32", method=method, output=root / method))
    test = pd.read_csv(demo.ensure("sentiment") / "data" / "test.csv")
    return root, test


def accuracy_in_plain_ort(folder, test):
    """Only onnxruntime and the tokenizer files in the folder: the folder is deployable."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    label2id = json.loads((folder / "config.json").read_text())["label2id"]
    texts, labels = test["text"].tolist(), test["label"].map(label2id).to_numpy()
    preds = []
    for i in range(0, len(texts), 64):
        enc = tok(texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="np")
        preds.append(sess.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0].argmax(-1))
    return float((np.concatenate(preds) == labels).mean())


@pytest.fixture(scope="module")
def fp32_accuracy(built):
    """FP32's accuracy over the 2,000 test sentences, computed once for every test here."""
    root, test = built
    return accuracy_in_plain_ort(root / "fp32", test)


def test_demo_accuracy_is_real(built, fp32_accuracy):
    assert len(built[1]) == 2000
    assert fp32_accuracy > 0.83


@pytest.mark.parametrize("method,max_drop,max_size", [("fp16", 0.005, 0.55), ("int8-dynamic", 0.015, 0.30),
                                                      ("int8-static", 0.015, 0.35)])  # QKV stays float inside the fused Attention
def test_variant_accuracy_and_size(built, fp32_accuracy, method, max_drop, max_size):
    root, test = built
    ref = fp32_accuracy
    acc = accuracy_in_plain_ort(root / method, test)
    assert ref - acc <= max_drop, f"{method}: {acc:.4f} vs FP32 {ref:.4f}"
    size = (root / method / "model.onnx").stat().st_size / (root / "fp32" / "model.onnx").stat().st_size
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


def test_compare_on_a_users_file_agrees_with_plain_onnxruntime(tmp_path, monkeypatch):
    """A user's csv (other column names, labels in capitals, sorted by label) through the whole
    ONNX matrix; every accuracy in results.json is recomputed from the saved folders with plain
    onnxruntime on the rows the run recorded, each text alone (accuracy is scored at batch 1)."""
    from qonnx import demo
    from qonnx.config import CompareConfig
    from qonnx.run.compare import compare

    monkeypatch.setenv("QONNX_ARTIFACTS", str(tmp_path / "store"))
    test = pd.read_csv(demo.ensure("sentiment") / "data" / "test.csv")
    users = test.rename(columns={"text": "review", "label": "verdict"}).sort_values("verdict")
    users["verdict"] = users["verdict"].str.upper()
    users.to_csv(tmp_path / "mine.csv", index=False)
    results = compare(CompareConfig(model="demo:sentiment", output=tmp_path / "run", dataset=str(tmp_path / "mine.csv"),
                                    text_column="review", label_column="verdict", max_samples=400, batch_size=16,
                                    latency_samples=10, variants=["onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static"]))
    scored = json.loads((tmp_path / "run" / "work" / "data.json").read_text())
    assert len(scored["texts"]) == 400 and 0.3 < np.mean(scored["labels"]) < 0.7  # both classes scored
    import onnxruntime as ort
    from transformers import AutoTokenizer

    for row in results["rows"]:
        assert row["status"] == "ok", row["reason"]
        folder = row["artifact"]
        tok = AutoTokenizer.from_pretrained(folder)
        sess = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        preds = []
        for text in scored["texts"]:
            enc = tok([text], truncation=True, max_length=128, return_tensors="np")
            preds.append(sess.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0].argmax(-1))
        independent = float((np.concatenate(preds) == np.array(scored["labels"])).mean())
        assert abs(independent - row["accuracy"]) <= 1 / 400, (row["variant"], independent, row["accuracy"])
