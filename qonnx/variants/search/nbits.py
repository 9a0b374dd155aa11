"""MatMulNBits graphs: a float graph with chosen MatMuls replaced by MatMulNBits nodes (replace:
from codes; place: from nodes made already, as the LM budget search's MixedBuilder keeps them),
MatMuls sharing an input in one format fused, and the embedding lookup at 8 bits; uniform builds
(genai-int8, and the layouts the search times its choice against)."""
from pathlib import Path

import numpy as np

from qonnx.variants.gptq import eight_bit_codes, matmul_nbits, padded, rtn, symmetric
from qonnx.variants.graph import gather_from_blocks, lookup_table, save, share_tied_embedding, weighted_matmuls
from qonnx.variants.int4_weight import ACCURACY_LEVEL
from qonnx.variants.units import role

# RECIPE and ACCURACY_LEVEL are int4-weight's: this search is how that method builds within a budget.
# Both widths' block along the input (K padded to whole blocks, as MatMulNBits allows); why 128:
# docs/budgets.md, and the decode timings behind it in docs/benchmarks.md.
BLOCK = 128
LAYOUT = 2  # in the keys of builds replace() writes (genai-int8): 2, MatMuls sharing an input fused


def compact(codes, scales, zeros):
    """Codes and zero points as uint8, scales as float32: as a MatMulNBits node stores them."""
    return codes.astype(np.uint8), scales.astype(np.float32), zeros.astype(np.uint8)


def replace(m, plan, inputs, fuse=True):
    """m with each MatMul named in plan ({name: (bits, block[, symmetric], (codes, scales, zero points))})
    as MatMulNBits (8 bits symmetric; 4 with zero points unless the spec says symmetric: gptq.symmetric),
    and the embedding lookup at 8 bits: from an 8-bit tied lm_head's bytes, else from a table of its
    own (own_lookup). fuse: MatMuls sharing an input in one format become one (fuse_shared_inputs);
    False only to build genai-int4's layout (gate and up apart) for timing."""
    made = {}
    for n in m.graph.node:
        if n.name in plan:
            *spec, (c, s, z) = plan[n.name]
            made[n.name] = matmul_nbits(n, inputs[n.name], c, s, z, *spec[:2], symmetric(spec), ACCURACY_LEVEL)
    return place(m, made, fuse)


def place(m, made, fuse=True):
    """m with each MatMul named in made ({name: (MatMulNBits node, its initializers)}: gptq.matmul_nbits)
    replaced by its node; then as replace()."""
    for i, n in enumerate(list(m.graph.node)):
        if n.name in made:
            node, inits = made[n.name]
            m.graph.node.remove(m.graph.node[i])
            m.graph.node.insert(i, node)
            m.graph.initializer.extend(inits)
    if fuse:
        fuse_shared_inputs(m)
    share_tied_embedding(m, bits=8)
    own_lookup(m, BLOCK)
    return m


def fuse_shared_inputs(m) -> int:
    """MatMulNBits nodes that read the same input in the same format (a gated FFN's gate and up)
    become one, N the sum of theirs, and a Split gives each its own output back: one call over the
    longer weight instead of two (on an AMD EPYC at decode, 576 x 3072 ran in 0.87x the time of two
    576 x 1536 at 4-bit/128). Each output column is computed as before. Nodes whose outputs a Concat
    joins along the last axis (a head split by token ranges: vocab.py) are fused where they are
    neighbours in it, and the Concat reads the fused output (no Split; no Concat left where it
    joined them all). Returns the nodes fused."""
    inits = {i.name: i for i in m.graph.initializer}
    readers = {}
    for n in m.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    groups = {}
    for n in m.graph.node:
        if n.op_type == "MatMulNBits":
            attrs = tuple(sorted((a.name, a.i) for a in n.attribute if a.name != "N"))
            groups.setdefault((n.input[0], attrs, len(n.input)), []).append(n)
    fused = 0
    for nodes in groups.values():
        concat = _joined(nodes, readers)
        for run in _neighbours(nodes, concat) if concat is not None else [nodes]:
            if len(run) > 1:
                _fuse(m, run, inits, concat)
                fused += len(run)
    return fused


def _joined(nodes, readers):
    """The Concat along the last axis that alone reads every one of nodes' outputs, else None."""
    rs = [readers.get(n.output[0], []) for n in nodes]
    if not all(len(r) == 1 for r in rs) or len({id(r[0]) for r in rs}) != 1:
        return None
    c = rs[0][0]
    return c if c.op_type == "Concat" and next((a.i for a in c.attribute if a.name == "axis"), None) == -1 else None


def _neighbours(nodes, concat) -> list:
    """nodes in runs of neighbouring inputs of concat, in its order."""
    by_output, runs, last = {n.output[0]: n for n in nodes}, [], None
    for i, x in enumerate(concat.input):
        if x in by_output:
            if last != i - 1:
                runs.append([])
            runs[-1].append(by_output[x])
            last = i
    return runs


