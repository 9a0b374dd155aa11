"""The units of a graph that quantization touches, found from the graph itself.

A unit is a set of weighted nodes (MatMul/Gemm with an initializer weight, Gather over an
initializer table) grouped by transformer layer and role, read from the exporter's node names
(`/bert/encoder/layer.3/attention/self/query/MatMul`, `/model/layers.0/mlp/down_proj/MatMul`):
attention projections in (q/k/v), attention out, cross-attention in and out (an encoder-decoder's
decoder: BART's encoder_attn, T5's EncDecAttention), FFN in, FFN out, embeddings, head. Works for any
architecture whose exporter keeps module paths in node names (optimum does); a node whose name
says nothing lands in the `other` unit rather than being dropped. subgraphs=True also reads the
nodes inside If/Loop/Scan branches (optimum's merged decoder keeps every MatMul there, its weights
top-level initializers both branches share); `stack` names the graph's units ("encoder layer 0 ...").
"""
import re
from collections import OrderedDict

GROUPS = ("attn-in", "attn-out", "cross-attn-in", "cross-attn-out", "ffn-in", "ffn-out")
# first match wins: cross-attention before self-attention (BART's encoder_attn/q_proj would be
# attn-in), attention output before FFN output (BERT's attention/output/dense), FFN output before
# FFN input (DistilBERT's ffn/lin2, ALBERT's ffn_output). T5: SelfAttention/EncDecAttention q k v o,
# DenseReluDense wi (wi_0, wi_1) and wo, the relative position bias table with its attention's
# inputs; its decoder's token table is `shared`.
CROSS = r"encoder_attn/|EncDecAttention/"
ROLES = [
    ("embeddings", r"embed|wte|wpe|word_embeddings|position_embeddings|token_type|/shared/"),
    ("head", r"classifier|pooler|score|lm_head|pre_classifier|qa_outputs"),
    ("cross-attn-in", rf"(?:{CROSS})(?:q_proj|k_proj|v_proj|[qkv]/)"),
    ("cross-attn-out", rf"(?:{CROSS})(?:out_proj|o/)"),
    ("attn-in", r"query|key|value|q_proj|k_proj|v_proj|qkv|c_attn|q_lin|k_lin|v_lin|in_proj|query_key_value|Wqkv"
                r"|SelfAttention/[qkv]/|relative_attention_bias"),
    ("attn-out", r"attention/output|o_proj|out_proj|out_lin|attn/c_proj|self_attn/dense|attention/dense|attn/dense"
                 r"|SelfAttention/o/"),
    ("ffn-out", r"output/dense|fc2|down_proj|mlp/c_proj|lin2|/w2/|dense_4h_to_h|ffn_output|DenseReluDense/wo/"),
    ("ffn-in", r"intermediate|fc1|up_proj|gate_proj|c_fc|lin1|/w1/|dense_h_to_4h|gate_up_proj|/ffn/"
               r"|DenseReluDense/wi"),
]
LAYER = re.compile(r"(?<![a-z])(?:layers?|h|blocks?|layer_\w+?)[./_](\d+)(?:/|$|\.)")


# fused ops (ONNX Runtime's transformer optimizer) whose weights dynamic INT8 quantizes: the input
# that holds the weight (Attention's packed QKV, EmbedLayerNormalization's word table)
FUSED_WEIGHT = {"Attention": 1, "EmbedLayerNormalization": 2}


def weighted_nodes(model, fused=False, subgraphs=False):
    """Names of the nodes that carry weights a quantizer would touch, in graph order; fused=True
    also the fused ops of FUSED_WEIGHT (dynamic INT8 quantizes them; static QDQ leaves them float);
    subgraphs=True also those inside If/Loop/Scan branches (a branch sees the outer initializers),
    each name once (both branches of a merged decoder hold the same nodes)."""
    import onnx

    out = []

    def walk(graph, inits):
        inits = inits | {i.name for i in graph.initializer}
        for n in graph.node:
            if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits:
                out.append(n.name)
            elif n.op_type == "Gather" and n.input and n.input[0] in inits:
                out.append(n.name)
            elif fused and n.op_type in FUSED_WEIGHT and len(n.input) > FUSED_WEIGHT[n.op_type] \
                    and n.input[FUSED_WEIGHT[n.op_type]] in inits:
                out.append(n.name)
            if subgraphs:
                for a in n.attribute:
                    if a.type == onnx.AttributeProto.GRAPH:
                        walk(a.g, inits)

    walk(model.graph, frozenset())
    return list(dict.fromkeys(out))


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


def unit_name(layer, r, stack=None) -> str:
    name = f"layer {layer} {r}" if layer is not None else r
    return f"{stack} {name}" if stack else name


def units(model, fused=False, subgraphs=False, stack=None) -> "OrderedDict[str, list]":
    """{unit name: node names}, embeddings first, then layers in order, head and other last; each
    name after `stack` where given (an encoder-decoder's "encoder", "decoder": their layers share numbers)."""
    found = {}
    for name in weighted_nodes(model, fused, subgraphs):
        found.setdefault(role(name), []).append(name)
    order = {"embeddings": -2, "head": 10**6, "other": 10**6 + 1}

    def key(item):
        (layer, r), _ = item
        if layer is None:
            return (order.get(r, 10**6), 0)
        return (layer, GROUPS.index(r) if r in GROUPS else len(GROUPS))

    return OrderedDict((unit_name(*k, stack), v) for k, v in sorted(found.items(), key=key))
