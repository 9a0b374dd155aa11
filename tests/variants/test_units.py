"""units.py on hand-built graphs (no export): roles of T5 and BART node names, and the units of an
optimum-style merged decoder, whose MatMuls sit inside the If branches over top-level initializers."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from qonnx.variants.units import role, units, weighted_nodes

T5 = {"/block.0/layer.0/SelfAttention/q/MatMul": (0, "attn-in"),
      "/block.0/layer.0/SelfAttention/relative_attention_bias/Gather": (0, "attn-in"),
      "/block.0/layer.0/SelfAttention/o/MatMul": (0, "attn-out"),
      "/decoder/block.1/layer.1/EncDecAttention/k/MatMul": (1, "cross-attn-in"),
      "/decoder/block.1/layer.1/EncDecAttention/o/MatMul": (1, "cross-attn-out"),
      "/block.0/layer.1/DenseReluDense/wi/MatMul": (0, "ffn-in"),
      "/decoder/block.0/layer.2/DenseReluDense/wi_1/MatMul": (0, "ffn-in"),
      "/block.0/layer.1/DenseReluDense/wo/MatMul": (0, "ffn-out"),
      "/embed_tokens/Gather": (None, "embeddings"), "/decoder/shared/Gather": (None, "embeddings")}
BART = {"/model/decoder/layers.2/self_attn/v_proj/MatMul": (2, "attn-in"),
        "/model/decoder/layers.2/self_attn/out_proj/MatMul": (2, "attn-out"),
        "/model/decoder/layers.2/encoder_attn/q_proj/MatMul": (2, "cross-attn-in"),
        "/model/decoder/layers.2/encoder_attn/out_proj/MatMul": (2, "cross-attn-out"),
        "/model/decoder/layers.2/fc1/MatMul": (2, "ffn-in"), "/layers.0/fc2/MatMul": (0, "ffn-out"),
        "/lm_head/MatMul": (None, "head"), "/embed_positions/Gather_1": (None, "embeddings")}
# encoder-only and decoder-only names keep their roles
OTHERS = {"/bert/encoder/layer.3/attention/self/query/MatMul": (3, "attn-in"),
          "/bert/encoder/layer.3/attention/output/dense/MatMul": (3, "attn-out"),
          "/bert/encoder/layer.3/output/dense/MatMul": (3, "ffn-out"),
          "/model/layers.0/mlp/down_proj/MatMul": (0, "ffn-out"), "/model/layers.0/self_attn/o_proj/MatMul": (0, "attn-out"),
          "/transformer/h.1/attn/c_attn/MatMul": (1, "attn-in")}


def test_roles_of_encoder_decoder_names():
    for name, want in {**T5, **BART, **OTHERS}.items():
        assert role(name) == want, name


def _matmul(name, weight, x="x"):
    return helper.make_node("MatMul", [x, weight], [f"{name}_out"], name=name)


def merged_decoder():
    """A graph like optimum's decoder_model_merged.onnx: an If whose two branches run the same named
    MatMuls over top-level weights (the with-past branch without the cross-attention k/v)."""
    names = ["/model/decoder/layers.0/self_attn/q_proj/MatMul", "/model/decoder/layers.0/encoder_attn/k_proj/MatMul",
             "/model/decoder/layers.0/encoder_attn/out_proj/MatMul", "/model/decoder/layers.0/fc1/MatMul",
             "/lm_head/MatMul"]
    weights = [numpy_helper.from_array(np.eye(4, dtype=np.float32), f"w{i}") for i in range(len(names))]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])

    def branch(tag, keep):
        nodes = [_matmul(n, f"w{i}") for i, n in enumerate(names) if keep(n)]
        nodes.append(helper.make_node("Identity", [nodes[-1].output[0]], ["y"]))
        return helper.make_graph(nodes, tag, [], [y])

    cond = helper.make_tensor_value_info("use_cache", TensorProto.BOOL, [])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("If", ["use_cache"], ["y"], name="optimum::if",
                            then_branch=branch("then", lambda n: "encoder_attn/k_proj" not in n),
                            else_branch=branch("else", lambda n: True))
    return helper.make_model(helper.make_graph([node], "merged", [cond, x], [y], initializer=weights)), names


def test_units_inside_if_branches_named_by_stack():
    model, names = merged_decoder()
    onnx.checker.check_model(model)
    assert weighted_nodes(model) == [] and units(model) == {}  # top level only: what the variants read
    assert weighted_nodes(model, subgraphs=True) == names  # both branches, each name once
    found = units(model, subgraphs=True, stack="decoder")
    assert list(found) == ["decoder layer 0 attn-in", "decoder layer 0 cross-attn-in", "decoder layer 0 cross-attn-out",
                           "decoder layer 0 ffn-in", "decoder head"]
    assert found["decoder layer 0 cross-attn-in"] == [names[1]]
    encoder = units(model, subgraphs=True, stack="encoder")
    assert set(encoder).isdisjoint(found) and "encoder layer 0 attn-in" in encoder
