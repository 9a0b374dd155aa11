"""A second encoder-decoder family through the default matrix: a tiny random BART (built from a config),
its rows timed in two interleaved rounds (decode tokens/s each round, ratios to torch-fp32 per round)."""
from test_seq2seq import check_matrix, compare


def test_every_default_row_is_ok_or_skipped_and_onnx_fp32_generates_torchs_text(tmp_path):
    from tiny_seq2seq import tiny_seq2seq

    run_dir, result = compare(tiny_seq2seq("bart", tmp_path / "model"), tmp_path, timing=("--rounds", "2"))
    rows = check_matrix(run_dir, result, "bart")
    timed = [r for r in rows.values() if r["status"] == "ok"]
    assert all(r["timing"].startswith("interleaved: ") and len(r["rounds"]) == 2 for r in timed), \
        [r["timing"] for r in timed]
    assert all(r["speedup_range"][0] <= r["speedup"] <= r["speedup_range"][1] for r in timed)
    assert rows["onnx-int8-dynamic"]["size_mb"] < rows["onnx-fp32"]["size_mb"]
