"""wasm: the model runs for real in Node.js with onnxruntime-web's WebAssembly backend, and is
compared with the CPU EP; an op the runtime lacks fails the target with the op named."""
import json

from click.testing import CliRunner

from qonnx.cli import main
from qonnx.edge import wasm
from qonnx.edge.gate import EdgeConfig, validate_artifact


def test_runs_in_node_and_matches_the_cpu_ep(ort_web, graphs, tmp_path):
    doc = validate_artifact(EdgeConfig(str(graphs.mlp(tmp_path / "m", batch=1)), targets="wasm"))
    w = doc["targets"]["wasm"]
    assert w["verdict"] == "pass" and w["executed"] is True and w["how"] == "executed here"
    assert w["parity"]["max_abs_diff"] < 1e-5 and w["parity"]["top1_agreement"] == 1
    assert w["latency_ms"]["1"]["p50"] > 0 and w["cpu_ep_latency_ms"]["1"]["p50"] > 0 and w["peak_memory_mb"] > 0
    assert any(f"onnxruntime-web {wasm.ORT_WEB_VERSION}" in r for r in w["reasons"])


def test_an_op_the_runtime_lacks_fails_with_its_name(ort_web, graphs, tmp_path):
    folder = graphs.mlp(tmp_path / "m", batch=1, middle=("Mystery", "qonnx.test"))
    w = validate_artifact(EdgeConfig(str(folder), targets="wasm"))["targets"]["wasm"]
    assert w["verdict"] == "fail" and w["unsupported_ops"] == ["qonnx.test:Mystery"]
    assert any(r.startswith("FAIL") and "qonnx.test:Mystery" in r for r in w["reasons"])


def test_a_text_classifier_gets_real_sentences_and_runs_in_node_and_as_ort(ort_web, tiny_classifier_onnx, tmp_path):
    before = sorted(p.name for p in tiny_classifier_onnx.iterdir())
    out = tmp_path / "edge.json"
    r = CliRunner().invoke(main, ["validate", str(tiny_classifier_onnx), "--target", "wasm,ort-mobile",
                                  "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert "sentences through the folder's tokenizer" in doc["inputs"]
    for name in ("wasm", "ort-mobile"):
        t = doc["targets"][name]
        assert t["verdict"] == "pass" and t["executed"] is True and t["parity"]["top1_agreement"] == 1
        assert {"unsupported_ops", "partitions", "reasons", "latency_ms", "peak_memory_mb"} <= set(t)
    assert sorted(p.name for p in tiny_classifier_onnx.iterdir()) == before  # nothing written into the folder


def test_no_node_is_bad_input_that_says_how_to_fix_it(graphs, tmp_path, monkeypatch):
    monkeypatch.setattr(wasm.shutil, "which", lambda name: None)
    r = CliRunner().invoke(main, ["validate", str(graphs.mlp(tmp_path / "m", batch=1)), "--target", "wasm"])
    assert r.exit_code == 1 and "runs the model in Node.js, which is not on PATH" in r.output
    assert "apt-get install nodejs npm" in r.output and "Traceback" not in r.output
