"""The units of a graph that quantization touches, found from the graph itself.

A unit is a set of weighted nodes (MatMul/Gemm with an initializer weight, Gather over an
initializer table) grouped by transformer layer and role, read from the exporter's node names
(`/bert/encoder/layer.3/attention/self/query/MatMul`, `/model/layers.0/mlp/down_proj/MatMul`):
attention projections in (q/k/v), attention out, FFN in, FFN out, embeddings, head. Works for any
architecture whose exporter keeps module paths in node names (optimum does); a node whose name
says nothing lands in the `other` unit rather than being dropped.
"""
import re
from collections import OrderedDict

GROUPS = ("attn-in", "attn-out", "ffn-in", "ffn-out")
# first match wins: attention output before FFN output (BERT's attention/output/dense), FFN
# output before FFN input (DistilBERT's ffn/lin2, ALBERT's ffn_output)
ROLES = [
    ("embeddings", r"embed|wte|wpe|word_embeddings|position_embeddings|token_type"),
    ("head", r"classifier|pooler|score|lm_head|pre_classifier|qa_outputs"),
    ("attn-in", r"query|key|value|q_proj|k_proj|v_proj|qkv|c_attn|q_lin|k_lin|v_lin|in_proj|query_key_value|Wqkv"),
    ("attn-out", r"attention/output|o_proj|out_proj|out_lin|attn/c_proj|self_attn/dense|attention/dense|attn/dense"),
    ("ffn-out", r"output/dense|fc2|down_proj|mlp/c_proj|lin2|/w2/|dense_4h_to_h|ffn_output"),
    ("ffn-in", r"intermediate|fc1|up_proj|gate_proj|c_fc|lin1|/w1/|dense_h_to_4h|gate_up_proj|/ffn/"),
]
LAYER = re.compile(r"(?<![a-z])(?:layers?|h|blocks?|layer_\w+?)[./_](\d+)(?:/|$|\.)")


# fused ops (ONNX Runtime's transformer optimizer) whose weights dynamic INT8 quantizes: the input
# that holds the weight (Attention's packed QKV, EmbedLayerNormalization's word table)
FUSED_WEIGHT = {"Attention": 1, "EmbedLayerNormalization": 2}


def weighted_nodes(model, fused=False):
    """Names of the nodes that carry weights a quantizer would touch, in graph order; fused=True
    also the fused ops of FUSED_WEIGHT (dynamic INT8 quantizes them; static QDQ leaves them float)."""
    inits = {i.name for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits:
            out.append(n.name)
        elif n.op_type == "Gather" and n.input and n.input[0] in inits:
            out.append(n.name)
        elif fused and n.op_type in FUSED_WEIGHT and len(n.input) > FUSED_WEIGHT[n.op_type] \
                and n.input[FUSED_WEIGHT[n.op_type]] in inits:
            out.append(n.name)
    return out


def role(name: str) -> tuple:
    """(layer index or None, role) of a node name."""
    m = LAYER.search(name)
    layer = int(m.group(1)) if m else None
    for r, pattern in ROLES:
        if re.search(pattern, name):
            if r in ("embeddings", "head"):
                return None, r
            return layer, r if layer is not None else "other"
    return layer, "other"


def unit_name(layer, r) -> str:
    return f"layer {layer} {r}" if layer is not None else r


def units(model, fused=False) -> "OrderedDict[str, list]":
    """{unit name: node names}, embeddings first, then layers in order, head and other last."""
    found = {}
    for name in weighted_nodes(model, fused):
        found.setdefault(role(name), []).append(name)
    order = {"embeddings": -2, "head": 10**6, "other": 10**6 + 1}

    def key(item):
        (layer, r), _ = item
        if layer is None:
            return (order.get(r, 10**6), 0)
        return (layer, GROUPS.index(r) if r in GROUPS else len(GROUPS))

    return OrderedDict((unit_name(*k), v) for k, v in sorted(found.items(), key=key))
