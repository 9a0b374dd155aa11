import json

import numpy as np
import onnx
import pytest

from qonnx.config import QuantizeConfig
from qonnx.errors import ConfigError
from qonnx.parity import PROBE_TEXTS
from qonnx.variants import quantize


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("calib") / "calib.csv"
    import pandas as pd

    pd.DataFrame({"text": PROBE_TEXTS * 3}).to_csv(f, index=False)
    return f


def ops(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def build(src, method, tmp_path, **kw):
    out = tmp_path / method
    data = quantize(QuantizeConfig(onnx_dir=src, method=method, output=out, **kw))
    return out, data


def test_fp16_keeps_float32_io_and_is_finite(tiny_classifier_onnx, tmp_path):
    out, data = build(tiny_classifier_onnx, "fp16", tmp_path)
    model = onnx.load(str(out / "model.onnx"))
    assert all(i.type.tensor_type.elem_type in (onnx.TensorProto.INT64,) for i in model.graph.input)
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert np.isfinite(data["parity"]["max_abs_diff"]) and data["parity"]["max_abs_diff"] < 0.05


def test_int8_dynamic_is_smaller_and_fused(tiny_classifier_onnx, tmp_path):
    out, data = build(tiny_classifier_onnx, "int8-dynamic", tmp_path)
    assert data["settings"]["fused"] is True and data["settings"]["scheme"] == "fused"
    assert data["settings"]["per_channel"] is True  # the default for the fused scheme
    assert ops(out / "model.onnx") & {"DynamicQuantizeMatMul", "QAttention", "MatMulInteger"}
    assert (out / "model.onnx").stat().st_size < (tiny_classifier_onnx / "model.onnx").stat().st_size
    # the classifier head (pooler, classifier) stays FP32: its Gemms and their float weights are there
    head = data["settings"]["fp32_nodes"]
    assert len(head) == 2 and all("pooler" in n or "classifier" in n for n in head)
    m = onnx.load(str(out / "model.onnx"))
    inits = {i.name: i.data_type for i in m.graph.initializer}
    # (ORT's quantizer splits every Gemm into NAME_MatMul + Add, the excluded ones too)
    gemms = [n for n in m.graph.node if n.name in head or n.name in [f"{h}_MatMul" for h in head]]
    assert {n.op_type for n in gemms} <= {"Gemm", "MatMul"} and len(gemms) == 2
    assert all(inits[n.input[1]] == onnx.TensorProto.FLOAT for n in gemms)


def test_int8_static_records_calibration_provenance(tiny_classifier_onnx, tmp_path, calib_file):
    out, data = build(tiny_classifier_onnx, "int8-static", tmp_path, calibration=str(calib_file),
                      num_samples=10, calibration_method="entropy", seed=3)
    cal = data["settings"]["calibration"]
    assert cal["count"] == 10 and cal["seed"] == 3 and len(cal["sample_sha256"]) == 10
    assert data["settings"]["format"] == "QDQ" and data["settings"]["calibration_method"] == "entropy"
    assert "QuantizeLinear" in ops(out / "model.onnx")
    from qonnx import calibration

    _, again = calibration.select(str(calib_file), 10, 3, False, "text")  # the same draw, without a rebuild
    assert again["sample_sha256"] == cal["sample_sha256"]
    assert calibration.select(str(calib_file), 10, 4, False, "text")[1]["sample_sha256"] != cal["sample_sha256"]


def _qdq_scales(path):
    m = onnx.load(str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    return [float(inits[n.input[1]]) for n in m.graph.node if n.op_type == "QuantizeLinear"]


def test_int8_static_recipe_fused_with_dynamic_ffn_out(tiny_classifier_onnx, tmp_path, calib_file):
    """The encoder recipe: fused graph with its activations calibrated (QuantizeLinear on the MatMul
    inputs after Attention/SkipLayerNorm), FFN outputs dynamic INT8; --static-ffn-out static puts
    them back in QDQ. Entropy really runs its histogram search (ORT's quantize_static alone would
    bin 128 into 128, the MinMax ranges)."""
    kw = dict(calibration=str(calib_file), num_samples=10)
    out, data = build(tiny_classifier_onnx, "int8-static", tmp_path, **kw)
    s = data["settings"]
    assert s["graph"]["fused"] and s["graph"]["fused_ops"]["Attention"] >= 1 and s["per_channel"] is True
    assert s["dynamic_nodes"] and all("output/dense" in n and "attention" not in n for n in s["dynamic_nodes"])
    found = ops(out / "model.onnx")
    assert {"Attention", "QuantizeLinear", "MatMulInteger", "DynamicQuantizeLinear"} <= found
    static = quantize(QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-static", output=tmp_path / "s",
                                     static_ffn_out="static", **kw))
    assert static["settings"]["dynamic_nodes"] == [] and "MatMulInteger" not in ops(tmp_path / "s" / "model.onnx")
    assert len(_qdq_scales(tmp_path / "s" / "model.onnx")) > len(_qdq_scales(out / "model.onnx"))
    ent = quantize(QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-static", output=tmp_path / "e",
                                  calibration_method="entropy", **kw))
    assert ent["settings"]["calibrator"]["num_bins"] == 2048
    assert _qdq_scales(tmp_path / "e" / "model.onnx") != _qdq_scales(out / "model.onnx")