def _fuse(m, nodes, inits, concat=None):
    """nodes (MatMulNBits, one input, one format) as one node: a Split gives each its output back, or
    (concat: the Concat that joins their outputs, neighbours in it) concat reads the fused output."""
    from onnx import helper, numpy_helper

    first, sizes = nodes[0], [next(a.i for a in n.attribute if a.name == "N") for n in nodes]
    tensors = []
    for i in range(1, len(first.input)):  # blob, scales, (zero points): N is the first axis of each
        name = f"{first.input[i]}.fused"
        arrays = [numpy_helper.to_array(inits[n.input[i]]) for n in nodes]
        tensors.append(numpy_helper.from_array(np.concatenate(arrays, 0), name))
        inits[name] = tensors[-1]
    m.graph.initializer.extend(tensors)
    attrs = {a.name: a.i for a in first.attribute}
    attrs["N"] = sum(sizes)
    outs = [n.output[0] for n in nodes]
    whole = concat is not None and list(concat.input) == outs  # the Concat joins these alone: dropped
    out = concat.output[0] if whole else f"{first.output[0]}.fused"
    node = helper.make_node("MatMulNBits", [first.input[0]] + [t.name for t in tensors], [out],
                            name=f"{first.name}.fused", domain="com.microsoft", **attrs)
    at = list(m.graph.node).index(first)
    for n in nodes:
        m.graph.node.remove(n)
    if concat is not None:
        if whole:
            m.graph.node.remove(concat)
        else:
            i = list(concat.input).index(outs[0])
            kept = list(concat.input[:i]) + [out] + list(concat.input[i + len(outs):])
            del concat.input[:]
            concat.input.extend(kept)
    elif next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13) >= 13:
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(sizes, np.int64), f"{out}.sizes"))
        m.graph.node.insert(at, helper.make_node("Split", [out, f"{out}.sizes"], outs, axis=-1,
                                                 name=f"{first.name}.split"))
    else:
        m.graph.node.insert(at, helper.make_node("Split", [out], outs, axis=-1, split=sizes,
                                                 name=f"{first.name}.split"))
    m.graph.node.insert(at, node)


def own_lookup(m, block) -> int:
    """Each embedding Gather still reading an FP32 table (an initializer, or Transpose of one: the
    genai builder's tied head) reads an 8-bit copy instead (symmetric, blocks of `block` along the
    hidden axis: GatherBlockQuantized). A 4-bit head cannot serve the lookup as an 8-bit one does,
    and the FP32 table alone is a third of a small LM's file (SmolLM2-135M: 108 of 190 MiB); a row
    at 8 bits is as exact as the 8-bit head's. Returns the tables quantized."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in m.graph.initializer}
    producers = {o: n for n in m.graph.node for o in n.output}
    done = 0
    for node in [n for n in m.graph.node if n.op_type == "Gather" and role(n.name)[1] == "embeddings"]:
        table, t = lookup_table(node, inits, producers)
        if table is None:
            continue
        rows = numpy_helper.to_array(inits[table])
        rows = rows.T if t is not None else rows  # [vocab, hidden]
        if rows.ndim != 2 or rows.dtype != np.float32 or rows.shape[1] < block:
            continue
        N, K = rows.shape
        codes, scales, zeros = compact(*eight_bit_codes(np.ascontiguousarray(rows.T), block))
        fake = helper.make_node("MatMul", ["x", f"{table}.lookup"], ["y"])
        _, blocks = matmul_nbits(fake, K, codes, scales, zeros, 8, block, True, ACCURACY_LEVEL)
        m.graph.initializer.extend(blocks)
        gather_from_blocks(m, node, blocks[0].name, blocks[1].name, N, K, block, 8, table, t, inits)
        done += 1
    return done


def rtn_codes(w, spec):
    """(codes, scales, zero points) of weight w in format spec ((bits, block[, symmetric])) by round to
    nearest, K padded to whole blocks, compact as MatMulNBits stores them: codes whose speed, not
    accuracy, is wanted (uniform(), benchmarks/kernel_check.py), and genai-int8's."""
    bits, block = spec[:2]
    if bits == 8:
        return compact(*eight_bit_codes(w, block))
    return compact(*rtn(padded(w, None, block)[0], bits, block, symmetric(spec)))


def uniform(model, spec, out, fuse=True) -> Path:
    """model (left as it is) with every weighted MatMul in one format spec ((bits, block[, symmetric]))
    by round to nearest, written to out: genai-int8 (8 bits), and the layouts the budget search times
    its choice against."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes, weights = weighted_matmuls(m)
    plan = {n.name: (*spec, rtn_codes(weights[n.name], spec)) for n in nodes}
    replace(m, plan, {k: w.shape[0] for k, w in weights.items()}, fuse)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return save(m, out, external=True, prune=True)


def eight_bit(src, out, block=BLOCK) -> Path:
    """Every weighted MatMul of src as 8-bit MatMulNBits (round to nearest, symmetric, blocks of
    `block`), written to out."""
    import onnx

    return uniform(onnx.load(str(src)), (8, block), out)
