"""The LM head split by token ranges (search.vocab) and its builds (nbits: neighbouring ranges in one
format are one MatMulNBits again), on a graph made by hand."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qonnx.variants.graph import weighted_matmuls
from qonnx.variants.search.lm_rank import layer_units
from qonnx.variants.search.nbits import replace, rtn_codes
from qonnx.variants.search.vocab import bounds, split_head

K, N, HEAD = 128, 200, "/lm_head/MatMul"


def _graph(shared=False):
    """x -> a layer's MatMul -> the head MatMul -> logits; shared: a Gather also reads the head's weight."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((K, K)).astype(np.float32), "w_down"),
             numpy_helper.from_array(rng.standard_normal((K, N)).astype(np.float32), "lm_head.weight")]
    nodes = [helper.make_node("MatMul", ["x", "w_down"], ["h"], name="/model/layers.0/mlp/down_proj/MatMul"),
             helper.make_node("MatMul", ["h", "lm_head.weight"], ["logits"], name=HEAD)]
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, N])]
    if shared:
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "row"))
        nodes.append(helper.make_node("Gather", ["lm_head.weight", "row"], ["looked"], name="/model/embed_tokens/Gather"))
        outs.append(helper.make_tensor_value_info("looked", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, K])], outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _run(m, x):
    import onnxruntime as ort

    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(["logits"], {"x": x})[0]


def _ops(m):
    return [n.op_type for n in m.graph.node]


def test_ranges_grow_four_fold_and_a_small_head_is_left_whole():
    assert bounds(49152) == [4096, 16384, 49152]  # SmolLM2
    assert bounds(151936) == [4096, 16384, 65536, 151936]
    assert bounds(5000) == [] and bounds(200, 16) == [16, 64, 200]


def test_the_split_head_computes_the_same_logits_as_ranges_of_their_own():
    m, x = _graph(), np.random.default_rng(0).standard_normal((1, 3, K)).astype(np.float32)
    before = _run(m, x)
    assert split_head(m, 16) == {"head": HEAD, "ranges": [[0, 15], [16, 63], [64, 199]]}
    assert _ops(m) == ["MatMul"] * 4 + ["Concat"] and "lm_head.weight" not in {i.name for i in m.graph.initializer}
    np.testing.assert_array_equal(_run(m, x), before)
    units = layer_units([n.name for n in weighted_matmuls(m)[0]])
    assert list(units) == ["layer 0 ffn-out", "head tokens 0-15", "head tokens 16-63", "head tokens 64-199"]
    # a head whose weight something else reads (an untied lookup would lose it), or too small, stays whole
    shared = _graph(shared=True)
    assert split_head(shared, 16) is None and split_head(_graph(), 4096) is None


@pytest.mark.parametrize("formats,ops", [
    # one format for all: the unsplit head's graph again, no Concat, no Split
    (((4, 32, True),) * 3, ["MatMulNBits", "MatMulNBits"]),
    # neighbours in one format: one node; the Concat joins it and the third range
    (((8, 128), (8, 128), (4, 32)), ["MatMulNBits", "MatMulNBits", "MatMulNBits", "Concat"]),
    # the same format apart: not fused (a Split and a Concat would cost more than the call saved)
    (((4, 32), (8, 128), (4, 32)), ["MatMulNBits", "MatMulNBits", "MatMulNBits", "MatMulNBits", "Concat"]),
])
def test_ranges_in_one_format_run_as_one_node(formats, ops):
    m, x = _graph(), np.random.default_rng(0).standard_normal((1, 3, K)).astype(np.float32)
    whole = onnx.ModelProto()
    whole.CopyFrom(m)
    split_head(m, 16)
    nodes, weights = weighted_matmuls(m)
    plan = {n.name: (*f, rtn_codes(weights[n.name], f)) for n, f in zip(nodes[1:], formats)}
    plan[nodes[0].name] = (8, 128, rtn_codes(weights[nodes[0].name], (8, 128)))
    built = replace(m, plan, dict.fromkeys(weights, K))
    assert _ops(built) == ops
    # each range computes what the unsplit head computes in its format
    got, w = _run(built, x), weighted_matmuls(whole)[1]
    for (a, b), f in zip([(0, 16), (16, 64), (64, N)], formats):
        one = onnx.ModelProto()
        one.CopyFrom(whole)
        ref = _run(replace(one, {HEAD: (*f, rtn_codes(w[HEAD], f)), nodes[0].name: plan[nodes[0].name]},
                           dict.fromkeys(w, K)), x)
        np.testing.assert_allclose(got[..., a:b], ref[..., a:b], rtol=1e-5, atol=1e-4)
