"""A second encoder-decoder family through the default matrix: a tiny random BART (built from a config)."""
from test_seq2seq import check_matrix, compare


def test_every_default_row_is_ok_or_skipped_and_onnx_fp32_generates_torchs_text(tmp_path):
    from tiny_seq2seq import tiny_seq2seq

    run_dir, result = compare(tiny_seq2seq("bart", tmp_path / "model"), tmp_path)
    rows = check_matrix(run_dir, result, "bart")
    assert rows["onnx-int8-dynamic"]["size_mb"] < rows["onnx-fp32"]["size_mb"]
