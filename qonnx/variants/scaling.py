"""Activation-aware input scales (AWQ's scale search, Lin et al., 2023) folded into the graph: the
rows of a MatMul weight that meet large activations are scaled up by s before quantization, so
they land on a finer grid, and the MatMul's input is divided by s where it is made (a norm's
gamma and beta, a Mul's constant, or the columns of the MatMul whose output the input is). The
float graph computes exactly what it did; only the quantization error moves.

The error of a weight change E for one input is tr(E^T H E), H = X^T X of the calibration pass:
no second pass is needed, and H of the scaled input is H / (s s^T). Inputs whose producer cannot
take the scale (attention's output, a graph input) and the head (its bytes may serve the embedding
lookup) keep s = 1.
"""
import numpy as np

from qonnx.variants.graph import weighted_matmuls
from qonnx.variants.units import role

ALPHAS = np.linspace(0.0, 1.0, 11)  # s = diag(H) ** (alpha / 2); alpha 0 is no scaling
GUARD = 2.0  # a guarding format's error at the alpha chosen: at most this times its least over ALPHAS
NORMS = {"SimplifiedLayerNormalization": (1,), "LayerNormalization": (1, 2), "SkipSimplifiedLayerNormalization": (2,),
         "SkipLayerNormalization": (2, 3)}  # the inputs that scale a norm's output: gamma (and beta)


def error(E, H) -> float:
    return float(np.sum((H @ E) * E))


def _only_use(name, graph_uses) -> bool:
    return graph_uses.get(name, 0) == 1


def _constant(name, producers, inits):
    """The initializer behind name, through Identity nodes (an exporter's way to share one constant)."""
    while name not in inits and name in producers and producers[name].op_type == "Identity":
        name = producers[name].input[0]
    return name if name in inits else None


def _fold_target(x, producers, consumers, inits, uses, K):
    """Where 1 / s can go so that x is divided by s, or None: [(node, input index)] of vectors [K]
    (a norm's gamma and beta, a Mul's constant), or [(None, weight)]: the columns of the MatMul
    whose output is the other factor of x's Mul (the gated FFN: x = act(gate) * up)."""
    p = producers.get(x)
    if p is None or list(p.output).index(x) != 0:
        return None

    def vector(i):
        name = _constant(p.input[i], producers, inits)
        return name is not None and list(inits[name].dims) == [K]

    if p.op_type in NORMS:
        idx = [i for i in NORMS[p.op_type] if i < len(p.input) and p.input[i]]
        return [(p, i) for i in idx] if idx and all(vector(i) for i in idx) else None
    if p.op_type == "Mul":
        for i, (a, b) in enumerate((p.input, p.input[::-1])):
            if vector(i):
                return [(p, i)]
            q = producers.get(a)
            if q is not None and q.op_type == "MatMul" and len(consumers.get(a, [])) == 1 and q.input[1] in inits \
                    and len(inits[q.input[1]].dims) == 2 and inits[q.input[1]].dims[1] == K and \
                    _only_use(q.input[1], uses) and b != a:
                return [(None, q.input[1])]
    return None


def _divide(target, s, producers, inits, uses, graph):
    """Divide what target (of _fold_target) names by s; a shared vector is copied first."""
    from onnx import numpy_helper

    for node, where in target:
        if node is None:
            w = numpy_helper.to_array(inits[where]).astype(np.float64)
            inits[where].CopyFrom(numpy_helper.from_array((w / s[None, :]).astype(np.float32), where))
            continue
        name = _constant(node.input[where], producers, inits)
        v = (numpy_helper.to_array(inits[name]).astype(np.float64) / s).astype(np.float32)
        if name == node.input[where] and _only_use(name, uses):
            inits[name].CopyFrom(numpy_helper.from_array(v, name))
        else:  # shared (or behind an Identity): this node gets a scaled copy of its own
            own = f"{node.name or node.output[0]}.input{where}.scaled"
            graph.initializer.append(numpy_helper.from_array(v, own))
            inits[own], uses[own] = graph.initializer[-1], 1
            node.input[where] = own


def scale_inputs(model, hessians, quantize) -> dict:
    """Scale the weights of model's MatMuls (in place) by the s of ALPHAS whose quantization error
    (error(), summed over the MatMuls that share an input) is the least, and fold 1 / s into that
    input's producer; hessians ({input: H}) are updated to the scaled inputs. quantize(w, H) -> the
    weight w's quantized codes as float (the format the scales are chosen for), or a tuple of such:
    the first's error is the least among the alphas at which each other's is within GUARD of its own
    least (the scales are shared by every format a unit is measured in: chosen for 4 bits alone,
    they ruined one MatMul's 8-bit codes, docs/benchmarks.md). Returns {input: alpha} for each input
    scaled (alpha > 0)."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers, uses = {}, {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
            uses[i] = uses.get(i, 0) + 1
    nodes, _ = weighted_matmuls(model)
    groups = {}
    for n in nodes:
        groups.setdefault(n.input[0], []).append(n)
    chosen, at = {}, {id(n): i for i, n in enumerate(g.node)}
    # last input first: the FFN-out scale goes into the FFN-in (up) columns before their own search
    for x in sorted(groups, key=lambda x: -max(at[id(n)] for n in groups[x])):
        ms = groups[x]
        values = [c for c in consumers[x] if c.op_type != "Shape"]  # a Shape reads no value
        if len(values) != len(ms) or any(role(n.name)[1] == "head" for n in ms) or \
                any(not _only_use(n.input[1], uses) for n in ms):
            continue
        H = hessians[x]
        K = H.shape[0]
        target = _fold_target(x, producers, consumers, inits, uses, K)
        if target is None:
            continue
        W = [numpy_helper.to_array(inits[n.input[1]]).astype(np.float64) for n in ms]
        d = np.maximum(np.diag(H), 1e-12 * max(np.diag(H).max(), 1e-30))
        qs = quantize if isinstance(quantize, tuple) else (quantize,)
        tried = []  # (alpha, s, [error of each quantizer])
        for a in ALPHAS:
            s = d ** (a / 2)
            s = s / np.sqrt(s.max() * s.min())
            Hs = H / np.outer(s, s)
            tried.append((a, s, [sum(error(q(w * s[:, None], Hs) / s[:, None] - w, H) for w in W) for q in qs]))
        least = [min(e[i] for *_, e in tried) for i in range(len(qs))]
        fair = [t for t in tried if all(e <= GUARD * m for e, m in zip(t[2][1:], least[1:]))]
        a, s, _ = min(fair, key=lambda t: t[2][0])
        if a == 0:
            continue
        for n, w in zip(ms, W):
            inits[n.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), n.input[1]))
        _divide(target, s, producers, inits, uses, g)
        hessians[x] = H / np.outer(s, s)
        chosen[x] = float(a)
    return chosen
