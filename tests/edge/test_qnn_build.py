"""int8-qdq-qnn: a QDQ graph built with ONNX Runtime's QNN helpers, which the qnn target's type checks accept."""
import pandas as pd
import pytest

from qonnx.config import QuantizeConfig
from qonnx.edge.gate import EdgeConfig, validate_artifact
from qonnx.errors import ConfigError
from qonnx.parity import PROBE_TEXTS
from qonnx.variants import quantize


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("calib") / "calib.csv"
    pd.DataFrame({"text": PROBE_TEXTS * 3}).to_csv(f, index=False)
    return f


@pytest.fixture(scope="module")
def builds(tiny_classifier_onnx, calib_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("qnn")
    return {a: quantize(QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-qdq-qnn", output=out / a,
                                       calibration=str(calib_file), num_samples=12, qnn_activations=a))
            for a in ("uint16", "uint8")}


def test_the_build_records_the_types_qnn_takes(builds):
    s = builds["uint16"]["settings"]
    assert (s["activation_type"], s["weight_type"], s["weight_symmetric"]) == ("uint16", "int8", True)
    assert s["mask_constants_bounded"] >= 1 and s["helpers"] == "onnxruntime.quantization.execution_providers.qnn"
    assert builds["uint8"]["settings"]["activation_type"] == "uint8"
    # uint16 activations hold 256 times finer steps: closer to FP32 on the same calibration
    assert builds["uint16"]["parity"]["max_abs_diff"] < builds["uint8"]["parity"]["max_abs_diff"]


def test_the_qnn_target_passes_its_type_checks_once_shapes_are_fixed(builds):
    folder = builds["uint16"]["output"]
    t = validate_artifact(EdgeConfig(folder, targets="qnn"))["targets"]["qnn"]
    assert t["qdq_types"]["activations"].keys() == {"uint16"} and t["qdq_types"]["asymmetric_signed_weights"] == []
    assert set(t["qdq_types"]["weights"]) <= {"int8", "uint16"}  # uint16: quantized constants beside the weights
    fails = [r for r in t["reasons"] if r.startswith("FAIL")]
    assert any("dynamic input shapes" in r for r in fails)
    fixed = validate_artifact(EdgeConfig(folder, targets="qnn", fix_shapes="batch=1,sequence=16"))["targets"]["qnn"]
    problems = [r for r in fixed["reasons"] if r.startswith("FAIL") and any(
        w in r for w in ("dynamic input", "not a QDQ", "activations quantized", "signed weight", "dynamic or integer"))]
    assert problems == [] and fixed["qdq_types"]["activations"].keys() == {"uint16"}
    # standard (opset 21) Q/DQ: shape inference sees through them, and QNN takes the whole graph
    assert fixed["unsupported_ops"] == [] and fixed["verdict"] == "pass" and fixed["partitions"] == 1


def test_sixteen_bit_qdq_is_standard_onnx_at_opset_21(builds):
    import onnx

    model = onnx.load(str(builds["uint16"]["output"] + "/model.onnx"))
    assert builds["uint16"]["settings"]["opset"] == 21 and model.ir_version >= 10
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and {n.domain for n in qdq} == {""}


def test_unknown_activation_type_is_bad_input(tiny_classifier_onnx):
    with pytest.raises(ConfigError, match="Unknown --qnn-activations 'int8'"):
        QuantizeConfig(onnx_dir=tiny_classifier_onnx, method="int8-qdq-qnn", qnn_activations="int8")
