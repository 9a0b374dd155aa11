"""A convolutional image classifier through the default matrix: a tiny random ResNet (built from a config,
with a ConvNextImageProcessor, as microsoft/resnet-50 ships) on seeded PNGs in the imagefolder layout."""
from test_images import check_matrix, compare


def test_every_default_row_is_ok_or_skipped_and_onnx_fp32_agrees_with_torch(tmp_path):
    from tiny_vision import tiny_resnet

    run_dir, result = compare(tiny_resnet(tmp_path / "model"), tmp_path)
    rows = check_matrix(run_dir, result, "resnet")
    assert rows["onnx-int8-dynamic"]["size_mb"] < rows["onnx-fp32"]["size_mb"]
