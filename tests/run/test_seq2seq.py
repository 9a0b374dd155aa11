"""Sequence-to-sequence models through compare, the report, "Ship this" and the gate: a tiny random T5
(built from a config) on six source texts with references, its default matrix run once via the CLI."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_matrix import default_rows, rows_of

from qonnx.cli import main

DEFAULT_ROWS = {"torch-fp32", "torch-fp16", "torch-bf16", "torch-int8-dynamic", "bnb-int4", "onnx-fp32", "onnx-fp16",
                "onnx-int8-dynamic"}
NEW_TOKENS = 6


def compare(model, d, *extra, timing=("--concurrent-rows",)):
    from tiny_seq2seq import seq2seq_table

    table = seq2seq_table(d / "s2s.csv")
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(table), "--target-column", "summary",
                                       "--max-new-tokens", str(NEW_TOKENS), "--warmup", "1", "--threads", "1",
                                       *timing, "-o", str(d / "run"), *extra])
    return d / "run", result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tiny_seq2seq import tiny_seq2seq

    d = tmp_path_factory.mktemp("seq2seq")
    model = tiny_seq2seq("t5", d / "model")
    return (model, *compare(model, d))


def check_matrix(run_dir, result, arch, names=DEFAULT_ROWS):
    """Every default row (or each of `names`) ok or skipped with this machine's reason; onnx-fp32
    generates torch-fp32's text."""
    rows = default_rows(run_dir, result, arch, names)
    for r in rows.values():
        if r["status"] == "ok":
            assert 0 <= r["exact_match"] <= 1 and 0 <= r["rouge_l"] <= 1 and r["decode_tokens_per_s"] > 0
            assert r["ttft_ms"]["n"] == 6 and len(r["samples"]) == 5
    onnx, torch = rows["onnx-fp32"], rows["torch-fp32"]
    assert onnx["exact_match"] == 1 and onnx["agreement"] == 1 and onnx["samples"] == torch["samples"]
    assert onnx["rouge_l"] == torch["rouge_l"]
    assert "ROUGE-L" in result.output and "decode tok/s" in result.output
    return rows


def test_every_default_row_is_ok_or_skipped_and_onnx_fp32_generates_torchs_text(run):
    check_matrix(run[1], run[2], "t5")


def test_generation_is_the_models_own_greedy_output(run):
    """torch-fp32's saved ids against transformers' generate by hand; the texts vary (the test could fail)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model_dir, run_dir, _ = run
    texts = json.loads((run_dir / "work" / "data.json").read_text())["texts"]
    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    got = np.load(rows_of(run_dir)["torch-fp32"]["outputs"])
    for text, ids in zip(texts, got):
        enc = tok([text], return_tensors="pt", return_token_type_ids=False)
        with torch.no_grad():
            want = model.generate(**enc, do_sample=False, max_new_tokens=NEW_TOKENS)[0, 1:].tolist()
        assert ids[ids >= 0].tolist() == want
    assert len({tuple(g) for g in got}) > 1


def test_the_export_holds_encoder_and_decoders_with_parity(run):
    export = rows_of(run[1])["onnx-fp32"]["artifact"]
    manifest = json.loads((__import__("pathlib").Path(export) / "manifest.json").read_text())
    assert manifest["parity"]["passed"] and manifest["parity"]["greedy_8_tokens_identical"] == 1
    assert {c["decoder_length"] for c in manifest["parity"]["cases"]} == {1, 8}


def test_ship_this_the_manifest_and_the_gate_read_exact_match(run):
    from qonnx.report.summary import recommend

    run_dir = run[1]
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["settings"]["kind"] == "seq2seq" and doc["settings"]["budget_metric"].startswith("exact_match")
    pick = recommend(doc)
    assert pick["row"] is not None and "exact match with the reference's text >= 0.95" in pick["text"]
    assert "ROUGE-L F1 (LCS on lower-cased words" in (run_dir / "report.md").read_text()
    r = CliRunner().invoke(main, ["validate", str(run_dir), "--variant", "onnx-fp32", "--max-accuracy-drop", "0"])
    assert r.exit_code == 0 and "PASS  exact_match_drop (1 - exact_match) = 0" in r.output, r.output


def test_a_method_without_a_seq2seq_recipe_is_skipped_with_its_reason(run):
    from qonnx.config import QuantizeConfig
    from qonnx.variants import quantize
    from qonnx.variants.seq2seq import NotForSeq2Seq

    export = rows_of(run[1])["onnx-fp32"]["artifact"]
    with pytest.raises(NotForSeq2Seq, match="int4-weight is not built for encoder-decoder"):
        quantize(QuantizeConfig(onnx_dir=export, method="int4-weight"))


def test_each_onnx_row_loads_the_graphs_its_build_holds(run):
    """int8-dynamic quantizes the encoder and the merged decoder; fp16 holds the unmerged pair (ONNX Runtime
    refuses a merged FP16 decoder); size counts the graphs the runtime loads."""
    from pathlib import Path

    from qonnx.runners.seq2seq import loaded_files

    rows = rows_of(run[1])
    names = {v: sorted(p.name for p in loaded_files(Path(rows[v]["artifact"]))) for v in ("onnx-int8-dynamic", "onnx-fp16")}
    assert names["onnx-int8-dynamic"] == ["decoder_model_merged.onnx", "encoder_model.onnx"]
    assert names["onnx-fp16"] == ["decoder_model.onnx", "decoder_with_past_model.onnx", "encoder_model.onnx"]
    for v in ("onnx-int8-dynamic", "onnx-fp16"):
        on_disk = sum(p.stat().st_size for p in loaded_files(Path(rows[v]["artifact"]))) / 2**20
        assert rows[v]["size_mb"] == pytest.approx(on_disk)
