"""Measured kernel speeds: each distinct weighted-MatMul shape of a model, in each candidate weight
format, timed on this machine as decode runs it (one token: input [1, K]) through ONNX Runtime.

Decode reads every weight of the model once per token, so a weight is never in the CPU's cache when
its MatMul runs: a kernel timed on one small weight, called again and again from L2, runs at a speed
no decode step sees, and favours wide formats (8 bits: twice the bytes of 4). Each (shape, format) is
therefore timed as a graph of as many copies of the MatMul, each with weights of its own, as make the
model's whole MatMul weight in that format (at most WORKING_SET_MB): each call streams them from
memory, as a token does, and a kernel's figure is the call's time over the copies.

A format that wins on one CPU class can lose on another (AVX2, AVX-512 VNNI, BF16 ...), so the LM
budget search reads this table instead of assuming: it records it in the manifest with the CPU it was
timed on, and predicts each step's MatMul time from it. Timing is interleaved: every (shape, format)
session takes one turn of CALLS calls per round, the order rotating from round to round, after a pause
(measure.latency.settle) in which the threads of the session before it stop spinning (without it, on
2 cores, they slowed every figure: docs/benchmarks.md, the LM budget on Zen 1). A kernel's
figure is the mean of its fastest half of rounds (figure()): the slow half holds the disturbed rounds
(on a shared machine one round in five was seen 20x slower), and the fastest round alone moved
between tables timed minutes apart twice as far as the fastest half's mean did
(benchmarks/kernel_repeat.py, docs/benchmarks.md). Beside it: the fastest round and the next
(unsteady(): no second round within 15 %), the median, the range and every round.
"""
import functools
import time

import numpy as np

from qonnx import manifest
from qonnx.envinfo import cpu
from qonnx.errors import ConfigError
from qonnx.measure.latency import settle
from qonnx.variants.gptq import matmul_nbits, symmetric
from qonnx.variants.int4_weight import ACCURACY_LEVEL

ROUNDS, CALLS = 15, 4
WORKING_SET_MB = 256  # a model's weights beyond this are out of every cache we know of (L3: 32-256 MB)
# the flags (envinfo's names) that change which weight format ONNX Runtime's kernels run fastest: a
# budget build is a choice for one CPU class, named by its model and these
CLASS_FLAGS = ("AVX2", "AVX-512", "AVX512-VNNI", "AVX-VNNI", "AVX512-BF16", "AMX-INT8", "AMX-BF16")
# genai-int4's format, against which the search says its speed: onnxruntime-genai's builder writes 4-bit
# blocks of 32, symmetric (int4_is_symmetric defaults to true: no zero points, a faster kernel than the
# same blocks with zero points where it was measured: docs/benchmarks.md). A format spec is (bits, block)
# (8 bits symmetric, 4 bits with zero points, as the search writes them) or (bits, block, True): symmetric.
ANCHOR_SPEC = (4, 32, True)


def format_name(bits, block, sym=False) -> str:
    """A format's name in the table: "4-bit/32", "8-bit/128"; 4 bits without zero points: "4-bit/32 symmetric"."""
    return f"{bits}-bit/{block}" + (" symmetric" if sym and bits == 4 else "")


ANCHOR = format_name(*ANCHOR_SPEC)


@functools.cache
def this_cpu() -> dict:
    return cpu()  # cpuinfo takes about a second: once per process


def cpu_class(info=None) -> dict:
    """{"model", "flags"} of a CPU (envinfo.cpu()'s record; None: this machine), flags cut to CLASS_FLAGS."""
    info = this_cpu() if info is None else info
    return {"model": info.get("model"), "flags": sorted(f for f in info.get("flags") or () if f in CLASS_FLAGS)}


def class_name(c) -> str:
    return f"{c.get('model')} ({', '.join(c.get('flags') or ()) or 'none of ' + '/'.join(CLASS_FLAGS[:2])})"


def recorded(data) -> dict | None:
    """The kernel table a manifest's budget search recorded (None: not such a build)."""
    table = (((data or {}).get("settings") or {}).get("budget_search") or {}).get("kernels")
    return table if isinstance(table, dict) else None


def timed_on(data) -> dict | None:
    """The CPU class a manifest's budget search timed its kernels on (None: not such a build)."""
    table = recorded(data)
    return cpu_class(table["cpu"]) if table and table.get("cpu") else None


def other_cpu_note(data, env_cpu) -> str:
    """'' unless the artifact (manifest data) is a budget build timed on another CPU class than
    env_cpu (envinfo.cpu()'s record of where the row runs): then a note that says so."""
    there = timed_on(data)
    if there is None or not env_cpu or there == cpu_class(env_cpu):
        return ""
    return (f"the budget search chose its formats by kernels timed on {class_name(there)}; this row ran on "
            f"{class_name(cpu_class(env_cpu))}: its speed is not the one the search predicted (rebuild on this "
            "CPU: a budget build's key names the CPU class)")


