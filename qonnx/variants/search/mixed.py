"""Mixed-format MatMulNBits graphs for the LM budget search: every weighted MatMul's codes in each
candidate format (8-bit, and 4-bit by its recipes of variants.gptq.FOUR_BIT: four_bit_recipes,
each in its own block size; computed once from one calibration pass, after activation-aware input
scales: variants.scaling), and the graph with each MatMul in its chosen format (build: nbits.place)."""
from collections import Counter
from pathlib import Path

import numpy as np

from qonnx.errors import ModelError
from qonnx.runners.ort import prompt_feed
from qonnx.variants.gptq import (
    FOUR_BIT,
    clip_codes,
    dequantized,
    eight_bit_codes,
    gptq,
    hessians,
    matmul_nbits,
    padded,
    symmetric,
)
from qonnx.variants.graph import (
    copy_without,
    save,
    weighted_matmul_nodes,
    weighted_matmuls,
)
from qonnx.variants.int4_weight import ACCURACY_LEVEL
from qonnx.variants.scaling import scale_inputs
from qonnx.variants.search.nbits import BLOCK, compact, place
from qonnx.variants.units import role


def calibration_feeds(model, ids, samples, length, config):
    """Feeds of `samples` windows of `length` tokens for a causal LM graph (no past)."""
    import onnxruntime as ort

    inputs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).get_inputs()
    feeds = []
    for s in range(samples):
        x = np.asarray(ids[s * length:(s + 1) * length], dtype=np.int64)[None]
        if x.shape[1] < 2:
            break
        feeds.append(prompt_feed(inputs, x, config))
    if not feeds:
        raise ModelError("the calibration text is too short for the GPTQ pass (needs at least 2 tokens)")
    return feeds


def _four_bit_128(w, H):
    """w as 4-bit/BLOCK clip codes hold it, in float: a format the input scales are chosen for."""
    return dequantized(*clip_codes(*padded(w, H, BLOCK), BLOCK), w.shape[0])


def _eight_bit_128(w, H):
    """w as 8-bit/BLOCK codes (round to nearest, symmetric) hold it, in float. The input scales are
    chosen for 4-bit/BLOCK with this as a guard (scaling.GUARD): every unit's cost is measured with
    the rest at 8 bits. Chosen for 4-bit alone, they can ruin the 8-bit codes where an input has
    channels of massive energy: on demo:smollm2's layer 11 down_proj (two channels of 1e5-8e5x the
    median), alpha 1.0, at which GPTQ's 8-bit codes erred 440x more than at 0.4 (docs/benchmarks.md)."""
    return dequantized(*eight_bit_codes(w, BLOCK), w.shape[0])


EIGHT = "rtn-sym"  # the 8-bit recipe: round to nearest, symmetric
EIGHT_GPTQ = "gptq-sym"  # in a rotated graph (variants.rotation): GPTQ at 8 bits, symmetric
# the MatMuls GPTQ codes are made for, besides the clip search's (by units.role): on demo:smollm2
# GPTQ beat clip codes for the head, while choosing GPTQ or clip per body unit by KL on the probe
# window lost on the validation text (figures: docs/budgets.md, step 1, and docs/benchmarks.md).
# A rotated graph takes GPTQ for every MatMul instead: rotated, the clip search's codes lose far more
# and GPTQ's far less (docs/benchmarks.md, "LM budget: more formats, a rotation ...").
GPTQ_ROLES = ("head",)
EVERY = ("every MatMul",)  # GPTQ's roles in a rotated graph


def four_bit_recipes(name, rotated=False) -> tuple:
    """The 4-bit recipes (of variants.gptq.FOUR_BIT) measured for the MatMul `name`."""
    if rotated:
        return ("gptq",)
    return ("clip", "gptq") if role(name)[1] in GPTQ_ROLES else ("clip",)


def matmul_shapes(model) -> tuple:
    """({MatMul name: (K, N)}, {MatMul name: its input}) of a graph's weighted MatMuls, read from
    the initializers' dims (no weight is copied)."""
    nodes, inits = weighted_matmul_nodes(model)
    return {n.name: tuple(inits[n.input[1]].dims) for n in nodes}, {n.name: n.input[0] for n in nodes}


def fused_shapes(names, shapes, input_of) -> list:
    """The (K, N) the MatMuls `names` run as once quantized: those that share an input are one
    MatMulNBits (fuse_shared_inputs), its N their sum."""
    out = {}
    for n in names:
        K, N = shapes[n]
        out[input_of[n]] = (K, out.get(input_of[n], (K, 0))[1] + N)
    return list(out.values())


