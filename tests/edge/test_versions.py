"""Opset and IR limits per target: what each target's runtime version reads, asked of the runtime."""
import onnx

from qonnx.edge import versions
from qonnx.edge.gate import EdgeConfig, validate_artifact


def stamp(folder, ir_version=None, opset=None):
    path = folder / "model.onnx"
    model = onnx.load(str(path))
    if ir_version is not None:
        model.ir_version = ir_version
    if opset is not None:
        model.opset_import[0].version = opset
    onnx.save(model, str(path))
    return folder


def test_onnx_runtime_names_its_own_limits_and_reads_them():
    lim = versions.ort_limits()
    assert lim["unread"] == [] and lim["ir_version"] >= 10 and lim["opset"] >= 21
    assert lim["runtime"].startswith("onnxruntime ")


def test_a_graph_with_too_new_ir_fails_every_target_with_the_reason(graphs, tmp_path):
    lim = versions.ort_limits()
    folder = stamp(graphs.mlp(tmp_path / "m", batch=1), ir_version=lim["ir_version"] + 1)
    doc = validate_artifact(EdgeConfig(str(folder), targets="ort-mobile,nnapi,coreml,qnn"))
    assert not doc["passed"]
    for name, t in doc["targets"].items():
        assert t["verdict"] == "fail" and t["executed"] is False, name
        assert any(r.startswith(f"FAIL: IR version {lim['ir_version'] + 1} is newer than {lim['runtime']}")
                   for r in t["reasons"]), name


def test_a_graph_with_too_new_opset_fails_and_one_within_is_said_to_be_read(graphs, tmp_path):
    lim = versions.ort_limits()
    folder = stamp(graphs.mlp(tmp_path / "m", batch=1), opset=lim["opset"] + 1)
    t = validate_artifact(EdgeConfig(str(folder), targets="nnapi"))["targets"]["nnapi"]
    assert t["verdict"] == "fail" and any(f"opset {lim['opset'] + 1} (ai.onnx) is newer" in r for r in t["reasons"])
    t = validate_artifact(EdgeConfig(str(graphs.mlp(tmp_path / "ok", batch=1)), targets="nnapi"))["targets"]["nnapi"]
    assert t["reads"] == {k: lim[k] for k in ("ir_version", "opset", "runtime")}
    assert any(r.startswith("IR version 8 and opset 17 are within what") for r in t["reasons"])


def test_wasm_asks_onnxruntime_web_whose_limits_may_trail_the_python_package(ort_web, graphs, tmp_path):
    web, here = versions.web_limits(), versions.ort_limits()
    assert web["unread"] == [] and web["runtime"].startswith("onnxruntime-web ")
    folder = stamp(graphs.mlp(tmp_path / "m", batch=1), opset=web["opset"] + 1)
    doc = validate_artifact(EdgeConfig(str(folder), targets="wasm,ort-mobile"))
    w = doc["targets"]["wasm"]
    assert w["verdict"] == "fail" and w["executed"] is False
    assert any(f"opset {web['opset'] + 1} (ai.onnx) is newer than {web['runtime']}" in r for r in w["reasons"])
    if web["opset"] < here["opset"]:  # the Python package reads it: ort-mobile goes on and runs it
        assert doc["targets"]["ort-mobile"]["executed"] is True
