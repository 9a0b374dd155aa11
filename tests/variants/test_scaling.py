"""Activation-aware input scales: folded where the input is made, the float graph unchanged, the
4-bit error lower where a few input channels are large."""
import json

import numpy as np
import pytest

from qonnx.variants.scaling import error, scale_inputs
from qonnx.variants.search.mixed import _four_bit_128


def _norm_matmul(K=256, N=64, op="SkipSimplifiedLayerNormalization"):
    """x, skip -> op (gamma) -> MatMul(W), the genai builder's way into a layer's projections."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    W = rng.standard_normal((K, N)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, K).astype(np.float32)
    ins = ["x", "skip", "gamma"] if op.startswith("Skip") else ["x", "gamma"]
    nodes = [helper.make_node(op, ins, ["normed"], domain="com.microsoft" if op.startswith("Skip") else "", name="/model/layers.0/norm", epsilon=1e-6),
             helper.make_node("MatMul", ["normed", "W"], ["y"], name="/model/layers.0/mlp/up_proj/MatMul")]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, K]) for n in ins[:-1]]
    graph = helper.make_graph(nodes, "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N])],
                              [numpy_helper.from_array(W, "W"), numpy_helper.from_array(gamma, "gamma")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return model, W, gamma


def _run(model, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("op", ["SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization"])
def test_scales_fold_into_the_norm_and_lower_the_4_bit_error(op):
    from onnx import numpy_helper

    model, W, gamma = _norm_matmul(op=op)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((512, 256))
    X[:, :4] *= 30  # a few large channels, as in real LMs
    H = 2 * X.T @ X / len(X)
    feeds = {n.name: rng.standard_normal((1, 256)).astype(np.float32) for n in model.graph.input}
    before = _run(model, feeds)
    Hs = {"normed": H.copy()}
    chosen = scale_inputs(model, Hs, _four_bit_128)
    assert set(chosen) == {"normed"} and chosen["normed"] > 0
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    s = inits["W"][:, 0] / W[:, 0]  # the rows' scale, and gamma divided by it
    np.testing.assert_allclose(inits["gamma"], gamma / s, rtol=1e-5)
    assert s[:4].mean() > 2 * s[4:].mean()  # the large channels' rows were scaled up
    np.testing.assert_allclose(Hs["normed"], H / np.outer(s, s), rtol=1e-4)
    np.testing.assert_allclose(_run(model, feeds), before, rtol=1e-4, atol=1e-4)  # the float graph is unchanged
    plain = error(_four_bit_128(W.astype(np.float64), H) - W, H)
    scaled = error(_four_bit_128(inits["W"].astype(np.float64), Hs["normed"]) / s[:, None] - W, H)
    assert scaled < 0.85 * plain, (scaled, plain)  # 0.79 here; alpha 0 (no scales) gives 1


def test_an_input_no_producer_can_take_keeps_its_weights():
    """The input of a MatMul that is a graph input (or attention's output) cannot be divided by s."""
    from onnx import numpy_helper

    model, W, _ = _norm_matmul()
    model.graph.node[1].input[0] = "x"
    assert scale_inputs(model, {"x": np.diag(np.linspace(1, 900, 256))}, _four_bit_128) == {}
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[0]), W)


def test_scales_on_a_llama_graph_keep_its_logits(tiny_lm_onnx):
    """The optimum export of a tiny Llama: the projections after each RMSNorm (its weight Mul, shared
    by every norm: each gets its own scaled copy) are scaled, attention's output and the head are
    not, the logits stay the float graph's, and H of every scaled input is the one a calibration
    pass over the scaled graph measures."""
    import onnx
    from onnx import numpy_helper

    from qonnx.variants.gptq import hessians
    from qonnx.variants.graph import materialize_transposed_weights, weighted_matmuls
    from qonnx.variants.search.mixed import calibration_feeds

    model = onnx.load(str(tiny_lm_onnx / "model.onnx"))
    materialize_transposed_weights(model)
    # the norms' weight (one constant the exporter shares through Identity nodes; all ones in a random
    # model) with a few large channels, as trained LMs have: where scales pay
    gamma = next(i for i in model.graph.initializer if "layernorm" in i.name)
    v = numpy_helper.to_array(gamma).copy()
    v[:3] = 12.0
    gamma.CopyFrom(numpy_helper.from_array(v, gamma.name))
    config = json.loads((tiny_lm_onnx / "config.json").read_text())
    ids = np.random.default_rng(0).integers(4, 60, 96).tolist()
    feeds = calibration_feeds(model, ids, 2, 48, config)
    nodes, _ = weighted_matmuls(model)
    H = hessians(model, feeds, nodes)
    before = _run_lm(model, feeds[0])
    chosen = scale_inputs(model, H, _four_bit_128)
    scaled = {n.name for n in nodes if n.input[0] in chosen}
    assert any("down_proj" in n for n in scaled) and any("q_proj" in n or "qkv" in n for n in scaled), scaled
    assert not any("o_proj" in n or "lm_head" in n for n in scaled), scaled
    np.testing.assert_allclose(_run_lm(model, feeds[0]), before, rtol=1e-3, atol=1e-3)
    again = hessians(model, feeds, weighted_matmuls(model)[0])
    for x in chosen:
        np.testing.assert_allclose(H[x], again[x], rtol=1e-3, atol=1e-6 * np.abs(again[x]).max())


def _run_lm(model, feed):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([sess.get_outputs()[0].name], feed)[0]


def test_the_scales_are_chosen_for_the_8_bit_codes_too():
    """Every unit's cost is measured with the rest at 8 bits: scales chosen for 4-bit clip codes alone
    can ruin the 8-bit codes where an input has channels of massive energy (demo:smollm2's layer 11
    down_proj: 8e5x the median, alpha 1.0); chosen for 4 bits with the 8-bit error held within
    scaling.GUARD of its least, the 8-bit error falls far more than the 4-bit one rises."""
    from onnx import numpy_helper

    from qonnx.variants.search.mixed import _eight_bit_128

    rng = np.random.default_rng(1)
    X = rng.standard_normal((512, 256))
    X[:, 3] *= 900  # a channel of massive energy
    X[:, 7] *= 300
    H = 2 * X.T @ X / len(X)
    errs = {}
    for name, quantize in (("4-bit", _four_bit_128), ("both", (_four_bit_128, _eight_bit_128))):
        model, W, _ = _norm_matmul()
        Hs = {"normed": H.copy()}
        chosen = scale_inputs(model, Hs, quantize).get("normed", 0.0)
        w = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "W")).astype(np.float64)
        s = w[:, 0] / W[:, 0]
        errs[name] = (chosen, *(error(q(w, Hs["normed"]) / s[:, None] - W, H) for q in (_four_bit_128, _eight_bit_128)))
    (a4, four4, eight4), (a2, four2, eight2) = errs["4-bit"], errs["both"]
    assert a2 < a4 and eight2 < eight4 / 5 and four2 < 1.5 * four4, errs