def test_int8_static_without_calibration_is_a_clear_error(tiny_classifier_onnx, tmp_path):
    with pytest.raises(ConfigError, match="int8-static needs calibration data"):
        build(tiny_classifier_onnx, "int8-static", tmp_path)
    assert not (tmp_path / "int8-static").exists()


def test_variant_folder_is_deployable(tiny_classifier_onnx, tmp_path):
    out, data = build(tiny_classifier_onnx, "int8-dynamic", tmp_path)
    for f in ("model.onnx", "config.json", "tokenizer.json", "manifest.json"):
        assert (out / f).is_file()
    m = json.loads((out / "manifest.json").read_text())
    assert m["method"] == "int8-dynamic" and m["parity"]["reference"] == "onnx-fp32"
    assert set(m["files"]) >= {"model.onnx", "config.json"}


def test_int4_weight_on_lm(tiny_lm_onnx, tmp_path):
    out, data = build(tiny_lm_onnx, "int4-weight", tmp_path, block_size=32)
    assert {"MatMulNBits", "GatherBlockQuantized"} <= ops(out / "model.onnx")
    assert data["settings"]["block_size"] == 32 and data["settings"]["shared_embeddings"] == 1
    assert data["parity"]["min_top1_agreement"] > 0.5


@pytest.mark.parametrize("method", ["fp16", "int8-dynamic", "int8-static"])
def test_lm_methods(tiny_lm_onnx, tmp_path, calib_file, method):
    kw = {"calibration": str(calib_file), "num_samples": 4} if method == "int8-static" else {}
    out, data = build(tiny_lm_onnx, method, tmp_path, **kw)
    assert np.isfinite(data["parity"]["max_abs_diff"])


def test_bad_settings_are_rejected(tiny_classifier_onnx):
    with pytest.raises(ConfigError, match="--block-size must be a power of two"):
        QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int4-weight", block_size=30)
    # the perplexity budget's search picks its blocks itself: an explicit size is refused, never ignored
    with pytest.raises(ConfigError, match="chooses its blocks itself"):
        QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int4-weight", block_size=32, max_perplexity_increase=5,
                       calibration="c.txt", validation="v.txt")
    assert QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int4-weight").block_size == 32
    with pytest.raises(ConfigError, match="Unknown calibration method 'kl'"):
        QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-static", calibration_method="kl")


def test_lm_int8_is_blockwise_and_shares_the_tied_embedding(tiny_lm_onnx, tmp_path):
    out, data = build(tiny_lm_onnx, "int8-dynamic", tmp_path)
    assert data["settings"]["scheme"] == "blockwise" and data["settings"]["shared_embeddings"] == 1
    model = onnx.load(str(out / "model.onnx"))
    assert {"MatMulNBits", "GatherBlockQuantized"} <= {n.op_type for n in model.graph.node}
    assert "model.embed_tokens.weight" not in {t.name for t in model.graph.initializer}
    assert data["parity"]["min_top1_agreement"] > 0.9


def test_encoder_int8_scheme_can_be_forced(tiny_classifier_onnx, tmp_path):
    out, data = build(tiny_classifier_onnx, "int8-dynamic", tmp_path, int8_scheme="blockwise")
    assert data["settings"]["scheme"] == "blockwise"
    assert "MatMulNBits" in ops(out / "model.onnx")
