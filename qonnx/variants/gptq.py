"""GPTQ for MatMulNBits: 4-bit weights that compensate each column's rounding error on the
columns still to come, weighted by the calibration activations (Frantar et al., 2022).

ONNX Runtime 1.32 ships a GPTQ (from Intel Neural Compressor), but it runs the whole model once
per MatMul input to collect activations, its error feedback reads the upper Cholesky factor by
column (Hinv[i:, i], zero below the diagonal), so no error reaches the columns still to come, and
it re-quantizes the result with fresh min/max scales: on demo:smollm2 it matched round to nearest
(perplexity 55.60 vs 55.60). Here the activations of every quantized MatMul come from one pass per calibration
sample, and the integer codes, scales and zero points GPTQ chose are packed as they are.
"""
import hashlib

import numpy as np


def hessians(model, feeds, nodes) -> dict:
    """{input name: (2/n) X^T X} for the input of every node, from one run per feed."""
    import onnx
    import onnxruntime as ort

    names = sorted({n.input[0] for n in nodes})
    aug = onnx.ModelProto()
    aug.CopyFrom(model)
    del aug.graph.output[:]
    aug.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    sess = ort.InferenceSession(aug.SerializeToString(), providers=["CPUExecutionProvider"])
    del aug
    acc, rows = {}, 0
    for feed in feeds:
        for name, x in zip(names, sess.run(names, feed)):
            x = x.reshape(-1, x.shape[-1]).astype(np.float64)
            acc[name] = acc.get(name, 0) + x.T @ x
        rows += int(np.prod(x.shape[:-1]))
    return {k: 2 * v / rows for k, v in acc.items()}


def _params(w, bits, sym):
    """Scale and zero point per column of a group of rows. Symmetric: the value of largest magnitude
    lands exactly on the lowest code (its sign in the scale), as ONNX Runtime's quantizer does;
    asymmetric: the range holds 0."""
    maxq = 2**bits - 1
    if sym:
        v = np.take_along_axis(w, np.abs(w).argmax(0)[None], 0)[0]
        scale = np.where(v != 0, v / -(2 ** (bits - 1)), 1.0)
        zero = np.full_like(scale, 2 ** (bits - 1))
    else:
        lo, hi = np.minimum(w.min(0), 0), np.maximum(w.max(0), 0)
        scale = np.where(hi > lo, (hi - lo) / maxq, 1.0)
        zero = np.clip(np.round(-lo / scale), 0, maxq)
    return scale, zero


def padded(weight, hessian, group):
    """weight [K, N] (and its Hessian) grown to whole groups with zero rows, as MatMulNBits pads K:
    a zero input channel, which GPTQ treats as dead and whose codes dequantize to 0."""
    pad = -weight.shape[0] % group
    if not pad:
        return weight, hessian
    return np.pad(weight, ((0, pad), (0, 0))), None if hessian is None else np.pad(hessian, ((0, pad), (0, pad)))


