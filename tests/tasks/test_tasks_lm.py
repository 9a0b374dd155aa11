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


def test_onnx_decode_keeps_the_cache_in_onnx_runtime_and_matches_transformers(tiny_lm, tiny_lm_onnx):
    """The ONNX rows' greedy loop feeds each step's present key/values back as OrtValues (no copy
    to numpy between steps) and decodes the tokens transformers' own generate() does."""
    import json

    import onnxruntime
    import torch
    from transformers import AutoModelForCausalLM

    from qonnx.runners.ort import OrtRunner
    from qonnx.tasks.lm import generate

    ids = corpus_ids(tiny_lm, 12)
    config = json.loads((tiny_lm / "config.json").read_text())
    with OrtRunner(tiny_lm_onnx / "model.onnx", config=config) as o:
        x = np.asarray([ids], dtype=np.int64)
        _, past = o.step(x, np.ones_like(x))
        assert past and all(isinstance(v, onnxruntime.OrtValue) for v in past.values())
        _, _, tokens = generate(o, ids, 8)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    with torch.inference_mode():
        want = model.generate(torch.tensor([ids]), max_new_tokens=8, min_new_tokens=8, do_sample=False,
                              pad_token_id=0)[0, len(ids):].tolist()
    assert tokens == want


def test_compare_lm_rows(tiny_lm, tmp_path):
    from qonnx.config import CompareConfig
    from qonnx.parity import PROBE_TEXTS
    from qonnx.run.compare import compare

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(PROBE_TEXTS * 5))
    cfg = CompareConfig(model=str(tiny_lm), output=tmp_path / "run", dataset=str(text),
                        variants=["torch-fp32", "onnx-fp32", "onnx-int4-weight"], eval_tokens=200,
                        window=64, stride=32, max_new_tokens=4, warmup=1, rounds=3)
    results = compare(cfg)
    by = {r["variant"]: r for r in results["rows"]}
    import statistics  # interleaved rounds: decode tokens/s per round, each row's over torch-fp32's

    for r in by.values():
        ratios = [a / b for a, b in zip(r["rounds"], by["torch-fp32"]["rounds"])]
        assert len(ratios) == 3 and r["timing"].startswith("interleaved: 3 of 3 rounds"), r["timing"]
        assert r["speedup"] == pytest.approx(statistics.median(ratios))
    for v in ("torch-fp32", "onnx-fp32", "onnx-int4-weight"):
        r = by[v]
        assert r["status"] == "ok", r.get("reason")
        assert r["perplexity"] > 1 and r["decode_tokens_per_s"] > 0 and r["ttft_ms"]["p50"] > 0
        # decode speed from 3 passes: the median with its range; TTFT from every prompt of every pass
        lo, hi = r["decode_range"]
        assert r["decode_passes"] == 3 and lo <= r["decode_tokens_per_s"] <= hi
        assert r["ttft_ms"]["n"] == 12 and r["ttft_ms"]["p90"] is not None
        assert r.get("latency_ms") is None  # an LM row has TTFT, not a copy of it under another name
        assert ("IO binding" in r["decode_loop"]) == v.startswith("onnx")  # which loop timed the row
    assert abs(by["onnx-fp32"]["perplexity_change_pct"]) < 0.5
    assert by["onnx-fp32"]["agreement"] > 0.99
    # each row keeps its windows' log-likelihoods: they give its perplexity, and its change's standard error
    for r in by.values():
        nll, n = (sum(x) for x in zip(*r["perplexity_windows"]))
        assert n == r["scored_tokens"] and np.exp(nll / n) == pytest.approx(r["perplexity"], rel=1e-9)
    assert by["torch-fp32"]["perplexity_change_se_pct"] == 0.0  # the reference against itself
    assert by["onnx-int4-weight"]["perplexity_change_se_pct"] > 0
    assert "window 64, stride 32" in (tmp_path / "run" / "report.md").read_text()


def test_a_budgeted_int4_row_says_how_it_was_built(tiny_lm, tmp_path):
    """Under --max-perplexity-increase onnx-int4-weight is the budget's 4/8-bit GPTQ/RTN build: its
    note says so instead of HQQ's (checked before measuring: the plan's rows, no build)."""
    from qonnx import models
    from qonnx.config import CompareConfig, Job
    from qonnx.run import compare

    built = tmp_path / "built"
    built.mkdir()
    (built / "model.onnx").write_bytes(b"")
    source = models.resolve(str(tiny_lm), None)

    def note(variant, **budget):
        cfg = CompareConfig(model=str(tiny_lm), output=tmp_path / "run", **budget)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(compare, "artifact_for", lambda *a: built)
            row, _ = compare.prepare_row(source, variant, "cpu", cfg, Job.settings(cfg, source, "lm"), {})
        return row.note

    assert "HQQ" in note("onnx-int4-weight")
    budgeted = note("onnx-int4-weight", max_perplexity_increase=5)
    assert "HQQ" not in budgeted.replace("(not HQQ)", "") and "perplexity budget" in budgeted
    assert "perplexity budget" not in note("onnx-int4-rtn", max_perplexity_increase=5)  # fixed recipe: not searched


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
