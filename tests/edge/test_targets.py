"""ort-mobile (executed), nnapi / coreml / qnn (static) and --fix-shapes on tiny graphs."""
import pytest

from qonnx.edge.gate import EdgeConfig, validate_artifact
from qonnx.errors import ConfigError


def gate(folder, targets, **kw):
    return validate_artifact(EdgeConfig(str(folder), targets=targets, **kw))


def test_ort_mobile_converts_loads_the_ort_file_and_matches(graphs, tmp_path):
    folder = graphs.mlp(tmp_path / "m", batch=1)
    t = gate(folder, "ort-mobile")["targets"]["ort-mobile"]
    assert t["verdict"] == "pass" and t["executed"] is True and t["parity"]["max_abs_diff"] == 0
    assert t["ort_file"].endswith(".ort") and t["required_operators"] and "MatMul" in " ".join(t["required_operators"])
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx"]  # the .ort file went to the cache


def test_ort_mobile_names_ops_a_reduced_build_lacks_and_ops_onnx_runtime_lacks(graphs, tmp_path):
    config = tmp_path / "required_operators.config"
    config.write_text("# a reduced build of our app\nai.onnx;17;Relu\n")
    t = gate(graphs.mlp(tmp_path / "m", batch=1), "ort-mobile", ops_config=str(config))["targets"]["ort-mobile"]
    assert t["verdict"] == "fail" and "Relu" not in t["unsupported_ops"] and t["unsupported_ops"]
    assert any(r.startswith("FAIL") and "--ops-config" in r for r in t["reasons"])
    custom = graphs.mlp(tmp_path / "c", batch=1, middle=("Mystery", "qonnx.test"))
    t = gate(custom, "ort-mobile")["targets"]["ort-mobile"]
    assert t["verdict"] == "fail" and t["unsupported_ops"] == ["qonnx.test:Mystery"]


def test_an_op_nnapi_lacks_in_the_middle_splits_the_graph_and_fails_by_ort_rule(graphs, tmp_path):
    doc = gate(graphs.mlp(tmp_path / "m", batch=1, middle=("Erf", "")), "nnapi,coreml")
    n = doc["targets"]["nnapi"]
    assert n["verdict"] == "fail" and n["executed"] is False and n["how"] == "checked statically"
    assert n["unsupported_ops"] == ["Erf"] and n["partitions"] == 2
    assert any("ORT's rule" in r for r in n["reasons"]) and any("Erf" in r and r.startswith("FAIL") for r in n["reasons"])
    assert doc["targets"]["coreml"]["partitions"] is not None


def test_dynamic_shapes_are_flagged_for_nnapi_and_pass_after_fix_shapes(graphs, tmp_path):
    folder = graphs.mlp(tmp_path / "m", batch="batch")
    n = gate(folder, "nnapi")["targets"]["nnapi"]
    assert n["verdict"] == "fail" and n["nodes_dynamic_shape"] > 0
    assert any("--fix-shapes batch=1" in r for r in n["reasons"]) and n["if_shapes_fixed"]["suitability"] == "YES"
    doc = gate(folder, "nnapi", fix_shapes="batch=1")
    assert doc["targets"]["nnapi"]["verdict"] == "pass" and doc["targets"]["nnapi"]["partitions"] == 1
    fixed = doc["fixed_shapes"]
    assert fixed["shapes"] == {"batch": 1} and fixed["still_dynamic"] == {} and not fixed["reused"]
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx"]  # the fixed model is a folder of its own
    assert gate(folder, "nnapi", fix_shapes="batch=1")["fixed_shapes"]["reused"]  # content-keyed


def test_fix_shapes_names_the_dimensions_it_does_not_know(graphs, tmp_path):
    folder = graphs.mlp(tmp_path / "m", batch="batch_size")
    with pytest.raises(ConfigError, match=r"--fix-shapes seq: is none of the model's symbolic dimensions \(batch_size\)"):
        gate(folder, "nnapi", fix_shapes="seq=128")
    with pytest.raises(ConfigError, match="NAME=SIZE pairs"):
        gate(folder, "nnapi", fix_shapes="batch=one")
    assert gate(folder, "nnapi", fix_shapes="batch=1")["fixed_shapes"]["shapes"] == {"batch_size": 1}


def test_qnn_takes_a_uint8_qdq_graph_and_says_what_else_it_refuses(graphs, tmp_path):
    ok = gate(graphs.qdq(tmp_path / "ok"), "qnn")["targets"]["qnn"]
    assert ok["verdict"] == "pass" and ok["executed"] is False and ok["partitions"] == 1, ok["reasons"]
    for name, kw, says in [("int8", {"activations": "int8"}, "activations quantized to int8"),
                           ("asym", {"weight_zero_point": 3}, "signed weight(s) with a non-zero zero point"),
                           ("dyn", {"batch": "batch"}, "--fix-shapes batch=1")]:
        bad = gate(graphs.qdq(tmp_path / name, **kw), "qnn")["targets"]["qnn"]
        assert bad["verdict"] == "fail" and any(says in r for r in bad["reasons"]), (name, bad["reasons"])
    floats = gate(graphs.mlp(tmp_path / "f", batch=1), "qnn")["targets"]["qnn"]
    assert any("not a QDQ graph" in r for r in floats["reasons"])