def refuse_other_cpu(out, overwrite) -> None:
    """A budget build at `out` timed on another CPU class is not replaced without --overwrite (the
    key names the CPU class, so this is an explicit -o folder): say so rather than "already holds"."""
    there = timed_on(manifest.read(out))
    if there is not None and not overwrite and there != cpu_class():
        raise ConfigError(f"{out} holds a budget build searched on {class_name(there)}; this machine is "
                          f"{class_name(cpu_class())}. Pass --overwrite to search again for this CPU, or choose "
                          "another -o folder.")


def formats(block) -> dict:
    """The formats the LM budget search weighs with its block: genai-int4's 4-bit/32, 4-bit/64 and
    its own 4-bit block, each with zero points and without (symmetric), 8 bits, float. 4-bit/64 sits
    between the two in loss and ran at nearly 4-bit/128's speed where it was measured; symmetric 4-bit
    ran up to 10 % faster than the same blocks with zero points on one CPU and 1-3 % on others
    (docs/benchmarks.md): candidates() keeps a symmetric format only where it pays on this CPU."""
    four = (32, 64, block)
    return {**{format_name(4, b, sym): (4, b, True) if sym else (4, b) for b in four for sym in (False, True)},
            f"8-bit/{block}": (8, block), "float": None}


WORTH = 0.03  # a symmetric 4-bit format is a candidate where it runs this much faster than its twin


def candidates(fmts: dict, ms: dict, known=(), worth=WORTH) -> tuple:
    """(kept, left out) of fmts ({name: spec}) on this CPU, ms: {unit: {format: milliseconds}}
    (unit_ms()). A symmetric 4-bit format has one degree of freedom less than the same blocks with
    zero points, so it is measured (a few minutes of unit costs each) only where its MatMuls, summed
    over the model, run at least `worth` faster than its twin's, or where its costs are `known`
    already (cached: free, and a format near the line is not in one search and out of the next);
    left out: {name: its time over the twin's}."""
    total = {f: sum(t[f] for t in ms.values()) for f in fmts}
    out = {}
    for f, spec in fmts.items():
        twin = format_name(4, spec[1]) if spec and spec[0] == 4 and symmetric(spec) else None
        if twin in fmts and f not in known and total[f] > (1 - worth) * total[twin]:
            out[f] = total[f] / total[twin]
    return {f: spec for f, spec in fmts.items() if f not in out}, out


