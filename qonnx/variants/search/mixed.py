"""Mixed 4/8-bit MatMulNBits graphs for the LM budget search: every weighted MatMul's 8-bit codes
and 4-bit codes by each recipe of variants.gptq.FOUR_BIT (computed once from one calibration
pass), and the graph with a chosen set of MatMuls at each width (replace)."""
from pathlib import Path

import numpy as np

from qonnx.errors import ModelError
from qonnx.runners.ort import empty_past
from qonnx.variants.gptq import FOUR_BIT, eight_bit_codes, hessians, matmul_nbits
from qonnx.variants.graph import save, share_tied_embedding
from qonnx.variants.int4_weight import ACCURACY_LEVEL

# RECIPE and ACCURACY_LEVEL are int4-weight's: this search is how that method builds within a budget.
# Both widths' block along the input (K padded to whole blocks, as MatMulNBits allows); why 128:
# docs/budgets.md, and the decode timings behind it in docs/benchmarks.md.
BLOCK = 128


def weighted_matmuls(model):
    """MatMul nodes with a 2-D initializer weight, and {name: weight}."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    out = [n for n in model.graph.node
           if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2]
    return out, {n.name: numpy_helper.to_array(inits[n.input[1]]) for n in out}


def calibration_feeds(model, ids, samples, length, config):
    """Feeds of `samples` windows of `length` tokens for a causal LM graph (no past)."""
    import onnxruntime as ort

    inputs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).get_inputs()
    names = {i.name for i in inputs}
    feeds = []
    for s in range(samples):
        x = np.asarray(ids[s * length:(s + 1) * length], dtype=np.int64)[None]
        if x.shape[1] < 2:
            break
        f = {"input_ids": x, "attention_mask": np.ones_like(x), **empty_past(inputs, 1, config)}
        if "position_ids" in names:
            f["position_ids"] = np.arange(x.shape[1], dtype=np.int64)[None]
        feeds.append(f)
    if not feeds:
        raise ModelError("the calibration text is too short for the GPTQ pass (needs at least 2 tokens)")
    return feeds


def _compact(codes, scales, zeros):
    return codes.astype(np.uint8), scales.astype(np.float32), zeros.astype(np.uint8)


class MixedBuilder:
    """The 8-bit codes and the 4-bit codes by each recipe of variants.gptq.FOUR_BIT of every MatMul,
    computed once; use(names, recipe) sets the 4-bit recipe of those MatMuls (at first: the first
    recipe); build(four, eight, out) writes the model with the MatMuls in `four` at 4 bits, those in
    `eight` at 8 bits, the rest as they are."""

    def __init__(self, model, calib_ids, config, block=BLOCK, samples=8, length=512):
        self.model, self.block = model, block
        nodes, weights = weighted_matmuls(model)
        if not nodes:
            raise ModelError("no MatMul with a constant weight to quantize in this graph")
        H = hessians(model, calibration_feeds(model, calib_ids, samples, length, config), nodes)
        # codes kept as the node stores them (uint8 codes and zero points, float32 scales): about
        # 3 bytes per weight for the three code sets, not 5 each in float64
        self.recipes = {r: {n.name: _compact(*f(weights[n.name], H[n.input[0]], block)) for n in nodes}
                        for r, f in FOUR_BIT.items()}
        self.eight = {n.name: _compact(*eight_bit_codes(weights[n.name], block)) for n in nodes}
        self.inputs = {n.name: weights[n.name].shape[0] for n in nodes}
        self.shapes = {n.name: tuple(weights[n.name].shape) for n in nodes}
        self.nodes = [n.name for n in nodes]
        self.codes, self.recipe = {}, {}
        self.use(self.nodes, next(iter(self.recipes)))

    def use(self, names, recipe):
        for n in names:
            self.codes[n], self.recipe[n] = self.recipes[recipe][n], recipe

    def build(self, four, eight, out: Path):
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        plan = {**{n: (8, self.eight[n]) for n in eight}, **{n: (4, self.codes[n]) for n in four}}
        replace(m, plan, self.inputs, self.block)
        return save(m, out, external=True, prune=True)


def replace(m, plan, inputs, block):
    """m with each MatMul named in plan ({name: (bits, (codes, scales, zero points))}) as
    MatMulNBits (8 bits symmetric, 4 asymmetric) and an 8-bit tied lm_head serving the embedding
    lookup too."""
    for i, n in enumerate(list(m.graph.node)):
        if n.name in plan:
            bits, (c, s, z) = plan[n.name]
            node, inits = matmul_nbits(n, inputs[n.name], c, s, z, bits, block, bits == 8, ACCURACY_LEVEL)
            m.graph.node.remove(m.graph.node[i])
            m.graph.node.insert(i, node)
            m.graph.initializer.extend(inits)
    share_tied_embedding(m, bits=8)
    return m


def eight_bit(src, out, block=BLOCK) -> Path:
    """Every weighted MatMul of src as 8-bit MatMulNBits (round to nearest, symmetric, blocks of
    `block`), written to out."""
    import onnx

    m = onnx.load(str(src))
    nodes, weights = weighted_matmuls(m)
    plan = {n.name: (8, _compact(*eight_bit_codes(weights[n.name], block))) for n in nodes}
    replace(m, plan, {k: w.shape[0] for k, w in weights.items()}, block)
    return save(m, out, external=True, prune=True)