def gptq(weight, hessian, bits=4, group=32, sym=False, block=128, damp=0.01, act_order=False, shrinks=None):
    """(codes uint8 [K, N], scales [K/group, N], zero points [K/group, N]) of weight [K, N].
    act_order: columns quantized in descending order of their input energy (the diagonal of H), the
    sensitive ones first, while errors can still be compensated; shrinks: each group's range shrunk
    by the factor of least error weighted by those energies (as clipped() does). With either, every
    group's grid is fixed from the original weights first (static groups: codes stay in contiguous
    groups, as MatMulNBits reads them); with neither, a group's grid comes from the weights as GPTQ
    has updated them when it is reached (the original algorithm)."""
    K, N = weight.shape
    if K % group or block % group:
        raise ValueError(f"GPTQ here needs K ({K}) and the block ({block}) to be multiples of the group ({group})")
    maxq = 2**bits - 1
    dead, energy, order, Hinv = _factor(hessian, damp, act_order)
    W = weight.astype(np.float64).copy()
    W[dead, :] = 0
    scales, zeros = np.zeros((K // group, N)), np.zeros((K // group, N))
    static = act_order or shrinks is not None
    if static:
        for g in range(K // group):
            rows = slice(g * group, (g + 1) * group)
            scales[g], zeros[g] = _grid(W[rows], bits, sym, energy[rows], (1.0,) if shrinks is None else shrinks)
    W = W[order]
    codes = np.zeros((K, N), np.uint8)
    for i1 in range(0, K, block):
        i2 = min(i1 + block, K)
        W1, Err = W[i1:i2].copy(), np.zeros((i2 - i1, N))
        Hb = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            row = order[i1 + i]
            if not static and row % group == 0:  # the group's grid, from the weights as GPTQ has updated them
                scales[row // group], zeros[row // group] = _params(W1[i:i + group], bits, sym)
            s, z = scales[row // group], zeros[row // group]
            q = np.clip(np.round(W1[i] / s) + z, 0, maxq)
            codes[row] = q
            err = (W1[i] - (q - z) * s) / Hb[i, i]
            W1[i:] -= np.outer(Hb[i, i:], err)  # row i of the upper Cholesky factor
            Err[i] = err
        W[i2:] -= Hinv[i1:i2, i2:].T @ Err
    return codes, scales, zeros


_FACTORS = {}  # the last _factor results: each format's codes of one input's MatMuls reuse them
KEPT_FACTORS = 3  # act-order, K padded to 128 or not (the 4-bit formats), the 8-bit codes' own order


def _factor(hessian, damp, act_order):
    """(dead inputs, input energies, column order, upper Cholesky factor of the damped inverse Hessian
    in that order), read-only. The inverse and its factor cost more than the rest of GPTQ on a wide
    input, and every format of every MatMul reading one input needs the same: the last KEPT_FACTORS
    are kept, keyed by the Hessian's bytes (MixedBuilder makes one input's codes together)."""
    key = (hashlib.blake2b(np.ascontiguousarray(hessian).tobytes(), digest_size=16).digest(), hessian.shape,
           float(damp), bool(act_order))
    if key in _FACTORS:
        return _FACTORS[key]
    K = len(hessian)
    H = hessian.astype(np.float64)  # a copy
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    energy = np.diag(H).copy()
    order = np.argsort(-energy, kind="stable") if act_order else np.arange(K)
    H = H[order][:, order]
    H[np.diag_indices(K)] += damp * np.mean(np.diag(H))
    out = (dead, energy, order, np.linalg.cholesky(np.linalg.inv(H)).T)
    for a in out:
        a.setflags(write=False)
    while len(_FACTORS) >= KEPT_FACTORS:
        del _FACTORS[next(iter(_FACTORS))]
    _FACTORS[key] = out
    return out


def _grid(w, bits, sym, energy, shrinks):
    """_params of a group of rows, its range shrunk by the factor of `shrinks` with the least error
    weighted by each row's input energy, per column."""
    best = None
    for f in shrinks:
        s, z = _params(w * f, bits, sym)
        q = np.clip(np.round(w / s) + z, 0, 2**bits - 1)
        err = (((q - z) * s - w) ** 2 * energy[:, None]).sum(0)
        if best is None:
            best, scale, zero = err, s, z
            continue
        b = err < best
        best, scale, zero = np.where(b, err, best), np.where(b, s, scale), np.where(b, z, zero)
    return scale, zero


def rtn(weight, bits=4, group=32, sym=False):
    """(codes, scales, zero points) of round to nearest, each group on its own min/max grid."""
    K, N = weight.shape
    W = weight.astype(np.float64).reshape(K // group, group, N)
    scales, zeros = map(np.array, zip(*(_params(g, bits, sym) for g in W)))
    codes = np.clip(np.round(W / scales[:, None]) + zeros[:, None], 0, 2**bits - 1)
    return codes.reshape(K, N).astype(np.uint8), scales, zeros


SHRINKS = np.linspace(1.0, 0.6, 17)  # the clip search's range factors: 1.0 is round to nearest


def clipped(weight, importance, bits=4, group=32, shrinks=SHRINKS, sym=False):
    """(codes, scales, zero points) of round to nearest on each block's own grid, its min/max range
    shrunk by the factor of `shrinks` with the least error weighted by each input's importance
    (the diagonal of X^T X; AWQ's clip search, per block and output column): one outlier no longer
    stretches the grid of the other weights of its block. K must be a multiple of the group.
    sym: the zero point fixed at 2^(bits-1) (MatMulNBits without zero points), the grid that of
    _params(sym=True), shrunk the same way."""
    K, N = weight.shape
    W = weight.astype(np.float64).reshape(K // group, group, N)
    d = np.asarray(importance, dtype=np.float64).reshape(K // group, group, 1)
    maxq = 2**bits - 1
    if sym:
        v = np.take_along_axis(W, np.abs(W).argmax(1)[:, None], 1)[:, 0]
        s0 = np.where(v != 0, v / -(2 ** (bits - 1)), 1.0)
    else:
        lo0, hi0 = np.minimum(W.min(1), 0), np.maximum(W.max(1), 0)
    best = codes = scales = zeros = None
    for f in shrinks:
        if sym:
            s, z = s0 * f, np.full_like(s0, 2 ** (bits - 1))
        else:
            lo, hi = lo0 * f, hi0 * f
            s = np.where(hi > lo, (hi - lo) / maxq, 1.0)
            z = np.clip(np.round(-lo / s), 0, maxq)
        q = np.clip(np.round(W / s[:, None]) + z[:, None], 0, maxq)
        err = (((q - z[:, None]) * s[:, None] - W) ** 2 * d).sum(1)
        if best is None:
            best, codes, scales, zeros = err, q, s, z
            continue
        b = err < best
        best = np.where(b, err, best)
        codes, scales, zeros = np.where(b[:, None], q, codes), np.where(b, s, scales), np.where(b, z, zeros)
    return codes.reshape(K, N).astype(np.uint8), scales, zeros


def dequantized(codes, scales, zeros, K):
    """The float weight [K, N] that codes [Kp, N] on a grid of groups of Kp / len(scales) rows hold."""
    group = codes.shape[0] // scales.shape[0]
    c = codes.astype(np.float64).reshape(scales.shape[0], group, -1)
    return ((c - zeros[:, None]) * scales[:, None]).reshape(codes.shape[0], -1)[:K]


# 4-bit code recipes the LM budget search measures, unit by unit (qonnx.variants.search.lm_budget).
# GPTQ has the smaller layer output error (the quantity it minimizes) nearly everywhere, yet on
# demo:smollm2 the whole model lost more with it than with plain rounding; the clip search, whose
# range factors include 1.0 (plain rounding), replaced rounding. Figures: docs/budgets.md. So the
# choice is measured on the model, not predicted: for the head (mixed.four_bit_recipes), where GPTQ
# won; the body takes clip codes (where the residual stream is rotated, GPTQ everywhere). GPTQ's
# 4-bit codes go in act-order on searched grids: on demo:smollm2's rotated graph, every MatMul
# 4-bit/128, +17.34 % validation perplexity against the plain algorithm's +20.15 % (act-order alone
# +20.01 %, searched grids alone +19.10 %; docs/benchmarks.md, 2026-12-07). K is padded to whole
# groups; sym: no zero points (symmetric()).
FOUR_BIT = {"gptq": lambda W, H, g, sym=False: gptq(*padded(W, H, g), 4, g, sym=sym, act_order=True,
                                                 shrinks=SHRINKS),
            "clip": lambda W, H, g, sym=False: clip_codes(*padded(W, H, g), g, sym=sym)}


def clip_codes(weight, hessian, group, bits=4, sym=False):
    """clipped() of a weight whose K is whole groups, each input weighted by its diagonal of H."""
    return clipped(weight, np.diag(hessian), bits, group, sym=sym)


def symmetric(spec) -> bool:
    """Whether a format spec's codes have no zero points: (bits, block) at 8 bits always (the 8-bit
    codes are symmetric), 4 bits only as (4, block, True)."""
    return spec[0] == 8 or (len(spec) > 2 and bool(spec[2]))


def eight_bit_codes(weight, group):
    """Symmetric 8-bit round to nearest, K padded to whole groups."""
    return rtn(padded(weight, None, group)[0], 8, group, sym=True)


def matmul_nbits(node, K, codes, scales, zeros, bits, group, sym, accuracy_level):
    """(MatMulNBits node, its initializers) holding exactly these codes: codes [Kp, N], Kp the input
    size K padded to whole groups, scales and zero points [Kp / group, N]. 4-bit zero points are
    packed two a byte per column (an odd count padded), the layout the kernel reads."""
    from onnx import helper, numpy_helper

    Kp, N = codes.shape
    blocks = Kp // group
    q = np.ascontiguousarray(codes.T, dtype=np.uint8)
    blob = (q[:, 0::2] | q[:, 1::2] << 4) if bits == 4 else q
    base = node.input[1]
    inits = [numpy_helper.from_array(np.ascontiguousarray(blob).reshape(N, blocks, group * bits // 8),
                                     f"{base}_Q{bits}"),  # the name ORT gives it (share_tied_embedding)
             numpy_helper.from_array(np.ascontiguousarray(scales.T, dtype=np.float32), f"{base}_scale")]
    if not sym:
        z = np.ascontiguousarray(zeros.T, dtype=np.uint8)
        if bits == 4:
            z = np.pad(z, ((0, 0), (0, blocks % 2)), constant_values=8)
            z = np.ascontiguousarray(z[:, 0::2] | z[:, 1::2] << 4)
        inits.append(numpy_helper.from_array(z, f"{base}_zp"))
    attrs = {"K": K, "N": N, "bits": bits, "block_size": group}
    if accuracy_level:
        attrs["accuracy_level"] = accuracy_level
    return helper.make_node("MatMulNBits", [node.input[0]] + [i.name for i in inits], list(node.output),
                            name=f"{node.name}_Q{bits}", domain="com.microsoft", **attrs), inits