def weight_bytes(K, N, fmt) -> int:
    """Bytes one K x N weight holds in format fmt ((bits, block[, symmetric]), or None: float32):
    codes, scales (float32) and, at 4 bits unless symmetric, zero points."""
    if fmt is None:
        return 4 * K * N
    bits, block = fmt[:2]
    blocks = -(-K // block) * N
    return blocks * block * bits // 8 + 4 * blocks + (0 if symmetric(fmt) else blocks // 2)


def copies(counts: dict, K, N, fmt, cap_mb=WORKING_SET_MB) -> int:
    """How many distinct K x N weights make the model's MatMul weight in format fmt (counts: {(K, N):
    how many MatMuls}), at most cap_mb: the working set one decode step streams."""
    total = sum(c * weight_bytes(k, n, fmt) for (k, n), c in counts.items())
    return max(1, min(total, cap_mb * 2**20) // weight_bytes(K, N, fmt))


def graph(K, N, fmt, n=1) -> bytes:
    """n MatMuls [1, K] x [K, N] reading one input, each with weights of its own, in format `fmt`
    ((bits, block[, symmetric]), or None: float); random weights (the kernel's speed does not depend on them)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    for i in range(n):
        node = helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"], name=f"mm{i}")
        if fmt is None:
            nodes.append(node)
            inits.append(numpy_helper.from_array(rng.standard_normal((K, N), dtype=np.float32), f"w{i}"))
            continue
        bits, block = fmt[:2]
        Kp = -(-K // block) * block
        codes = np.frombuffer(rng.bytes(Kp * N), dtype=np.uint8).reshape(Kp, N) & (2 ** bits - 1)
        scales = rng.random((Kp // block, N), dtype=np.float32) * 0.01 + 1e-3
        zeros = np.full((Kp // block, N), 2 ** (bits - 1), dtype=np.uint8)
        q, more = matmul_nbits(node, K, codes, scales, zeros, bits, block, symmetric(fmt), ACCURACY_LEVEL)
        nodes.append(q)
        inits.extend(more)
    opset = [helper.make_opsetid("", 17)] + ([] if fmt is None else [helper.make_opsetid("com.microsoft", 1)])
    g = helper.make_graph(nodes, "kernel", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, K])],
                          [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, N]) for i in range(n)],
                          initializer=inits)
    return helper.make_model(g, opset_imports=opset).SerializeToString()


def counts(shapes: dict) -> dict:
    """{(K, N): how many MatMuls have that shape} of {name: (K, N)}."""
    out = {}
    for shape in shapes.values():
        out[tuple(shape)] = out.get(tuple(shape), 0) + 1
    return out


def measure(counts: dict, fmts: dict, threads=None, rounds=ROUNDS, calls=CALLS, cap_mb=WORKING_SET_MB) -> dict:
    """The kernel table of these shapes ({(K, N): how many MatMuls}) in these formats ({name: (bits,
    block) or None}) on this machine: {"cpu", "threads", "rounds", "calls", "working_set_mb",
    "kernels": [{"K", "N", "count", "format", "copies", "us", "us_median", "us_range"}]}
    (microseconds per MatMul, its weights streamed from memory: copies())."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sessions = {}
    for (K, N) in counts:
        x = np.random.default_rng(1).standard_normal((1, K), dtype=np.float32)
        for fmt, spec in fmts.items():
            n = copies(counts, K, N, spec, cap_mb)
            s = ort.InferenceSession(graph(K, N, spec, n), opts, providers=["CPUExecutionProvider"])
            for _ in range(2):  # warm-up
                s.run(None, {"x": x})
            sessions[(K, N, fmt)] = (s, x, n)
    times = {k: [] for k in sessions}
    keys = list(sessions)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            s, x, n = sessions[k]
            settle()
            t0 = time.perf_counter()
            for _ in range(calls):
                s.run(None, {"x": x})
            times[k].append((time.perf_counter() - t0) / calls / n * 1e6)
    here = this_cpu()
    return {"cpu": {"model": here.get("model"), "flags": here.get("flags")}, "threads": threads,
            "rounds": rounds, "calls": calls, "working_set_mb": cap_mb, "onnxruntime": ort.__version__,
            "kernels": [{"K": K, "N": N, "count": counts[(K, N)], "format": fmt, "copies": sessions[(K, N, fmt)][2],
                         "us": figure(t), "us_min": min(t), "us_next": sorted(t)[1] if len(t) > 1 else min(t),
                         "us_median": float(np.median(t)), "us_range": [min(t), max(t)],
                         "us_rounds": [round(x, 3) for x in t]}
                        for (K, N, fmt), t in times.items()]}


def figure(rounds) -> float:
    """A kernel's figure from its rounds (microseconds): the mean of the fastest half (at least one)."""
    fast = sorted(rounds)[:max(1, len(rounds) // 2)]
    return float(sum(fast) / len(fast))


def unsteady(table, spread=1.15) -> list:
    """The kernels ("KxN format") whose fastest round no other round came within `spread` of: on a
    shared machine most rounds are disturbed (medians of twice the fastest were seen on a quiet
    one), and a kernel is trusted when a second round agrees with its fastest. Tables before
    SEARCH 13 kept the fastest round as "us" and had no "us_min"."""
    return [f"{k['K']}x{k['N']} {k['format']}" for k in table["kernels"]
            if k.get("us_next", k["us"]) > spread * k.get("us_min", k["us"])]


def figures(table) -> dict:
    """{(K, N, format): microseconds} of a kernel table."""
    return {(k["K"], k["N"], k["format"]): k["us"] for k in table["kernels"]}


def predict_us(table, formats: dict, shapes: dict) -> float:
    """MatMul time of one decode step (microseconds) with each MatMul in its format:
    formats {name: format}, shapes {name: (K, N)}; names not in formats are counted as float."""
    us = figures(table)
    return sum(us[(*shape, formats.get(name, "float"))] for name, shape in shapes.items())


def unit_ms(table, units: dict, shapes: dict, fused=None, formats=None) -> dict:
    """{unit: {format: milliseconds of its MatMuls per decode step}} from the table; units
    {unit: MatMul names}, shapes {name: (K, N)}; fused {unit: [(K, N)]}: the shapes a unit's
    MatMuls run as in the quantized formats, where those sharing an input are one; formats: the
    format names to give (default: every format in the table)."""
    us = figures(table)
    fmts = formats or {k["format"] for k in table["kernels"]}

    def runs(u, f):
        return fused[u] if fused and f != "float" else [shapes[n] for n in units[u]]

    return {u: {f: sum(us[(*shape, f)] for shape in runs(u, f)) / 1000 for f in sorted(fmts)} for u in units}
