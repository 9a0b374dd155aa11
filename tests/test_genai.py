"""onnxruntime-genai's builder as a second LM export path, on tiny models built from configs."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import CompareConfig
from qonnx.parity import PROBE_TEXTS
from qonnx.run.compare import compare

pytest.importorskip("onnxruntime_genai", reason="the genai extra is not installed: pip install 'qonnx-compare[genai]'")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    f = tmp_path_factory.mktemp("text") / "corpus.txt"
    f.write_text(" ".join(PROBE_TEXTS * 20))
    return f


@pytest.fixture(scope="module")
def genai_fp32(tiny_lm, tmp_path_factory):
    out = tmp_path_factory.mktemp("genai") / "genai"
    res = CliRunner().invoke(main, ["export", str(tiny_lm), "--exporter", "genai", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_export_genai_matches_pytorch_and_is_reused(tiny_lm, genai_fp32):
    out = genai_fp32
    assert {"model.onnx", "genai_config.json", "manifest.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    data = json.loads((out / "manifest.json").read_text())
    assert data["method"] == "genai-fp32" and data["parity"]["max_abs_diff"] < 1e-4
    ops = {n.op_type for n in __import__("onnx").load(str(out / "model.onnx"), load_external_data=False).graph.node}
    assert "GroupQueryAttention" in ops  # the builder's fused graph, not optimum's
    res = CliRunner().invoke(main, ["export", str(tiny_lm), "--exporter", "genai", "-o", str(out)])
    assert res.exit_code == 0 and "reused" in res.output, res.output


def test_genai_rows_beside_the_others(tiny_lm, corpus, tmp_path):
    cfg = CompareConfig(model=str(tiny_lm), output=tmp_path / "run", dataset=str(corpus), eval_tokens=256,
                        window=64, stride=32, max_new_tokens=8, latency_samples=5, warmup=1,
                        variants=["torch-fp32", "onnx-fp32", "genai-fp32", "genai-int8", "genai-int4", "genai-int4-mixed"])
    rows = {r["variant"]: r for r in compare(cfg)["rows"]}
    for name, r in rows.items():
        assert r["status"] == "ok", (name, r["reason"])
    ref, fp32 = rows["torch-fp32"], rows["genai-fp32"]
    assert fp32["perplexity"] == pytest.approx(ref["perplexity"], rel=1e-4)
    assert fp32["agreement"] == 1.0 and fp32["decode_tokens_per_s"] > 0 and fp32["ttft_ms"]["p50"] > 0
    assert fp32["samples"][0] == ref["samples"][0]  # the Generator decodes the same greedy tokens
    assert rows["genai-int4"]["size_mb"] < fp32["size_mb"]
    int8 = rows["genai-int8"]  # qonnx's 8-bit MatMulNBits on the builder's graph: close to FP32
    assert int8["perplexity"] == pytest.approx(fp32["perplexity"], rel=0.02) and int8["size_mb"] < fp32["size_mb"]
    graph = __import__("onnx").load(str(Path(int8["artifact"]) / "model.onnx"), load_external_data=False).graph
    assert {a.i for n in graph.node if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "bits"} == {8}
    assert not [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in {i.name for i in graph.initializer}]
    # the tied embedding reads the 8-bit lm_head blocks instead of an FP32 copy of the table
    assert "GatherBlockQuantized" in {n.op_type for n in graph.node} and "lm_head.MatMul.weight" not in {
        i.name for i in graph.initializer}
    assert Path(fp32["artifact"]).name.startswith("genai-fp32-")


def test_unsupported_architecture_is_a_skipped_row(tmp_path, corpus, monkeypatch):
    """Every genai row skipped with the builder's own reason; the builder is asked once, not per row."""
    import subprocess

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tiny import _tokenizer

    folder = tmp_path / "gpt2"
    folder.mkdir()
    tok = _tokenizer(folder)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=1, n_head=2, n_positions=256)).save_pretrained(folder)
    cfg = CompareConfig(model=str(folder), output=tmp_path / "run", dataset=str(corpus), eval_tokens=128,
                        window=64, stride=32, max_new_tokens=4, latency_samples=3, warmup=1,
                        variants=["genai-fp32", "genai-int4", "genai-int4-mixed"])
    calls, run = [], subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(cmd) or run(cmd, *a, **k))
    rows = compare(cfg)["rows"]
    assert [r["status"] for r in rows] == ["skipped"] * 3, rows
    assert all("builder does not support" in r["reason"] for r in rows), rows
    assert len([c for c in calls if "onnxruntime_genai.models.builder" in c]) == 1, calls


def test_genai_refuses_a_classifier(tiny_classifier):
    res = CliRunner().invoke(main, ["export", str(tiny_classifier), "--exporter", "genai"])
    assert res.exit_code == 1 and "--exporter genai builds decoder LMs" in res.output, res.output


