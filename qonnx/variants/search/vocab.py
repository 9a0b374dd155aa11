"""The LM head split by token ranges, so that the budget search chooses a format for each range.

A head's quantization error costs KL in proportion to the probability the model puts on each token
(KL ~ half the variance, under p, of the logits' error), and a BPE tokenizer numbers its tokens in the
order of its merges: roughly by frequency. On demo:smollm2's validation text the first 4,096 of 49,152
ids are 73 % of the tokens and the first 16,384 90 %. So a head whose frequent range is at 8 bits and
its long tail at 4 loses about a third of the KL of an all-4-bit/128 head in little more than the
4-bit head's time (figures: docs/benchmarks.md, "the head by token ranges").

split_head(model) writes the head MatMul [K, N] as one MatMul per column range, named after the head
with "/tokens a-b" (their role stays the head's), and a Concat along the last axis that writes the
head's output: the float graph computes the same logits. nbits.fuse_shared_inputs makes neighbouring
ranges in one format one MatMulNBits again, with no Split and no Concat where all are in one format.
"""
import numpy as np

from qonnx.variants.graph import weighted_matmul_nodes
from qonnx.variants.units import role, unit_name

FIRST = 4096  # the first range's end; each next range ends 4x further, the last at the vocabulary's end
RANGES = "tokens"  # in a part's name: "<head>/tokens 0-4095"


def bounds(N, first=None) -> list:
    """The column ranges' ends for a head of N columns: first, 4 first ... while under 3/4 N, then N."""
    out, b = [], first or FIRST
    while b < 3 * N // 4:
        out.append(b)
        b *= 4
    return out + [N] if out else []


def unit_of(name) -> str:
    """The budget search's unit of a MatMul name: a head range's own ("head tokens 0-4095"), else
    its layer and role (units.unit_name)."""
    if f"/{RANGES} " in name and role(name)[1] == "head":
        return f"head {name.rsplit('/', 1)[1]}"
    return unit_name(*role(name))


def split_head(model, first=None) -> dict | None:
    """Split the graph's head MatMul (in place) by token ranges (bounds()); returns {"head", "ranges"}
    or None where there is no top-level head MatMul with a weight of its own, or too few columns."""
    from onnx import helper, numpy_helper

    nodes, inits = weighted_matmul_nodes(model)
    heads = [n for n in nodes if role(n.name)[1] == "head"]
    if len(heads) != 1 or sum(i == heads[0].input[1] for n in model.graph.node for i in n.input) != 1:
        return None  # no head, several, or a weight something else reads (a tied lookup)
    head = heads[0]
    w = numpy_helper.to_array(inits[head.input[1]])
    ends = bounds(w.shape[1], first)
    if not ends:
        return None
    at = list(model.graph.node).index(head)
    parts, start = [], 0
    for end in ends:
        name = f"{head.name}/{RANGES} {start}-{end - 1}"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[:, start:end]), f"{name}.weight"))
        parts.append(helper.make_node("MatMul", [head.input[0], f"{name}.weight"], [f"{name}.out"], name=name))
        start = end
    concat = helper.make_node("Concat", [p.output[0] for p in parts], [head.output[0]], axis=-1,
                              name=f"{head.name}/{RANGES}")
    model.graph.node.remove(head)
    model.graph.initializer.remove(inits[head.input[1]])
    for i, n in enumerate(parts + [concat]):
        model.graph.node.insert(at + i, n)
    return {"head": head.name, "ranges": [[s, e - 1] for s, e in zip([0] + ends[:-1], ends)]}
