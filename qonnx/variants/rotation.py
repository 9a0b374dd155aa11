"""An orthogonal rotation of a decoder LM's residual stream, folded into its weights (QuaRot,
Ashkboos et al., 2024; SpinQuant, Liu et al., 2024): the float graph computes what it did, and the
weights a 4-bit grid has to hold lose their outlier channels.

An RMS norm without its gain commutes with any orthogonal Q: rms(x Q) = rms(x) Q. So each norm's
gain moves into the MatMuls that read its output (rows scaled), those MatMuls read a rotated input
(W <- Q^T W), and every tensor that writes the residual stream writes it rotated: the embedding
table (E <- E Q) and the MatMuls whose output is added to it (W <- W Q). Nothing is added to the
graph; only initializers change (the gains become ones; a tied head's lookup gets its own table,
since the head now holds Q^T diag(gain) E^T).

rotate() refuses (returns the reason, changes nothing) on any graph whose residual stream it cannot
follow: a norm with a mean (LayerNormalization is not rotation-invariant), a bias on the stream, a
residual tensor read by anything but a norm, a norm output read by anything but a weighted MatMul.
The onnxruntime-genai builder's graphs (SimplifiedLayerNormalization and its Skip form) qualify.
"""
import numpy as np

from qonnx.variants.graph import lookup_table

RMS_NORMS = {"SimplifiedLayerNormalization": 2, "SkipSimplifiedLayerNormalization": 3}  # op: index of gain + 1
SEED = 0


def orthogonal(d, seed=SEED) -> np.ndarray:
    """A random orthogonal d x d matrix (QR of a Gaussian one, signs fixed: Haar-distributed), float64."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


def _plan(model):
    """(plan, None) or (None, why not): plan = {"norms", "readers", "writers", "lookups"}."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output if o}
    consumers = {}
    for n in g.node:
        for i, x in enumerate(n.input):
            if x:
                consumers.setdefault(x, []).append((n, i))
    outputs = {o.name for o in g.output}
    norms = [n for n in g.node if n.op_type in RMS_NORMS]
    if not norms:
        others = sorted({n.op_type for n in g.node if "LayerNorm" in n.op_type})
        return None, f"no RMS norm op in the graph ({', '.join(others) or 'no norm op'} instead)"
    stream = {}  # residual tensor: its producer
    for n in norms:
        gain = RMS_NORMS[n.op_type] - 1
        if len(n.input) > gain + 1 and n.input[gain + 1]:
            return None, f"{n.name} adds a bias to the residual stream"
        if n.input[gain] not in inits or len(inits[n.input[gain]].dims) != 1:
            return None, f"{n.name}'s gain is not a constant vector"
        for x in list(n.input[:gain]) + ([n.output[3]] if len(n.output) > 3 and n.output[3] else []):
            stream[x] = producers.get(x)
        if any(o for o in n.output[1:3]):
            return None, f"{n.name}'s mean or inverse deviation is read"
    readers, writers, lookups = {}, {}, {}
    for x, p in stream.items():
        if x in outputs:
            return None, f"the residual tensor {x} is a graph output"
        for c, i in consumers.get(x, []):
            if c.op_type not in RMS_NORMS or i >= RMS_NORMS[c.op_type] - 1:
                return None, f"the residual tensor {x} is read by {c.op_type} {c.name}"
        if p is None:
            return None, f"the residual tensor {x} is a graph input"
        if p.op_type in RMS_NORMS:
            continue
        table, transpose = lookup_table(p, inits, producers) if p.op_type == "Gather" else (None, None)
        if p.op_type == "MatMul" and p.input[1] in inits and len(inits[p.input[1]].dims) == 2:
            writers[p.name] = p
        elif table is not None:
            lookups[p.name] = (p, table, transpose)
        else:
            return None, f"the residual tensor {x} is made by {p.op_type} {p.name}"
    for n in norms:
        if n.output[0] in outputs:
            return None, f"{n.name}'s output is a graph output"
        for c, i in consumers.get(n.output[0], []):
            if c.op_type != "MatMul" or i != 0 or c.input[1] not in inits or len(inits[c.input[1]].dims) != 2:
                return None, f"{n.name}'s output is read by {c.op_type} {c.name}, not a weighted MatMul"
            readers[c.name] = (c, n)
    dims = {inits[n.input[RMS_NORMS[n.op_type] - 1]].dims[0] for n in norms}
    if len(dims) != 1:
        return None, f"norms of different widths {sorted(dims)}"
    d = dims.pop()
    for node, table, transpose in lookups.values():
        rows = list(inits[table].dims)[::-1 if transpose is not None else 1]  # [vocab, width]
        if len(rows) != 2 or rows[1] != d:
            return None, f"the lookup {node.name} gives rows of {rows[1:]}, not {d}"
    for name, node in [*writers.items(), *((k, c) for k, (c, _) in readers.items())]:
        if name in readers and name in writers:
            return None, f"{name} both reads and writes the residual stream"
        w = inits[node.input[1]]
        tied = sum(1 for _, t, tr in lookups.values() if t == node.input[1] and tr is not None)
        if len(consumers[node.input[1]]) != 1 + tied:
            return None, f"{name}'s weight is shared with other nodes"
        if (w.dims[0] if name in readers else w.dims[1]) != d:
            return None, f"{name}'s weight {list(w.dims)} does not meet the stream's width {d}"
    return {"norms": norms, "readers": readers, "writers": writers, "lookups": lookups, "width": d}, None


def rotate(model, seed=SEED):
    """Rotate model's residual stream in place (see the module's doc). Returns (record, None) with
    what was rotated, or (None, why not) with the model unchanged."""
    from onnx import numpy_helper

    plan, why = _plan(model)
    if plan is None:
        return None, why
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    Q = orthogonal(plan["width"], seed)

    def get(name):
        return numpy_helper.to_array(inits[name]).astype(np.float64)

    def put(name, array):
        inits[name].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))

    for node, table, transpose in plan["lookups"].values():  # before a tied head's weight changes
        rows = get(table).T if transpose is not None else get(table)
        own = f"{table}.rotated"
        g.initializer.append(numpy_helper.from_array((rows @ Q).astype(np.float32), own))
        node.input[0] = own
        if transpose is not None and not any(transpose.output[0] in n.input for n in g.node):
            g.node.remove(transpose)
    gains = {}
    for node, norm in plan["readers"].values():
        gain = norm.input[RMS_NORMS[norm.op_type] - 1]
        gains.setdefault(gain, get(gain))
        put(node.input[1], Q.T @ (gains[gain][:, None] * get(node.input[1])))
    for node in plan["writers"].values():
        put(node.input[1], get(node.input[1]) @ Q)
    for gain, v in gains.items():
        put(gain, np.ones_like(v))
    return {"method": "random orthogonal rotation of the residual stream (QuaRot), folded into the weights",
            "seed": seed, "width": plan["width"], "norms": len(plan["norms"]), "matmuls_reading": len(plan["readers"]),
            "matmuls_writing": len(plan["writers"]), "lookups": len(plan["lookups"])}, None