class MixedBuilder:
    """Every MatMul's codes in each quantized format of `formats` ({name: (bits, block[, symmetric]),
    or None: float}): 8-bit by round to nearest (recipe EIGHT), 4-bit by its recipes (four_bit_recipes),
    computed once from one calibration pass. build(plan, out) writes the
    model with each MatMul named in plan ({name: (format, recipe)}) in that format, the rest float.
    With scale (the default), model's weights first take the activation-aware input scales chosen
    for 4-bit and 8-bit blocks of BLOCK (scaling.scale_inputs; `scaled`: {input: alpha}): the float graph is
    unchanged, and every format quantizes the scaled weights. rotated: model's residual stream was
    rotated (variants.rotation): GPTQ codes for every MatMul, at 4 bits and at 8."""

    def __init__(self, model, calib_ids, config, formats, samples=8, length=512, scale=True, rotated=False):
        self.model, self.formats = model, dict(formats)
        nodes, weights = weighted_matmuls(model)
        if not nodes:
            raise ModelError("no MatMul with a constant weight to quantize in this graph")
        H = hessians(model, calibration_feeds(model, calib_ids, samples, length, config), nodes)
        self.scaled = scale_inputs(model, H, (_four_bit_128, _eight_bit_128)) if scale else {}
        if self.scaled:
            nodes, weights = weighted_matmuls(model)
        # codes kept as the MatMulNBits node that holds them (node, initializers: packed as the kernel
        # reads them, half a byte per 4-bit weight), made once: a build only places them
        makers = {}  # (format, recipe): (codes maker, bits, block, symmetric)
        for fmt, spec in self.formats.items():
            if spec is None:
                continue
            bits, block, sym = *spec[:2], symmetric(spec)
            if bits == 4:
                by = FOUR_BIT
            elif rotated:
                by = {EIGHT_GPTQ: lambda w, H, b, sym: gptq(*padded(w, H, b), 8, b, sym=True)}
            else:
                by = {EIGHT: lambda w, _, b, sym: eight_bit_codes(w, b)}
            makers.update({(fmt, r): (f, bits, block, sym) for r, f in by.items()})
        # one input's MatMuls together, in every format: GPTQ's factor of their Hessian is made once (gptq._factor)
        made, by_input = {k: {} for k in makers}, {}
        for n in nodes:
            by_input.setdefault(n.input[0], []).append(n)
        for n in (n for group in by_input.values() for n in group):
            w = weights[n.name]
            for (fmt, r), (f, bits, block, sym) in makers.items():
                if bits == 8 or r in four_bit_recipes(n.name, rotated):
                    codes = compact(*f(w, H[n.input[0]], block, sym))
                    made[(fmt, r)][n.name] = matmul_nbits(n, w.shape[0], *codes, bits, block, sym, ACCURACY_LEVEL)
        self.codes = {k: v for k, v in made.items() if v}
        self.shapes, self.input_of = matmul_shapes(model)
        self.nodes = [n.name for n in nodes]
        # a MatMul's float weight that nothing else reads: left out of a build that quantizes the MatMul
        readers = Counter(i for n in model.graph.node for i in n.input)
        self.own_weight = {n.name: n.input[1] for n in nodes if readers[n.input[1]] == 1}

    def fused_shapes(self, names) -> list:
        return fused_shapes(names, self.shapes, self.input_of)

    def recipes(self, fmt, names=None) -> list:
        """The recipes of a format that hold codes for every MatMul of `names` (None: any), in the
        order they were made (["fp32"] for float: the weight as it is)."""
        found = [r for (f, r), c in self.codes.items() if f == fmt and all(n in c for n in names or ())]
        return found or (["fp32"] if self.formats[fmt] is None else [])

    def keep(self, used) -> None:
        """Drop every code set not in `used` ({(format, recipe)}): the chosen ones stay."""
        self.codes = {k: v for k, v in self.codes.items() if k in used}

    def replaced(self, plan) -> set:
        """The float weights a build of plan leaves out: those of the MatMuls it quantizes that
        nothing else reads."""
        return {self.own_weight[n] for n, (f, _) in plan.items() if self.formats[f] and n in self.own_weight}

    def build(self, plan: dict, out: Path, model=None, fuse=True):
        """Write the model (or `model`: a part of it, probe.part_model) with each MatMul of plan in its
        format (fuse: nbits.place's); returns the path."""
        made = {n: self.codes[(f, r)][n] for n, (f, r) in plan.items() if self.formats[f]}
        m = copy_without(self.model if model is None else model, self.replaced(plan))
        place(m, made, fuse)
        return save(m, out, external=True, prune=True)
