"""A second encoder-decoder family: a tiny random BART (built from a config), its ONNX rows (the merged
decoder at FP32 and INT8, the unmerged pair at FP16) beside torch-fp32, timed in three interleaved rounds
(decode tokens/s each round, ratios to torch-fp32 per round). T5 runs the whole default matrix (test_seq2seq)."""
from test_seq2seq import check_matrix, compare

ROWS = ("torch-fp32", "onnx-fp32", "onnx-fp16", "onnx-int8-dynamic")


def test_the_onnx_rows_are_ok_timed_in_rounds_and_onnx_fp32_generates_torchs_text(tmp_path):
    from tiny_seq2seq import tiny_seq2seq

    run_dir, result = compare(tiny_seq2seq("bart", tmp_path / "model"), tmp_path,
                              timing=("--rounds", "3", "--variants", ",".join(ROWS)))
    rows = check_matrix(run_dir, result, "bart", set(ROWS))
    assert all(r["status"] == "ok" for r in rows.values()), {v: r["reason"] for v, r in rows.items()}
    assert all(r["timing"].startswith("interleaved: ") and len(r["rounds"]) == 3 for r in rows.values()), \
        [r["timing"] for r in rows.values()]
    assert all(r["speedup_range"][0] <= r["speedup"] <= r["speedup_range"][1] for r in rows.values())
    assert rows["onnx-int8-dynamic"]["size_mb"] < rows["onnx-fp32"]["size_mb"]
