"""Causal LM measurement: the perplexity method, torch and ONNX agreeing, compare rows."""
import numpy as np
import pytest

from qonnx.tasks.lm import perplexity


def corpus_ids(folder, n=200):
    from transformers import AutoTokenizer

    from qonnx.parity import PROBE_TEXTS

    tok = AutoTokenizer.from_pretrained(folder)
    return tok(" ".join(PROBE_TEXTS * 3))["input_ids"][:n]


def test_single_window_perplexity_equals_the_model_loss(tiny_lm):
    import torch

    from qonnx.runners.torch import TorchRunner

    ids = corpus_ids(tiny_lm, 100)
    with TorchRunner(tiny_lm, "text-generation-with-past") as r:
        ppl, scored, preds = perplexity(r, ids, window=100, stride=100)
        x = torch.tensor([ids])
        loss = r.model(input_ids=x, labels=x).loss.item()
    assert scored == 99 and len(preds) == 99
    assert ppl == pytest.approx(np.exp(loss), rel=1e-4)


def test_sliding_windows_score_every_token_once(tiny_lm):
    from qonnx.runners.torch import TorchRunner

    ids = corpus_ids(tiny_lm, 150)
    with TorchRunner(tiny_lm, "text-generation-with-past") as r:
        _, scored, _ = perplexity(r, ids, window=64, stride=32)
    assert scored == len(ids) - 1


def test_onnx_and_torch_perplexity_agree(tiny_lm, tiny_lm_onnx):
    import json

    from qonnx.runners.ort import OrtRunner
    from qonnx.runners.torch import TorchRunner

    ids = corpus_ids(tiny_lm, 150)
    config = json.loads((tiny_lm / "config.json").read_text())
    with TorchRunner(tiny_lm, "text-generation-with-past") as t, OrtRunner(tiny_lm_onnx / "model.onnx", config=config) as o:
        a, _, pa = perplexity(t, ids, 64, 32)
        b, _, pb = perplexity(o, ids, 64, 32)
    assert b == pytest.approx(a, rel=1e-3)
    assert (pa == pb).mean() > 0.99


def test_compare_lm_rows(tiny_lm, tmp_path):
    from qonnx.config import CompareConfig
    from qonnx.parity import PROBE_TEXTS
    from qonnx.run.compare import compare

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(PROBE_TEXTS * 5))
    cfg = CompareConfig(model=str(tiny_lm), output=tmp_path / "run", dataset=str(text),
                        variants=["torch-fp32", "onnx-fp32", "onnx-int4-weight"], eval_tokens=200,
                        window=64, stride=32, max_new_tokens=4, warmup=1)
    results = compare(cfg)
    by = {r["variant"]: r for r in results["rows"]}
    for v in ("torch-fp32", "onnx-fp32", "onnx-int4-weight"):
        r = by[v]
        assert r["status"] == "ok", r.get("reason")
        assert r["perplexity"] > 1 and r["decode_tokens_per_s"] > 0 and r["ttft_ms"]["p50"] > 0
    assert abs(by["onnx-fp32"]["perplexity_change_pct"]) < 0.5
    assert by["onnx-fp32"]["agreement"] > 0.99
    assert "window 64, stride 32" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize("corpus,flags,message", [
    ("good film", [], "holds 4 token(s); qonnx scores perplexity on at least 32"),
    ("the film was a delight from start to finish. " * 40, ["--window", "1024"],
     "--window 1024 is longer than"),
])
def test_lm_inputs_that_measure_nothing_are_refused(tiny_lm, tmp_path, corpus, flags, message):
    """A 4-token corpus gave a perplexity; a --window past the model's positions (512) was accepted
    (5.8 GB for a 3M-parameter model). Both are refused before anything is built or written."""
    from click.testing import CliRunner

    from qonnx.cli import main

    text = tmp_path / "corpus.txt"
    text.write_text(corpus)
    r = CliRunner().invoke(main, ["compare", str(tiny_lm), "--dataset", str(text), "-o", str(tmp_path / "run"),
                                  *flags])
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "run").exists()