def test_budgeted_genai_row(tiny_lm, corpus, tmp_path, monkeypatch):
    """genai-int4-budget: qonnx's search over weight formats on the builder's fp32 graph, a row like
    any other, its search recorded in the artifact's manifest; the budget and the CPU class are part
    of the key, and a build whose kernels were timed on another CPU class says so in its row."""
    from qonnx.variants.search import kernels, vocab
    from tiny import fake_kernels

    monkeypatch.setenv("QONNX_CACHE", str(tmp_path / "cache"))  # a fresh cache: the first search measures costs
    monkeypatch.setattr(vocab, "FIRST", 16)  # the tiny head split by token ranges, as a real vocabulary's is

    calib, valid = tmp_path / "calib.txt", tmp_path / "valid.txt"
    calib.write_text("\n".join(PROBE_TEXTS * 10))
    valid.write_text("\n".join(reversed(PROBE_TEXTS * 10)))
    kw = dict(model=str(tiny_lm), dataset=str(corpus), eval_tokens=128, window=64, stride=32, max_new_tokens=4,
              latency_samples=3, warmup=1, variants=["torch-fp32", "genai-int4-budget"], calibration=str(calib),
              validation=str(valid))  # a budget is judged against a reference row: torch-fp32
    rows = compare(CompareConfig(output=tmp_path / "run", max_perplexity_increase=1000, **kw))["rows"]
    row = next(r for r in rows if r["variant"] == "genai-int4-budget")
    assert row["status"] == "ok", row["reason"]
    data = json.loads((Path(row["artifact"]) / "manifest.json").read_text())
    rec = data["settings"]["budget_search"]
    assert data["method"] == "genai-int4-budget" and rec["budget"]["max_perplexity_increase_pct"] == 1000
    assert rec["increase_pct"] <= 1000 and rec["steps"][0]["moves_held_back"] == 0
    assert rec["cpu"] == kernels.cpu_class() and "kernels timed on" not in row["note"]
    # the row says the budget and the search's check on the validation text (its own perplexity is on the eval text)
    # the tiny text is one block: no standard error, so no default margin, and the row says why
    assert rec["budget"]["margin_se"] == 0.0 and rec["budget"]["margin_default"], rec["budget"]
    assert (f"budget +1000 % (no margin: {rec['validation_tokens']} validation tokens, one block of 2048+, give no "
            f"standard error): perplexity {rec['increase_pct']:+.2f} %") in row["note"], row["note"]
    assert f"on {rec['validation_tokens']} validation tokens" in row["note"]
    assert "ranking_reused" not in rec
    # the builder's graph: its residual stream rotated, then GPTQ codes for every MatMul, at 4 bits and 8
    assert rec["rotation"]["norms"] == 5 and rec["rotation"]["lookups"] == 1, rec["rotation"]
    assert {r for t in rec["recipes"].values() for f, rs in t.items() if f != "float" for r in rs} == {"gptq", "gptq-sym"}
    # the head by token ranges, each a unit of its own
    assert rec["head_ranges"]["ranges"][:2] == [[0, 15], [16, 63]] and "head tokens 16-63" in rec["chosen_formats"]
    # the choice timed whole, in the runtime the row decodes in, against genai-int4's and genai-int8's formats
    check = rec["step_check"]
    assert check["runtime"] == "onnxruntime-genai's Generator" and check["step_ms"]["chosen"]["fastest"] > 0
    assert 0 < check["chosen_vs_int4_format"]["median"] and 0 < check["chosen_vs_int8_format"]["median"]
    assert "GroupQueryAttention" in {n.op_type for n in __import__("onnx").load(
        str(Path(row["artifact"]) / "model.onnx"), load_external_data=False).graph.node}
    # the recorded CPU faked: the kernel table says it was timed on an Intel VNNI machine
    xeon = {"model": "Intel Xeon (fake)", "flags": ["AVX-512", "AVX2", "AVX512-VNNI"]}
    us = {"4-bit/32": 2.5, "4-bit/64": 2.2, "4-bit/128": 2.0, "8-bit/128": 3.0, "float": 12.0, kernels.ANCHOR: 2.4,
          "4-bit/64 symmetric": 2.2, "4-bit/128 symmetric": 1.9}
    with monkeypatch.context() as m:
        m.setattr(kernels, "measure", lambda counts, fmts, threads=None: fake_kernels(counts, us, xeon))
        other = next(r for r in compare(CompareConfig(output=tmp_path / "run2", max_perplexity_increase=999, **kw))["rows"]
                     if r["variant"] == "genai-int4-budget")
    assert other["status"] == "ok" and other["artifact"] != row["artifact"]
    again = json.loads((Path(other["artifact"]) / "manifest.json").read_text())["settings"]["budget_search"]
    assert Path(again["ranking_reused"]).parent == tmp_path / "cache" / "lm-budget-rankings"  # the costs, reused
    # but for the symmetric formats this (faked) CPU runs faster and the first did not: measured, added
    assert set(again["formats"]) - set(rec["formats"]) == set(again["ranking_measured_now"])
    assert {kernels.ANCHOR, "4-bit/128 symmetric"} <= set(again["formats"])  # faster here by the (faked) table
    assert "4-bit/64 symmetric" in set(again["formats"]) | set(again["formats_left_out"])
    assert ("budget search chose its formats by kernels timed on Intel Xeon (fake) (AVX-512, AVX2, AVX512-VNNI); "
            "this row ran on") in other["note"], other["note"]
    # on another CPU class the budget's key differs: the first build is not reused, a new one is searched
    with monkeypatch.context() as m:
        m.setattr(kernels, "this_cpu", lambda: xeon)
        m.setattr(kernels, "measure", lambda counts, fmts, threads=None: fake_kernels(counts, us, xeon))
        third = next(r for r in compare(CompareConfig(output=tmp_path / "run3", max_perplexity_increase=1000, **kw))["rows"]
                     if r["variant"] == "genai-int4-budget")
    assert third["status"] == "ok" and third["artifact"] != row["artifact"]
    assert json.loads((Path(third["artifact"]) / "manifest.json").read_text())["settings"]["budget_search"]["cpu"] == xeon


