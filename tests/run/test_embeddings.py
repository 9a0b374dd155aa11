"""Embedding models through compare, the report, "Ship this" and the gate: a tiny random BertModel
in a sentence-transformers folder layout, its default matrix run once (on a labelled pair file)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_matrix import SENTENCES, default_rows, rows_of

from qonnx.cli import main

PAIRS = [(SENTENCES[i], SENTENCES[(i + 1 + i % 3) % len(SENTENCES)], float(i % 5)) for i in range(len(SENTENCES))]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(model folder, run folder, CLI result): the default matrix, rows side by side on one thread each."""
    import pandas as pd

    from tiny import tiny_sentence_transformer

    d = tmp_path_factory.mktemp("embeddings")
    model = tiny_sentence_transformer(d / "model", num_hidden_layers=1)
    pd.DataFrame(PAIRS, columns=["sentence1", "sentence2", "score"]).to_csv(d / "sts.csv", index=False)
    pd.DataFrame({"text": ["the new bridge opened", "revenue rose by four percent", "officials promised a ferry",
                           "commuters said it was worth the wait"]}).to_csv(d / "calib.csv", index=False)
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(d / "sts.csv"), "--calibration",
                                       str(d / "calib.csv"), "--latency-samples", "3", "--warmup", "1",
                                       "--batch-size", "4", "--batch-sizes", "2", "--sequence-lengths", "16",
                                       "--threads", "1", "--concurrent-rows", "-o", str(d / "run")])
    return model, d / "run", result


def test_every_default_row_is_ok_or_skipped_with_its_reason(run):
    model, run_dir, result = run
    rows = default_rows(run_dir, result, "bert", {"torch-fp32", "torch-fp16", "torch-bf16", "torch-int8-dynamic",
                                                  "bnb-int4", "onnx-fp32", "onnx-fp16", "onnx-int8-dynamic",
                                                  "onnx-int8-static"})
    width = json.loads((model / "config.json").read_text())["hidden_size"]
    for r in rows.values():
        if r["status"] == "ok":
            assert r["embedding_dim"] == width and 0 <= r["topk_overlap"] <= 1 and r["cosine_min"] <= r["cosine_mean"]
            assert {(c["batch"], c["length"], c["padding"]) for c in r["shapes"]} == {(2, 16, "padded"), (2, 16, "real")}
    assert "top-10" in result.output and "cos mean" in result.output and "label ρ" in result.output


def test_onnx_fp32_agrees_with_torch_fp32(run):
    rows = rows_of(run[1])
    onnx = rows["onnx-fp32"]
    assert onnx["cosine_min"] > 0.99999 and onnx["topk_overlap"] == 1 and onnx["agreement"] == 1
    assert onnx["similarity_spearman"] > 0.999


def test_embeddings_are_the_models_own_pooled_and_normalized_output(run):
    """torch-fp32's saved embeddings against transformers and torch by hand: mean over the real
    tokens, then L2 normalization (the folder's Pooling and Normalize modules)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir, run_dir, _ = run
    settings = json.loads((run_dir / "run.json").read_text())["settings"]
    texts = json.loads((run_dir / "work" / "data.json").read_text())["texts"]
    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    want = []
    for t in texts:
        enc = tok(t, return_tensors="pt", truncation=True, max_length=64)
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0]
        v = h.sum(0) / h.shape[0]
        want.append((v / v.norm()).numpy())
    got = np.load(rows_of(run_dir)["torch-fp32"]["outputs"])
    assert settings["pooling"]["modes"] == ["mean"] and settings["pooling"]["normalize"]
    assert np.allclose(got, np.array(want), atol=1e-5)


def test_label_spearman_equals_scipy_on_the_pair_cosines(run):
    from scipy.stats import spearmanr

    run_dir = run[1]
    texts = json.loads((run_dir / "work" / "data.json").read_text())["texts"]
    for r in rows_of(run_dir).values():
        if r["status"] != "ok":
            continue
        emb = np.load(r["outputs"]).astype(np.float64)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        cos = [emb[texts.index(a)] @ emb[texts.index(b)] for a, b, _ in PAIRS]
        assert r["label_spearman"] == pytest.approx(spearmanr(cos, [s for _, _, s in PAIRS]).statistic, abs=1e-9)


def test_ship_this_and_the_gate_read_top10_overlap(run):
    from qonnx.report.summary import recommend

    run_dir = run[1]
    doc = json.loads((run_dir / "results.json").read_text())
    pick = recommend(doc)
    assert pick["row"] is not None and "top-10 overlap with the reference >= 0.95 (the default" in pick["text"]
    assert doc["settings"]["budget_metric"].startswith("topk_overlap")
    report = (run_dir / "report.md").read_text()
    assert "top-10 overlap: every text as a query" in report and "Transformer -> Pooling -> Normalize" in report
    assert "texts cut at 64 tokens" in report and "a separate pass at batch 4," in report
    r = CliRunner().invoke(main, ["validate", str(run_dir), "--variant", "onnx-fp32", "--max-accuracy-drop", "0.01",
                                  "--min-agreement", "1"])
    assert r.exit_code == 0 and "PASS  topk_drop (1 - topk_overlap) = 0" in r.output, r.output
    r = CliRunner().invoke(main, ["validate", str(run_dir), "--variant", "onnx-fp32", "--max-perplexity-increase", "1"])
    assert r.exit_code == 1 and "--max-perplexity-increase does not apply" in r.output and "top-10 overlap" in r.output


def test_an_embedding_export_is_not_budget_searched(run):
    from qonnx.config import QuantizeConfig
    from qonnx.errors import ConfigError
    from qonnx.variants import quantize

    export = rows_of(run[1])["onnx-fp32"]["artifact"]
    with pytest.raises(ConfigError, match="is an embedding model; the --max-accuracy-drop search scores a "
                                          "classifier's labels"):
        quantize(QuantizeConfig(onnx_dir=export, method="int8-dynamic", max_accuracy_drop=0.01))


def test_a_bare_encoder_asks_for_the_task_and_gets_mean_pooling(tmp_path):
    from qonnx.errors import ModelError
    from qonnx.models import resolve
    from qonnx.tasks.embeddings import recipe
    from tiny import tiny_bert

    (tmp_path / "bare").mkdir()
    folder = tiny_bert(tmp_path / "bare", "BertModel", num_hidden_layers=1)
    with pytest.raises(ModelError, match="BertModel is a bare model .* give --task feature-extraction"):
        resolve(str(folder))
    assert resolve(str(folder), "feature-extraction").task == "feature-extraction"
    spec = recipe(folder)
    assert spec["modes"] == ["mean"] and not spec["normalize"] and spec["max_length"] == 128
    r = CliRunner().invoke(main, ["export", str(folder), "--task", "feature-extraction", "-o", str(tmp_path / "onnx")])
    assert r.exit_code == 0 and float(r.output.split("mean-pooled cosine >= ")[1].split()[0]) > 0.99999, r.output
    (tmp_path / "cls").mkdir()
    classifier = tiny_bert(tmp_path / "cls", num_hidden_layers=1)
    with pytest.raises(ModelError, match="--task feature-extraction does not fit .* is a sequence classifier"):
        resolve(str(classifier), "feature-extraction")
