"""Tiny ONNX graphs built with onnx.helper for the edge targets, and the Node.js runtime they share.

onnxruntime-web is npm-installed once per machine into the user's qonnx cache (a session
fixture; later sessions reuse it); everything else an edge check writes (.ort files, fixed-shape
models) goes to a temporary $QONNX_CACHE per test."""
import numpy as np
import pytest

from qonnx.edge import wasm
from qonnx.errors import QonnxError

H = 8


@pytest.fixture(scope="session", autouse=True)
def ort_web_dir():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QONNX_ORT_WEB_DIR", str(wasm.runtime_dir()))  # the user's cache, before any test moves it
        yield


@pytest.fixture(autouse=True)
def edge_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QONNX_CACHE", str(tmp_path_factory.mktemp("qonnx-cache")))


@pytest.fixture(scope="session")
def ort_web(ort_web_dir):
    """onnxruntime-web installed (once); the wasm tests skip, saying why, where it cannot be."""
    problem = wasm.node_problem()
    if problem:
        pytest.skip(f"no Node.js for the wasm target: {problem}")
    try:
        return wasm.ensure_runtime()
    except QonnxError as e:
        pytest.skip(f"onnxruntime-web could not be installed: {e}")


def save(folder, nodes, inputs, outputs, inits=(), domains=()):
    import onnx
    from onnx import helper

    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    return folder


def weight(name, shape, seed):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) / 4, name)


def mlp(folder, batch="batch", middle=None):
    """x[batch, 8] -> MatMul -> Add -> (`middle`: (op, domain)) -> Relu -> MatMul -> logits[batch, 2]:
    every op one NNAPI and CoreML take; `middle` puts an op in between."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"]), helper.make_node("Add", ["h1", "b1"], ["h2"])]
    last, domains = "h2", []
    if middle:
        op, domain = middle
        nodes.append(helper.make_node(op, ["h2"], ["m"], domain=domain))
        last, domains = "m", [domain] if domain else []
    nodes += [helper.make_node("Relu", [last], ["h3"]), helper.make_node("MatMul", ["h3", "w2"], ["logits"])]
    inits = [weight("w1", (H, H), 1), weight("b1", (H,), 2), weight("w2", (H, 2), 3)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, H])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 2])
    return save(folder, nodes, [x], [y], inits, domains)


def qdq(folder, activations="uint8", weight_zero_point=0, batch=1):
    """x -> Q/DQ (activations) -> MatMul with a DQ'd int8 weight -> Q/DQ -> y: a QDQ graph as QNN takes it
    with the defaults."""
    from onnx import TensorProto, helper, numpy_helper

    act = {"uint8": np.uint8, "int8": np.int8, "uint16": np.uint16}[activations]
    w = np.random.default_rng(0).integers(-100, 100, size=(H, 4)).astype(np.int8)
    inits = [numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(act(0), "zp"),
             numpy_helper.from_array(w, "w_q"), numpy_helper.from_array(np.float32(0.01), "w_s"),
             numpy_helper.from_array(np.int8(weight_zero_point), "w_zp")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["h"]),
             helper.make_node("QuantizeLinear", ["h", "s", "zp"], ["hq"]),
             helper.make_node("DequantizeLinear", ["hq", "s", "zp"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, H])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    return save(folder, nodes, [x], [y], inits)


@pytest.fixture
def graphs():
    """The builders above, for tests (conftest modules are not imported by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(mlp=mlp, qdq=qdq, save=save)