def test_compare_refuses_a_perplexity_budget_for_a_classifier(tiny_classifier, tmp_path):
    res = CliRunner().invoke(main, ["compare", str(tiny_classifier), "--max-perplexity-increase", "5",
                                    "-o", str(tmp_path / "run")])
    assert res.exit_code != 0 and "for language models" in res.output, res.output
    assert not (tmp_path / "run").exists()


def test_budgeted_genai_build_takes_the_runs_seed_and_sample_count(tiny_lm, tmp_path):
    """run.json records --seed and --num-calibration-samples; the int4-budget build must use them
    (its key and its GPTQ text follow), not QuantizeConfig's defaults."""
    from qonnx import genai, models

    calib, valid = tmp_path / "calib.txt", tmp_path / "valid.txt"
    calib.write_text("\n".join(f"{i} {t}" for i, t in enumerate(PROBE_TEXTS * 10)))
    valid.write_text("\n".join(reversed(PROBE_TEXTS * 10)))
    source = models.resolve(str(tiny_lm), None)

    def inputs(**kw):
        cfg = CompareConfig(model=str(tiny_lm), calibration=str(calib), validation=str(valid), **kw)
        key, cal_ids, _, prov = genai._budget_inputs(source, cfg)
        return key["calibration"], prov["calibration"]

    base, prov = inputs(num_calibration_samples=8)
    assert prov["count"] == 8 and prov["seed"] == 0
    assert inputs(num_calibration_samples=8, seed=1)[0] != base
    assert inputs(num_calibration_samples=4)[1]["count"] == 4  # (the file holds 10 passages)


def test_rotation_keeps_the_builders_graph_and_moves_its_weights(genai_fp32):
    """The residual stream of the builder's graph rotated (variants.rotation): every norm's gain is
    folded into the MatMuls that read it and set to ones, the tied head's lookup gets a rotated
    table of its own, the weights change, and the logits stay the float graph's."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from qonnx.variants.rotation import rotate
    from qonnx.variants.search.mixed import calibration_feeds

    model = onnx.load(str(genai_fp32 / "model.onnx"))
    feed = calibration_feeds(model, list(range(4, 40)), 1, 36, {})[0]

    def logits(m):
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return s.run(["logits"], feed)[0]

    def weights(m):
        return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer if i.name.endswith("MatMul.weight")}

    before, w0 = logits(model), weights(model)
    record, why = rotate(model)
    assert why is None and record["norms"] == 5 and record["lookups"] == 1, (record, why)  # 2 layers x 2 + final
    assert record["matmuls_reading"] + record["matmuls_writing"] == len(w0)
    w1 = weights(model)
    assert all(np.abs(w1[k] - w0[k]).max() > 1e-3 for k in w0)
    gains = [numpy_helper.to_array(i) for i in model.graph.initializer if "layernorm.weight" in i.name]
    assert len(gains) == 5 and all(np.all(g == 1) for g in gains)
    assert "Transpose" not in {n.op_type for n in model.graph.node}  # the lookup reads its own rotated table
    np.testing.assert_allclose(logits(model), before, rtol=1e-4, atol=1e-4)


def test_a_unit_s_cost_from_its_part_equals_the_whole_build_s_in_the_rotated_builders_graph(genai_fp32, tiny_lm,
                                                                                           tmp_path):
    """The budget search's per-unit costs, computed from the part of the builder's graph (rotated, the
    head split by token ranges) downstream of each unit, equal those of the whole build (search.probe)."""
    import onnx

    from tiny import part_and_whole_kls

    config = json.loads((Path(tiny_lm) / "config.json").read_text())
    total = len(onnx.load(str(genai_fp32 / "model.onnx"), load_external_data=False).graph.node)
    kls = part_and_whole_kls(genai_fp32 / "model.onnx", config, tmp_path, rotated=True, head_from=16)
    assert len(kls) >= 5 and {u for u in kls if u.startswith("head")} >= {"head tokens 0-15", "head tokens 16-63"}
    for unit, (part, whole, nodes) in kls.items():
        assert whole > 0 and part == pytest.approx(whole, rel=1e-3, abs=1e-9) and nodes < total, unit
